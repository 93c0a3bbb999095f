// Federation between two real keyd processes (orgs "example" and "peer"),
// driven by keyctl: peers are added only with the right root fingerprint,
// and the bundle keyd publishes is signed by its own root.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "client/federation_trust.h"
#include "client/host_keys.h"
#include "client/key_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/keyd_process.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;
using ::testing::HasSubstr;

class FederationE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto [k, org] : {std::pair{&a_, "a"}, std::pair{&b_, "b"}}) {
      auto keyd = KeydProcess::Init(org);
      ASSERT_TRUE(keyd.ok()) << keyd.status();
      *k = *std::move(keyd);
      ASSERT_TRUE((*k)->Start().ok()) << (*k)->log();
    }
  }

  // The federation bundle A publishes, verified against A's root.
  absl::StatusOr<FederationTrust> BundleOfA(uint64_t min_version) {
    auto stub = v1::KeyDirectory::NewStub(
        grpc::CreateChannel(a_->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::FederationBundle bundle;
    grpc::Status st = stub->GetFederationBundle(&ctx, {}, &bundle);
    if (!st.ok()) return absl::UnavailableError(st.error_message());
    grpc::ClientContext info_ctx;
    v1::OrgInfo info;
    if (!stub->GetOrgInfo(&info_ctx, {}, &info).ok()) {
      return absl::UnavailableError("no org info");
    }
    return FederationTrust::Verify(bundle.bundle(), info.root_public_key(),
                                   absl::Now(), min_version);
  }

  std::unique_ptr<KeydProcess> a_, b_;
};

TEST_F(FederationE2eTest, PeerAddedWithItsFingerprintIsInTheSignedBundle) {
  const std::string name = "b";  // as `keyd init --org` named it

  CommandResult wrong = a_->RunKeyctl(
      {"peer", "add", name, "--domain-suffix", "b.example", "--endpoint",
       b_->address(), "--root-fingerprint", "sha256:" + std::string(64, '0')});
  EXPECT_EQ(wrong.exit_code, 4);
  EXPECT_THAT(wrong.err, HasSubstr("peer root fingerprint mismatch"));
  EXPECT_THAT(wrong.err, HasSubstr(b_->fingerprint()));
  // The old flag name still works, with a warning.
  EXPECT_THAT(wrong.err, HasSubstr("--root-fingerprint is deprecated"));
  CommandResult none = a_->RunKeyctl({"peer", "add", name, "--domain-suffix",
                                      "b.example", "--endpoint",
                                      b_->address()});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("--peer-root-fingerprint"));

  CommandResult added = a_->RunKeyctl(
      {"--json", "peer", "add", name, "--domain-suffix", "b.example",
       "--endpoint", b_->address(), "--peer-root-fingerprint",
       b_->fingerprint()});
  // RunKeyctl puts the global --root-fingerprint (a's own root) before the
  // command: the two no longer clash.
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_THAT(added.out, HasSubstr(b_->fingerprint()));
  auto trust = BundleOfA(1);
  ASSERT_TRUE(trust.ok()) << trust.status();
  ASSERT_NE(trust->PeerFor("mx1.b.example"), nullptr);
  EXPECT_EQ(trust->PeerFor("mx1.b.example")->endpoint, b_->address());

  CommandResult show = a_->RunKeyctl({"peer", "show", name});
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_THAT(show.out, HasSubstr("suffixes=b.example"));
  EXPECT_EQ(a_->RunKeyctl({"peer", "show", "nobody"}).exit_code, 3);

  CommandResult removed = a_->RunKeyctl({"peer", "remove", name});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  auto after = BundleOfA(trust->version() + 1);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->PeerFor("mx1.b.example"), nullptr);
}

// Enrolls `count` hosts "mxN.<domain>" at `keyd` over gRPC.
std::vector<std::string> EnrollHosts(const KeydProcess& keyd,
                                     const std::string& domain, int count) {
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      "unix:" + keyd.admin_socket(), grpc::InsecureChannelCredentials()));
  auto enrollment = v1::Enrollment::NewStub(
      grpc::CreateChannel(keyd.address(), grpc::InsecureChannelCredentials()));
  std::vector<std::string> hosts;
  for (int i = 0; i < count; ++i) {
    const std::string host = absl::StrCat("mx", i, ".", domain);
    v1::AddHostRequest add;
    add.set_hostname(host);
    add.add_mail_domains(domain);
    v1::TokenResponse token;
    grpc::ClientContext c1;
    EXPECT_TRUE(admin->AddHost(&c1, add, &token).ok());
    auto req = MakeEnrollRequest(host, *TokenKey(token.token()),
                                 *HostKeys::Generate(), {}, absl::Now());
    v1::EnrollResponse resp;
    grpc::ClientContext c2;
    EXPECT_TRUE(enrollment->Enroll(&c2, *req, &resp).ok());
    hosts.push_back(host);
  }
  return hosts;
}

// Revokes each host at `origin` and times the event's arrival at a client
// of org a (following a's feed). Returns sorted latencies in ms.
std::vector<int64_t> RevocationLatencies(const KeydProcess& origin,
                                         const std::vector<std::string>& hosts,
                                         KeyClient& client) {
  Mutex mu;
  std::map<std::string, absl::Time> arrived;
  const int id = client.Subscribe([&](const v1::RevocationEventBody& e) {
    MutexLock lock(&mu);
    arrived.emplace(e.hostname(), absl::Now());
  });
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      "unix:" + origin.admin_socket(), grpc::InsecureChannelCredentials()));
  std::vector<int64_t> ms;
  for (const std::string& host : hosts) {
    v1::RevokeRequest req;
    req.set_hostname(host);
    req.set_reason("propagation test");
    v1::RevokeResponse resp;
    grpc::ClientContext ctx;
    const absl::Time start = absl::Now();
    EXPECT_TRUE(admin->Revoke(&ctx, req, &resp).ok());
    MutexLock lock(&mu);
    auto seen = [&] { return arrived.count(host) > 0; };
    if (!mu.AwaitWithTimeout(Condition(&seen), absl::Seconds(10))) {
      ms.push_back(10000);
      continue;
    }
    ms.push_back(absl::ToInt64Milliseconds(arrived[host] - start));
  }
  client.Unsubscribe(id);
  std::sort(ms.begin(), ms.end());
  return ms;
}

// Revocation propagation over 100 revocations each, real processes:
// within org a (a's keyd -> a's client) and across (b's keyd -> a's keyd ->
// a's client). The goal (docs/ARCHITECTURE.md §7.4): every peer within 2 s.
TEST_F(FederationE2eTest, RevocationPropagationWithinAndAcrossOrgs) {
  const std::vector<std::string> no_limits = {"--enroll-limit", "0",
                                              "--enroll-failure-limit", "0"};
  ASSERT_EQ(a_->Stop(), 0);
  ASSERT_EQ(b_->Stop(), 0);
  ASSERT_TRUE(a_->Start(no_limits).ok());
  ASSERT_TRUE(b_->Start(no_limits).ok());
  ASSERT_EQ(a_->RunKeyctl({"peer", "add", "b", "--domain-suffix", "b.example",
                           "--endpoint", b_->address(),
                           "--peer-root-fingerprint", b_->fingerprint()})
                .exit_code,
            0);
  const auto own = EnrollHosts(*a_, "a.example", 100);
  const auto peer = EnrollHosts(*b_, "b.example", 101);
  KeyClientOptions o;
  o.endpoints = {a_->address()};
  o.root_fingerprint = a_->fingerprint();
  auto client = KeyClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->WaitForFeedPosition(0, absl::Seconds(10)));
  // Warm-up: a's keyd follows b's feed from its first event on.
  RevocationLatencies(*b_, {peer.back()}, **client);
  const auto within = RevocationLatencies(*a_, own, **client);
  const auto across = RevocationLatencies(
      *b_, std::vector<std::string>(peer.begin(), peer.end() - 1), **client);
  auto report = [](const char* what, const std::vector<int64_t>& ms) {
    std::printf("%s: n=%zu p50=%lld ms p99=%lld ms max=%lld ms\n", what,
                ms.size(), static_cast<long long>(ms[ms.size() / 2]),
                static_cast<long long>(ms[ms.size() * 99 / 100]),
                static_cast<long long>(ms.back()));
  };
  report("revocation within org a", within);
  report("revocation from org b to a's client", across);
  EXPECT_LT(within[within.size() * 99 / 100], 2000);
  EXPECT_LT(across[across.size() * 99 / 100], 2000);
}

}  // namespace
}  // namespace mxkey
