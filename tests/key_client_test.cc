// KeyClient against a real in-process keyd: verified lookups, the typed
// errors, both caches, the revocation watcher, and keyd outages. Time is a
// FakeClock shared by keyd and the client.
#include "client/key_client.h"

#include <atomic>

#include "base/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/inprocess_keyd.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;
using ::testing::HasSubstr;

class KeyClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KeydOptions keyd;
    keyd.cert_validity = absl::Hours(24);  // expires well before the issuer
    keyd_ = InProcessKeyd::Start(&clock_, "example", keyd);
    ASSERT_NE(keyd_, nullptr);
    cache_dir_ = ShortTempDir();
  }
  void TearDown() override { RunCommand({"/bin/rm", "-rf", cache_dir_}); }

  KeyClientOptions Options() {
    KeyClientOptions o = keyd_->ClientOptions();
    o.cache_dir = cache_dir_ + "/cache";
    return o;
  }

  std::unique_ptr<KeyClient> NewClient(KeyClientOptions o) {
    auto c = KeyClient::Create(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return nullptr;
    // Caching starts once the feed position is known.
    EXPECT_TRUE((*c)->WaitForFeedPosition(0, absl::Seconds(10)));
    return *std::move(c);
  }

  FakeClock clock_{absl::FromUnixSeconds(1900000000)};
  std::unique_ptr<InProcessKeyd> keyd_;
  std::string cache_dir_;
};

TEST_F(KeyClientTest, LookupReturnsVerifiedKeysAndCachesThem) {
  EnrolledTestHost mx1 = keyd_->AddAndEnroll("mx1.example.org");
  auto client = NewClient(Options());
  ASSERT_NE(client, nullptr);
  absl::StatusOr<AnswerRef> a = client->LookupHost("MX1.Example.org.");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ((*a)->certificates.size(), 1u);
  EXPECT_EQ((*a)->certificates[0].body.agreement_key(),
            mx1.keys.agreement.public_key());
  // A hit hands out the very same verified object.
  absl::StatusOr<AnswerRef> b = client->LookupHost("mx1.example.org");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->get(), b->get());
}

TEST_F(KeyClientTest, DistinctErrorsForUnknownRevokedExpiredAndBadNames) {
  keyd_->AddAndEnroll("mx1.example.org");
  keyd_->AddAndEnroll("mx2.example.org");
  keyd_->Revoke("mx2.example.org", "key compromise");
  auto client = NewClient(Options());
  ASSERT_NE(client, nullptr);

  absl::StatusOr<AnswerRef> unknown = client->LookupHost("mx9.example.org");
  EXPECT_EQ(LookupFailureOf(unknown.status()), LookupFailure::kUnknown)
      << unknown.status();
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("no such host"));

  absl::StatusOr<AnswerRef> revoked = client->LookupHost("mx2.example.org");
  EXPECT_EQ(LookupFailureOf(revoked.status()), LookupFailure::kRevoked)
      << revoked.status();
  EXPECT_THAT(std::string(revoked.status().message()),
              HasSubstr("key compromise"));
  // The details stay available for display.
  absl::StatusOr<AnswerRef> details = client->LookupHostAnswer("mx2.example.org");
  ASSERT_TRUE(details.ok());
  EXPECT_EQ(details->get()->certificates[0].state, VerifiedCertState::kRevoked);

  absl::StatusOr<AnswerRef> bad = client->LookupHost("mx_1.example.org");
  EXPECT_EQ(LookupFailureOf(bad.status()), LookupFailure::kInvalidName);

  // Two days on, the one-day certificate has expired (keyd signs fresh
  // statements at the new time).
  clock_.Advance(absl::Hours(48));
  absl::StatusOr<AnswerRef> expired = client->LookupHost("mx1.example.org");
  EXPECT_EQ(LookupFailureOf(expired.status()), LookupFailure::kExpired)
      << expired.status();
  EXPECT_THAT(std::string(expired.status().message()), HasSubstr("expired"));
}

TEST_F(KeyClientTest, RootWithAnotherFingerprintIsRejected) {
  KeyClientOptions o = Options();
  o.root_fingerprint = "sha256:" + std::string(64, 'a');
  auto c = KeyClient::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(LookupFailureOf(c.status()), LookupFailure::kVerification);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("trust anchor"));

  o.root_fingerprint = "sha256:XYZ";
  EXPECT_EQ(KeyClient::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(KeyClientTest, AnotherOrgsKeydDoesNotReachOurRoot) {
  // A keyd of org B answers; the client trusts only org A's root.
  auto other = InProcessKeyd::Start(&clock_, "other");
  other->AddAndEnroll("mx1.example.org");
  KeyClientOptions o = Options();
  o.endpoints = {other->endpoint()};
  auto c = KeyClient::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(KeyClientTest, RevocationEvictsWithinOneEventDelivery) {
  keyd_->AddAndEnroll("mx1.example.org");
  // Declared before the client, so they outlive its watcher thread.
  Notification delivered;
  std::atomic<int> after_event_failure{-1};
  auto client = NewClient(Options());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->LookupHost("mx1.example.org").ok());
  ASSERT_TRUE(client->LookupDomain("example.org").ok());

  client->Subscribe([&](const v1::RevocationEventBody& ev) {
    // Listeners run after eviction: the revoked key is already gone.
    EXPECT_EQ(ev.hostname(), "mx1.example.org");
    auto a = client->LookupHost("mx1.example.org");
    after_event_failure = static_cast<int>(LookupFailureOf(a.status()));
    delivered.Notify();
  });
  uint64_t seq = keyd_->Revoke("mx1.example.org", "rotated out");
  ASSERT_TRUE(delivered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(after_event_failure.load(),
            static_cast<int>(LookupFailure::kRevoked));
  EXPECT_TRUE(client->WaitForFeedPosition(seq, absl::Seconds(5)));
  // The domain answer no longer offers the revoked host as valid.
  auto domain = client->LookupDomain("example.org");
  ASSERT_TRUE(domain.ok());
  for (const auto& c : (*domain)->certificates) {
    EXPECT_NE(c.state, VerifiedCertState::kActive);
  }
}

// Unsubscribe waits out a listener that is running, so the caller may free
// what the listener uses as soon as it returns.
TEST_F(KeyClientTest, UnsubscribeReturnsOnlyAfterARunningListenerEnds) {
  keyd_->AddAndEnroll("mx1.example.org");
  Notification entered;
  std::atomic<bool> finished{false};
  auto client = NewClient(Options());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->WaitForFeedPosition(0, absl::Seconds(10)));
  const int id = client->Subscribe([&](const v1::RevocationEventBody&) {
    if (entered.HasBeenNotified()) return;
    entered.Notify();
    absl::SleepFor(absl::Milliseconds(500));
    finished = true;
  });
  keyd_->Revoke("mx1.example.org", "rotated out");
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  client->Unsubscribe(id);
  EXPECT_TRUE(finished.load()) << "Unsubscribe returned while the listener ran";
}

TEST_F(KeyClientTest, OutageServedFromMemoryUntilFreshnessThenStale) {
  keyd_->AddAndEnroll("mx1.example.org");
  auto client = NewClient(Options());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->LookupHost("mx1.example.org").ok());
  keyd_->Stop();
  clock_.Advance(absl::Minutes(4));
  EXPECT_TRUE(client->LookupHost("mx1.example.org").ok());
  clock_.Advance(absl::Minutes(2));  // 6 min > 5 min freshness
  auto stale = client->LookupHost("mx1.example.org");
  EXPECT_EQ(LookupFailureOf(stale.status()), LookupFailure::kStale)
      << stale.status();
  EXPECT_THAT(std::string(stale.status().message()), HasSubstr("stale"));
  // Nothing cached at all: unavailable, not stale.
  auto none = client->LookupHost("mx7.example.org");
  EXPECT_EQ(LookupFailureOf(none.status()), LookupFailure::kUnavailable)
      << none.status();
}

TEST_F(KeyClientTest, DiskCacheSurvivesRestartDuringOutage) {
  keyd_->AddAndEnroll("mx1.example.org");
  {
    auto client = NewClient(Options());
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->LookupHost("mx1.example.org").ok());
    ASSERT_TRUE(client->LookupDomain("example.org").ok());
  }
  keyd_->Stop();
  // A restarted hook while keyd is down: the root and the answers come
  // from disk, verified again.
  KeyClientOptions o = Options();
  o.watch_revocations = false;
  auto restarted = KeyClient::Create(o);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  auto a = (*restarted)->LookupHost("mx1.example.org");
  EXPECT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE((*restarted)->LookupDomain("example.org").ok());
  clock_.Advance(absl::Minutes(6));
  auto stale = (*restarted)->LookupHost("mx1.example.org");
  EXPECT_EQ(LookupFailureOf(stale.status()), LookupFailure::kStale)
      << stale.status();
}

TEST_F(KeyClientTest, NoKeydAndNoCacheIsUnavailableNotAnError) {
  KeyClientOptions o = Options();
  o.endpoints = {"127.0.0.1:1"};
  o.rpc_timeout = absl::Milliseconds(500);
  auto c = KeyClient::Create(o);
  ASSERT_TRUE(c.ok()) << c.status();
  auto a = (*c)->LookupHost("mx1.example.org");
  EXPECT_EQ(LookupFailureOf(a.status()), LookupFailure::kUnavailable);
}

TEST_F(KeyClientTest, SecondEndpointIsUsedWhenTheFirstIsDown) {
  keyd_->AddAndEnroll("mx1.example.org");
  KeyClientOptions o = Options();
  o.endpoints = {"127.0.0.1:1", keyd_->endpoint()};
  auto client = NewClient(o);
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->LookupHost("mx1.example.org").ok());
}

TEST_F(KeyClientTest, UnkeyedDomainIsASignedDenialNotAnError) {
  keyd_->AddAndEnroll("mx1.example.org");
  keyd_->SetPolicy("example.org", v1::POLICY_MODE_ENFORCE);
  auto client = NewClient(Options());
  ASSERT_NE(client, nullptr);
  auto keyed = client->LookupDomain("example.org");
  ASSERT_TRUE(keyed.ok()) << keyed.status();
  ASSERT_TRUE((*keyed)->policy.has_value());
  EXPECT_EQ((*keyed)->policy->mode(), v1::POLICY_MODE_ENFORCE);
  auto unkeyed = client->LookupDomain("example.net");
  ASSERT_TRUE(unkeyed.ok()) << unkeyed.status();
  EXPECT_TRUE((*unkeyed)->denial.has_value() || !(*unkeyed)->policy ||
              (*unkeyed)->policy->mode() == v1::POLICY_MODE_NONE);
}

}  // namespace
}  // namespace mxkey
