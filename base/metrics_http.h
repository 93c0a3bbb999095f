// Serves a MetricsRegistry at http://HOST:PORT/metrics for Prometheus
// (--metrics-listen). GET /metrics only; anything else is 404 or 405.
//
// Bounded for a client that never reads: two worker threads, at most 16
// accepted connections waiting (past that the accept loop waits, and the
// kernel's backlog holds or refuses the rest), 5 s read and write timeouts,
// requests of at most 8 KiB, 10 requests per connection.
//
// Start fails with INVALID_ARGUMENT for a bad address and UNAVAILABLE if it
// cannot be bound.
#ifndef MXKEY_BASE_METRICS_HTTP_H_
#define MXKEY_BASE_METRICS_HTTP_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "base/metrics.h"

namespace httplib {
class Server;
}

namespace mxkey {

class MetricsServer {
 public:
  // `listen` is HOST:PORT ([V6]:PORT; port 0 picks one). `registry` must
  // outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen, const MetricsRegistry* registry);
  ~MetricsServer();

  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace mxkey

#endif  // MXKEY_BASE_METRICS_HTTP_H_
