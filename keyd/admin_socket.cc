#include "keyd/admin_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <grpcpp/server_posix.h>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace mxkey {
namespace {

absl::Status SecureSocketFile(const std::string& path,
                              const std::string& group) {
  if (!group.empty()) {
    struct group* g = getgrnam(group.c_str());
    if (g == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("admin group ", group, " does not exist"));
    }
    if (chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      const int error = errno;
      return absl::InternalError(absl::StrCat(
          "cannot give ", path, " to group ", group, ": ", strerror(error),
          error == EPERM ? absl::StrCat(" (keyd's user must be a member of ",
                                        group,
                                        ": usermod -aG, or SupplementaryGroups= "
                                        "in the unit)")
                         : ""));
    }
    // The group needs to reach the socket, not only to own it: a socket in
    // a 0700 data directory is unusable for anyone but keyd's user.
    const std::string dir = path.substr(0, path.rfind('/') + 1);
    struct stat st;
    if (!dir.empty() && stat(dir.c_str(), &st) == 0 &&
        (st.st_mode & S_IXOTH) == 0 &&
        !(st.st_gid == g->gr_gid && (st.st_mode & S_IXGRP) != 0)) {
      LogWarning("admin socket %s is in %s, which group %s cannot enter: "
                 "its members cannot administer; put it in a directory of "
                 "its own (e.g. --admin-socket /run/mxkey-keyd/admin.sock)",
                 path, dir, group);
    }
  }
  if (chmod(path.c_str(), 0660) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot chmod ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<AdminSocket>> AdminSocket::Listen(
    const std::string& path, const std::string& group) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admin socket path is too long for a Unix socket (max ",
        sizeof(addr.sun_path) - 1, " bytes): ", path));
  }
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  }
  unlink(path.c_str());  // stale socket of a dead keyd; the caller holds the lock
  // Nobody but keyd's user may connect before the mode and group are set.
  // umask is process-wide, but this runs during startup, before any thread
  // of keyd's own creates a file.
  const mode_t old_umask = umask(0177);
  const int bound = bind(fd, reinterpret_cast<const sockaddr*>(&addr),
                         sizeof(addr));
  const int bind_errno = errno;
  umask(old_umask);
  if (bound != 0 || listen(fd, 64) != 0) {
    const int error = bound != 0 ? bind_errno : errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on admin socket ", path, ": ", strerror(error)));
  }
  absl::Status secured = SecureSocketFile(path, group);
  if (!secured.ok()) {
    close(fd);
    unlink(path.c_str());
    return secured;
  }
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(fd);
    unlink(path.c_str());
    return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  }
  return std::unique_ptr<AdminSocket>(new AdminSocket(path, fd, wake));
}

AdminSocket::AdminSocket(std::string path, int listen_fd, int wake_fd)
    : path_(std::move(path)), listen_fd_(listen_fd), wake_fd_(wake_fd) {}

AdminSocket::~AdminSocket() {
  Stop();
  close(listen_fd_);
  close(wake_fd_);
  unlink(path_.c_str());
}

void AdminSocket::Serve(grpc::Server* server) {
  acceptor_ = std::thread([this, server] { AcceptLoop(server); });
}

void AdminSocket::Stop() {
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
    // Only EAGAIN (counter full) is possible, and then a wake-up is pending.
  }
  if (acceptor_.joinable()) acceptor_.join();
}

void AdminSocket::AcceptLoop(grpc::Server* server) {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      LogWarning("admin socket: poll: %s; no more admin connections",
                 strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    const int conn = accept4(listen_fd_, nullptr, nullptr,
                             SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        LogWarning("admin socket: accept: %s", strerror(errno));
        // EMFILE and the like: back off instead of spinning.
        poll(&fds[1], 1, 100);
      }
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        len != sizeof(cred)) {
      LogWarning("admin socket: cannot read the peer's credentials (%s); "
                 "connection refused", strerror(errno));
      close(conn);
      continue;
    }
    {
      MutexLock lock(&mu_);
      uid_by_fd_[conn] = cred.uid;
    }
    grpc::AddInsecureChannelFromFd(server, conn);
  }
}

std::optional<uid_t> AdminSocket::CallerUid(
    const grpc::ServerContextBase& context) const {
  const std::string peer = context.peer();
  int fd = -1;
  if (!absl::StartsWith(peer, "fd:") ||
      !absl::SimpleAtoi(absl::string_view(peer).substr(3), &fd)) {
    return std::nullopt;
  }
  MutexLock lock(&mu_);
  auto it = uid_by_fd_.find(fd);
  if (it == uid_by_fd_.end()) return std::nullopt;
  return it->second;
}

}  // namespace mxkey
