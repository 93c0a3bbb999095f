// Federation between two real keyd processes (orgs "example" and "peer"),
// driven by keyctl: peers are added only with the right root fingerprint,
// and the bundle keyd publishes is signed by its own root.
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "client/federation_trust.h"
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

  CommandResult added = a_->RunKeyctl(
      {"--json", "peer", "add", name, "--domain-suffix", "b.example",
       "--endpoint", b_->address(), "--root-fingerprint", b_->fingerprint()});
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

}  // namespace
}  // namespace mxkey
