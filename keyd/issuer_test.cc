#include "keyd/issuer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyd/keyd_test_env.h"
#include "tests/test_tls_keys.h"
#include "keyd/revocation.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;

// The pin of a test TLS key (its proof is sent with the request).
std::string Pin(char c) { return TestTlsPin(std::string(1, c)); }

TEST(IssuerTest, EnrollIssuesAVerifiableCertificate) {
  KeydTestEnv env;
  EnrolledHost host = env.AddAndEnroll("MX1.example.org", {Pin('a')});
  EXPECT_EQ(host.body.hostname(), "mx1.example.org");
  EXPECT_EQ(host.body.identity_key(), host.keys.identity.public_key());
  EXPECT_EQ(host.body.agreement_key(), host.keys.agreement.public_key());
  EXPECT_THAT(host.body.mail_domains(), ::testing::ElementsAre("example.org"));
  EXPECT_EQ(host.body.tls_spki_sha256(0), Pin('a'));
  auto verified = env.Verifier().VerifyEnrollment(host.response,
                                                  env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->serial(), host.body.serial());
}

TEST(IssuerTest, TokenIsSingleUse) {
  KeydTestEnv env;
  std::string token = env.AddHost("mx1.example.org");
  ASSERT_TRUE(env.Enroll("mx1.example.org", token).ok());
  std::string before = env.Snapshot();
  auto again = env.Enroll("mx1.example.org", token);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(again.status().message(), HasSubstr("token"));
  EXPECT_EQ(env.Snapshot(), before);
}

TEST(IssuerTest, ExpiredTokenIsRefused) {
  KeydTestEnv env;
  std::string token = env.AddHost("mx1.example.org");
  env.clock.Advance(env.ctx.options.token_ttl + absl::Seconds(1));
  std::string before = env.Snapshot();
  auto result = env.Enroll("mx1.example.org", token);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(result.status().message(), HasSubstr("expired"));
  EXPECT_EQ(env.Snapshot(), before);
}

TEST(IssuerTest, TokenIsBoundToItsHost) {
  KeydTestEnv env;
  std::string token = env.AddHost("mx1.example.org");
  env.AddHost("mx2.example.org");
  auto result = env.Enroll("mx2.example.org", token);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(result.status().message(), HasSubstr("another host"));
}

TEST(IssuerTest, NewTokenReplacesOld) {
  KeydTestEnv env;
  std::string old_token = env.AddHost("mx1.example.org");
  mxkey::v1::CreateEnrollmentTokenRequest req;
  req.set_hostname("mx1.example.org");
  auto fresh = env.admin->CreateToken(req);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(env.Enroll("mx1.example.org", old_token).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(env.Enroll("mx1.example.org", fresh->token()).ok());
}

TEST(IssuerTest, ProofOfPossessionOverOtherBytesIsRefused) {
  KeydTestEnv env;
  std::string token = env.AddHost("mx1.example.org");
  auto token_key = *TokenKey(token);
  auto keys = *HostKeys::Generate();
  auto req = *MakeEnrollRequest("mx1.example.org", token_key, keys, {},
                                env.clock.Now());
  req.set_identity_signature(
      *SignBytes(keys.identity, ObjectType::kEnrollProofOfPossession,
                 "other bytes"));
  std::string before = env.Snapshot();
  auto result = env.issuer->Enroll(req);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(result.status().message(), HasSubstr("proof of possession"));
  EXPECT_EQ(env.Snapshot(), before);
  // The token was not consumed by the rejected request.
  EXPECT_TRUE(env.Enroll("mx1.example.org", token).ok());
}

TEST(IssuerTest, TokenSignatureMustMatch) {
  KeydTestEnv env;
  std::string token = env.AddHost("mx1.example.org");
  auto token_key = *TokenKey(token);
  auto keys = *HostKeys::Generate();
  auto req = *MakeEnrollRequest("mx1.example.org", token_key, keys, {},
                                env.clock.Now());
  req.mutable_token_signature()->at(0) ^= 1;
  auto result = env.issuer->Enroll(req);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(result.status().message(), HasSubstr("token signature"));
}

TEST(IssuerTest, MalformedRequestsAreInvalidArgument) {
  KeydTestEnv env;
  mxkey::v1::EnrollRequest garbage;
  garbage.set_body("\xff\xff\xff");
  EXPECT_EQ(env.issuer->Enroll(garbage).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string token = env.AddHost("mx1.example.org");
  auto token_key = *TokenKey(token);
  auto keys = *HostKeys::Generate();
  auto skewed = MakeEnrollRequest("mx1.example.org", token_key, keys, {},
                                  env.clock.Now() - absl::Hours(1));
  auto result = env.issuer->Enroll(*skewed);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("clock"));
  auto bad_pin = env.Enroll("mx1.example.org", token, {"short"});
  EXPECT_EQ(bad_pin.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad_name = env.Enroll("bad_name.example.org", token);
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(IssuerTest, PinCertifiedForAnotherHostIsRefused) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org", {Pin('p')});
  std::string token = env.AddHost("mx2.example.org");
  std::string before = env.Snapshot();
  auto result = env.Enroll("mx2.example.org", token, {Pin('p')});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(result.status().message(), HasSubstr("TLS pin"));
  EXPECT_EQ(env.Snapshot(), before);
}

// Trust core III #7: a pin is public (any TLS handshake shows the key), so
// an enrolled host could claim another MX's key, and keep it forever.
TEST(IssuerTest, ANewPinNeedsProofOfPossessionOfItsKey) {
  KeydTestEnv env;
  auto victim = TlsKeySigner::GenerateP256();
  ASSERT_TRUE(victim.ok());
  std::string token = env.AddHost("mx9.example.org");
  const std::string before = env.Snapshot();
  // The victim's pin alone.
  auto bare = env.Enroll("mx9.example.org", token, {victim->pin()});
  EXPECT_EQ(bare.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(bare.status().message(), HasSubstr("proof of possession"));
  // The victim's public key with a signature by another key.
  auto attacker = TlsKeySigner::GenerateP256();
  ASSERT_TRUE(attacker.ok());
  auto keys = HostKeys::Generate();
  ASSERT_TRUE(keys.ok());
  auto req = MakeEnrollRequest("mx9.example.org", *TokenKey(token), *keys,
                               {}, env.clock.Now(), {&*attacker});
  ASSERT_TRUE(req.ok());
  req->set_body([&] {
    mxkey::v1::EnrollmentBody body;
    body.ParseFromString(req->body());
    body.set_tls_spki_sha256(0, victim->pin());
    return body.SerializeAsString();
  }());
  req->mutable_tls_key_proofs(0)->set_spki(victim->spki_der());
  auto forged = env.issuer->Enroll(*req);
  EXPECT_FALSE(forged.ok());
  EXPECT_EQ(env.Snapshot(), before) << "a refused enrollment changed state";
  // With the victim's key itself: certified.
  auto proven = env.Enroll("mx9.example.org", token, {TestTlsPin("victim")});
  EXPECT_TRUE(proven.ok()) << proven.status();
}

TEST(IssuerTest, RemovingAHostReleasesItsPins) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org", {Pin('r')});
  std::string token = env.AddHost("mx2.example.org");
  auto refused = env.Enroll("mx2.example.org", token, {Pin('r')});
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(refused.status().message(), HasSubstr("host remove"));
  mxkey::v1::RemoveHostRequest remove;
  remove.set_hostname("mx1.example.org");
  ASSERT_TRUE(env.admin->RemoveHost(remove).ok());
  auto taken = env.Enroll("mx2.example.org", token, {Pin('r')});
  EXPECT_TRUE(taken.ok()) << "the removed host still holds the pin: "
                          << taken.status();
}

// A host added again under a removed host's name starts with nothing: the
// pins of the old one are not its own without a new proof.
TEST(IssuerTest, AHostAddedAgainDoesNotInheritPinsWithoutProof) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org", {Pin('o')});
  mxkey::v1::RemoveHostRequest remove;
  remove.set_hostname("mx1.example.org");
  ASSERT_TRUE(env.admin->RemoveHost(remove).ok());
  std::string token = env.AddHost("mx1.example.org");
  auto keys = HostKeys::Generate();
  ASSERT_TRUE(keys.ok());
  auto bare = MakeEnrollRequest("mx1.example.org", *TokenKey(token), *keys,
                                {Pin('o')}, env.clock.Now());
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(env.issuer->Enroll(*bare).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(IssuerTest, ARotationKeepsTheHostsPinsWithoutANewProof) {
  KeydTestEnv env;
  EnrolledHost host = env.AddAndEnroll("mx1.example.org", {Pin('k')});
  auto next = HostKeys::Generate();
  ASSERT_TRUE(next.ok());
  // The bare pin, no proof: the host holds it already.
  auto req = MakeRotateRequest("mx1.example.org", host.body.serial(),
                               host.keys.identity, *next, {Pin('k')},
                               env.clock.Now());
  ASSERT_TRUE(req.ok());
  ASSERT_EQ(req->tls_key_proofs_size(), 0);
  auto rotated = env.issuer->Rotate(*req);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
}

TEST(IssuerTest, ReEnrollmentRevokesPreviousKeys) {
  KeydTestEnv env;
  EnrolledHost first = env.AddAndEnroll("mx1.example.org");
  mxkey::v1::CreateEnrollmentTokenRequest req;
  req.set_hostname("mx1.example.org");
  auto token = env.admin->CreateToken(req);
  auto second = env.Enroll("mx1.example.org", token->token());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(second->body.serial(), first.body.serial());
  // Two key changes (the enrollments) and the revocation of the first key.
  EXPECT_EQ(env.feed.head(), 3u);
}

// The serials and states of the host's verified answer at the env's clock.
std::vector<std::pair<uint64_t, VerifiedCertState>> States(KeydTestEnv& env,
                                                           const std::string& host) {
  std::vector<std::pair<uint64_t, VerifiedCertState>> out;
  auto answer = env.directory->GetHostKeys(host);
  EXPECT_TRUE(answer.ok()) << answer.status();
  if (!answer.ok()) return out;
  auto verified = env.Verifier().Verify(*answer, host, mxkey::v1::LOOKUP_KIND_HOST,
                                        env.clock.Now());
  EXPECT_TRUE(verified.ok()) << verified.status();
  if (!verified.ok()) return out;
  for (const auto& c : verified->certificates) {
    out.push_back({c.body.serial(), c.state});
  }
  return out;
}

using State = std::pair<uint64_t, VerifiedCertState>;

TEST(IssuerTest, RotationKeepsBothKeysForTheOverlapThenActivates) {
  KeydTestEnv env;
  EnrolledHost current = env.AddAndEnroll("mx1.example.org");
  auto next = env.Rotate(current);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->body.active_from(),
            absl::ToUnixSeconds(env.clock.Now() + env.ctx.options.rotation_overlap));
  const uint64_t old_serial = current.body.serial(), new_serial = next->body.serial();
  EXPECT_THAT(States(env, "mx1.example.org"),
              testing::ElementsAre(State{old_serial, VerifiedCertState::kActive},
                                   State{new_serial, VerifiedCertState::kNext}));
  // Long past the pre-publication time, the old key is still in use: the
  // host has not switched (round 1 dropped it after 10 minutes).
  env.clock.Advance(env.ctx.options.prepublish() + absl::Hours(1));
  EXPECT_THAT(States(env, "mx1.example.org"),
              testing::ElementsAre(State{old_serial, VerifiedCertState::kActive},
                                   State{new_serial, VerifiedCertState::kNext}));
  env.clock.Advance(env.ctx.options.rotation_overlap);
  EXPECT_THAT(States(env, "mx1.example.org"),
              testing::ElementsAre(State{new_serial, VerifiedCertState::kActive}));
}

TEST(IssuerTest, TheHostChoosesItsOverlapWithinBounds) {
  KeydTestEnv env;
  EnrolledHost current = env.AddAndEnroll("mx1.example.org");
  for (absl::Duration bad : {env.ctx.options.prepublish() - absl::Seconds(1),
                             absl::Hours(24 * 91), absl::Seconds(-5)}) {
    std::string before = env.Snapshot();
    auto next = env.Rotate(current, {}, bad);
    EXPECT_EQ(next.status().code(), absl::StatusCode::kInvalidArgument)
        << absl::FormatDuration(bad);
    EXPECT_THAT(next.status().message(), HasSubstr("overlap_seconds"));
    EXPECT_EQ(env.Snapshot(), before);
  }
  auto next = env.Rotate(current, {}, absl::Hours(36));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->body.active_from(),
            absl::ToUnixSeconds(env.clock.Now() + absl::Hours(36)));
}

TEST(IssuerTest, FinishingARotationWithdrawsTheOldKeyAtOnce) {
  KeydTestEnv env;
  EnrolledHost current = env.AddAndEnroll("mx1.example.org");
  auto next = env.Rotate(current);
  ASSERT_TRUE(next.ok()) << next.status();
  const uint64_t head = env.feed.head();
  env.clock.Advance(absl::Seconds(3));
  auto finished = env.FinishRotation(*next);
  ASSERT_TRUE(finished.ok()) << finished.status();
  auto body = ParseBody<mxkey::v1::HostCertificateBody>(finished->certificate());
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->serial(), next->body.serial());
  EXPECT_EQ(body->identity_key(), next->body.identity_key());
  EXPECT_EQ(body->active_from(), absl::ToUnixSeconds(env.clock.Now()));
  EXPECT_THAT(States(env, "mx1.example.org"),
              testing::ElementsAre(State{next->body.serial(),
                                         VerifiedCertState::kActive}));
  // Announced on the feed, so watching clients refetch within 2 s.
  EXPECT_EQ(env.feed.head(), head + 1);

  // A replay changes nothing and still answers with the certificate.
  std::string before = env.Snapshot();
  env.clock.Advance(absl::Seconds(1));
  auto again = env.FinishRotation(*next);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->certificate().SerializeAsString(),
            finished->certificate().SerializeAsString());
  EXPECT_EQ(env.Snapshot(), before);
  EXPECT_EQ(env.feed.head(), head + 1);
}

TEST(IssuerTest, OnlyTheNextKeyFinishesItsRotation) {
  KeydTestEnv env;
  EnrolledHost current = env.AddAndEnroll("mx1.example.org");
  EnrolledHost other = env.AddAndEnroll("mx2.example.org");
  auto next = env.Rotate(current);
  ASSERT_TRUE(next.ok()) << next.status();
  std::string before = env.Snapshot();
  // The old key (a stolen copy of the old host) cannot cut the overlap.
  auto by_old = env.FinishRotation(*next, &current.keys.identity);
  EXPECT_EQ(by_old.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(by_old.status().message(), HasSubstr("next identity key"));
  // Nor can another host's key, or a serial that is no pending rotation.
  EnrolledHost wrong_host = *next;
  wrong_host.body.set_hostname("mx2.example.org");
  auto by_other = env.FinishRotation(wrong_host);
  EXPECT_EQ(by_other.status().code(), absl::StatusCode::kFailedPrecondition);
  // An active certificate's own key may only replay a finish: no change.
  EXPECT_TRUE(env.FinishRotation(other).ok());
  EnrolledHost unknown = *next;
  unknown.body.set_serial(9999);
  auto no_serial = env.FinishRotation(unknown);
  EXPECT_EQ(no_serial.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_serial.status().message(), HasSubstr("not a pending next"));
  // A request from a clock far away is refused before anything is read.
  env.clock.Advance(absl::Hours(1));
  auto req = MakeFinishRotationRequest("mx1.example.org", next->body.serial(),
                                       next->keys.identity,
                                       env.clock.Now() - absl::Hours(1));
  auto stale = env.issuer->FinishRotation(*req);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(env.Snapshot(), before);
  EXPECT_THAT(States(env, "mx1.example.org"),
              testing::ElementsAre(
                  State{current.body.serial(), VerifiedCertState::kActive},
                  State{next->body.serial(), VerifiedCertState::kNext}));
}

TEST(IssuerTest, SecondRotationWhileNextIsPendingIsRefused) {
  KeydTestEnv env;
  EnrolledHost current = env.AddAndEnroll("mx1.example.org");
  ASSERT_TRUE(env.Rotate(current).ok());
  auto again = env.Rotate(current);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("pre-published"));
}

TEST(IssuerTest, RotationNeedsTheCurrentKey) {
  KeydTestEnv env;
  EnrolledHost current = env.AddAndEnroll("mx1.example.org");
  EnrolledHost impostor = current;
  impostor.keys = *HostKeys::Generate();
  auto result = env.Rotate(impostor);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(result.status().message(), HasSubstr("current identity key"));
}

TEST(IssuerTest, RevokedHostCannotRotateBackIn) {
  KeydTestEnv env;
  EnrolledHost current = env.AddAndEnroll("mx1.example.org");
  mxkey::v1::RevokeRequest revoke;
  revoke.set_hostname("mx1.example.org");
  revoke.set_reason("compromised");
  ASSERT_TRUE(Revoke(env.ctx, revoke).ok());
  std::string before = env.Snapshot();
  auto result = env.Rotate(current);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr("no active"));
  EXPECT_EQ(env.Snapshot(), before);
}

}  // namespace
}  // namespace mxkey
