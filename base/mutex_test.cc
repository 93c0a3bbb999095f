#include "base/mutex.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mxkey {
namespace {

TEST(MutexTest, ExcludesWriters) {
  Mutex mu;
  int counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        MutexLock lock(&mu);
        ++counter;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 40000);
}

TEST(MutexTest, ReadersShare) {
  Mutex mu;
  ReaderMutexLock first(&mu);
  std::thread second([&] { ReaderMutexLock again(&mu); });
  second.join();  // would hang if readers excluded each other
}

TEST(MutexTest, AwaitWakesWhenAnotherThreadChangesTheCondition) {
  Mutex mu;
  bool ready = false;
  std::thread setter([&] {
    MutexLock lock(&mu);
    ready = true;
  });
  {
    MutexLock lock(&mu);
    mu.Await(Condition(&ready));
    EXPECT_TRUE(ready);
  }
  setter.join();
}

TEST(MutexTest, AwaitingReleasesTheLockAndWakesOtherWaiters) {
  // As in a group commit: the caller queues work, then waits for its
  // result; the worker waits for work. Each waits on the other's change.
  Mutex mu;
  bool queued = false, done = false;
  std::thread worker([&] {
    MutexLock lock(&mu);
    mu.Await(Condition(&queued));
    done = true;
  });
  {
    MutexLock lock(&mu);
    queued = true;
    mu.Await(Condition(&done));
  }
  worker.join();
  EXPECT_TRUE(done);
}

TEST(MutexTest, AwaitWithTimeoutSaysWhetherTheConditionHeld) {
  Mutex mu;
  bool never = false;
  auto always = [] { return true; };
  MutexLock lock(&mu);
  EXPECT_FALSE(mu.AwaitWithTimeout(Condition(&never), absl::Milliseconds(20)));
  EXPECT_TRUE(mu.AwaitWithTimeout(Condition(&always), absl::Seconds(10)));
}

TEST(CondVarTest, SignalWakesTheWaiterAndLetsAnAwaitOnTheSameMutexSeeTheRelease) {
  Mutex mu;
  CondVar cv;
  bool ready = false, waiting = false;
  std::thread waiter([&] {
    MutexLock lock(&mu);
    waiting = true;
    while (!ready) cv.Wait(&mu);  // releases mu, or the Await below hangs
  });
  {
    MutexLock lock(&mu);
    mu.Await(Condition(&waiting));
    ready = true;
    cv.Signal();
  }
  waiter.join();
  MutexLock lock(&mu);
  EXPECT_TRUE(ready);
}

TEST(CondVarTest, SignalAllWakesEveryWaiter) {
  Mutex mu;
  CondVar cv;
  bool go = false;
  int woken = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      MutexLock lock(&mu);
      while (!go) cv.Wait(&mu);
      ++woken;
    });
  }
  {
    MutexLock lock(&mu);
    go = true;
    cv.SignalAll();
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(woken, 4);
}

TEST(NotificationTest, WaitsForNotify) {
  Notification n;
  EXPECT_FALSE(n.WaitForNotificationWithTimeout(absl::Milliseconds(10)));
  std::thread t([&] { n.Notify(); });
  EXPECT_TRUE(n.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(n.HasBeenNotified());
  t.join();
}

}  // namespace
}  // namespace mxkey
