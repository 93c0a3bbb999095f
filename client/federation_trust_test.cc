#include "client/federation_trust.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1900000000);

class FederationTrustTest : public ::testing::Test {
 protected:
  v1::FederationBundleBody Body() {
    v1::FederationBundleBody body;
    body.set_org("a");
    body.set_version(7);
    body.set_issued_at(absl::ToUnixSeconds(kNow));
    body.set_not_after(absl::ToUnixSeconds(kNow + absl::Hours(24)));
    v1::FederationPeer* b = body.add_peers();
    b->set_org("b");
    b->add_domain_suffixes("b.example");
    b->set_endpoint("keyd.b.example:7700");
    b->set_root_public_key(peer_b_.public_key());
    v1::FederationPeer* c = body.add_peers();
    c->set_org("c");
    c->add_domain_suffixes("mail.b.example");
    c->add_domain_suffixes("c.example");
    c->set_endpoint("keyd.c.example:7700");
    c->set_root_public_key(peer_c_.public_key());
    return body;
  }
  v1::SignedObject Sign(const v1::FederationBundleBody& body,
                        const Ed25519PrivateKey* key = nullptr) {
    return *SignObject(key ? *key : root_, ObjectType::kFederationBundle,
                       body.SerializeAsString());
  }
  absl::StatusOr<FederationTrust> Verify(const v1::SignedObject& bundle,
                                         uint64_t min_version = 0) {
    return FederationTrust::Verify(bundle, root_.public_key(), kNow,
                                   min_version);
  }

  Ed25519PrivateKey root_ = *Ed25519PrivateKey::Generate();
  Ed25519PrivateKey peer_b_ = *Ed25519PrivateKey::Generate();
  Ed25519PrivateKey peer_c_ = *Ed25519PrivateKey::Generate();
};

TEST_F(FederationTrustTest, LongestSuffixOnALabelBoundaryWins) {
  auto trust = Verify(Sign(Body()));
  ASSERT_TRUE(trust.ok()) << trust.status();
  EXPECT_EQ(trust->version(), 7u);
  EXPECT_EQ(trust->PeerFor("mx1.b.example")->org, "b");
  EXPECT_EQ(trust->PeerFor("b.example")->org, "b");
  EXPECT_EQ(trust->PeerFor("mx1.mail.b.example")->org, "c");
  EXPECT_EQ(trust->PeerFor("c.example")->org, "c");
  EXPECT_EQ(trust->PeerFor("evilb.example"), nullptr);
  EXPECT_EQ(trust->PeerFor("b.example.org"), nullptr);
  EXPECT_EQ(trust->PeerFor("a.example"), nullptr);
}

TEST_F(FederationTrustTest, OnlyTheOwnRootsUntamperedSignatureCounts) {
  v1::SignedObject bundle = Sign(Body());
  bundle.mutable_body()->back() ^= 1;
  auto flipped = Verify(bundle);
  EXPECT_EQ(flipped.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(flipped.status().message(), HasSubstr("own org root"));
  auto by_peer = Verify(Sign(Body(), &peer_b_));
  EXPECT_EQ(by_peer.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(FederationTrustTest, NoRollbackAndNoExpiredBundle) {
  auto older = Verify(Sign(Body()), /*min_version=*/8);
  EXPECT_EQ(older.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(older.status().message(), HasSubstr("rollback"));
  EXPECT_TRUE(Verify(Sign(Body()), 7).ok());
  v1::FederationBundleBody body = Body();
  body.set_not_after(absl::ToUnixSeconds(kNow));
  auto expired = Verify(Sign(body));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(expired.status().message(), HasSubstr("expired"));
}

TEST_F(FederationTrustTest, MalformedPeersAreRejected) {
  struct Case {
    std::function<void(v1::FederationBundleBody&)> mutate;
    const char* why;
  } cases[] = {
      {[](auto& b) { b.mutable_peers(0)->set_org(""); }, "org name"},
      {[](auto& b) { b.mutable_peers(0)->set_root_public_key("short"); },
       "32 bytes"},
      {[this](auto& b) {
         b.mutable_peers(0)->set_root_public_key(root_.public_key());
       },
       "not the own root"},
      {[](auto& b) { b.mutable_peers(0)->set_domain_suffixes(0, "B.Example"); },
       "canonical"},
      {[](auto& b) { b.mutable_peers(1)->set_domain_suffixes(1, "b.example"); },
       "twice"},
      {[](auto& b) { b.mutable_peers(0)->clear_domain_suffixes(); },
       "no domain suffix"},
  };
  for (const Case& c : cases) {
    v1::FederationBundleBody body = Body();
    c.mutate(body);
    auto trust = Verify(Sign(body));
    EXPECT_EQ(trust.status().code(), absl::StatusCode::kInvalidArgument)
        << c.why;
    EXPECT_THAT(trust.status().message(), HasSubstr(c.why));
  }
}

}  // namespace
}  // namespace mxkey

namespace mxkey {
namespace {

// Trust core I, finding 2: an own-root denial means "no key" only under a
// valid own bundle, for a name no peer owns, made under a bundle version
// not older than the one held (the nested peer c owns mail.b.example).
TEST_F(FederationTrustTest, OwnDenialsNeedAValidBundleAndANameOfTheOwnOrg) {
  auto trust = Verify(Sign(Body()));
  ASSERT_TRUE(trust.ok()) << trust.status();
  VerifiedAnswer denial;
  denial.name = "mx1.a.example";
  denial.denial.emplace();
  denial.freshness.set_bundle_version(7);
  EXPECT_TRUE(CheckOwnAnswer(denial, &*trust, kNow).ok());
  EXPECT_EQ(CheckOwnAnswer(denial, nullptr, kNow).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(CheckOwnAnswer(denial, &*trust, kNow + absl::Hours(25)).code(),
            absl::StatusCode::kUnavailable)
      << "an expired bundle is no bundle";
  denial.freshness.set_bundle_version(6);
  EXPECT_THAT(std::string(CheckOwnAnswer(denial, &*trust, kNow).message()),
              HasSubstr("older than version 7"));
  denial.freshness.set_bundle_version(8);  // keyd's is newer: fine
  EXPECT_TRUE(CheckOwnAnswer(denial, &*trust, kNow).ok());
  denial.name = "mx1.mail.b.example";
  EXPECT_THAT(std::string(CheckOwnAnswer(denial, &*trust, kNow).message()),
              HasSubstr("belongs to peer c"));
  // A certificate answer is not held to it (keyd certifies no peer name).
  VerifiedAnswer positive;
  positive.name = "mx1.a.example";
  EXPECT_TRUE(CheckOwnAnswer(positive, nullptr, kNow).ok());
}

// Nested suffixes: b owns b.example but not mail.b.example (c's).
TEST_F(FederationTrustTest, APeerMayNotSpeakUnderANestedPeersSuffix) {
  auto trust = Verify(Sign(Body()));
  ASSERT_TRUE(trust.ok()) << trust.status();
  const TrustedPeer* b = trust->PeerFor("b.example");
  auto owns_b = [&](const std::string& n) { return trust->PeerFor(n) == b; };
  VerifiedAnswer answer;
  answer.name = "mx1.b.example";
  VerifiedCert cert;
  cert.body.set_hostname("mx1.b.example");
  cert.body.add_mail_domains("b.example");
  answer.certificates.push_back(cert);
  EXPECT_TRUE(CheckPeerScope(answer, owns_b, "b").ok());
  answer.certificates[0].body.add_mail_domains("mail.b.example");
  EXPECT_EQ(CheckPeerScope(answer, owns_b, "b").code(),
            absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace mxkey
