#include "base/duration_flag.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

TEST(DurationFlagTest, TakesAbslFormsAndDays) {
  EXPECT_EQ(*ParseDurationFlag("30s", "--x"), absl::Seconds(30));
  EXPECT_EQ(*ParseDurationFlag("1h30m", "--x"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationFlag("7d", "--x"), absl::Hours(24 * 7));
}

TEST(DurationFlagTest, RefusesWhatIsNotAPositiveDuration) {
  for (const char* bad : {"", "0s", "-5m", "d", "0d", "-1d", "1.5d", "inf",
                          "99999999999d", "5", "5 m", "\x01m"}) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(bad, "--overlap");
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(d.status().message(), testing::HasSubstr("--overlap"));
  }
}

}  // namespace
}  // namespace mxkey
