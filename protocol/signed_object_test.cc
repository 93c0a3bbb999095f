#include "protocol/signed_object.h"

#include <set>

#include "gtest/gtest.h"

namespace mxkey {
namespace {

TEST(SignedObjectTest, SignAndVerify) {
  auto key = *Ed25519PrivateKey::Generate();
  auto obj = SignObject(key, ObjectType::kDenial, "body");
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ(obj->signer_key_id(), KeyId(key.public_key()));
  EXPECT_TRUE(VerifyObject(*obj, ObjectType::kDenial, key.public_key()).ok());
}

TEST(SignedObjectTest, ContextSeparatesTypes) {
  auto key = *Ed25519PrivateKey::Generate();
  auto obj = *SignObject(key, ObjectType::kDenial, "body");
  EXPECT_EQ(VerifyObject(obj, ObjectType::kHostCertificate, key.public_key())
                .code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(SignedObjectTest, RejectsOtherSignerAndFlippedBody) {
  auto key = *Ed25519PrivateKey::Generate();
  auto other = *Ed25519PrivateKey::Generate();
  auto obj = *SignObject(key, ObjectType::kDenial, "body");
  EXPECT_EQ(VerifyObject(obj, ObjectType::kDenial, other.public_key()).code(),
            absl::StatusCode::kUnauthenticated);
  obj.mutable_body()->at(0) ^= 1;
  EXPECT_EQ(VerifyObject(obj, ObjectType::kDenial, key.public_key()).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(SignedObjectTest, ContextsAreDistinctAndNulTerminated) {
  std::set<std::string> seen;
  for (int t = 0; t <= static_cast<int>(ObjectType::kTlsKeyProof);
       ++t) {
    absl::string_view c = SignatureContext(static_cast<ObjectType>(t));
    ASSERT_FALSE(c.empty());
    EXPECT_EQ(c.back(), '\0');
    EXPECT_TRUE(seen.insert(std::string(c)).second) << c;
  }
}

TEST(AnswerDigestTest, LengthPrefixesPreventAmbiguity) {
  mxkey::v1::SignedObject a, b;
  a.set_body("ab");
  a.set_signature("c");
  b.set_body("a");
  b.set_signature("bc");
  EXPECT_NE(AnswerDigest({&a}), AnswerDigest({&b}));
  EXPECT_NE(AnswerDigest({&a, &b}), AnswerDigest({&b, &a}));
  EXPECT_EQ(AnswerDigest({&a}).size(), 32u);
}

}  // namespace
}  // namespace mxkey
