#include "crypto/x509_identity.h"

#include "gtest/gtest.h"

namespace mxkey {
namespace {

TEST(X509IdentityTest, TheBindingAndTheKeyRoundTrip) {
  const absl::Time now = absl::FromUnixSeconds(1790000000);
  std::string spki_seen;
  auto identity = MakeTlsIdentity(
      [&](absl::string_view spki) -> absl::StatusOr<std::string> {
        spki_seen = std::string(spki);
        return std::string("binding bytes");
      },
      now, now + absl::Hours(24));
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->spki_der, spki_seen);
  EXPECT_NE(identity->key_pem.view().find("PRIVATE KEY"), absl::string_view::npos);
  auto presented = ReadPresentedCertificate(identity->cert_pem);
  ASSERT_TRUE(presented.ok()) << presented.status();
  EXPECT_EQ(presented->spki_der, identity->spki_der);
  ASSERT_TRUE(presented->binding.has_value());
  EXPECT_EQ(*presented->binding, "binding bytes");
  EXPECT_EQ(presented->not_after, now + absl::Hours(24));
}

TEST(X509IdentityTest, BindingErrorsAndBadPemAreReported) {
  const absl::Time now = absl::FromUnixSeconds(1790000000);
  auto failed = MakeTlsIdentity(
      [](absl::string_view) -> absl::StatusOr<std::string> {
        return absl::InternalError("no root");
      },
      now, now + absl::Hours(1));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ReadPresentedCertificate("not a certificate").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mxkey
