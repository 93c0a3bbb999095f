#include "keyd/lmdb_store.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "keyd/store_contract_test.h"

namespace mxkey {
namespace {

std::unique_ptr<Store> OpenLmdb(const std::string& dir) {
  LmdbOptions options;
  options.map_size = size_t{64} << 20;
  auto store = LmdbStore::Open(dir, options);
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  return *std::move(store);
}

INSTANTIATE_TEST_SUITE_P(Lmdb, StoreContractTest,
                         ::testing::Values(StoreFactory{"lmdb", OpenLmdb}),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Lmdb, DurableStoreContractTest,
                         ::testing::Values(StoreFactory{"lmdb", OpenLmdb}),
                         [](const auto& info) { return info.param.name; });

std::string TempDir() {
  std::string tmpl = absl::StrCat(getenv("TEST_TMPDIR"), "/lmdb.XXXXXX");
  return mkdtemp(&tmpl[0]);
}

// Concurrent writers share commits: fewer fsyncs than writes.
TEST(LmdbStoreTest, GroupCommitBatchesConcurrentWrites) {
  auto store = LmdbStore::Open(TempDir());
  ASSERT_TRUE(store.ok()) << store.status();
  constexpr int kThreads = 32, kPerThread = 20;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        ASSERT_TRUE((*store)
                        ->Write([&](WriteTxn& txn) {
                          return txn.Put(Table::kCerts, absl::StrCat(t, ":", i),
                                         "v");
                        })
                        .ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LT((*store)->commit_count(), uint64_t{kThreads * kPerThread});
  EXPECT_GT((*store)->commit_count(), 0u);
}

TEST(LmdbStoreTest, FullMapIsResourceExhaustedAndKeepsEarlierData) {
  LmdbOptions options;
  options.map_size = 1 << 20;  // 1 MiB
  auto store = LmdbStore::Open(TempDir(), options);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)
                  ->Write([](WriteTxn& t) { return t.Put(Table::kMeta, "k", "v"); })
                  .ok());
  std::string big(4 << 20, 'x');
  absl::Status st = (*store)->Write(
      [&](WriteTxn& t) { return t.Put(Table::kMeta, "big", big); });
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  absl::Status read = (*store)->Read([](ReadTxn& t) -> absl::Status {
    auto v = t.Get(Table::kMeta, "k");
    if (!v.ok()) return v.status();
    return *v == "v" ? absl::OkStatus() : absl::InternalError("changed");
  });
  EXPECT_TRUE(read.ok()) << read;
}

TEST(LmdbStoreTest, OpenFailsClearlyOnUnusableDirectory) {
  auto store = LmdbStore::Open("/proc/mxkey-no-such-dir/db");
  EXPECT_FALSE(store.ok());
}

}  // namespace
}  // namespace mxkey
