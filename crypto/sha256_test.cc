#include "crypto/sha256.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

std::string Hex(absl::string_view s) { return absl::BytesToHexString(s); }

TEST(Sha256Test, KnownDigest) {
  EXPECT_EQ(Hex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, IncrementalMatchesOneShot) {
  Sha256Hasher h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Finish(), Sha256("abc"));
}

// RFC 4231 test case 2.
TEST(HmacSha256Test, Rfc4231Case2) {
  SecretBytes key(absl::string_view("Jefe"));
  EXPECT_EQ(Hex(HmacSha256(key, "what do ya want for nothing?").view()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// RFC 5869 test case 1.
TEST(HkdfSha256Test, Rfc5869Case1) {
  SecretBytes ikm(absl::HexStringToBytes(
      "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"));
  auto okm = HkdfSha256(ikm, absl::HexStringToBytes("000102030405060708090a0b0c"),
                        absl::HexStringToBytes("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(Hex(okm->view()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865");
}

TEST(HkdfSha256Test, RejectsOverlongOutput) {
  SecretBytes ikm(absl::string_view("k"));
  EXPECT_EQ(HkdfSha256(ikm, "", "", 255 * 32 + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KeyFingerprintTest, CanonicalForm) {
  EXPECT_EQ(KeyFingerprint("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace mxkey
