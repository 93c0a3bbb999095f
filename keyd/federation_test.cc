#include "keyd/federation.h"

#include "client/federation_trust.h"
#include "crypto/ed25519.h"
#include "crypto/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyd/keyd_test_env.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;
using ::testing::HasSubstr;

class FederationTest : public ::testing::Test {
 protected:
  FederationTest()
      : federation_(&env_.ctx, [this](const std::string& endpoint)
                                   -> absl::StatusOr<v1::OrgInfo> {
          if (endpoint == "down.example:7700") {
            return absl::UnavailableError("peer endpoint down.example:7700 "
                                          "did not answer");
          }
          v1::OrgInfo info;
          info.set_org(endpoint == "keyd.c.example:7700" ? "c" : "b");
          info.set_root_public_key(endpoint == "keyd.c.example:7700"
                                       ? peer_c_.public_key()
                                       : peer_b_.public_key());
          return info;
        }) {}

  v1::AddPeerRequest PeerB() {
    v1::AddPeerRequest req;
    req.set_org("b");
    req.add_domain_suffixes("B.Example");
    req.set_endpoint("keyd.b.example:7700");
    req.set_root_fingerprint(KeyFingerprint(peer_b_.public_key()));
    return req;
  }

  absl::StatusOr<FederationTrust> Trust(uint64_t min_version = 0) {
    absl::StatusOr<v1::SignedObject> bundle = federation_.Bundle();
    if (!bundle.ok()) return bundle.status();
    return FederationTrust::Verify(*bundle, env_.keys->root_public_key(),
                                   env_.clock.Now(), min_version);
  }

  KeydTestEnv env_;
  Ed25519PrivateKey peer_b_ = *Ed25519PrivateKey::Generate();
  Ed25519PrivateKey peer_c_ = *Ed25519PrivateKey::Generate();
  Federation federation_;
};

TEST_F(FederationTest, AddedPeerIsInTheRootSignedBundle) {
  auto empty = Trust();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->peers().empty());
  auto info = federation_.AddPeer(PeerB());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->root_fingerprint(), KeyFingerprint(peer_b_.public_key()));
  EXPECT_EQ(info->domain_suffixes(0), "b.example");
  auto trust = Trust(info->bundle_version());
  ASSERT_TRUE(trust.ok()) << trust.status();
  ASSERT_NE(trust->PeerFor("mx1.b.example"), nullptr);
  EXPECT_EQ(trust->PeerFor("mx1.b.example")->root_public_key,
            peer_b_.public_key());
  EXPECT_EQ(trust->PeerFor("mx1.b.example")->endpoint, "keyd.b.example:7700");
  auto list = federation_.ListPeers();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->peers_size(), 1);
  EXPECT_EQ(list->peers(0).org(), "b");
}

TEST_F(FederationTest, RejectedPeersChangeNothing) {
  ASSERT_TRUE(federation_.AddPeer(PeerB()).ok());
  const std::string before = env_.Snapshot();
  struct Case {
    std::function<void(v1::AddPeerRequest&)> mutate;
    absl::StatusCode code;
    const char* why;
  } cases[] = {
      {[](auto& r) { r.set_root_fingerprint("sha256:" + std::string(64, 'a')); },
       absl::StatusCode::kUnauthenticated, "fingerprint mismatch"},
      {[](auto& r) { r.set_endpoint("down.example:7700"); },
       absl::StatusCode::kUnavailable, "did not answer"},
      {[](auto& r) { r.set_org("someone-else"); },
       absl::StatusCode::kFailedPrecondition, "calls itself"},
      {[](auto& r) { r.set_domain_suffixes(0, "bad..suffix"); },
       absl::StatusCode::kInvalidArgument, "domain suffix"},
      {[](auto& r) { r.clear_domain_suffixes(); },
       absl::StatusCode::kInvalidArgument, "domain suffixes"},
      {[](auto& r) { r.set_endpoint("no-port"); },
       absl::StatusCode::kInvalidArgument, "HOST:PORT"},
      {[this](auto& r) { r.set_org(env_.keys->org()); },
       absl::StatusCode::kInvalidArgument, "own name"},
      // Another peer may not take b's suffix.
      {[this](auto& r) {
         r.set_org("c");
         r.set_endpoint("keyd.c.example:7700");
         r.set_root_fingerprint(KeyFingerprint(peer_c_.public_key()));
       },
       absl::StatusCode::kFailedPrecondition, "already belongs to peer b"},
  };
  for (const Case& c : cases) {
    v1::AddPeerRequest req = PeerB();
    c.mutate(req);
    auto info = federation_.AddPeer(req);
    EXPECT_EQ(info.status().code(), c.code) << c.why << ": " << info.status();
    EXPECT_THAT(info.status().message(), HasSubstr(c.why));
    EXPECT_EQ(env_.Snapshot(), before) << c.why;
  }
}

TEST_F(FederationTest, RemovalAndRenewalBumpTheVersion) {
  auto added = federation_.AddPeer(PeerB());
  ASSERT_TRUE(added.ok());
  v1::RemovePeerRequest remove;
  remove.set_org("b");
  auto removed = federation_.RemovePeer(remove);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_GT(removed->bundle_version(), added->bundle_version());
  auto trust = Trust(removed->bundle_version());
  ASSERT_TRUE(trust.ok()) << trust.status();
  EXPECT_EQ(trust->PeerFor("mx1.b.example"), nullptr);
  EXPECT_EQ(federation_.RemovePeer(remove).status().code(),
            absl::StatusCode::kNotFound);
  // Past half its validity the bundle is signed again, with a new version.
  env_.clock.Advance(Federation::kBundleValidity / 2 + absl::Seconds(1));
  auto renewed = Trust(removed->bundle_version() + 1);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_GT(renewed->not_after(), env_.clock.Now() + absl::Hours(24));
}

}  // namespace
}  // namespace mxkey

namespace mxkey {
namespace {

// Issue (trust core III, #11): `peer add ... --domain-suffix b.example
// --domain-suffix B.Example.` signed a bundle every client rejected.
TEST_F(FederationTest, DuplicateSuffixesAreOneSuffix) {
  v1::AddPeerRequest req = PeerB();
  req.add_domain_suffixes("b.example.");
  req.add_domain_suffixes("b.EXAMPLE");
  auto info = federation_.AddPeer(req);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->domain_suffixes_size(), 1);
  EXPECT_EQ(info->domain_suffixes(0), "b.example");
  auto trust = Trust(info->bundle_version());
  ASSERT_TRUE(trust.ok()) << "clients must accept the bundle: "
                          << trust.status();
  EXPECT_NE(trust->PeerFor("mx1.b.example"), nullptr);
}

}  // namespace
}  // namespace mxkey
