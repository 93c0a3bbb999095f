#include "keyd/directory.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyd/keyd_test_env.h"
#include "tests/test_tls_keys.h"
#include "keyd/revocation.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;

TEST(DirectoryTest, HostAnswerVerifies) {
  KeydTestEnv env;
  EnrolledHost host = env.AddAndEnroll("mx1.example.org");
  auto answer = env.directory->GetHostKeys("MX1.Example.org");
  ASSERT_TRUE(answer.ok()) << answer.status();
  auto verified = env.Verifier().Verify(*answer, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST,
                                        env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  ASSERT_EQ(verified->certificates.size(), 1u);
  EXPECT_EQ(verified->certificates[0].body.serial(), host.body.serial());
  EXPECT_TRUE(verified->HasValidKey());
}

TEST(DirectoryTest, UnknownHostGetsSignedDenial) {
  KeydTestEnv env;
  env.AddHost("pending.example.org");  // registered, never enrolled
  for (const char* name : {"nope.example.org", "pending.example.org"}) {
    auto answer = env.directory->GetHostKeys(name);
    ASSERT_TRUE(answer.ok());
    ASSERT_TRUE(answer->has_denial());
    auto verified =
        env.Verifier().Verify(*answer, name, mxkey::v1::LOOKUP_KIND_HOST, env.clock.Now());
    ASSERT_TRUE(verified.ok()) << verified.status();
    EXPECT_EQ(verified->denial->reason(),
              mxkey::v1::DENIAL_REASON_NO_SUCH_HOST);
  }
}

TEST(DirectoryTest, BadNameIsInvalidArgument) {
  KeydTestEnv env;
  auto answer = env.directory->GetHostKeys("bad..name");
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.status().message(), HasSubstr("hostname"));
}

TEST(DirectoryTest, FindByTlsPinAnswersForThePinsHost) {
  KeydTestEnv env;
  const std::string pin = TestTlsPin("5a");
  env.AddAndEnroll("mx1.example.org", {pin});
  auto answer = env.directory->FindByTlsPin(pin);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->name(), "mx1.example.org");
  auto verified = env.Verifier().Verify(*answer, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST,
                                        env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();

  auto unknown = env.directory->FindByTlsPin(std::string(32, '\x01'));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  auto short_pin = env.directory->FindByTlsPin("abc");
  EXPECT_EQ(short_pin.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(short_pin.status().message(), HasSubstr("32-byte"));
}

TEST(DirectoryTest, FreshnessIsSignedOncePerHalfPeriod) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  auto a = *env.directory->GetHostKeys("mx1.example.org");
  env.clock.Advance(absl::Seconds(10));
  auto b = *env.directory->GetHostKeys("mx1.example.org");
  EXPECT_EQ(a.freshness().signature(), b.freshness().signature());
  env.clock.Advance(env.ctx.options.freshness / 2);
  auto c = *env.directory->GetHostKeys("mx1.example.org");
  EXPECT_NE(a.freshness().signature(), c.freshness().signature());
}

mxkey::v1::RevokeRequest RevokeAll(const std::string& host) {
  mxkey::v1::RevokeRequest revoke;
  revoke.set_hostname(host);
  revoke.set_reason("test");
  return revoke;
}

void ExpectRevoked(KeydTestEnv& env, const mxkey::v1::KeyAnswer& answer) {
  EXPECT_EQ(answer.revocations_size(), 1);
  auto verified =
      env.Verifier().Verify(answer, answer.name(), mxkey::v1::LOOKUP_KIND_HOST, env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_FALSE(verified->HasValidKey());
}

TEST(DirectoryTest, StatementsMadeTogetherAreNotAllRenewedTogether) {
  KeydTestEnv env;  // freshness 60 s: reused for 15 to 30 s, by name
  std::vector<std::string> names;
  std::map<std::string, std::string> first;
  for (int i = 0; i < 40; ++i) {
    names.push_back(absl::StrCat("mx", i, ".example.org"));
    first[names.back()] =
        env.directory->GetHostKeys(names.back())->freshness().signature();
  }
  auto renewed = [&] {
    int n = 0;
    for (const auto& name : names) {
      n += env.directory->GetHostKeys(name)->freshness().signature() !=
           first[name];
    }
    return n;
  };
  env.clock.Advance(absl::Seconds(14));
  EXPECT_EQ(renewed(), 0);
  env.clock.Advance(absl::Seconds(9));  // 23 s: about half of them
  const int midway = renewed();
  EXPECT_GT(midway, 0);
  EXPECT_LT(midway, 40);
  env.clock.Advance(absl::Seconds(8));  // 31 s: all
  EXPECT_EQ(renewed(), 40);
}

TEST(DirectoryTest, ReusedAnswerSurvivesWritesToOtherNames) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  env.AddAndEnroll("mx2.example.net", {}, "example.net");
  auto a = *env.directory->GetHostKeys("mx1.example.org");
  const int reads = env.counted.reads;
  // Another host's enrollment and revocation touch nothing of mx1's.
  env.AddAndEnroll("mx3.example.com", {}, "example.com");
  ASSERT_TRUE(Revoke(env.ctx, RevokeAll("mx2.example.net")).ok());
  auto b = *env.directory->GetHostKeys("mx1.example.org");
  EXPECT_EQ(env.counted.reads, reads) << "rebuilt instead of reused";
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
}

TEST(DirectoryTest, WriteToAHostDropsItsHostAndDomainAnswers) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  mxkey::v1::SetDomainPolicyRequest set;
  set.set_domain("example.org");
  set.set_mode(mxkey::v1::POLICY_MODE_ENFORCE);
  ASSERT_TRUE(env.admin->SetDomainPolicy(set).ok());
  ASSERT_EQ(env.directory->GetDomainPolicy("example.org")->certificates_size(),
            1);
  ASSERT_EQ(env.directory->GetHostKeys("mx1.example.org")->revocations_size(),
            0);
  ASSERT_TRUE(Revoke(env.ctx, RevokeAll("mx1.example.org")).ok());
  ExpectRevoked(env, *env.directory->GetHostKeys("mx1.example.org"));
  EXPECT_EQ(env.directory->GetDomainPolicy("example.org")->certificates_size(),
            0);
  // A second host of the domain shows up in the domain's answer at once.
  env.AddAndEnroll("mx2.example.org");
  EXPECT_EQ(env.directory->GetDomainPolicy("example.org")->certificates_size(),
            1);
}

TEST(DirectoryTest, AnswerReadBeforeAWriteIsNotKeptAfterIt) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  // The revocation commits after the lookup read the store and before it
  // keeps its (now old) answer.
  env.counted.after_next_read = [&] {
    ASSERT_TRUE(Revoke(env.ctx, RevokeAll("mx1.example.org")).ok());
  };
  auto old_answer = *env.directory->GetHostKeys("mx1.example.org");
  EXPECT_EQ(old_answer.revocations_size(), 0);
  ExpectRevoked(env, *env.directory->GetHostKeys("mx1.example.org"));
}

TEST(DirectoryTest, UntrackedStoreDropsEveryAnswerOnAnyWrite) {
  KeydTestEnv env;
  KeydContext untracked = env.ctx;
  untracked.store = &env.counted;  // no change reports reach this Directory
  Directory directory(&untracked);
  env.AddAndEnroll("mx1.example.org");
  ASSERT_TRUE(directory.GetHostKeys("mx1.example.org").ok());
  int reads = env.counted.reads;
  ASSERT_TRUE(directory.GetHostKeys("mx1.example.org").ok());
  EXPECT_EQ(env.counted.reads, reads) << "unchanged store: reused";
  env.AddHost("mx2.example.net", "example.net");
  reads = env.counted.reads;
  ASSERT_TRUE(directory.GetHostKeys("mx1.example.org").ok());
  EXPECT_EQ(env.counted.reads, reads + 1) << "any write: rebuilt";
}

TEST(DirectoryTest, ReusedAnswerEndsWhenACertificateChangesState) {
  KeydTestEnv env;
  // The certificate expires long before the freshness reuse window ends.
  env.ctx.options.cert_validity = absl::Hours(1);
  env.ctx.options.freshness = absl::Hours(24);
  EnrolledHost host = env.AddAndEnroll("mx1.example.org");
  ASSERT_TRUE(env.directory->GetHostKeys("mx1.example.org").ok());
  env.clock.Set(absl::FromUnixSeconds(host.body.not_after()));
  auto after = *env.directory->GetHostKeys("mx1.example.org");
  auto verified = env.Verifier().Verify(after, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST,
                                        env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  ASSERT_EQ(verified->certificates.size(), 1u);
  EXPECT_EQ(verified->certificates[0].state, VerifiedCertState::kExpired);
}

TEST(DirectoryTest, StaleAnswerIsReportedAsStale) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  auto answer = *env.directory->GetHostKeys("mx1.example.org");
  auto verified = env.Verifier().Verify(
      answer, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST,
      env.clock.Now() + env.ctx.options.freshness + absl::Seconds(1));
  EXPECT_EQ(verified.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(verified.status().message(), HasSubstr("stale"));
}

TEST(DirectoryTest, TamperedAnswersFailVerification) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  env.AddAndEnroll("mx2.example.org");
  auto answer = *env.directory->GetHostKeys("mx1.example.org");
  auto other = *env.directory->GetHostKeys("mx2.example.org");
  AnswerVerifier verifier = env.Verifier();

  auto flipped = answer;
  flipped.mutable_certificates(0)->mutable_body()->at(3) ^= 1;
  EXPECT_EQ(verifier.Verify(flipped, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST, env.clock.Now())
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);

  auto dropped = answer;  // a downgrade: strip the certificate
  dropped.clear_certificates();
  EXPECT_EQ(verifier.Verify(dropped, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST, env.clock.Now())
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);

  auto swapped = answer;  // another host's valid certificate
  *swapped.mutable_certificates(0) = other.certificates(0);
  EXPECT_EQ(verifier.Verify(swapped, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST, env.clock.Now())
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);

  KeydTestEnv stranger;  // an answer from another org's keyd
  stranger.AddAndEnroll("mx1.example.org");
  auto foreign = *stranger.directory->GetHostKeys("mx1.example.org");
  auto result = verifier.Verify(foreign, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST,
                                env.clock.Now());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(DirectoryTest, WrongRootFingerprintIsRejected) {
  KeydTestEnv env;
  auto verifier = AnswerVerifier::Create(
      "sha256:0000000000000000000000000000000000000000000000000000000000000000",
      env.keys->root_public_key());
  EXPECT_EQ(verifier.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(DirectoryTest, DomainPolicyAnswers) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  auto unkeyed = *env.directory->GetDomainPolicy("example.org");
  auto verified =
      env.Verifier().Verify(unkeyed, "example.org", mxkey::v1::LOOKUP_KIND_DOMAIN, env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->denial->reason(),
            mxkey::v1::DENIAL_REASON_DOMAIN_UNKEYED);

  mxkey::v1::SetDomainPolicyRequest set;
  set.set_domain("example.org");
  set.set_mode(mxkey::v1::POLICY_MODE_ENFORCE);
  ASSERT_TRUE(env.admin->SetDomainPolicy(set).ok());
  auto keyed = *env.directory->GetDomainPolicy("example.org");
  verified = env.Verifier().Verify(keyed, "example.org", mxkey::v1::LOOKUP_KIND_DOMAIN, env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->policy->mode(), mxkey::v1::POLICY_MODE_ENFORCE);
  ASSERT_EQ(verified->certificates.size(), 1u);
  EXPECT_EQ(verified->certificates[0].body.hostname(), "mx1.example.org");
}

// Trust core I, finding 1: keyd's genuine answer to one lookup is never a
// valid answer to another. The attack: GetDomainPolicy(example.org), an
// enforce domain, answered with the signed GetHostKeys(example.org) denial
// (and the reverse), which the verifier used to accept as "unkeyed".
TEST(DirectoryTest, AnAnswerToOneLookupIsNeverValidForAnother) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  mxkey::v1::SetDomainPolicyRequest set;
  set.set_domain("example.org");
  set.set_mode(mxkey::v1::POLICY_MODE_ENFORCE);
  ASSERT_TRUE(env.admin->SetDomainPolicy(set).ok());
  const AnswerVerifier verifier = env.Verifier();
  const absl::Time now = env.clock.Now();
  auto host_denial = *env.directory->GetHostKeys("example.org");
  ASSERT_TRUE(host_denial.has_denial());
  auto as_domain = verifier.Verify(host_denial, "example.org",
                                   mxkey::v1::LOOKUP_KIND_DOMAIN, now);
  EXPECT_EQ(as_domain.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(as_domain.status().message()),
              HasSubstr("LOOKUP_KIND_HOST lookup"));
  auto domain = *env.directory->GetDomainPolicy("example.org");
  auto as_host = verifier.Verify(domain, "example.org",
                                 mxkey::v1::LOOKUP_KIND_HOST, now);
  EXPECT_EQ(as_host.status().code(), absl::StatusCode::kUnauthenticated);
  // A host answer offered for a host lookup of another kind of name.
  auto host = *env.directory->GetHostKeys("mx1.example.org");
  EXPECT_FALSE(verifier.Verify(host, "mx1.example.org",
                               mxkey::v1::LOOKUP_KIND_DOMAIN, now).ok());
  // A pin denial is only a pin answer.
  auto pin_denial = *env.directory->PinDenial(std::string(32, '\x01'));
  EXPECT_TRUE(verifier.Verify(pin_denial, pin_denial.name(),
                              mxkey::v1::LOOKUP_KIND_TLS_PIN, now).ok());
  EXPECT_FALSE(verifier.Verify(pin_denial, pin_denial.name(),
                               mxkey::v1::LOOKUP_KIND_HOST, now).ok());
}

TEST(DirectoryTest, OrgInfoCarriesRootAndIssuer) {
  KeydTestEnv env;
  auto info = env.directory->GetOrgInfo();
  EXPECT_EQ(info.org(), "example");
  EXPECT_EQ(info.root_fingerprint(), env.keys->root_fingerprint());
  EXPECT_TRUE(
      env.Verifier().VerifyIssuingKey(info.issuing_key(), env.clock.Now()).ok());
}

}  // namespace
}  // namespace mxkey
