// Follows a keyd's revocation feed (WatchRevocations) in a background thread.
//
// Each batch is verified (signatures, no gap) before anything acts on it.
// Verified events go to `on_events` (the caches evict) and then to every
// subscriber. The watcher reconnects with exponential backoff, rotating
// through the endpoints, and resumes after the last event it applied. On a
// gap, a batch that fails verification (never applied), or when keyd says
// our position is beyond its head (a reset feed), it calls `on_resync`
// (drop every cached answer) and starts over at the head; the same failure
// is logged once, not per retry. A stream that sends nothing within
// first_response_timeout is cancelled and retried the same way. Nothing here returns an error: problems are logged and
// retried until Stop.
#ifndef MXKEY_CLIENT_REVOCATION_WATCHER_H_
#define MXKEY_CLIENT_REVOCATION_WATCHER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "client/answer_verifier.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace mxkey {

using RevocationListener =
    std::function<void(const mxkey::v1::RevocationEventBody&)>;

struct RevocationWatcherOptions {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  // Resume after this event; nullopt starts at the feed head (a client with
  // nothing cached has nothing to evict from the backlog).
  std::optional<uint64_t> start_after;
  // SHA-256 of the body of event start_after, if known.
  std::string start_digest;
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // keyd sends a watch's first response at once (PROTOCOL.md 7.7). A
  // stream silent for this long is given up and retried with backoff, on
  // the next endpoint: keyd holds back the refusal of a watch past its
  // caps (--watch-refusal-delay), and a stalled path looks the same.
  absl::Duration first_response_timeout = absl::Seconds(10);
  Clock* clock = Clock::Real();
  // The verifier; an error (no trust anchor yet) is retried with backoff.
  std::function<absl::StatusOr<std::shared_ptr<const AnswerVerifier>>()>
      verifier;
  // Called with each verified batch, in order, before subscribers hear of it
  // and before the position advances.
  std::function<void(const std::vector<mxkey::v1::RevocationEventBody>&,
                     uint64_t last_seq)>
      on_events;
  std::function<void()> on_resync;
  // Called whenever the position becomes known or moves (after on_events).
  std::function<void(std::optional<uint64_t>, const std::string& digest)>
      on_position;
};

// Reads the verified feed events after `from` up to and including `to`
// with one WatchRevocations stream, within `timeout` (an unsigned head_seq
// below `to` ends nothing: the stream must deliver event `to`). DATA_LOSS on a gap, RESOURCE_EXHAUSTED past `max_events`,
// DEADLINE_EXCEEDED / UNAVAILABLE if keyd does not deliver them.
absl::StatusOr<std::vector<mxkey::v1::RevocationEventBody>> ReadFeedRange(
    const std::shared_ptr<grpc::Channel>& channel,
    const AnswerVerifier& verifier, uint64_t from, uint64_t to,
    size_t max_events, absl::Duration timeout, Clock* clock);

class RevocationWatcher {
 public:
  explicit RevocationWatcher(RevocationWatcherOptions options);
  ~RevocationWatcher();  // Stops.

  void Start();
  void Stop();

  // The last applied event, once the position is known.
  std::optional<uint64_t> position() const;
  // Waits until the position is known and at least `seq`.
  bool WaitForPosition(uint64_t seq, absl::Duration timeout) const;

  // Listeners run on the watcher's thread, after eviction, one event at a
  // time. Once Unsubscribe returns, the listener is not running and will not
  // run again, so what it captured may go; do not call it from a listener
  // (it would wait for itself).
  int Subscribe(RevocationListener listener);
  void Unsubscribe(int id);

 private:
  void Run();
  // One stream, until it ends. Returns true if it made progress (reset the
  // backoff).
  bool WatchOnce(const std::shared_ptr<grpc::Channel>& channel,
                 const AnswerVerifier& verifier);
  // `digest`: SHA-256 of the body of event `seq` (empty when the position
  // came from a head, not an event).
  void SetPosition(std::optional<uint64_t> seq, std::string digest = "");

  RevocationWatcherOptions options_;
  mutable Mutex mu_;
  std::optional<uint64_t> position_ ABSL_GUARDED_BY(mu_);
  // What keyd must still have at position_ (WatchRevocationsRequest
  // from_digest), so that a rewound feed is noticed.
  std::string position_digest_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::map<int, RevocationListener> listeners_ ABSL_GUARDED_BY(mu_);
  // Held while listeners run, so that Unsubscribe can wait them out.
  Mutex delivery_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::string last_failure_;  // the watcher thread's only
  int next_listener_ ABSL_GUARDED_BY(mu_) = 1;
  std::thread thread_;
};

}  // namespace mxkey

#endif  // MXKEY_CLIENT_REVOCATION_WATCHER_H_
