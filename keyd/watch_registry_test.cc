#include "keyd/watch_registry.h"

#include <atomic>

#include "absl/time/clock.h"
#include "base/metrics.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

class WatchRegistryTest : public ::testing::Test {
 protected:
  WatchLimits Limits(size_t total, size_t per_source) {
    WatchLimits l;
    l.max_watches = total;
    l.max_watches_per_source = per_source;
    return l;
  }
  FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  MetricsRegistry registry_;
  KeydMetrics metrics_{&registry_};
};

TEST_F(WatchRegistryTest, CountsPerSourceNetwork) {
  WatchRegistry watches(Limits(100, 2), &clock_, &metrics_);
  auto a = watches.Admit("ipv4:192.0.2.1:1000", nullptr, {});
  auto b = watches.Admit("ipv4:192.0.2.200:1001", nullptr, {});  // same /24
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = watches.Admit("ipv4:192.0.2.7:1002", nullptr, {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("ipv4:192.0.2.0/24"), std::string::npos)
      << c.status();
  // Another network has its own count.
  auto d = watches.Admit("ipv4:198.51.100.1:1000", nullptr, {});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(watches.open(), 3u);
  // A released slot is free again, and only in its own network.
  watches.Release(*a);
  EXPECT_TRUE(watches.Admit("ipv4:192.0.2.9:1003", nullptr, {}).ok());
  EXPECT_FALSE(watches.Admit("ipv4:192.0.2.10:1004", nullptr, {}).ok());
  // Releasing twice frees nothing twice.
  watches.Release(*a);
  EXPECT_FALSE(watches.Admit("ipv4:192.0.2.11:1005", nullptr, {}).ok());
}

TEST_F(WatchRegistryTest, CapsTheTotal) {
  WatchRegistry watches(Limits(2, 10), &clock_, &metrics_);
  ASSERT_TRUE(watches.Admit("ipv4:192.0.2.1:1", nullptr, {}).ok());
  ASSERT_TRUE(watches.Admit("ipv6:[2001:db8::1]:1", nullptr, {}).ok());
  auto refused = watches.Admit("ipv4:203.0.113.1:1", nullptr, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--max-watches"),
            std::string::npos);
}

TEST_F(WatchRegistryTest, OnlyWritesPendingPastTheTimeoutAreStalled) {
  WatchLimits limits = Limits(10, 10);
  limits.drain_timeout = absl::Seconds(60);
  limits.sweep_interval = absl::Hours(1);  // swept by hand here
  WatchRegistry watches(limits, &clock_, &metrics_);
  auto idle = watches.Admit("ipv4:192.0.2.1:1", nullptr, {});
  auto done = watches.Admit("ipv4:192.0.2.2:1", nullptr, {});
  ASSERT_TRUE(idle.ok() && done.ok());
  ASSERT_TRUE(watches.StartWrite(**done, 100));
  watches.WriteDone(**done);
  clock_.Advance(absl::Hours(2));
  // Neither has a write pending: nothing to cancel (a null context would
  // crash here if either were cancelled).
  EXPECT_EQ(watches.CancelStalled(), 0);
  // A closed watch is never cancelled, whatever its write.
  ASSERT_TRUE(watches.StartWrite(**done, 100));
  clock_.Advance(absl::Hours(1));
  watches.Release(*done);
  EXPECT_EQ(watches.CancelStalled(), 0);
}

// A listener that counts its wakes.
class CountingWaker : public FeedListener {
 public:
  void Wake() override { ++wakes; }
  std::atomic<int> wakes{0};
};

TEST_F(WatchRegistryTest, ASourceHoldsAtMostItsShareOfPendingBytes) {
  WatchLimits limits = Limits(10, 10);
  limits.max_pending_bytes_per_source = 1000;
  limits.sweep_interval = absl::Hours(1);
  WatchRegistry watches(limits, &clock_, &metrics_);
  auto waker = std::make_shared<CountingWaker>();
  auto a = watches.Admit("ipv4:192.0.2.1:1", nullptr, waker);
  auto b = watches.Admit("ipv4:192.0.2.2:1", nullptr, waker);
  auto other = watches.Admit("ipv4:198.51.100.1:1", nullptr, waker);
  ASSERT_TRUE(a.ok() && b.ok() && other.ok());
  // The first write of a source always starts, however big.
  ASSERT_TRUE(watches.StartWrite(**a, 5000));
  // The source's second waits; another source is not held back.
  EXPECT_FALSE(watches.StartWrite(**b, 10));
  EXPECT_TRUE(watches.StartWrite(**other, 10));
  // The waiting watch is woken at the sweep, once.
  watches.WakeStarved();
  EXPECT_EQ(waker->wakes.load(), 1);
  watches.WakeStarved();
  EXPECT_EQ(waker->wakes.load(), 1);
  // When the first write is done, the second may start.
  watches.WriteDone(**a);
  EXPECT_TRUE(watches.StartWrite(**b, 10));
  // A watch that closes with a write pending gives its bytes back.
  watches.Release(*b);
  EXPECT_TRUE(watches.StartWrite(**a, 5000));
}

}  // namespace
}  // namespace mxkey
