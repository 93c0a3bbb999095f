#include "crypto/x25519.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

// RFC 7748 section 6.1.
TEST(X25519Test, Rfc7748DiffieHellman) {
  auto alice = X25519PrivateKey::FromBytes(SecretBytes(absl::HexStringToBytes(
      "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")));
  auto bob = X25519PrivateKey::FromBytes(SecretBytes(absl::HexStringToBytes(
      "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")));
  ASSERT_TRUE(alice.ok() && bob.ok());
  EXPECT_EQ(absl::BytesToHexString(alice->public_key()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(absl::BytesToHexString(bob->public_key()),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  auto k1 = alice->Agree(bob->public_key());
  auto k2 = bob->Agree(alice->public_key());
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_EQ(absl::BytesToHexString(k1->view()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_TRUE(k1->Equals(*k2));
}

// RFC 7748 section 5.2, first scalar-multiplication vector.
TEST(X25519Test, Rfc7748ScalarMult) {
  auto key = X25519PrivateKey::FromBytes(SecretBytes(absl::HexStringToBytes(
      "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")));
  ASSERT_TRUE(key.ok());
  auto out = key->Agree(absl::HexStringToBytes(
      "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(absl::BytesToHexString(out->view()),
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
}

TEST(X25519Test, RejectsSmallOrderPoints) {
  auto key = X25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->Agree(std::string(32, '\0')).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string one(32, '\0');
  one[0] = 1;
  EXPECT_EQ(key->Agree(one).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(key->Agree("short").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mxkey
