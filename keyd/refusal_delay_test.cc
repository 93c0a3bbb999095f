#include "keyd/refusal_delay.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mxkey {
namespace {

using Clock = std::chrono::steady_clock;

// Waits (bounded) until `n` sends ran.
bool WaitFor(const std::atomic<int>& sent, int n) {
  for (int i = 0; i < 500 && sent.load() < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return sent.load() >= n;
}

TEST(RefusalDelayTest, ARefusalGoesOutAfterHalfTheDelayNotBefore) {
  RefusalDelay delay({absl::Milliseconds(600), 16, 8});
  std::atomic<int> sent{0};
  const auto start = Clock::now();
  Clock::time_point at;
  delay.Hold("ipv4:192.0.2.0/24", [&] {
    at = Clock::now();
    ++sent;
  });
  EXPECT_EQ(sent.load(), 0);
  EXPECT_EQ(delay.held(), 1u);
  ASSERT_TRUE(WaitFor(sent, 1));
  EXPECT_GE(at - start, std::chrono::milliseconds(300));
  EXPECT_LT(at - start, std::chrono::seconds(5));
  EXPECT_EQ(delay.held(), 0u);
  EXPECT_EQ(delay.delayed_total(), 1u);
}

TEST(RefusalDelayTest, PastTheBoundsRefusalsGoOutAtOnce) {
  RefusalDelay delay({absl::Seconds(30), 4, 2});
  std::atomic<int> sent{0};
  auto send = [&] { ++sent; };
  delay.Hold("a", send);
  delay.Hold("a", send);
  delay.Hold("a", send);  // a's share (2) is held: at once
  EXPECT_EQ(sent.load(), 1);
  delay.Hold("b", send);
  delay.Hold("b", send);
  delay.Hold("c", send);  // all 4 held: at once, c's first too
  EXPECT_EQ(sent.load(), 2);
  EXPECT_EQ(delay.held(), 4u);
  delay.Stop();  // the held ones go now, not in 30 s
  EXPECT_EQ(sent.load(), 6);
  EXPECT_EQ(delay.held(), 0u);
  delay.Hold("d", send);  // after Stop: at once
  EXPECT_EQ(sent.load(), 7);
}

TEST(RefusalDelayTest, ASentRefusalFreesItsSourcesShare) {
  RefusalDelay delay({absl::Milliseconds(50), 4, 1});
  std::atomic<int> sent{0};
  auto send = [&] { ++sent; };
  delay.Hold("a", send);
  ASSERT_TRUE(WaitFor(sent, 1));
  delay.Hold("a", send);  // held again, not sent at once
  EXPECT_EQ(sent.load(), 1);
  EXPECT_EQ(delay.held(), 1u);
  ASSERT_TRUE(WaitFor(sent, 2));
}

// Refusals held together go out spread over the delay, each once, and the
// ones due first first.
TEST(RefusalDelayTest, RefusalsHeldTogetherGoOutSpreadOverTheDelay) {
  RefusalDelay delay({absl::Milliseconds(400), 64, 64});
  std::mutex mu;
  std::vector<Clock::time_point> at;
  const auto start = Clock::now();
  std::atomic<int> sent{0};
  for (int i = 0; i < 40; ++i) {
    delay.Hold("a", [&] {
      std::lock_guard<std::mutex> lock(mu);
      at.push_back(Clock::now());
      ++sent;
    });
  }
  ASSERT_TRUE(WaitFor(sent, 40));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(at.size(), 40u);
  EXPECT_TRUE(std::is_sorted(at.begin(), at.end()));
  EXPECT_GE(at.front() - start, std::chrono::milliseconds(200));
  // 40 uniform draws over 400 ms: the first and last are far apart.
  EXPECT_GE(at.back() - at.front(), std::chrono::milliseconds(150))
      << "the refusals went out in one burst";
}

TEST(RefusalDelayTest, ZeroDelaySendsAtOnce) {
  RefusalDelay delay({absl::ZeroDuration(), 4, 2});
  int sent = 0;
  delay.Hold("a", [&] { ++sent; });
  EXPECT_EQ(sent, 1);
  EXPECT_EQ(delay.delayed_total(), 0u);
}

// A refusal held with a delay of its own (a watch's) waits that long, not
// the default, and a default one held after it goes out first.
TEST(RefusalDelayTest, ARefusalMayWaitADelayOfItsOwn) {
  RefusalDelay delay({absl::Milliseconds(50), 16, 8});
  std::atomic<int> sent{0};
  std::atomic<int> long_one_at{0};
  const RefusalDelay::Ticket held = delay.Hold("a", absl::Seconds(30), [&] {
    long_one_at = sent.load() + 1;
    ++sent;
  });
  EXPECT_NE(held.id, 0u);
  delay.Hold("a", [&] { ++sent; });
  ASSERT_TRUE(WaitFor(sent, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sent.load(), 1) << "the 30 s refusal went out early";
  EXPECT_EQ(delay.held(), 1u);
  delay.Stop();
  EXPECT_EQ(long_one_at.load(), 2);
  // Zero: at once, nothing held.
  const RefusalDelay::Ticket at_once =
      delay.Hold("a", absl::ZeroDuration(), [&] { ++sent; });
  EXPECT_EQ(at_once.id, 0u);
  EXPECT_EQ(sent.load(), 3);
}

// A cancelled refusal is never sent, and its place (in all and of its
// source) is free at once, not when it would have been due.
TEST(RefusalDelayTest, ACancelledRefusalIsNotSentAndFreesItsPlace) {
  RefusalDelay delay({absl::Seconds(30), 2, 1});
  std::atomic<int> sent{0};
  auto send = [&] { ++sent; };
  const RefusalDelay::Ticket first = delay.Hold("a", send);
  delay.Hold("a", send);  // a's share is taken: at once
  EXPECT_EQ(sent.load(), 1);
  delay.Cancel(first);
  EXPECT_EQ(delay.held(), 0u);
  const RefusalDelay::Ticket second = delay.Hold("a", send);  // held again
  EXPECT_EQ(sent.load(), 1);
  EXPECT_NE(second.id, 0u);
  delay.Cancel(first);  // a second time: nothing
  EXPECT_EQ(delay.held(), 1u);
  delay.Cancel(RefusalDelay::Ticket());  // one sent at once: nothing
  delay.Stop();
  EXPECT_EQ(sent.load(), 2) << "the cancelled refusal was sent";
  delay.Cancel(second);  // sent already: nothing
}

TEST(RefusalDelayTest, TheDestructorSendsWhatIsHeld) {
  std::atomic<int> sent{0};
  {
    RefusalDelay delay({absl::Seconds(30), 4, 4});
    delay.Hold("a", [&] { ++sent; });
    delay.Hold("b", [&] { ++sent; });
  }
  EXPECT_EQ(sent.load(), 2);
}

}  // namespace
}  // namespace mxkey
