// Wakes revocation watchers when the feed head moves.
//
// Watchers wait here, holding no storage transaction, then read the new
// events in a short read transaction of their own. Cannot fail.
#ifndef MXKEY_KEYD_FEED_NOTIFIER_H_
#define MXKEY_KEYD_FEED_NOTIFIER_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mxkey {

class FeedNotifier {
 public:
  explicit FeedNotifier(uint64_t head = 0) : head_(head) {}

  // Records a new head (ignored if not ahead) and wakes every waiter.
  void Publish(uint64_t head) {
    absl::MutexLock lock(&mu_);
    if (head > head_) head_ = head;
  }

  // Returns the head once it is beyond `seen`, or after `timeout`.
  uint64_t WaitBeyond(uint64_t seen, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto moved = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return head_ > seen;
    };
    mu_.AwaitWithTimeout(absl::Condition(&moved), timeout);
    return head_;
  }

  uint64_t head() {
    absl::MutexLock lock(&mu_);
    return head_;
  }

 private:
  absl::Mutex mu_;
  uint64_t head_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_FEED_NOTIFIER_H_
