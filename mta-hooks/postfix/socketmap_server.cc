#include "mta-hooks/postfix/socketmap_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/log.h"
#include "mta-hooks/postfix/netstring.h"
#include "mta-hooks/postfix/socket_peer.h"

namespace mxkey {
namespace {

constexpr size_t kMaxMapName = 64;

absl::Status Errno(absl::string_view what, absl::string_view spec) {
  return absl::UnavailableError(
      absl::StrCat(what, " ", spec, ": ", std::strerror(errno)));
}

int PollMillis(absl::Duration d) {
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(d), 1 << 30));
}

// Binds "inet:HOST:PORT" or "unix:PATH"; returns the fd and the address as
// bound (with the real port).
absl::StatusOr<std::pair<int, std::string>> Bind(
    absl::string_view spec, const SocketmapServerOptions& options) {
  absl::string_view rest = spec;
  if (absl::ConsumePrefix(&rest, "unix:")) {
    sockaddr_un addr{};
    if (rest.empty() || rest.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unix socket path must be 1..", sizeof(addr.sun_path) - 1,
          " bytes: ", spec));
    }
    const std::string path(rest);
    struct stat st;
    // Replace only a stale socket, never some other file.
    if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      unlink(path.c_str());
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Errno("socket", spec);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    // Every answer is public, signed data and no request changes state, so
    // by default any local user may ask (per-uid limits keep each one to
    // its share); --socket-mode and --socket-group narrow it to Postfix.
    // Nobody can connect before listen(), which comes after both.
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      absl::Status s = Errno("bind", spec);
      close(fd);
      return s;
    }
    if ((options.unix_group != static_cast<gid_t>(-1) &&
         chown(path.c_str(), static_cast<uid_t>(-1), options.unix_group) != 0) ||
        chmod(path.c_str(), options.unix_mode) != 0 || listen(fd, 128) != 0) {
      absl::Status s = Errno("set the group and mode of, or listen on,", spec);
      close(fd);
      unlink(path.c_str());
      return s;
    }
    return std::make_pair(fd, std::string(spec));
  }
  if (!absl::ConsumePrefix(&rest, "inet:")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address must be inet:HOST:PORT or unix:PATH, got \"", spec,
        "\""));
  }
  const size_t colon = rest.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("inet listen address needs HOST:PORT, got \"", spec, "\""));
  }
  std::string host(rest.substr(0, colon));
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "inet listen host must be an IP address, got \"", host, "\""));
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket", spec);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    absl::Status s = Errno("listen on", spec);
    close(fd);
    return s;
  }
  const int bound_port = ntohs(ss.ss_family == AF_INET ? v4->sin_port
                                                       : v6->sin6_port);
  const std::string shown =
      ss.ss_family == AF_INET6 ? absl::StrCat("[", host, "]") : host;
  return std::make_pair(fd, absl::StrCat("inet:", shown, ":", bound_port));
}

}  // namespace

absl::StatusOr<SocketmapRequest> ParseSocketmapRequest(
    absl::string_view payload) {
  const size_t space = payload.find(' ');
  if (space == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "request must be \"NAME KEY\" (map name, one space, lookup key)");
  }
  SocketmapRequest r{std::string(payload.substr(0, space)),
                     std::string(payload.substr(space + 1))};
  if (r.map.empty() || r.map.size() > kMaxMapName) {
    return absl::InvalidArgumentError(
        absl::StrCat("map name must be 1..", kMaxMapName, " letters"));
  }
  for (char c : r.map) {
    if (!absl::ascii_islower(c)) {
      return absl::InvalidArgumentError(
          "map name must be lower-case letters, as in \"tlspolicy\"");
    }
  }
  if (r.key.empty()) return absl::InvalidArgumentError("lookup key is empty");
  for (char c : r.key) {
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          "lookup key must be printable ASCII without spaces");
    }
  }
  return r;
}

SocketmapServer::SocketmapServer(SocketmapServerOptions options,
                                 SocketmapLookup lookup)
    : options_(std::move(options)), lookup_(std::move(lookup)) {}

SocketmapServer::~SocketmapServer() { Stop(); }

absl::Status SocketmapServer::Start() {
  if (options_.listen.empty()) {
    return absl::InvalidArgumentError("socketmap server needs a listen address");
  }
  for (const std::string& spec : options_.listen) {
    absl::StatusOr<std::pair<int, std::string>> bound = Bind(spec, options_);
    if (!bound.ok()) {
      Stop();
      return bound.status();
    }
    listen_fds_.push_back(bound->first);
    bound_.push_back(bound->second);
    if (absl::StartsWith(spec, "unix:")) unix_paths_.push_back(spec.substr(5));
  }
  for (int fd : listen_fds_) {
    acceptors_.emplace_back([this, fd] { AcceptLoop(fd); });
  }
  return absl::OkStatus();
}

void SocketmapServer::AcceptLoop(int listen_fd) {
  while (!stopping_.load()) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_.load()) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        LogWarning("socketmap accept: %s", std::strerror(errno));
        usleep(100 * 1000);
        continue;
      }
      return;
    }
    std::string refusal;
    Connection* admitted = Admit(fd, SocketPeer(fd), &refusal);
    if (admitted == nullptr) {
      SendReply(fd, absl::StrCat("TEMP mxkey-policyd: ", refusal));
      close(fd);
      continue;
    }
    std::thread([this, fd, admitted] { Serve(fd, admitted); }).detach();
  }
}

SocketmapServer::Connection* SocketmapServer::Admit(int fd,
                                                   const std::string& peer,
                                                   std::string* refusal) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_.load()) {
    *refusal = "shutting down";
    return nullptr;
  }
  auto held = per_peer_.find(peer);
  if (held != per_peer_.end() &&
      held->second >= options_.max_connections_per_peer) {
    *refusal = absl::StrCat("too many connections from ", peer,
                            " (--max-connections-per-peer)");
    return nullptr;
  }
  if (connections_.size() - closing_ >= options_.max_connections) {
    // Full: the connection idle longest makes room, if idle long enough.
    const int64_t idle_before = absl::ToUnixNanos(
        absl::Now() - options_.idle_timeout_when_full);
    auto oldest = connections_.end();
    int64_t oldest_since = 0;
    for (auto it = connections_.begin(); it != connections_.end(); ++it) {
      const int64_t since = it->second.idle_since_ns.load();
      if (since == Connection::kBusy || it->second.closing ||
          since > idle_before) {
        continue;
      }
      if (oldest == connections_.end() || since < oldest_since) {
        oldest = it;
        oldest_since = since;
      }
    }
    if (oldest == connections_.end()) {
      *refusal = "too many connections";
      return nullptr;
    }
    oldest->second.closing = true;
    ++closing_;
    // Ends its blocked read; its thread cleans up.
    shutdown(oldest->first, SHUT_RDWR);
  }
  Connection& c = connections_[fd];
  c.peer = peer;
  c.idle_since_ns.store(absl::ToUnixNanos(absl::Now()));
  ++per_peer_[peer];
  return &c;
}

bool SocketmapServer::SendReply(int fd, absl::string_view reply) {
  if (reply.size() > kMaxSocketmapReply) {
    reply = "TEMP mxkey-policyd: answer too large for socketmap";
  }
  const std::string wire = EncodeNetstring(reply);
  size_t sent = 0;
  while (sent < wire.size()) {
    // A reply nearly always fits the socket buffer: send first, and wait
    // (bounded) only when the peer is not reading.
    ssize_t n = send(fd, wire.data() + sent, wire.size() - sent,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, PollMillis(options_.request_timeout)) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

void SocketmapServer::Serve(int fd, Connection* self) {
  NetstringDecoder decoder(options_.max_request_bytes);
  char buf[4096];
  bool open = true;
  absl::Duration timeout_set = absl::ZeroDuration();  // none yet
  while (open && !stopping_.load()) {
    // The wait for the next bytes is bounded by a receive timeout on the
    // socket, not a poll() before every read: one system call per request
    // fewer, and a lookup's round trip is mostly system calls. Stop()
    // shuts the socket down, which ends a blocked read at once.
    const absl::Duration wait = std::max(
        absl::Milliseconds(1), decoder.buffered() > 0
                                   ? options_.request_timeout
                                   : options_.idle_timeout);
    if (wait != timeout_set) {
      const timeval tv = absl::ToTimeval(wait);
      if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) break;
      timeout_set = wait;
    }
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed, timed out (EAGAIN), or the socket failed
    const bool was_idle = decoder.buffered() == 0;
    if (was_idle) self->idle_since_ns.store(Connection::kBusy);
    decoder.Append(absl::string_view(buf, static_cast<size_t>(n)));
    for (;;) {
      NetstringDecoder::Result r = decoder.Next();
      if (r.kind == NetstringDecoder::Kind::kNeedMore) break;
      if (r.kind == NetstringDecoder::Kind::kBroken) {
        SendReply(fd, absl::StrCat("PERM ", r.payload));
        open = false;
        break;
      }
      absl::StatusOr<SocketmapRequest> request = ParseSocketmapRequest(r.payload);
      const std::string reply =
          request.ok() ? lookup_(request->map, request->key)
                       : absl::StrCat("PERM ", request.status().message());
      if (!SendReply(fd, reply)) {
        open = false;
        break;
      }
    }
    // Between requests: idle (one that may make room when all are taken).
    if (open && decoder.buffered() == 0) {
      self->idle_since_ns.store(absl::ToUnixNanos(absl::Now()));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = connections_.find(fd);
  if (it != connections_.end()) {
    if (it->second.closing) --closing_;
    auto p = per_peer_.find(it->second.peer);
    if (p != per_peer_.end() && --p->second == 0) per_peer_.erase(p);
    connections_.erase(it);
  }
  close(fd);
  idle_.notify_all();
}

void SocketmapServer::Stop() {
  if (stopping_.exchange(true)) return;
  for (int fd : listen_fds_) shutdown(fd, SHUT_RDWR);
  for (std::thread& t : acceptors_) t.join();
  acceptors_.clear();
  for (int fd : listen_fds_) close(fd);
  listen_fds_.clear();
  for (const std::string& path : unix_paths_) unlink(path.c_str());
  std::unique_lock<std::mutex> lock(mu_);
  for (const auto& [fd, c] : connections_) shutdown(fd, SHUT_RDWR);
  // A lookup in flight finishes within the RPC timeout; don't wait forever.
  idle_.wait_for(lock, std::chrono::seconds(10),
                 [this] { return connections_.empty(); });
}

}  // namespace mxkey
