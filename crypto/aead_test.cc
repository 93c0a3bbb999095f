#include "crypto/aead.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

// RFC 8439 section 2.8.2.
TEST(AeadTest, Rfc8439Vector) {
  SecretBytes key(absl::HexStringToBytes(
      "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"));
  std::string nonce = absl::HexStringToBytes("070000004041424344454647");
  std::string aad = absl::HexStringToBytes("50515253c0c1c2c3c4c5c6c7");
  std::string pt =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one "
      "tip for the future, sunscreen would be it.";
  auto sealed = AeadSeal(key, nonce, aad, pt);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(absl::BytesToHexString(sealed->substr(sealed->size() - 16)),
            "1ae10b594f09e26a7e902ecbd0600691");
  EXPECT_EQ(absl::BytesToHexString(sealed->substr(0, 16)),
            "d31a8d34648e60db7b86afbc53ef7ec2");
  auto opened = AeadOpen(key, nonce, aad, *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->view(), pt);
}

TEST(AeadTest, RejectsTampering) {
  SecretBytes key(std::string(32, 'k'));
  std::string nonce(12, 'n');
  std::string sealed = *AeadSeal(key, nonce, "aad", "data");
  sealed[0] ^= 1;
  EXPECT_EQ(AeadOpen(key, nonce, "aad", sealed).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(AeadOpen(key, nonce, "aad", "short").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(AeadSeal(SecretBytes(3), nonce, "", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mxkey
