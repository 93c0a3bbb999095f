#include "crypto/spki.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

// A P-256 certificate made by `openssl req -x509 -newkey ec`. Its pin was
// computed independently with
// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum`.
constexpr char kEcdsaPem[] = R"(junk before
-----BEGIN CERTIFICATE-----
MIIBiDCCAS+gAwIBAgIUUyqWS3aq5NkUE1gBkwyfB9Hg5swwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPbXgxLmV4YW1wbGUub3JnMB4XDTI2MTEyODE1MDQ0OVoXDTM2
MTEyNTE1MDQ0OVowGjEYMBYGA1UEAwwPbXgxLmV4YW1wbGUub3JnMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEIGGTCO6PeZhXL5Kz0kvJ0UOnrBZ6WZLAGS1Ea9XZ
jqoer6TceXLxlbeM+3MlwPMi8ptAPyxX13sUCsmtzdCTF6NTMFEwHQYDVR0OBBYE
FFjrtp/OiZIwl+HvQLfOrIOL8Md6MB8GA1UdIwQYMBaAFFjrtp/OiZIwl+HvQLfO
rIOL8Md6MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgZxXMF0Il
+zOSQJ5nUYShFEfC2iUMXHDGwNlAZXKffloCICexOMg0ZQ4frJWk4QZfUU0SsHs5
k/hbjn+UuBAGIQeA
-----END CERTIFICATE-----
)";

TEST(SpkiTest, PinMatchesOpenssl) {
  auto pin = TlsPinFromPem(kEcdsaPem);
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(absl::BytesToHexString(*pin),
            "c8f750c801d8b4df261ff0ab2e2a2ae09313ac56f42a8ce44cce7140f4df82df");
}

TEST(SpkiTest, Ed25519SpkiIsRfc8410) {
  auto der = Ed25519SpkiDer(std::string(32, '\x01'));
  ASSERT_TRUE(der.ok());
  EXPECT_EQ(der->size(), 44u);
  EXPECT_EQ(absl::BytesToHexString(der->substr(0, 12)),
            "302a300506032b6570032100");
  EXPECT_FALSE(Ed25519SpkiDer("short").ok());
}

TEST(SpkiTest, RejectsBrokenInput) {
  EXPECT_EQ(TlsPinFromPem("no pem here").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      TlsPinFromPem("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----")
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  auto certs = CertificatesFromPem(kEcdsaPem);
  ASSERT_TRUE(certs.ok());
  std::string der = certs->front();
  for (size_t cut : {size_t{0}, size_t{1}, size_t{10}, der.size() - 1}) {
    EXPECT_FALSE(SpkiFromCertificateDer(der.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(SpkiFromCertificateDer(der + "x").ok());
  std::string indefinite = der;
  indefinite[1] = '\x80';
  EXPECT_FALSE(SpkiFromCertificateDer(indefinite).ok());
}

TEST(SpkiTest, PostfixFingerprintForm) {
  EXPECT_EQ(PostfixFingerprint(std::string("\x0a\xff\x10", 3)), "0A:FF:10");
}

}  // namespace
}  // namespace mxkey
