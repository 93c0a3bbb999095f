#include "keyd/store_contract_test.h"

#include <stdlib.h>

#include <atomic>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/mutex.h"

namespace mxkey {

void StoreContractTest::SetUp() {
  std::string tmpl = absl::StrCat(
      getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp", "/store.XXXXXX");
  ASSERT_NE(mkdtemp(&tmpl[0]), nullptr);
  dir_ = tmpl;
  store_ = GetParam().open(dir_);
  ASSERT_NE(store_, nullptr);
}

void StoreContractTest::TearDown() { store_.reset(); }

std::unique_ptr<Store> StoreContractTest::Reopen() {
  store_.reset();
  return GetParam().open(dir_);
}

namespace {

absl::Status PutOne(Store& s, Table t, std::string k, std::string v) {
  return s.Write([=](WriteTxn& txn) { return txn.Put(t, k, v); });
}

absl::StatusOr<std::string> GetOne(Store& s, Table t, std::string k) {
  std::string out;
  absl::Status st = s.Read([&](ReadTxn& txn) -> absl::Status {
    absl::StatusOr<absl::string_view> v = txn.Get(t, k);
    if (!v.ok()) return v.status();
    out = std::string(*v);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

TEST_P(StoreContractTest, PutGetDelete) {
  ASSERT_TRUE(PutOne(*store_, Table::kHosts, "a", "1").ok());
  EXPECT_EQ(*GetOne(*store_, Table::kHosts, "a"), "1");
  EXPECT_EQ(GetOne(*store_, Table::kHosts, "b").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Write([](WriteTxn& t) {
                      return t.Delete(Table::kHosts, "a");
                    }).ok());
  EXPECT_EQ(GetOne(*store_, Table::kHosts, "a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Write([](WriteTxn& t) {
                    return t.Delete(Table::kHosts, "a");
                  }).code(),
            absl::StatusCode::kNotFound);
}

TEST_P(StoreContractTest, TablesAreSeparate) {
  ASSERT_TRUE(PutOne(*store_, Table::kHosts, "k", "hosts").ok());
  ASSERT_TRUE(PutOne(*store_, Table::kPins, "k", "pins").ok());
  EXPECT_EQ(*GetOne(*store_, Table::kHosts, "k"), "hosts");
  EXPECT_EQ(*GetOne(*store_, Table::kPins, "k"), "pins");
  EXPECT_FALSE(GetOne(*store_, Table::kMeta, "k").ok());
}

TEST_P(StoreContractTest, ScanIsOrderedFromStart) {
  for (const char* k : {"c", "a", "d", "b"}) {
    ASSERT_TRUE(PutOne(*store_, Table::kFeed, k, k).ok());
  }
  std::vector<std::string> seen;
  ASSERT_TRUE(store_->Read([&](ReadTxn& t) {
                      return t.Scan(Table::kFeed, "b",
                                    [&](absl::string_view k, absl::string_view) {
                                      seen.emplace_back(k);
                                      return seen.size() < 2;
                                    });
                    }).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"b", "c"}));
}

TEST_P(StoreContractTest, FailedWriteChangesNothing) {
  ASSERT_TRUE(PutOne(*store_, Table::kHosts, "keep", "1").ok());
  absl::Status st = store_->Write([](WriteTxn& t) -> absl::Status {
    absl::Status put = t.Put(Table::kHosts, "partial", "x");
    if (!put.ok()) return put;
    put = t.Put(Table::kHosts, "keep", "2");
    if (!put.ok()) return put;
    return absl::FailedPreconditionError("validation failed");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*GetOne(*store_, Table::kHosts, "keep"), "1");
  EXPECT_FALSE(GetOne(*store_, Table::kHosts, "partial").ok());
}

TEST_P(StoreContractTest, GenerationMovesOnlyWithCommittedWrites) {
  const uint64_t before = store_->generation();
  ASSERT_TRUE(PutOne(*store_, Table::kHosts, "a", "1").ok());
  const uint64_t after_write = store_->generation();
  EXPECT_NE(after_write, before);
  // The write is visible once the generation has moved.
  EXPECT_EQ(*GetOne(*store_, Table::kHosts, "a"), "1");
  EXPECT_FALSE(store_
                   ->Write([](WriteTxn&) -> absl::Status {
                     return absl::FailedPreconditionError("no");
                   })
                   .ok());
  EXPECT_EQ(store_->generation(), after_write);
  ASSERT_TRUE(store_->Read([](ReadTxn&) { return absl::OkStatus(); }).ok());
  EXPECT_EQ(store_->generation(), after_write);
}

TEST_P(StoreContractTest, WriteSeesItsOwnChanges) {
  absl::Status st = store_->Write([](WriteTxn& t) -> absl::Status {
    absl::Status put = t.Put(Table::kMeta, "x", "1");
    if (!put.ok()) return put;
    absl::StatusOr<absl::string_view> v = t.Get(Table::kMeta, "x");
    if (!v.ok() || *v != "1") return absl::InternalError("not visible");
    return absl::OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st;
}

// Many concurrent writers, some failing: every successful write is there,
// no failed one is, and the failures did not abort their batch-mates.
TEST_P(StoreContractTest, ConcurrentWritesAreIsolated) {
  constexpr int kThreads = 8, kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> ok_count{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = absl::StrCat(t, "/", i);
        bool fail = (i % 5 == 0);
        absl::Status st = store_->Write([&](WriteTxn& txn) -> absl::Status {
          absl::Status put = txn.Put(Table::kCerts, key, "v");
          if (!put.ok()) return put;
          if (fail) return absl::InvalidArgumentError("rejected");
          return absl::OkStatus();
        });
        if (st.ok()) ok_count++;
        EXPECT_EQ(st.ok(), !fail) << st;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok_count.load(), kThreads * kPerThread * 4 / 5);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_EQ(GetOne(*store_, Table::kCerts, absl::StrCat(t, "/", i)).ok(),
                i % 5 != 0);
    }
  }
}

// Collects WriteAsync results, and waits (bounded) for a number of them.
class AsyncResults {
 public:
  std::function<void(absl::Status)> Expect(std::string key) {
    return [this, key = std::move(key)](absl::Status st) {
      MutexLock lock(&mu_);
      results_.emplace_back(key, std::move(st));
    };
  }
  // Every result, once `n` have come (empty if they did not within 30 s).
  std::vector<std::pair<std::string, absl::Status>> WaitFor(size_t n) {
    MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return results_.size() >= n;
    };
    if (!mu_.AwaitWithTimeout(Condition(&enough), absl::Seconds(30))) return {};
    return results_;
  }

 private:
  Mutex mu_;
  std::vector<std::pair<std::string, absl::Status>> results_
      ABSL_GUARDED_BY(mu_);
};

// WriteAsync gives each write's own result once, and a successful write is
// visible to Read by the time its result comes.
TEST_P(StoreContractTest, WriteAsyncReportsEachResultOnceVisible) {
  constexpr int kWrites = 40;
  AsyncResults results;
  std::atomic<int> visible_at_done{0};
  for (int i = 0; i < kWrites; ++i) {
    std::string key = absl::StrCat("async/", i);
    const bool fail = (i % 5 == 0);
    auto expect = results.Expect(key);
    store_->WriteAsync(
        [key, fail](WriteTxn& txn) -> absl::Status {
          absl::Status put = txn.Put(Table::kCerts, key, "v");
          if (!put.ok()) return put;
          if (fail) return absl::InvalidArgumentError("rejected");
          return absl::OkStatus();
        },
        [&, key, expect](absl::Status st) {
          if (st.ok() && GetOne(*store_, Table::kCerts, key).ok()) {
            ++visible_at_done;
          }
          expect(std::move(st));
        });
  }
  auto all = results.WaitFor(kWrites);
  ASSERT_EQ(all.size(), static_cast<size_t>(kWrites)) << "results missing";
  std::set<std::string> seen;
  for (const auto& [key, st] : all) {
    EXPECT_TRUE(seen.insert(key).second) << key << " reported twice";
    const int i = std::stoi(key.substr(6));
    EXPECT_EQ(st.ok(), i % 5 != 0) << key << ": " << st;
    EXPECT_EQ(GetOne(*store_, Table::kCerts, key).ok(), i % 5 != 0) << key;
  }
  EXPECT_EQ(visible_at_done.load(), kWrites * 4 / 5);
}

TEST_P(StoreContractTest, ReadSnapshotIgnoresLaterWrites) {
  ASSERT_TRUE(PutOne(*store_, Table::kMeta, "v", "old").ok());
  std::string seen;
  ASSERT_TRUE(store_->Read([&](ReadTxn& t) -> absl::Status {
                      seen = std::string(*t.Get(Table::kMeta, "v"));
                      return absl::OkStatus();
                    }).ok());
  ASSERT_TRUE(PutOne(*store_, Table::kMeta, "v", "new").ok());
  EXPECT_EQ(seen, "old");
  EXPECT_EQ(*GetOne(*store_, Table::kMeta, "v"), "new");
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(DurableStoreContractTest);

TEST_P(DurableStoreContractTest, AcknowledgedWritesSurviveReopen) {
  ASSERT_TRUE(PutOne(*store_, Table::kFeed, "seq1", "event").ok());
  std::unique_ptr<Store> again = Reopen();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(*GetOne(*again, Table::kFeed, "seq1"), "event");
}

// Closing the store with async writes queued reports every one of them,
// and every write reported as done is there after reopening.
TEST_P(DurableStoreContractTest, AsyncWritesQueuedAtCloseAreReportedAndKept) {
  constexpr int kWrites = 50;
  AsyncResults results;
  for (int i = 0; i < kWrites; ++i) {
    std::string key = absl::StrCat("queued/", i);
    store_->WriteAsync(
        [key](WriteTxn& txn) { return txn.Put(Table::kFeed, key, "v"); },
        results.Expect(key));
  }
  std::unique_ptr<Store> again = Reopen();  // closes with writes queued
  ASSERT_NE(again, nullptr);
  auto all = results.WaitFor(kWrites);
  ASSERT_EQ(all.size(), static_cast<size_t>(kWrites)) << "results missing";
  for (const auto& [key, st] : all) {
    if (st.ok()) {
      EXPECT_TRUE(GetOne(*again, Table::kFeed, key).ok()) << key;
    } else {
      EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << key << ": " << st;
    }
  }
}

}  // namespace
}  // namespace mxkey
