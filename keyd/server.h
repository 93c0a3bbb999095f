// A running keyd: the data-directory lock, keys, storage and both gRPC
// servers (public TCP; Admin on a Unix socket, mode 0660).
//
// Start fails with FAILED_PRECONDITION if another keyd holds the data
// directory, NOT_FOUND if it was never initialized, UNAUTHENTICATED for a
// wrong passphrase, UNAVAILABLE if a listen address cannot be bound.
#ifndef MXKEY_KEYD_SERVER_H_
#define MXKEY_KEYD_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "base/metrics.h"
#include "base/metrics_http.h"
#include "keyd/change_tracking_store.h"
#include "keyd/admin_socket.h"
#include "keyd/directory.h"
#include "keyd/host_admin.h"
#include "keyd/issuer.h"
#include "keyd/keyd_context.h"
#include "keyd/lmdb_store.h"
#include "keyd/org_keys.h"
#include "keyd/peer_feed.h"
#include "keyd/services.h"
#include "keyd/recertifier.h"
#include "keyd/tls_files.h"

namespace mxkey {

struct ServerOptions {
  std::string data_dir;
  std::string listen = "127.0.0.1:7700";
  // TLS on the public endpoint (keyd serve --tls): auto serves TLS unless
  // `listen` is a loopback address. Peers are reached the same way
  // (keyd.peer_transport).
  KeydTransport tls = KeydTransport::kAuto;
  // Default: DATA_DIR/admin.sock.
  std::string admin_socket;
  // Group that may use the admin socket; empty keeps the process's group.
  std::string admin_group;
  // HOST:PORT for Prometheus' /metrics (keyd serve --metrics-listen); empty:
  // no metrics endpoint.
  std::string metrics_listen;
  KeydOptions keyd;
  OrgKeysOptions org_keys;
  LmdbOptions lmdb;
  EnrollmentLimits enrollment_limits;
  // Caps on open WatchRevocations streams and the drain timeout (keyd serve
  // --max-watches, --max-watches-per-source, --watch-drain-timeout), and the
  // bytes their batches may hold in all (--watch-buffer-mb).
  WatchLimits watch_limits;
  // Bounds on relayed lookups (--relay-max-calls-per-peer).
  RelayLimits relay_limits;
  // How late refusals of the denial and enrollment limits, and rejected
  // enrollments, go out, and how many may wait (--refusal-delay,
  // --max-delayed-refusals).
  RefusalDelayOptions refusal_delay;
  size_t watch_buffer_bytes = size_t{64} << 20;
  // Largest request the public services accept.
  int max_request_bytes = 64 * 1024;
  // Overload bounds of the public server: streams in flight per connection
  // (more wait at the client) and the memory gRPC may hold for requests in
  // flight (past it, gRPC refuses work rather than queueing it).
  int max_streams_per_connection = 256;
  size_t max_grpc_memory_bytes = 256u << 20;
};

class KeydServer {
 public:
  static absl::StatusOr<std::unique_ptr<KeydServer>> Start(
      const ServerOptions& options, const SecretBytes& passphrase,
      Clock* clock);
  ~KeydServer();

  // The TCP port actually bound (useful with --listen 127.0.0.1:0).
  int port() const { return port_; }
  const std::string& admin_socket() const { return admin_socket_->path(); }
  const OrgKeys& keys() const { return *keys_; }
  // The store, for inspection by tests and tools (writes go through the
  // services).
  Store& store() { return *tracked_store_; }

  // What the renewal loop does every minute, now: renews the issuing key
  // when due, re-certifies host certificates and policies, renews the TLS
  // identity and re-signs a stale federation bundle. For tests that move a
  // fake clock; the first error, after trying every step.
  absl::Status Maintain();

  // Blocks until Shutdown is called from another thread.
  void Wait();
  void Shutdown();

 private:
  KeydServer() = default;

  int lock_fd_ = -1;
  // First to be made and last to go: every component records into it.
  std::unique_ptr<MetricsRegistry> metrics_registry_;
  std::unique_ptr<KeydMetrics> metrics_;
  int port_ = 0;
  // Made before the admin service, which asks it who called.
  std::unique_ptr<AdminSocket> admin_socket_;
  std::unique_ptr<OrgKeys> keys_;
  // Set when the public endpoint serves TLS.
  std::unique_ptr<KeydTlsFiles> tls_files_;
  std::unique_ptr<Recertifier> recertifier_;
  std::unique_ptr<LmdbStore> store_;
  // Every write goes through this, so the answer cache learns what changed.
  std::unique_ptr<ChangeTrackingStore> tracked_store_;
  std::unique_ptr<FeedNotifier> feed_;
  KeydContext ctx_;
  std::unique_ptr<Directory> directory_;
  std::unique_ptr<HostAdmin> host_admin_;
  std::unique_ptr<Federation> federation_;
  std::unique_ptr<PeerRelay> relay_;
  std::unique_ptr<PeerFeedFollower> peer_feeds_;
  std::unique_ptr<Issuer> issuer_;
  // Before the services that hold refusals in it: it goes after them.
  std::unique_ptr<RefusalDelay> refusals_;
  std::unique_ptr<KeyDirectoryService> directory_service_;
  std::unique_ptr<EnrollmentService> enrollment_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<grpc::Server> public_server_;
  std::unique_ptr<grpc::Server> admin_server_;
  std::unique_ptr<MetricsServer> metrics_server_;

  // Renews the issuing key while serving (checked every minute).
  void RenewalLoop();
  Mutex renewal_mu_;
  bool stopping_ ABSL_GUARDED_BY(renewal_mu_) = false;
  std::thread renewal_;
};

// The passphrase for the data directory: --passphrase-file if given, else
// DATA_DIR/passphrase. Trailing newlines are dropped.
absl::StatusOr<SecretBytes> LoadPassphrase(const std::string& data_dir,
                                           const std::string& passphrase_file);

}  // namespace mxkey

#endif  // MXKEY_KEYD_SERVER_H_
