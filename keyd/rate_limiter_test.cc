#include "keyd/rate_limiter.h"

#include "gtest/gtest.h"

namespace mxkey {
namespace {

TEST(RateLimiterTest, BurstThenRefill) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  RateLimiter limiter(&clock, RateLimit{6, 3});  // one per 10 s
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("ipv4:192.0.2.1", "x").ok());
  absl::Status st = limiter.Take("ipv4:192.0.2.1", "enrollment requests");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("ipv4:192.0.2.1"), std::string::npos);
  EXPECT_NE(st.message().find("retry in 10 s"), std::string::npos) << st;
  // Another source has its own bucket.
  EXPECT_TRUE(limiter.Take("ipv4:192.0.2.2", "x").ok());
  clock.Advance(absl::Seconds(10));
  EXPECT_TRUE(limiter.Take("ipv4:192.0.2.1", "x").ok());
  EXPECT_FALSE(limiter.Take("ipv4:192.0.2.1", "x").ok());
}

TEST(RateLimiterTest, CheckDoesNotTake) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  RateLimiter limiter(&clock, RateLimit{1, 1});
  EXPECT_TRUE(limiter.Check("a", "x").ok());
  EXPECT_TRUE(limiter.Check("a", "x").ok());
  EXPECT_TRUE(limiter.Take("a", "x").ok());
  EXPECT_FALSE(limiter.Check("a", "x").ok());
}

TEST(RateLimiterTest, ZeroRateDisables) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  RateLimiter limiter(&clock, RateLimit{0, 0});
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limiter.Take("a", "x").ok());
}

TEST(RateLimiterTest, MemoryIsBounded) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  RateLimiter limiter(&clock, RateLimit{60, 2}, /*max_sources=*/4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Take(std::to_string(i), "x").ok());
  // Full of busy sources: a new one is refused rather than growing.
  EXPECT_FALSE(limiter.Take("new", "x").ok());
  clock.Advance(absl::Seconds(2));  // everyone refilled: forgotten
  EXPECT_TRUE(limiter.Take("new", "x").ok());
}

TEST(RateLimiterTest, SourceAddressDropsThePort) {
  EXPECT_EQ(SourceAddress("ipv4:192.0.2.1:5000"), "ipv4:192.0.2.1");
  EXPECT_EQ(SourceAddress("ipv6:[::1]:5000"), "ipv6:[::1]");
  EXPECT_EQ(SourceAddress("ipv6:%5B::1%5D:5000"), "ipv6:%5B::1%5D");
  EXPECT_EQ(SourceAddress("unix:/tmp/x.sock"), "unix:/tmp/x.sock");
}

}  // namespace
}  // namespace mxkey
