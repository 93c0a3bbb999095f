// An injectable source of wall-clock time.
//
// Every component that looks at the time takes a Clock*, so tests can move
// time forward (token expiry, freshness, certificate validity) without
// sleeping. Neither implementation can fail.
#ifndef MXKEY_BASE_CLOCK_H_
#define MXKEY_BASE_CLOCK_H_

#include "base/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mxkey {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // The process-wide real clock.
  static Clock* Real();
};

// A clock that only moves when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start) : now_(start) {}
  absl::Time Now() const override {
    MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable Mutex mu_;
  absl::Time now_;
};

}  // namespace mxkey

#endif  // MXKEY_BASE_CLOCK_H_
