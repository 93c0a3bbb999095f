// Fault injection on the model of leveldb's fault_injection_test: this test
// binary interposes fdatasync(2), which liblmdb calls to make a commit's
// data pages durable, to check that every acknowledged write was synced
// before Write returned, and that a failing sync is never acknowledged.
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "keyd/lmdb_store.h"

namespace {

std::atomic<uint64_t> g_syncs{0};
std::atomic<bool> g_fail_syncs{false};

}  // namespace

// Seen by liblmdb instead of libc's: counts syncs and can fail them.
extern "C" int fdatasync(int fd) {
  if (g_fail_syncs.load()) {
    errno = EIO;
    return -1;
  }
  g_syncs.fetch_add(1);
  return static_cast<int>(syscall(SYS_fdatasync, fd));
}

namespace mxkey {
namespace {

std::string TempDir() {
  std::string tmpl = absl::StrCat(getenv("TEST_TMPDIR"), "/sync.XXXXXX");
  return mkdtemp(&tmpl[0]);
}

TEST(LmdbStoreSyncTest, EveryAcknowledgementFollowsASync) {
  auto store = LmdbStore::Open(TempDir());
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<std::thread> threads;
  std::atomic<int> unsynced_acks{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        uint64_t syncs_when_applied = 0;
        absl::Status st = (*store)->Write([&](WriteTxn& txn) {
          syncs_when_applied = g_syncs.load();
          return txn.Put(Table::kFeed, absl::StrCat(t, ":", i), "v");
        });
        ASSERT_TRUE(st.ok()) << st;
        if (g_syncs.load() <= syncs_when_applied) unsynced_acks++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(unsynced_acks.load(), 0);
  EXPECT_GT(g_syncs.load(), 0u);
}

TEST(LmdbStoreSyncTest, FailedSyncIsNotAcknowledged) {
  std::string dir = TempDir();
  auto store = LmdbStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)
                  ->Write([](WriteTxn& t) { return t.Put(Table::kMeta, "a", "1"); })
                  .ok());
  g_fail_syncs = true;
  absl::Status st = (*store)->Write(
      [](WriteTxn& t) { return t.Put(Table::kMeta, "b", "2"); });
  g_fail_syncs = false;
  EXPECT_FALSE(st.ok());
  // The store keeps working, and the unacknowledged write is not there.
  ASSERT_TRUE((*store)
                  ->Write([](WriteTxn& t) { return t.Put(Table::kMeta, "c", "3"); })
                  .ok());
  store->reset();
  auto reopened = LmdbStore::Open(dir);
  ASSERT_TRUE(reopened.ok());
  absl::Status read = (*reopened)->Read([](ReadTxn& t) -> absl::Status {
    if (!t.Get(Table::kMeta, "a").ok() || !t.Get(Table::kMeta, "c").ok()) {
      return absl::InternalError("acknowledged write lost");
    }
    if (t.Get(Table::kMeta, "b").ok()) {
      return absl::InternalError("unacknowledged write became visible");
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(read.ok()) << read;
}

}  // namespace
}  // namespace mxkey
