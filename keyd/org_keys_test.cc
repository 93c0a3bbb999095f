#include "keyd/org_keys.h"

#include <stdlib.h>
#include <cstdio>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "base/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;

class OrgKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = absl::StrCat(getenv("TEST_TMPDIR"), "/org.XXXXXX");
    dir_ = mkdtemp(&tmpl[0]);
    options_.scrypt.log2_n = 4;
  }
  std::string dir_;
  OrgKeysOptions options_;
  FakeClock clock_{absl::FromUnixSeconds(1790000000)};
  SecretBytes pass_{absl::string_view("pass")};
};

TEST_F(OrgKeysTest, InitThenLoad) {
  ASSERT_TRUE(OrgKeys::Init(dir_, "example", pass_, options_, &clock_).ok());
  auto keys = OrgKeys::Load(dir_, pass_, options_, &clock_);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ((*keys)->org(), "example");
  EXPECT_THAT((*keys)->root_fingerprint(), ::testing::StartsWith("sha256:"));
  EXPECT_TRUE(VerifyObject((*keys)->issuing_cert(), ObjectType::kIssuingKey,
                           (*keys)->root_public_key())
                  .ok());
  for (const char* f : {"root.key", "issuing.key"}) {
    struct stat st;
    ASSERT_EQ(stat(absl::StrCat(dir_, "/", f).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  std::string sealed = *ReadFile(absl::StrCat(dir_, "/root.key"));
  EXPECT_EQ(sealed.substr(0, 8), "MXKEYSK1");
}

TEST_F(OrgKeysTest, InitRefusesToOverwrite) {
  ASSERT_TRUE(OrgKeys::Init(dir_, "example", pass_, options_, &clock_).ok());
  absl::Status again = OrgKeys::Init(dir_, "other", pass_, options_, &clock_);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(OrgKeysTest, WrongPassphraseAndUninitializedDir) {
  ASSERT_TRUE(OrgKeys::Init(dir_, "example", pass_, options_, &clock_).ok());
  auto wrong = OrgKeys::Load(dir_, SecretBytes(absl::string_view("nope")),
                             options_, &clock_);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(wrong.status().message(), HasSubstr("passphrase"));
  auto empty = OrgKeys::Load(absl::StrCat(dir_, "/none"), pass_, options_,
                             &clock_);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(), HasSubstr("keyd init"));
}

TEST_F(OrgKeysTest, IssuingKeyIsRenewedBeforeItExpires) {
  ASSERT_TRUE(OrgKeys::Init(dir_, "example", pass_, options_, &clock_).ok());
  auto first = *OrgKeys::Load(dir_, pass_, options_, &clock_);
  std::string old_key = first->issuing_body().public_key();
  clock_.Advance(options_.issuing_validity * 3 / 4);
  auto renewed = *OrgKeys::Load(dir_, pass_, options_, &clock_);
  EXPECT_NE(renewed->issuing_body().public_key(), old_key);
  // The old issuing certificate is kept for objects it signed.
  EXPECT_TRUE(renewed->IssuingCertById(KeyId(old_key)).has_value());
  auto again = *OrgKeys::Load(dir_, pass_, options_, &clock_);
  EXPECT_EQ(again->issuing_body().public_key(),
            renewed->issuing_body().public_key());
}

TEST_F(OrgKeysTest, RunningKeysRenewInPlace) {
  ASSERT_TRUE(OrgKeys::Init(dir_, "example", pass_, options_, &clock_).ok());
  auto keys = *OrgKeys::Load(dir_, pass_, options_, &clock_);
  std::string old_key = keys->issuing_body().public_key();
  ASSERT_TRUE(keys->RenewIfDue().ok());
  EXPECT_EQ(keys->issuing_body().public_key(), old_key);  // not due yet
  clock_.Advance(options_.issuing_validity * 3 / 4);
  ASSERT_TRUE(keys->RenewIfDue().ok());
  std::string new_key = keys->issuing_body().public_key();
  EXPECT_NE(new_key, old_key);
  auto signed_object = keys->Sign(ObjectType::kDenial, "x");
  ASSERT_TRUE(signed_object.ok());
  EXPECT_TRUE(VerifyObject(*signed_object, ObjectType::kDenial, new_key).ok());
  // A restart picks up the renewed key from disk.
  auto reloaded = *OrgKeys::Load(dir_, pass_, options_, &clock_);
  EXPECT_EQ(reloaded->issuing_body().public_key(), new_key);
}

TEST_F(OrgKeysTest, InterruptedRenewalIsCompletedOnLoad) {
  ASSERT_TRUE(OrgKeys::Init(dir_, "example", pass_, options_, &clock_).ok());
  auto keys = *OrgKeys::Load(dir_, pass_, options_, &clock_);
  clock_.Advance(options_.issuing_validity * 3 / 4);
  std::string old_key = *ReadFile(absl::StrCat(dir_, "/issuing.key"));
  ASSERT_TRUE(keys->RenewIfDue().ok());
  std::string new_key_id = KeyId(keys->issuing_body().public_key());
  // Simulate a crash after org.pb was written but before the rename.
  ASSERT_EQ(rename(absl::StrCat(dir_, "/issuing.key").c_str(),
                   absl::StrCat(dir_, "/issuing.key.new").c_str()),
            0);
  ASSERT_TRUE(WriteFileAtomically(absl::StrCat(dir_, "/issuing.key"),
                                  old_key, 0600)
                  .ok());
  auto reloaded = OrgKeys::Load(dir_, pass_, options_, &clock_);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(KeyId((*reloaded)->issuing_body().public_key()), new_key_id);
}

TEST_F(OrgKeysTest, RejectsBadOrgName) {
  EXPECT_EQ(OrgKeys::Init(dir_, "", pass_, options_, &clock_).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mxkey
