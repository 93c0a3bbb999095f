#include "client/lookup_error.h"

#include "gtest/gtest.h"

namespace mxkey {
namespace {

TEST(LookupErrorTest, KindSurvivesAndPicksTheCode) {
  absl::Status revoked = LookupError(LookupFailure::kRevoked, "revoked: x");
  EXPECT_EQ(revoked.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LookupFailureOf(revoked), LookupFailure::kRevoked);
  absl::Status expired = LookupError(LookupFailure::kExpired, "expired: x");
  EXPECT_EQ(expired.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LookupFailureOf(expired), LookupFailure::kExpired);
  EXPECT_EQ(LookupError(LookupFailure::kStale, "s").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LookupError(LookupFailure::kVerification, "v").code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(LookupErrorTest, UntaggedStatusesAreClassifiedByCode) {
  EXPECT_EQ(LookupFailureOf(absl::OkStatus()), LookupFailure::kNone);
  EXPECT_EQ(LookupFailureOf(absl::UnavailableError("x")),
            LookupFailure::kUnavailable);
  EXPECT_EQ(LookupFailureOf(absl::UnauthenticatedError("x")),
            LookupFailure::kVerification);
  EXPECT_EQ(LookupFailureOf(absl::InvalidArgumentError("x")),
            LookupFailure::kInvalidName);
}

// Trust core I, finding 4: only a verified denial is "unknown" (the status
// on which a hook may fall back to unauthenticated Noise_NN); an unsigned
// NOT_FOUND status proves nothing.
TEST(LookupErrorTest, UnsignedNotFoundIsUnavailableNotUnknown) {
  EXPECT_EQ(LookupFailureOf(absl::NotFoundError("no such host")),
            LookupFailure::kUnavailable);
}

}  // namespace
}  // namespace mxkey
