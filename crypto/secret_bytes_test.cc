#include "crypto/secret_bytes.h"

#include "gtest/gtest.h"

namespace mxkey {
namespace {

TEST(SecretBytesTest, EqualsComparesContents) {
  SecretBytes a(absl::string_view("abc"));
  SecretBytes b(absl::string_view("abc"));
  SecretBytes c(absl::string_view("abd"));
  EXPECT_TRUE(a.Equals(b));
  EXPECT_FALSE(a.Equals(c));
  EXPECT_FALSE(a.Equals(SecretBytes(absl::string_view("ab"))));
}

TEST(SecretBytesTest, MoveLeavesSourceEmpty) {
  SecretBytes a(absl::string_view("secret"));
  SecretBytes b(std::move(a));
  EXPECT_EQ(b.view(), "secret");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
}

TEST(SecretBytesTest, SecureWipeZeroes) {
  char buf[4] = {'a', 'b', 'c', 'd'};
  SecureWipe(buf, sizeof(buf));
  for (char c : buf) EXPECT_EQ(c, 0);
}

TEST(SecretBytesTest, ConstantTimeEqualsChecksLength) {
  EXPECT_TRUE(ConstantTimeEquals("xy", "xy"));
  EXPECT_FALSE(ConstantTimeEquals("xy", "xyz"));
  EXPECT_FALSE(ConstantTimeEquals("xy", "xz"));
}

}  // namespace
}  // namespace mxkey
