#include "keyd/rate_limiter.h"

#include "absl/strings/str_cat.h"
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

// Finding 4: a full table used to refuse every new source, so 65,536
// sources with a few failures each locked an honest enrollment out.
TEST(RateLimiterTest, AFullTableForgetsTheLeastRecentlyUsedSource) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  RateLimiter limiter(&clock, RateLimit{1, 2}, /*max_sources=*/4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(limiter.Take(std::to_string(i), "x").ok());
    EXPECT_TRUE(limiter.Take(std::to_string(i), "x").ok());
    EXPECT_FALSE(limiter.Take(std::to_string(i), "x").ok());  // all depleted
  }
  EXPECT_FALSE(limiter.Check("0", "x").ok());  // 0 is now the most recent
  // Full of depleted sources, and none refilled: a new one still gets in.
  EXPECT_TRUE(limiter.Take("honest", "x").ok());
  // Source 1 was used least recently and is forgotten (a full bucket
  // again); 0, 2 and 3 are still limited.
  EXPECT_TRUE(limiter.Take("1", "x").ok());
  EXPECT_FALSE(limiter.Check("0", "x").ok());
  EXPECT_FALSE(limiter.Check("3", "x").ok());
  // A flood of new sources never grows the table past its bound and never
  // refuses a newcomer.
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(limiter.Take(absl::StrCat("flood", i), "x").ok());
  }
}

TEST(RateLimiterTest, SourceNetworkGroupsAddressesByPrefix) {
  EXPECT_EQ(SourceNetwork("ipv4:192.0.2.77:5000"), "ipv4:192.0.2.0/24");
  EXPECT_EQ(SourceNetwork("ipv4:192.0.2.77:5000", {32, 64}),
            "ipv4:192.0.2.77/32");
  EXPECT_EQ(SourceNetwork("ipv4:192.0.2.77:5000", {20, 64}),
            "ipv4:192.0.0.0/20");
  // One host holds a whole /64: every address in it is one source.
  EXPECT_EQ(SourceNetwork("ipv6:[2001:db8:1:2:aaaa::1]:5000"),
            "ipv6:2001:db8:1:2::/64");
  EXPECT_EQ(SourceNetwork("ipv6:%5B2001:db8:1:2:ffff::9%5D:5000"),
            "ipv6:2001:db8:1:2::/64");
  EXPECT_EQ(SourceNetwork("ipv6:[2001:db8:1:2:aaaa::1]:5000", {24, 48}),
            "ipv6:2001:db8:1::/48");
  EXPECT_EQ(SourceNetwork("ipv6:[::1]:5000", {24, 128}), "ipv6:::1/128");
  EXPECT_EQ(SourceNetwork("ipv6:[::ffff:192.0.2.9]:5000"), "ipv4:192.0.2.0/24");
  EXPECT_EQ(SourceNetwork("unix:/tmp/x.sock"), "unix:/tmp/x.sock");
  EXPECT_EQ(SourceNetwork("ipv4:not-an-address:1"), "ipv4:not-an-address:1");
}

}  // namespace
}  // namespace mxkey
