#include "crypto/sealed_secret.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

constexpr ScryptParams kCheap{4, 8, 1};

TEST(ScryptTest, Rfc7914Vector) {
  // RFC 7914 section 12, second vector (N=1024, r=8, p=16) is too costly for
  // our bounds; the first vector has an empty passphrase and salt.
  ScryptParams p{4, 1, 1};
  auto key = ScryptKey(SecretBytes(), "", p);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(absl::BytesToHexString(key->view()),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442");
}

TEST(SealedSecretTest, RoundTrip) {
  SecretBytes pass(absl::string_view("correct horse"));
  SecretBytes secret(std::string(32, 's'));
  auto sealed = SealSecret(pass, secret, kCheap);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->find(std::string(32, 's')), std::string::npos);
  auto opened = OpenSealedSecret(pass, *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->Equals(secret));
}

TEST(SealedSecretTest, WrongPassphraseAndTampering) {
  SecretBytes secret(std::string(32, 's'));
  std::string sealed = *SealSecret(SecretBytes(absl::string_view("a")), secret,
                                   kCheap);
  EXPECT_EQ(OpenSealedSecret(SecretBytes(absl::string_view("b")), sealed)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  std::string header_flip = sealed;
  header_flip[12] ^= 1;  // salt byte, covered as AAD
  EXPECT_EQ(OpenSealedSecret(SecretBytes(absl::string_view("a")), header_flip)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(SealedSecretTest, RejectsMalformedFiles) {
  SecretBytes pass(absl::string_view("a"));
  EXPECT_EQ(OpenSealedSecret(pass, "garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string sealed = *SealSecret(pass, SecretBytes(4), kCheap);
  sealed[8] = 60;  // log2(N) = 60 would need petabytes
  absl::Status st = OpenSealedSecret(pass, sealed).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("scrypt"), std::string::npos);
}

}  // namespace
}  // namespace mxkey
