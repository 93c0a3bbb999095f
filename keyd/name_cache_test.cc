// NameCache: one byte budget for answers and signatures, least recently
// used out first, and no answer kept over a write it does not reflect
// (trust core III #3).
#include "keyd/name_cache.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

v1::SignedObject Signature(const std::string& name) {
  v1::SignedObject o;
  o.set_body(std::string(80, 'b') + name);
  o.set_signature(std::string(64, 's'));
  o.set_signer_key_id(std::string(32, 'k'));
  return o;
}

v1::KeyAnswer AnswerFor(const std::string& name) {
  v1::KeyAnswer a;
  a.set_name(name);
  *a.mutable_denial() = Signature(name);
  *a.mutable_freshness() = Signature(name);
  *a.add_issuing_keys() = Signature("issuer");
  return a;
}

constexpr size_t kBudget = 1 << 20;

TEST(NameCacheTest, AFloodOfNewNamesStaysInTheBudget) {
  NameCache cache(kBudget);
  for (int i = 0; i < 100000; ++i) {
    const std::string name = absl::StrCat("n", i, ".example.org");
    cache.KeepSignature("sd:" + name, "", 100, Signature(name));
    cache.KeepSignature("sf:" + name, "digest", 100, Signature(name));
    cache.KeepAnswer("h:" + name, 1, 1000, AnswerFor(name));
    ASSERT_LE(cache.bytes(), kBudget) << i;
  }
  EXPECT_GT(cache.bytes(), kBudget / 2) << "the budget should be used";
}

TEST(NameCacheTest, TheNamesInUseStayThroughAFlood) {
  NameCache cache(kBudget);
  cache.KeepSignature("sf:hot", "d", 100, Signature("hot"));
  cache.KeepAnswer("h:hot", 1, 1000, AnswerFor("hot"));
  for (int i = 0; i < 100000; ++i) {
    const std::string name = absl::StrCat("n", i, ".example.org");
    cache.KeepSignature("sd:" + name, "", 100, Signature(name));
    cache.KeepAnswer("h:" + name, 1, 1000, AnswerFor(name));
    if (i % 100 == 0) {
      ASSERT_TRUE(cache.FindSignature("sf:hot", "d", 101, 60).has_value()) << i;
      ASSERT_TRUE(cache.FindAnswer("h:hot", 1, false, 101).has_value()) << i;
    }
  }
  EXPECT_FALSE(cache.FindSignature("sd:n0.example.org", "", 101, 60))
      << "the oldest unused name should have gone";
}

TEST(NameCacheTest, SignaturesAreReusedOnlyForTheSameDigestAndInTime) {
  NameCache cache(kBudget);
  cache.KeepSignature("sf:a", "d1", 100, Signature("a"));
  EXPECT_TRUE(cache.FindSignature("sf:a", "d1", 150, 60).has_value());
  EXPECT_FALSE(cache.FindSignature("sf:a", "d2", 150, 60).has_value());
  EXPECT_FALSE(cache.FindSignature("sf:a", "d1", 160, 60).has_value());
  EXPECT_FALSE(cache.FindSignature("sf:a", "d1", 99, 60).has_value());
}

TEST(NameCacheTest, AnswersFollowWritesAndExpiry) {
  NameCache cache(kBudget);
  cache.KeepAnswer("h:a", 5, 1000, AnswerFor("a"));
  EXPECT_TRUE(cache.FindAnswer("h:a", 5, false, 100).has_value());
  // Another generation: only when every write since was reported.
  EXPECT_FALSE(cache.FindAnswer("h:a", 6, false, 100).has_value());
  EXPECT_TRUE(cache.FindAnswer("h:a", 6, true, 100).has_value());
  EXPECT_FALSE(cache.FindAnswer("h:a", 5, false, 1000).has_value());
  cache.Tombstone("h:a", 7);
  EXPECT_FALSE(cache.FindAnswer("h:a", 7, true, 100).has_value());
  // An answer read before the write is not kept over its tombstone.
  cache.KeepAnswer("h:a", 6, 1000, AnswerFor("a"));
  EXPECT_FALSE(cache.FindAnswer("h:a", 7, true, 100).has_value());
  cache.KeepAnswer("h:a", 8, 1000, AnswerFor("a"));
  EXPECT_TRUE(cache.FindAnswer("h:a", 8, false, 100).has_value());
  cache.DropAnswers(9);
  EXPECT_FALSE(cache.FindAnswer("h:a", 8, true, 100).has_value());
  cache.KeepAnswer("h:a", 8, 1000, AnswerFor("a"));
  EXPECT_FALSE(cache.FindAnswer("h:a", 8, true, 100).has_value())
      << "an answer read before DropAnswers' generation was kept";
}

TEST(NameCacheTest, AnAnswerReadBeforeAnEvictedTombstoneIsNotKept) {
  NameCache cache(kBudget);
  cache.Tombstone("h:a", 10);
  // Push the tombstone out.
  for (int i = 0; i < 100000 && cache.bytes() < kBudget - 4096; ++i) {
    const std::string name = absl::StrCat("n", i);
    cache.KeepSignature("sd:" + name, "", 100, Signature(name));
  }
  for (int i = 0; i < 20000; ++i) {
    const std::string name = absl::StrCat("m", i);
    cache.KeepSignature("sd:" + name, "", 100, Signature(name));
  }
  // A lookup that read the store before the write (generation 9) ends now.
  cache.KeepAnswer("h:a", 9, 1000, AnswerFor("a"));
  EXPECT_FALSE(cache.FindAnswer("h:a", 9, true, 100).has_value())
      << "a pre-write answer was kept once the write's tombstone was evicted";
}

}  // namespace
}  // namespace mxkey
