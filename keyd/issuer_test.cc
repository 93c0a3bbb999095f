#include "keyd/issuer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyd/keyd_test_env.h"
#include "keyd/revocation.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;

std::string Pin(char c) { return std::string(32, c); }

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

TEST(IssuerTest, RotationPrePublishesThenActivates) {
  KeydTestEnv env;
  EnrolledHost current = env.AddAndEnroll("mx1.example.org");
  auto next = env.Rotate(current);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->body.active_from(),
            absl::ToUnixSeconds(env.clock.Now() + env.ctx.options.prepublish()));
  auto answer = env.directory->GetHostKeys("mx1.example.org");
  ASSERT_TRUE(answer.ok());
  auto verified = env.Verifier().Verify(*answer, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST,
                                        env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  ASSERT_EQ(verified->certificates.size(), 2u);
  EXPECT_EQ(verified->certificates[0].state, VerifiedCertState::kActive);
  EXPECT_EQ(verified->certificates[1].state, VerifiedCertState::kNext);

  env.clock.Advance(env.ctx.options.prepublish());
  answer = env.directory->GetHostKeys("mx1.example.org");
  verified = env.Verifier().Verify(*answer, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST,
                                   env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  ASSERT_EQ(verified->certificates.size(), 1u);
  EXPECT_EQ(verified->certificates[0].body.serial(), next->body.serial());
  EXPECT_EQ(verified->certificates[0].state, VerifiedCertState::kActive);
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
