// AdminSocket: keyd's admin Unix socket, accepted by keyd itself so that
// every admin call is attributed to the uid of the process that made it.
//
// gRPC's own "unix:" listener gives a handler only the socket's path as the
// peer. Here keyd accepts each connection, reads SO_PEERCRED (the kernel's
// word for who connected: it cannot be forged by the client), remembers the
// uid by file descriptor and hands the descriptor to the gRPC server
// (grpc::AddInsecureChannelFromFd), whose calls then name the peer "fd:N".
// CallerUid() maps a call back to its uid, for the audit line every admin
// change writes (keyd/services.cc).
//
// Failure: Listen() fails with a clear error when the path is too long, the
// socket cannot be bound, or the group/mode cannot be set. A connection
// whose credentials cannot be read is closed and logged, never served
// anonymously. Who may connect at all is decided by the socket's mode
// (0660) and group, as before.
#ifndef MXKEY_KEYD_ADMIN_SOCKET_H_
#define MXKEY_KEYD_ADMIN_SOCKET_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <grpcpp/server.h>
#include <grpcpp/server_context.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"

namespace mxkey {

class AdminSocket {
 public:
  // Binds and listens on `path` (replacing a stale socket: the caller holds
  // the data directory's lock), mode 0660, group `group` when not empty.
  // Connections wait in the backlog until Serve().
  static absl::StatusOr<std::unique_ptr<AdminSocket>> Listen(
      const std::string& path, const std::string& group);
  ~AdminSocket();  // Stop(), then removes the socket file.

  // From now on hands every accepted connection to `server` (which must
  // outlive Stop()), on a thread of its own.
  void Serve(grpc::Server* server);
  // Stops accepting; connections already handed over stay with gRPC.
  void Stop();

  // The uid of the process on the other end of the admin connection that
  // carries `context`'s call; nullopt if the call did not come through this
  // socket (e.g. a test's in-process channel).
  std::optional<uid_t> CallerUid(const grpc::ServerContextBase& context) const;

  const std::string& path() const { return path_; }

 private:
  AdminSocket(std::string path, int listen_fd, int wake_fd);
  void AcceptLoop(grpc::Server* server);

  const std::string path_;
  const int listen_fd_;
  // An eventfd that Stop() signals, to end the poll in AcceptLoop.
  const int wake_fd_;
  std::thread acceptor_;

  mutable Mutex mu_;
  // The uid of the connection now open on each descriptor. A descriptor
  // number is reused only after gRPC closed the connection that had it, so
  // the entry written at accept time is the current one.
  absl::flat_hash_map<int, uid_t> uid_by_fd_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_ADMIN_SOCKET_H_
