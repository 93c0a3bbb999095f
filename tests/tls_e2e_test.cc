// keyd's public endpoint and peer-to-peer calls over TLS, keyd's TLS key
// certified by its org root (trust core I, defence in depth): clients and
// peers that hold the root fingerprint get in; a client of another root, a
// plaintext client, and an AddPeer with the wrong fingerprint do not.
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "client/key_client.h"
#include "client/keyd_channel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/inprocess_keyd.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;
using ::testing::HasSubstr;

// The parameter: true runs every keyd as a process of its own.
class TlsE2eTest : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<InProcessKeyd> StartKeyd(const std::string& org) {
    KeydOptions options;
    options.freshness = absl::Seconds(60);
    options.peer_transport = KeydTransport::kTls;  // TLS even on loopback
    return GetParam() ? InProcessKeyd::StartProcess(&clock_, org, options)
                      : InProcessKeyd::Start(&clock_, org, options);
  }

  grpc::Status AddPeer(InProcessKeyd& at, const InProcessKeyd& peer,
                       const std::string& suffix,
                       const std::string& fingerprint) {
    return at.AddPeer("b", {suffix}, peer.endpoint(), fingerprint);
  }

  Clock& clock_ = *Clock::Real();
};

TEST_P(TlsE2eTest, OnlyClientsOfTheRootGetIn) {
  auto a = StartKeyd("a");
  auto other = StartKeyd("other");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(other, nullptr);
  a->AddAndEnroll("mx1.a.example", "a.example");

  KeyClientOptions good = a->ClientOptions();
  ASSERT_EQ(good.transport, KeydTransport::kTls);
  good.watch_revocations = false;
  auto client = KeyClient::Create(good);
  ASSERT_TRUE(client.ok()) << client.status();
  auto host = (*client)->LookupHost("mx1.a.example");
  ASSERT_TRUE(host.ok()) << host.status();

  // A client of another root: the handshake fails, nothing is looked up.
  KeyClientOptions wrong = good;
  wrong.root_fingerprint = other->root_fingerprint();
  wrong.rpc_timeout = absl::Seconds(1);
  auto stranger = KeyClient::Create(wrong);
  ASSERT_TRUE(stranger.ok()) << stranger.status();
  auto refused = (*stranger)->LookupHost("mx1.a.example");
  EXPECT_EQ(LookupFailureOf(refused.status()), LookupFailure::kUnavailable)
      << refused.status();

  // A plaintext client of the TLS endpoint gets nothing either.
  KeyClientOptions plain = good;
  plain.transport = KeydTransport::kPlaintext;
  plain.rpc_timeout = absl::Seconds(1);
  auto cleartext = KeyClient::Create(plain);
  ASSERT_TRUE(cleartext.ok()) << cleartext.status();
  EXPECT_FALSE((*cleartext)->LookupHost("mx1.a.example").ok());
}

TEST_P(TlsE2eTest, PeersTalkTlsCheckedAgainstEachOthersRoot) {
  auto a = StartKeyd("a");
  auto b = StartKeyd("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  b->AddAndEnroll("mx1.b.example", "b.example");
  b->SetPolicy("b.example", v1::POLICY_MODE_ENFORCE);
  // The wrong fingerprint is refused with both fingerprints named.
  grpc::Status mismatch = AddPeer(*a, *b, "b.example", a->root_fingerprint());
  EXPECT_EQ(mismatch.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << mismatch.error_message();
  EXPECT_THAT(mismatch.error_message(), HasSubstr("mismatch"));
  grpc::Status added = AddPeer(*a, *b, "b.example", b->root_fingerprint());
  ASSERT_TRUE(added.ok()) << added.error_message();

  KeyClientOptions o = a->ClientOptions();
  o.watch_revocations = false;
  auto client = KeyClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  auto domain = (*client)->LookupDomain("b.example");
  ASSERT_TRUE(domain.ok()) << domain.status();
  ASSERT_TRUE((*domain)->policy.has_value());
  EXPECT_EQ((*domain)->policy->mode(), v1::POLICY_MODE_ENFORCE);
}

INSTANTIATE_TEST_SUITE_P(Keyd, TlsE2eTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Processes" : "InProcess";
                         });

}  // namespace
}  // namespace mxkey
