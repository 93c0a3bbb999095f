#include "client/answer_cache.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mxkey {
namespace {

std::shared_ptr<const CachedAnswer> Entry(size_t bytes,
                                          const std::string& host = "") {
  auto e = std::make_shared<CachedAnswer>();
  e->bytes = bytes;
  if (!host.empty()) {
    VerifiedCert c;
    c.body.set_hostname(host);
    e->verified.certificates.push_back(c);
  }
  return e;
}

TEST(AnswerCacheTest, GetReturnsWhatWasPut) {
  AnswerCache cache(100, 1 << 20);
  auto e = Entry(10);
  cache.Put("mx1.example.org", e);
  EXPECT_EQ(cache.Get("mx1.example.org"), e);
  EXPECT_EQ(cache.Get("mx2.example.org"), nullptr);
  cache.Erase("mx1.example.org");
  EXPECT_EQ(cache.Get("mx1.example.org"), nullptr);
}

TEST(AnswerCacheTest, EvictsLeastRecentlyUsedByCount) {
  // One shard's share: 16 shards, 16 entries in all.
  AnswerCache cache(16 * 2, 1 << 30);
  for (int i = 0; i < 1000; ++i) cache.Put("h" + std::to_string(i), Entry(1));
  EXPECT_LE(cache.size(), 32u);
  // The most recent entry is always kept.
  EXPECT_NE(cache.Get("h999"), nullptr);
  EXPECT_EQ(cache.Get("h0"), nullptr);
}

TEST(AnswerCacheTest, RecentlyReadEntrySurvives) {
  AnswerCache cache(16 * 2, 1 << 30);
  cache.Put("keep", Entry(1));
  for (int i = 0; i < 2000; ++i) {
    cache.Put("h" + std::to_string(i), Entry(1));
    ASSERT_NE(cache.Get("keep"), nullptr) << i;
  }
}

TEST(AnswerCacheTest, EvictsByBytes) {
  AnswerCache cache(1 << 20, 16 * 100);
  for (int i = 0; i < 1000; ++i) cache.Put("h" + std::to_string(i), Entry(60));
  // At most one 60-byte entry fits a shard's 100 bytes.
  EXPECT_LE(cache.size(), 16u);
}

TEST(AnswerCacheTest, EraseIfAndClear) {
  AnswerCache cache(100, 1 << 20);
  cache.Put("example.org", Entry(1, "mx1.example.org"));
  cache.Put("example.net", Entry(1, "mx9.example.net"));
  cache.EraseIf([](const CachedAnswer& a) {
    return a.verified.certificates[0].body.hostname() == "mx1.example.org";
  });
  EXPECT_EQ(cache.Get("example.org"), nullptr);
  EXPECT_NE(cache.Get("example.net"), nullptr);
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace mxkey

namespace mxkey {
namespace {

// Readers, writers and evictions at once; run under --config=tsan too.
TEST(AnswerCacheTest, ConcurrentUseIsSafe) {
  AnswerCache cache(256, 1 << 20);
  std::vector<std::thread> threads;
  std::atomic<int> hits{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        std::string name = "h" + std::to_string((i * 7 + t) % 300);
        if (i % 3 == 0) cache.Put(name, Entry(10, name));
        if (cache.Get(name) != nullptr) ++hits;
        if (i % 500 == 0) {
          cache.EraseIf([&](const CachedAnswer& a) {
            return a.verified.certificates[0].body.hostname() == name;
          });
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(hits.load(), 0);
  EXPECT_LE(cache.size(), 256u);
}

}  // namespace
}  // namespace mxkey
