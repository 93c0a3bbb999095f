// Bounds on open WatchRevocations streams: how many may be open in all and
// per source network, how many bytes of pending writes one source network
// may hold, and how long a write may wait for a client that does not read
// before the stream is dropped.
//
// Every FeedWatch is admitted here first; past a cap the watch is refused
// with RESOURCE_EXHAUSTED (clients retry with backoff) and nothing is held.
// A watch whose source already holds its share of pending bytes, or whose
// next batch does not fit the shared batch buffer, waits ("starved") and is
// woken again every sweep: a slow or hostile source delays only itself. A
// watch whose write has waited longer than the drain timeout (plus up to a
// quarter of it, chosen per watch) is cancelled by the sweeper thread: an
// unread stream pins its batch (and gRPC's per-stream state) for as long
// as it stays open. The spread keeps watches a flood opened together from
// being dropped (and reopened) together, in one burst; drops are logged
// once per source and sweep. Cannot fail otherwise.
#ifndef MXKEY_KEYD_WATCH_REGISTRY_H_
#define MXKEY_KEYD_WATCH_REGISTRY_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "keyd/feed_notifier.h"
#include "keyd/keyd_metrics.h"
#include "keyd/rate_limiter.h"

namespace mxkey {

// keyd serve --max-watches, --max-watches-per-source, --watch-drain-timeout,
// --watch-refusal-delay.
struct WatchLimits {
  size_t max_watches = 8192;
  // Per source network (the same grouping as the enrollment limits).
  size_t max_watches_per_source = 256;
  SourcePrefixes prefixes;
  absl::Duration drain_timeout = absl::Seconds(60);
  // How late a watch refused by a cap gets its refusal (FeedWatch); zero:
  // at once.
  absl::Duration refusal_delay = absl::Seconds(60);
  // Bytes of batches in pending writes one source network may hold (each
  // watch counts its batch, shared or not); a source with nothing pending
  // may always start one write. keyd sets it to 1/8 of --watch-buffer-mb.
  size_t max_pending_bytes_per_source = size_t{8} << 20;
  // How often the sweeper looks for stalled writes and starved watches.
  absl::Duration sweep_interval = absl::Seconds(1);
};

// One admitted watch, as the registry sees it; a handle only the registry
// reads. Release (from the reactor's OnDone) waits out a cancel in
// progress, so the call's context is never used after OnDone.
class WatchTicket {
 private:
  friend class WatchRegistry;
  WatchTicket(grpc::CallbackServerContext* context, std::string source,
              std::weak_ptr<FeedListener> waker, int64_t drain_slack_ns)
      : context_(context),
        source_(std::move(source)),
        waker_(std::move(waker)),
        drain_slack_ns_(drain_slack_ns) {}

  // Recursive, in case gRPC runs the watch's OnCancel and OnDone inline in
  // TryCancel (1.51 does not), on the sweeper's thread that holds it.
  std::recursive_mutex mu_;
  grpc::CallbackServerContext* context_;  // null once closed
  const std::string source_;
  // Woken by the sweeper while starved.
  const std::weak_ptr<FeedListener> waker_;
  // When the pending write started (Unix ns); 0: none pending.
  std::atomic<int64_t> write_since_ns_{0};
  // This watch's share of the spread of drain timeouts.
  const int64_t drain_slack_ns_;
  // Guarded by the registry's mutex.
  size_t pending_bytes_ = 0;
  bool starved_ = false;
};

class WatchRegistry {
 public:
  WatchRegistry(WatchLimits limits, Clock* clock, KeydMetrics* metrics);
  ~WatchRegistry();  // stops the sweeper
  WatchRegistry(const WatchRegistry&) = delete;
  WatchRegistry& operator=(const WatchRegistry&) = delete;

  // Admits a watch from `grpc_peer` (context->peer()), or RESOURCE_EXHAUSTED
  // naming the cap that was reached. `waker` wakes the watch to retry.
  absl::StatusOr<std::shared_ptr<WatchTicket>> Admit(
      absl::string_view grpc_peer, grpc::CallbackServerContext* context,
      std::weak_ptr<FeedListener> waker);
  // The source network Admit counts `grpc_peer` under.
  std::string SourceOf(absl::string_view grpc_peer) const;
  // From the watch's OnDone: the ticket's slot is free again.
  void Release(const std::shared_ptr<WatchTicket>& ticket);

  // The watch is about to write `bytes`: false (and the watch is woken
  // later) when its source holds its share of pending bytes already.
  bool StartWrite(WatchTicket& ticket, size_t bytes);
  // The write is done; returns the watches of the same source that waited
  // for its bytes, for the caller to wake once it holds no lock.
  std::vector<std::shared_ptr<FeedListener>> WriteDone(WatchTicket& ticket);
  // The watch could not get its batch now (the buffer is full): wake it at
  // the next sweep.
  void Starve(WatchTicket& ticket);

  // Cancels every watch whose write has waited past the drain timeout and
  // returns how many; the sweeper calls it every sweep_interval, then wakes
  // the starved watches.
  int CancelStalled();
  void WakeStarved();

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
  absl::flat_hash_map<std::string, size_t> pending_per_source_
      ABSL_GUARDED_BY(mu_);
  // Watches waiting for their source's pending bytes to go down.
  absl::flat_hash_map<std::string, std::vector<std::weak_ptr<FeedListener>>>
      waiting_for_source_ ABSL_GUARDED_BY(mu_);
  // The sweeper sleeps on its own lock: waiting on mu_ (Mutex::Await)
  // would wake it at every unlock of mu_, i.e. at every watch opened or
  // refused.
  std::mutex sweep_mu_;
  std::condition_variable sweep_wake_;
  bool stopping_ = false;  // guarded by sweep_mu_
  // Picks each watch's drain slack.
  uint64_t slack_state_ ABSL_GUARDED_BY(mu_) =
      static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  std::thread sweeper_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_WATCH_REGISTRY_H_
