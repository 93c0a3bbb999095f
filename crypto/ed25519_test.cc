#include "crypto/ed25519.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

struct Rfc8032Vector {
  const char* secret;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, tests 1 to 3.
const Rfc8032Vector kVectors[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519Test, Rfc8032Vectors) {
  for (const auto& v : kVectors) {
    SecretBytes seed(absl::HexStringToBytes(v.secret));
    auto key = Ed25519PrivateKey::FromSeed(seed);
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(absl::BytesToHexString(key->public_key()), v.public_key);
    std::string msg = absl::HexStringToBytes(v.message);
    auto sig = key->Sign(msg);
    ASSERT_TRUE(sig.ok()) << sig.status();
    EXPECT_EQ(absl::BytesToHexString(*sig), v.signature);
    EXPECT_TRUE(Ed25519Verify(key->public_key(), msg, *sig).ok());
  }
}

TEST(Ed25519Test, RejectsTamperedMessageAndSignature) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  std::string sig = *key->Sign("hello");
  EXPECT_EQ(Ed25519Verify(key->public_key(), "hellp", sig).code(),
            absl::StatusCode::kUnauthenticated);
  sig[5] ^= 1;
  EXPECT_EQ(Ed25519Verify(key->public_key(), "hello", sig).code(),
            absl::StatusCode::kUnauthenticated);
}

// S + L still verifies in Crypto++ 8.7; strict verification must refuse it.
TEST(Ed25519Test, RejectsNonCanonicalScalar) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  std::string sig = *key->Sign("msg");
  static const uint8_t kL[32] = {
      0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
      0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      0, 0x10};
  unsigned carry = 0;
  for (int i = 0; i < 32; ++i) {
    unsigned sum = static_cast<uint8_t>(sig[32 + i]) + kL[i] + carry;
    sig[32 + i] = static_cast<char>(sum & 0xff);
    carry = sum >> 8;
  }
  ASSERT_EQ(carry, 0u);  // S < L < 2^253, so S + L fits in 256 bits.
  absl::Status st = Ed25519Verify(key->public_key(), "msg", sig);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(st.message().find("canonical"), std::string::npos);
}

TEST(Ed25519Test, RejectsBadLengths) {
  EXPECT_EQ(Ed25519Verify("short", "m", std::string(64, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ed25519Verify(std::string(32, 'x'), "m", "short").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ed25519PrivateKey::FromSeed(SecretBytes(31)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mxkey
