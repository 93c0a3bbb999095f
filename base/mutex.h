// Locks that ThreadSanitizer can see.
//
// Debian's absl and gRPC are not built with TSan, so the happens-before
// edges of absl::Mutex are invisible to it and every access it guards looks
// like a race. This Mutex offers the part of absl::Mutex's interface we use
// over std::shared_mutex and std::condition_variable_any (pthread, which
// TSan intercepts), and keeps absl's thread-safety annotations. As with
// absl::Mutex, Await re-checks its condition whenever the exclusive lock is
// released by another thread. That wakes every waiter at every unlock:
// where many threads wait on one hot lock (a group commit), use CondVar,
// which wakes only the threads waiting on it. Nothing here fails.
#ifndef MXKEY_BASE_MUTEX_H_
#define MXKEY_BASE_MUTEX_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace mxkey {

// A predicate for Mutex::Await: a flag, or a callable (a lambda), read with
// the lock held.
class Condition {
 public:
  explicit Condition(const bool* flag) : eval_([flag] { return *flag; }) {}
  template <typename F>
  explicit Condition(const F* fn) : eval_([fn] { return (*fn)(); }) {}
  bool Eval() const { return eval_(); }

 private:
  std::function<bool()> eval_;
};

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    mu_.unlock();
    // Waiters registered under the lock, so none can be missed here.
    if (waiters_.load() > 0) cv_.notify_all();
  }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }

  // Blocks, releasing the lock meanwhile, until `condition` holds.
  void Await(const Condition& condition) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    Wait(condition, nullptr);
  }
  // As Await, for at most `timeout`; returns whether `condition` holds.
  bool AwaitWithTimeout(const Condition& condition, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return Wait(condition, &timeout);
  }

 private:
  friend class CondVar;

  bool Wait(const Condition& condition, const absl::Duration* timeout) {
    std::unique_lock<std::shared_mutex> lock(mu_, std::adopt_lock);
    // Waiting releases the lock, and the caller may have changed what
    // other waiters wait for (absl::Mutex wakes them then, too).
    if (waiters_.fetch_add(1) > 0) cv_.notify_all();
    bool met = true;
    auto eval = [&] { return condition.Eval(); };
    if (timeout == nullptr) {
      cv_.wait(lock, eval);
    } else {
      met = cv_.wait_for(lock, absl::ToChronoNanoseconds(*timeout), eval);
    }
    waiters_.fetch_sub(1);
    lock.release();  // the caller still holds it
    return met;
  }

  std::shared_mutex mu_;
  std::condition_variable_any cv_;
  std::atomic<int> waiters_{0};
};

// A condition variable for Mutex (absl::CondVar). Wait releases the lock
// while blocked; Signal and SignalAll wake threads waiting on this CondVar
// only. Wakeups may be spurious: wait in a loop on the state you need.
class CondVar {
 public:
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::shared_mutex> lock(mu->mu_, std::adopt_lock);
    // Releasing the lock here is an unlock that Await-ers must see.
    if (mu->waiters_.load() > 0) mu->cv_.notify_all();
    cv_.wait(lock);
    lock.release();  // the caller still holds it
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
  }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Set once, waited for by any number of threads (absl::Notification).
class Notification {
 public:
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
  }
  bool HasBeenNotified() {
    MutexLock lock(&mu_);
    return notified_;
  }
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(Condition(&notified_), timeout);
  }

 private:
  Mutex mu_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mxkey

#endif  // MXKEY_BASE_MUTEX_H_
