#include "base/files.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

TEST(FilesTest, AtomicWriteSetsModeAndReadsBack) {
  std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/f");
  ASSERT_TRUE(WriteFileAtomically(path, "one", 0600).ok());
  ASSERT_TRUE(WriteFileAtomically(path, "two", 0600).ok());
  EXPECT_EQ(*ReadFile(path), "two");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FilesTest, MissingAndOversizedFiles) {
  EXPECT_EQ(ReadFile("/nonexistent/x").status().code(),
            absl::StatusCode::kNotFound);
  std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/big");
  ASSERT_TRUE(WriteFileAtomically(path, std::string(100, 'x'), 0600).ok());
  EXPECT_EQ(ReadFile(path, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mxkey
