#include "keyd/feed_batch_cache.h"

#include "gtest/gtest.h"

namespace mxkey {
namespace {

mxkey::v1::WatchRevocationsResponse BatchOf(size_t bytes) {
  mxkey::v1::WatchRevocationsResponse r;
  r.set_head_seq(1);
  r.add_events()->set_body(std::string(bytes, 'x'));
  return r;
}

FeedBatchKey At(uint64_t from) { return {from, 100, false, "issuer"}; }

TEST(FeedBatchCacheTest, WatchesAtOnePlaceShareOneBatch) {
  FeedBatchCache cache(1 << 20);
  absl::StatusOr<FeedBatchCache::Batch> a = cache.Insert(At(0), BatchOf(1000));
  ASSERT_TRUE(a.ok()) << a.status();
  FeedBatchCache::Batch b = cache.Find(At(0));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->get(), b.get());
  EXPECT_EQ(b->events, 1u);
  EXPECT_EQ(cache.Find(At(1)), nullptr);
  EXPECT_EQ(cache.Find({0, 100, true, "issuer"}), nullptr);
  EXPECT_EQ(cache.Find({0, 100, false, "renewed"}), nullptr);
  // Counted once however many hold it.
  EXPECT_GT(cache.alive_bytes(), 1000u);
  EXPECT_LT(cache.alive_bytes(), 1100u);
}

TEST(FeedBatchCacheTest, BatchesHeldByWritesCountAgainstTheBudget) {
  FeedBatchCache cache(10000);
  std::vector<FeedBatchCache::Batch> held;
  for (uint64_t i = 0; i < 4; ++i) {
    absl::StatusOr<FeedBatchCache::Batch> b = cache.Insert(At(i), BatchOf(2000));
    ASSERT_TRUE(b.ok()) << i << ": " << b.status();
    held.push_back(*b);
  }
  // A fifth does not fit while the four are held by (stalled) writes.
  absl::StatusOr<FeedBatchCache::Batch> refused =
      cache.Insert(At(9), BatchOf(2000));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("--watch-buffer-mb"),
            std::string::npos);
  // Writes done: the cached copies no one holds make room.
  held.clear();
  absl::StatusOr<FeedBatchCache::Batch> fits = cache.Insert(At(9), BatchOf(2000));
  ASSERT_TRUE(fits.ok()) << fits.status();
  EXPECT_LE(cache.alive_bytes(), 10000u);
  EXPECT_NE(cache.Find(At(9)), nullptr);
  EXPECT_EQ(cache.Find(At(0)), nullptr);  // least recently used went first
}

TEST(FeedBatchCacheTest, ABatchOutlivingTheCacheIsFreed) {
  FeedBatchCache::Batch kept;
  {
    FeedBatchCache cache(1 << 20);
    kept = *cache.Insert(At(0), BatchOf(10));
  }
  EXPECT_EQ(kept->events, 1u);
  kept.reset();  // the deleter must not touch the destroyed cache (ASan)
}

TEST(FeedBatchCacheTest, KeepsAtMostItsEntryCount) {
  FeedBatchCache cache(1 << 20, /*max_entries=*/2);
  ASSERT_TRUE(cache.Insert(At(0), BatchOf(10)).ok());
  ASSERT_TRUE(cache.Insert(At(1), BatchOf(10)).ok());
  ASSERT_NE(cache.Find(At(0)), nullptr);  // now the most recent
  ASSERT_TRUE(cache.Insert(At(2), BatchOf(10)).ok());
  EXPECT_NE(cache.Find(At(0)), nullptr);
  EXPECT_EQ(cache.Find(At(1)), nullptr);
  EXPECT_NE(cache.Find(At(2)), nullptr);
}

}  // namespace
}  // namespace mxkey
