// Bounds on open WatchRevocations streams: how many may be open in all and
// per source network, and how long a write may wait for a client that does
// not read before the stream is dropped.
//
// Every FeedWatch is admitted here first; past a cap the watch is refused
// with RESOURCE_EXHAUSTED (clients retry with backoff) and nothing is held.
// A watch whose write has waited longer than the drain timeout is cancelled
// by the sweeper thread: an unread stream pins its batch (and gRPC's
// per-stream state) for as long as it stays open, so without the timeout
// a client that never reads holds keyd's memory forever. Cannot fail
// otherwise.
#ifndef MXKEY_KEYD_WATCH_REGISTRY_H_
#define MXKEY_KEYD_WATCH_REGISTRY_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "keyd/keyd_metrics.h"
#include "keyd/rate_limiter.h"

namespace mxkey {

// keyd serve --max-watches, --max-watches-per-source, --watch-drain-timeout.
struct WatchLimits {
  size_t max_watches = 8192;
  // Per source network (the same grouping as the enrollment limits).
  size_t max_watches_per_source = 256;
  SourcePrefixes prefixes;
  absl::Duration drain_timeout = absl::Seconds(60);
  // How often the sweeper looks for stalled writes.
  absl::Duration sweep_interval = absl::Seconds(1);
};

// One admitted watch, as the registry sees it. The watch reports when a
// write starts and ends; Close (from the reactor's OnDone) waits out a
// cancel in progress, so the call's context is never used after OnDone.
class WatchTicket {
 public:
  void WriteStarted(absl::Time now) {
    write_since_ns_.store(absl::ToUnixNanos(now));
  }
  void WriteDone() { write_since_ns_.store(0); }

 private:
  friend class WatchRegistry;
  WatchTicket(grpc::CallbackServerContext* context, std::string source)
      : context_(context), source_(std::move(source)) {}

  // Recursive: gRPC may run the watch's OnCancel and OnDone inline in
  // TryCancel, on the sweeper's thread, while it holds this lock.
  std::recursive_mutex mu_;
  grpc::CallbackServerContext* context_;  // null once closed
  const std::string source_;
  // When the pending write started (Unix ns); 0: none pending.
  std::atomic<int64_t> write_since_ns_{0};
};

class WatchRegistry {
 public:
  WatchRegistry(WatchLimits limits, Clock* clock, KeydMetrics* metrics);
  ~WatchRegistry();  // stops the sweeper
  WatchRegistry(const WatchRegistry&) = delete;
  WatchRegistry& operator=(const WatchRegistry&) = delete;

  // Admits a watch from `grpc_peer` (context->peer()), or RESOURCE_EXHAUSTED
  // naming the cap that was reached.
  absl::StatusOr<std::shared_ptr<WatchTicket>> Admit(
      absl::string_view grpc_peer, grpc::CallbackServerContext* context);
  // From the watch's OnDone: the ticket's slot is free again.
  void Release(const std::shared_ptr<WatchTicket>& ticket);

  // Cancels every watch whose write has waited past the drain timeout and
  // returns how many; the sweeper calls it every sweep_interval.
  int CancelStalled();

  size_t open() const;
  const WatchLimits& limits() const { return limits_; }

 private:
  void Sweep();

  const WatchLimits limits_;
  Clock* const clock_;
  KeydMetrics* const metrics_;
  mutable Mutex mu_;
  absl::flat_hash_set<std::shared_ptr<WatchTicket>> open_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> per_source_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread sweeper_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_WATCH_REGISTRY_H_
