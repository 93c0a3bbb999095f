// mxkey-policyd's maps against a real in-process keyd through KeyClient:
// every tlspolicy and ccert answer, revocations, keyd outages, reports.
#include "mta-hooks/postfix/policy_maps.h"

#include "absl/strings/str_split.h"
#include "base/files.h"
#include "client/tls_pins.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/inprocess_keyd.h"
#include "tests/test_tls_keys.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kPin1 = TestTlsPin("1");
const std::string kPin2 = TestTlsPin("2");
const std::string kPinB = TestTlsPin("b");

class PolicyMapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keyd_ = InProcessKeyd::Start(&clock_, "example");
    ASSERT_NE(keyd_, nullptr);
    dir_ = ShortTempDir();
    keyd_->AddAndEnroll("mx1.example.org", "example.org", {kPin1});
    keyd_->AddAndEnroll("mx2.example.org", "example.org", {kPin2});
    keyd_->AddAndEnroll("mx.testing.example", "testing.example", {});
    keyd_->AddAndEnroll("mx.b.test", "b.test", {kPinB});
    keyd_->SetPolicy("example.org", v1::POLICY_MODE_ENFORCE);
    keyd_->SetPolicy("testing.example", v1::POLICY_MODE_TESTING);
    keyd_->SetPolicy("b.test", v1::POLICY_MODE_ENFORCE);
    StartMaps();
  }
  void TearDown() override {
    maps_.reset();
    client_.reset();
    RunCommand({"/bin/rm", "-rf", dir_});
  }

  void StartMaps() {
    maps_.reset();
    client_.reset();
    KeyClientOptions o = keyd_->ClientOptions();
    o.cache_dir = dir_ + "/cache";
    auto c = KeyClient::Create(o);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
    ASSERT_TRUE(client_->WaitForFeedPosition(0, absl::Seconds(10)));
    PolicyMapsOptions m;
    m.report_dir = dir_;
    m.state_dir = o.cache_dir;
    m.clock = &clock_;
    maps_ = std::make_unique<PolicyMaps>(client_.get(), m);
  }

  FakeClock clock_{absl::FromUnixSeconds(1900000000)};
  std::unique_ptr<InProcessKeyd> keyd_;
  std::string dir_;
  std::unique_ptr<KeyClient> client_;
  std::unique_ptr<PolicyMaps> maps_;
};

TEST_F(PolicyMapsTest, EnforceDomainAnswersTheMxPinsInEveryNextHopForm) {
  const std::string both =
      "OK fingerprint match=" + ColonHex(kPin1) + "|" + ColonHex(kPin2);
  EXPECT_EQ(maps_->Lookup("tlspolicy", "example.org"), both);
  EXPECT_EQ(maps_->Lookup("tlspolicy", "Example.ORG:25"), both);
  const std::string one = "OK fingerprint match=" + ColonHex(kPin1);
  EXPECT_EQ(maps_->Lookup("tlspolicy", "[mx1.example.org]"), one);
  EXPECT_EQ(maps_->Lookup("tlspolicy", "[mx1.example.org]:25"), one);
  EXPECT_EQ(maps_->Lookup("tlspolicy", "[mx.b.test]:10025"),
            "OK fingerprint match=" + ColonHex(kPinB));
}

TEST_F(PolicyMapsTest, UnkeyedUnknownAndOutOfScopeAreNotFound) {
  for (const char* key :
       {"c.test", "[mx9.example.org]", ".example.org", "[127.0.0.1]:10025",
        "[ipv6:::1]:25", "192.0.2.1", "[mx.testing.example]", "testing.example"}) {
    EXPECT_EQ(maps_->Lookup("tlspolicy", key), "NOTFOUND ") << key;
  }
}

TEST_F(PolicyMapsTest, BadKeysAndMapsArePerm) {
  EXPECT_THAT(maps_->Lookup("tlspolicy", "bad_name!"), StartsWith("PERM "));
  EXPECT_THAT(maps_->Lookup("tlspolicy", "[mx1.example.org"),
              HasSubstr("without \"]\""));
  EXPECT_THAT(maps_->Lookup("tlspolicy", "[mx1.example.org]x"),
              HasSubstr("only :port"));
  EXPECT_THAT(maps_->Lookup("ccert", "AB:CD"), HasSubstr("32 colon-separated"));
  EXPECT_THAT(maps_->Lookup("aliases", "root"), HasSubstr("unknown map"));
}

TEST_F(PolicyMapsTest, TestingModeWritesAReportAndNeverBlocks) {
  // mx.testing.example pins no TLS key: enforce would refuse.
  EXPECT_EQ(maps_->Lookup("tlspolicy", "testing.example"), "NOTFOUND ");
  absl::StatusOr<std::string> report = ReadFile(
      dir_ + "/mxkey-tlsrpt-" +
      absl::FormatTime("%Y-%m-%d", clock_.Now(), absl::UTCTimeZone()) +
      ".jsonl");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(*report, HasSubstr("\"policy-domain\":\"testing.example\""));
  EXPECT_THAT(*report, HasSubstr("\"result-type\":\"validation-failure\""));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(*report, '\n',
                                                    absl::SkipEmpty()))
                .size(),
            1u);
}

TEST_F(PolicyMapsTest, RevocationChangesTheAnswerWhenTheWatchDeliversIt) {
  ASSERT_THAT(maps_->Lookup("tlspolicy", "[mx.b.test]"), StartsWith("OK "));
  ASSERT_EQ(maps_->Lookup("ccert", ColonHex(kPinB)), "OK OK");
  const uint64_t seq = keyd_->Revoke("mx.b.test", "key compromise");
  ASSERT_TRUE(client_->WaitForFeedPosition(seq, absl::Seconds(10)));
  // No clock movement: the cache did not time out, the watch evicted it.
  EXPECT_THAT(maps_->Lookup("tlspolicy", "[mx.b.test]"),
              StartsWith("TEMP mxkey: enforce: [mx.b.test] has no usable"));
  EXPECT_THAT(maps_->Lookup("tlspolicy", "b.test"), StartsWith("TEMP "));
  EXPECT_EQ(maps_->Lookup("ccert", ColonHex(kPinB)), "NOTFOUND ");
}

TEST_F(PolicyMapsTest, CcertAcceptsOnlyCertifiedKeys) {
  EXPECT_EQ(maps_->Lookup("ccert", ColonHex(kPin1)), "OK OK");
  std::string lower = ColonHex(kPin2);
  for (char& c : lower) c = static_cast<char>(tolower(c));
  EXPECT_EQ(maps_->Lookup("ccert", lower), "OK OK");
  EXPECT_EQ(maps_->Lookup("ccert", ColonHex(std::string(32, '\x7f'))),
            "NOTFOUND ");
}

TEST_F(PolicyMapsTest, KeydDownFailsClosedOnlyForEnforceNextHops) {
  ASSERT_THAT(maps_->Lookup("tlspolicy", "example.org"), StartsWith("OK "));
  ASSERT_EQ(maps_->Lookup("tlspolicy", "c.test"), "NOTFOUND ");
  ASSERT_EQ(maps_->Lookup("ccert", ColonHex(kPin1)), "OK OK");
  keyd_->Stop();
  // Fresh answers are still served while keyd is away.
  EXPECT_THAT(maps_->Lookup("tlspolicy", "example.org"), StartsWith("OK "));
  clock_.Advance(absl::Hours(1));  // past every freshness statement
  EXPECT_THAT(maps_->Lookup("tlspolicy", "example.org"),
              StartsWith("TEMP mxkey: example.org is in enforce mode"));
  EXPECT_EQ(maps_->Lookup("tlspolicy", "c.test"), "NOTFOUND ");
  EXPECT_EQ(maps_->Lookup("tlspolicy", "never-seen.example"), "NOTFOUND ");
  // ccert degrades the same way: a client key last seen certified waits
  // (TEMP), any other client is none of mxkey's business (NOTFOUND), so a
  // keyd outage never refuses senders that have nothing to do with mxkey.
  EXPECT_THAT(maps_->Lookup("ccert", ColonHex(kPin1)), StartsWith("TEMP "));
  EXPECT_EQ(maps_->Lookup("ccert", ColonHex(std::string(32, '\x55'))),
            "NOTFOUND ");
  // A restarted policyd remembers which next-hops were in enforce mode, and
  // which client keys were certified.
  StartMaps();
  EXPECT_THAT(maps_->Lookup("tlspolicy", "example.org"), StartsWith("TEMP "));
  EXPECT_THAT(maps_->Lookup("ccert", ColonHex(kPin1)), StartsWith("TEMP "));
  EXPECT_EQ(maps_->Lookup("ccert", ColonHex(std::string(32, '\x56'))),
            "NOTFOUND ");
}

}  // namespace
}  // namespace mxkey
