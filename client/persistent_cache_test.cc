#include "client/persistent_cache.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace mxkey {
namespace {

std::string TempDir() {
  std::string tmpl = std::string(getenv("TEST_TMPDIR")) + "/cacheXXXXXX";
  return mkdtemp(&tmpl[0]);
}

TEST(PersistentCacheTest, SurvivesReopen) {
  std::string dir = TempDir() + "/cache";
  {
    auto cache = PersistentCache::Open(dir);
    ASSERT_TRUE(cache.ok()) << cache.status();
    ASSERT_TRUE((*cache)->Put("h/mx1", "answer").ok());
  }
  auto cache = PersistentCache::Open(dir);
  ASSERT_TRUE(cache.ok());
  auto got = (*cache)->Get("h/mx1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value_or("none"), "answer");
  ASSERT_TRUE((*cache)->Delete("h/mx1").ok());
  EXPECT_FALSE((*cache)->Get("h/mx1")->has_value());
  // Deleting what is not there is fine.
  EXPECT_TRUE((*cache)->Delete("h/mx1").ok());
}

TEST(PersistentCacheTest, DeleteIfStaysInsideThePrefix) {
  auto cache = PersistentCache::Open(TempDir() + "/c");
  ASSERT_TRUE(cache.ok());
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE((*cache)->Put("d/" + std::to_string(i), std::to_string(i % 3)).ok());
  }
  ASSERT_TRUE((*cache)->Put("e/0", "0").ok());
  ASSERT_TRUE((*cache)->Put("c/0", "0").ok());
  ASSERT_TRUE((*cache)
                  ->DeleteIf("d/", [](absl::string_view, absl::string_view v) {
                    return v == "0";
                  })
                  .ok());
  int left = 0;
  for (int i = 0; i < 500; ++i) {
    auto got = (*cache)->Get("d/" + std::to_string(i));
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->has_value(), i % 3 != 0) << i;
    left += got->has_value();
  }
  EXPECT_EQ(left, 333);
  EXPECT_TRUE((*cache)->Get("e/0")->has_value());
  EXPECT_TRUE((*cache)->Get("c/0")->has_value());
}

TEST(PersistentCacheTest, UnusableDirectoryIsAnError) {
  auto cache = PersistentCache::Open("/proc/no/such/dir");
  EXPECT_FALSE(cache.ok());
}

}  // namespace
}  // namespace mxkey
