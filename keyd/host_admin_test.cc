#include "keyd/host_admin.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyd/keyd_test_env.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;

TEST(HostAdminTest, AddHostValidatesAndLowerCases) {
  KeydTestEnv env;
  mxkey::v1::AddHostRequest req;
  req.set_hostname("MX1.Example.ORG");
  req.add_mail_domains("Example.org");
  auto token = env.admin->AddHost(req);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->hostname(), "mx1.example.org");
  EXPECT_EQ(token->token().size(), 64u);
  auto dup = env.admin->AddHost(req);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);

  std::string before = env.Snapshot();
  mxkey::v1::AddHostRequest no_domain;
  no_domain.set_hostname("mx2.example.org");
  EXPECT_EQ(env.admin->AddHost(no_domain).status().code(),
            absl::StatusCode::kInvalidArgument);
  mxkey::v1::AddHostRequest bad_domain = no_domain;
  bad_domain.add_mail_domains("exa mple.org");
  auto bad = env.admin->AddHost(bad_domain);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("mail domain"));
  EXPECT_EQ(env.Snapshot(), before);
}

TEST(HostAdminTest, TokensAreStoredOnlyAsPublicKeys) {
  KeydTestEnv env;
  std::string token = env.AddHost("mx1.example.org");
  EXPECT_EQ(env.Snapshot().find(token), std::string::npos);
  auto key = TokenKey(token);
  ASSERT_TRUE(key.ok());
  std::string seed(key->seed().view());
  EXPECT_EQ(env.Snapshot().find(seed), std::string::npos);
  EXPECT_NE(env.Snapshot().find(key->public_key()), std::string::npos);
}

TEST(HostAdminTest, ListShowsStates) {
  KeydTestEnv env;
  env.AddHost("pending.example.org");
  env.AddAndEnroll("mx1.example.org");
  auto list = env.admin->ListHosts();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->hosts_size(), 2);
  EXPECT_EQ(list->hosts(0).hostname(), "mx1.example.org");
  EXPECT_EQ(list->hosts(0).state(), "enrolled");
  EXPECT_GT(list->hosts(0).active_serial(), 0u);
  EXPECT_EQ(list->hosts(1).state(), "pending");
}

TEST(HostAdminTest, RemoveHostRevokesAndForgets) {
  KeydTestEnv env;
  EnrolledHost host = env.AddAndEnroll("mx1.example.org");
  mxkey::v1::RemoveHostRequest req;
  req.set_hostname("mx1.example.org");
  auto removed = env.admin->RemoveHost(req);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(removed->revoked_serials(),
              ::testing::ElementsAre(host.body.serial()));
  EXPECT_EQ(env.feed.head(), 2u);  // the enrollment, then the revocation
  EXPECT_EQ(env.admin->ListHosts()->hosts_size(), 0);
  EXPECT_EQ(env.admin->RemoveHost(req).status().code(),
            absl::StatusCode::kNotFound);
  // The revoked key stays claimed: it is never certified again.
  std::string token = env.AddHost("mx1.example.org");
  auto token_key = *TokenKey(token);
  auto req2 = *MakeEnrollRequest("mx1.example.org", token_key, host.keys, {},
                                 env.clock.Now());
  auto reused = env.issuer->Enroll(req2);
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(reused.status().message(), HasSubstr("certified before"));
}

TEST(HostAdminTest, PolicyVersionsIncrease) {
  KeydTestEnv env;
  mxkey::v1::SetDomainPolicyRequest req;
  req.set_domain("example.org");
  req.set_mode(mxkey::v1::POLICY_MODE_TESTING);
  auto first = env.admin->SetDomainPolicy(req);
  req.set_mode(mxkey::v1::POLICY_MODE_ENFORCE);
  auto second = env.admin->SetDomainPolicy(req);
  ASSERT_TRUE(first.ok() && second.ok());
  mxkey::v1::DomainPolicyBody a, b;
  a.ParseFromString(first->policy().body());
  b.ParseFromString(second->policy().body());
  EXPECT_EQ(a.version() + 1, b.version());
  EXPECT_EQ(b.mode(), mxkey::v1::POLICY_MODE_ENFORCE);
  req.set_mode(mxkey::v1::POLICY_MODE_UNSPECIFIED);
  EXPECT_EQ(env.admin->SetDomainPolicy(req).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mxkey
