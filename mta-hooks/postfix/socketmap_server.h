// A Postfix socketmap server (socketmap_table(5)): netstring requests
// "NAME KEY" in, netstring replies "OK data", "NOTFOUND ", "TEMP reason" or
// "PERM reason" out, many requests per connection, many connections at once.
//
// Each connection has its own thread, so a slow or stalled client only
// stalls itself; connections beyond `max_connections`, or beyond
// `max_connections_per_peer` from one peer (a local uid, or a remote
// address: see SocketPeer), are answered TEMP and closed. When all
// `max_connections` are taken, a new connection takes the place of the one
// idle longest, if it has been idle for `idle_timeout_when_full` (Postfix
// reconnects when it needs to): a local user holding idle connections
// cannot lock Postfix out. Requests that are framed correctly but malformed (unknown map,
// junk key) get PERM and the connection stays usable; broken framing gets
// PERM and the connection is closed, since it cannot be resynchronized. A
// connection idle for `idle_timeout`, or silent for `request_timeout` in
// the middle of a request, is closed. Listen errors are returned by Start.
#ifndef MXKEY_MTA_HOOKS_POSTFIX_SOCKETMAP_SERVER_H_
#define MXKEY_MTA_HOOKS_POSTFIX_SOCKETMAP_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <map>
#include <sys/types.h>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mxkey {

// Answers one well-formed request. `map` is the map name (lower-case
// letters), `key` a non-empty run of printable ASCII. Returns the reply
// payload, e.g. "OK fingerprint match=...".
using SocketmapLookup =
    std::function<std::string(const std::string& map, const std::string& key)>;

struct SocketmapServerOptions {
  // "inet:HOST:PORT" (PORT 0 picks a free one; HOST may be "[::1]") or
  // "unix:PATH".
  std::vector<std::string> listen;
  // Postfix runs every smtp and smtpd process as one uid, each with its own
  // connection: room for a busy Postfix (hundreds) and for another user.
  size_t max_connections = 1024;
  size_t max_connections_per_peer = 512;
  absl::Duration idle_timeout_when_full = absl::Seconds(1);
  size_t max_request_bytes = 4096;
  // Mode and group of unix: sockets (the group: -1 keeps the process's).
  mode_t unix_mode = 0666;
  gid_t unix_group = static_cast<gid_t>(-1);
  absl::Duration idle_timeout = absl::Minutes(5);
  absl::Duration request_timeout = absl::Seconds(10);
};

// Splits "NAME KEY"; INVALID_ARGUMENT with the reason otherwise.
struct SocketmapRequest {
  std::string map;
  std::string key;
};
absl::StatusOr<SocketmapRequest> ParseSocketmapRequest(absl::string_view payload);

// Replies are cut to this size (Postfix's socketmap client limit).
inline constexpr size_t kMaxSocketmapReply = 100000 - 1;

class SocketmapServer {
 public:
  SocketmapServer(SocketmapServerOptions options, SocketmapLookup lookup);
  ~SocketmapServer();  // Stop()s

  // Binds every listen address and starts accepting.
  absl::Status Start();
  // The bound addresses, in listen order ("inet:127.0.0.1:41234").
  std::vector<std::string> bound() const { return bound_; }
  // Closes listeners and connections and waits for their threads.
  void Stop();

 private:
  void AcceptLoop(int listen_fd);
  struct Connection;
  void Serve(int fd, Connection* self);
  bool SendReply(int fd, absl::string_view reply);

  SocketmapServerOptions options_;
  SocketmapLookup lookup_;
  std::vector<int> listen_fds_;
  std::vector<std::string> bound_;
  std::vector<std::string> unix_paths_;
  std::vector<std::thread> acceptors_;
  std::atomic<bool> stopping_{false};

  // Admits `fd` (its peer `peer`), making room by closing the connection
  // idle longest when full; null (nothing changed) when it may not.
  Connection* Admit(int fd, const std::string& peer, std::string* refusal);

  struct Connection {
    std::string peer;
    // Since when it has been idle (Unix ns), or kBusy in a request. Set by
    // its own thread without the lock (once per request), read by Admit.
    static constexpr int64_t kBusy = 0;
    std::atomic<int64_t> idle_since_ns{kBusy};
    bool closing = false;  // shut down to make room; not counted
  };
  std::mutex mu_;
  std::condition_variable idle_;
  std::map<int, Connection> connections_;  // guarded by mu_
  size_t closing_ = 0;                     // guarded by mu_
  std::map<std::string, size_t> per_peer_;  // guarded by mu_
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_POSTFIX_SOCKETMAP_SERVER_H_
