// Wakes revocation watchers when the feed head moves.
//
// Watchers subscribe a FeedListener and are woken (Wake) on the publishing
// thread, after the head has moved; they then read the new events in a
// short read transaction of their own. The notifier holds listeners weakly,
// so a watcher that is gone is simply skipped. Cannot fail.
#ifndef MXKEY_KEYD_FEED_NOTIFIER_H_
#define MXKEY_KEYD_FEED_NOTIFIER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "base/mutex.h"
#include "absl/time/time.h"

namespace mxkey {

class FeedListener {
 public:
  virtual ~FeedListener() = default;
  // Must not block for long: it runs on the thread that published.
  virtual void Wake() = 0;
};

class FeedNotifier {
 public:
  explicit FeedNotifier(uint64_t head = 0) : head_(head) {}

  // Records a new head (ignored if not ahead) and wakes every listener.
  void Publish(uint64_t head) {
    {
      MutexLock lock(&mu_);
      if (head <= head_) return;
      head_ = head;
    }
    WakeAll();
  }

  // Wakes every listener without a new head (shutdown).
  void WakeAll() {
    std::vector<std::shared_ptr<FeedListener>> live;
    {
      MutexLock lock(&mu_);
      for (auto it = listeners_.begin(); it != listeners_.end();) {
        if (auto l = it->second.lock()) {
          live.push_back(std::move(l));
          ++it;
        } else {
          it = listeners_.erase(it);
        }
      }
    }
    for (auto& l : live) l->Wake();
  }

  int Subscribe(std::weak_ptr<FeedListener> listener) {
    MutexLock lock(&mu_);
    listeners_[next_id_] = std::move(listener);
    return next_id_++;
  }

  void Unsubscribe(int id) {
    MutexLock lock(&mu_);
    listeners_.erase(id);
  }

  uint64_t head() {
    MutexLock lock(&mu_);
    return head_;
  }

 private:
  Mutex mu_;
  uint64_t head_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::weak_ptr<FeedListener>> listeners_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_FEED_NOTIFIER_H_
