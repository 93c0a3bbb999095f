// Which of a peer's feed events may enter the own feed (trust core III
// #12): a peer that sent "mx1.b.example\nINFO forged line" or
// "MX1.B.Example" got it logged raw and republished as is.
#include "keyd/peer_feed.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

bool OwnsB(const std::string& name) {
  return name == "b.example" || absl::EndsWith(name, ".b.example");
}

TEST(PeerFeedTest, OnlyCanonicalNamesThePeerOwnsAreTaken) {
  mxkey::v1::RevocationEventBody e;
  e.set_hostname("mx1.b.example");
  EXPECT_TRUE(CheckPeerEventNames(e, OwnsB).ok());

  e.set_hostname("mx1.b.example\n2026-12-02T00:00:00.000Z INFO forged");
  absl::Status forged = CheckPeerEventNames(e, OwnsB);
  EXPECT_EQ(forged.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(forged.message()), Not(HasSubstr("\n")));
  EXPECT_THAT(std::string(forged.message()), HasSubstr("\\n"));

  e.set_hostname("MX1.B.Example");
  EXPECT_EQ(CheckPeerEventNames(e, OwnsB).code(),
            absl::StatusCode::kInvalidArgument);

  e.set_hostname("mx1.b.example");
  e.add_mail_domains("B.example.");
  EXPECT_EQ(CheckPeerEventNames(e, OwnsB).code(),
            absl::StatusCode::kInvalidArgument);

  mxkey::v1::RevocationEventBody other;
  other.set_hostname("mx1.a.example");
  EXPECT_EQ(CheckPeerEventNames(other, OwnsB).code(),
            absl::StatusCode::kPermissionDenied);

  mxkey::v1::RevocationEventBody policy;
  policy.set_policy_domain("b.example");
  EXPECT_TRUE(CheckPeerEventNames(policy, OwnsB).ok());
}

}  // namespace
}  // namespace mxkey
