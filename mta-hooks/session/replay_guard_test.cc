// The replay guard: fresh = (initiator, ephemeral key) not seen within the
// window, whatever the order of timestamps; shared across processes through
// an LMDB directory; bounded, and refusing (not forgetting) when full.
#include "mta-hooks/session/replay_guard.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "crypto/sha256.h"
#include "gtest/gtest.h"
#include "mta-hooks/session/lmdb_replay_store.h"
#include "mta-hooks/session/memory_replay_store.h"

namespace mxkey {
namespace {

// A distinct 32-byte "ephemeral key" per label.
std::string Ephemeral(absl::string_view label) { return Sha256(label); }

std::string TempDir(absl::string_view name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/", name);
  return dir;
}

int64_t Ms(absl::Time t) { return absl::ToUnixMillis(t); }

class ReplayGuardTest : public ::testing::TestWithParam<bool> {
 protected:
  // Memory (false) or a shared directory (true).
  std::unique_ptr<ReplayGuard> NewGuard(size_t max_entries =
                                            kDefaultReplayMaxEntries) {
    ReplayGuardOptions options;
    options.max_entries = max_entries;
    if (GetParam()) {
      options.dir = TempDir(absl::StrReplaceAll(
          ::testing::UnitTest::GetInstance()->current_test_info()->name(),
          {{"/", "_"}}));
    }
    auto guard = ReplayGuard::Create(&clock_, options);
    EXPECT_TRUE(guard.ok()) << guard.status();
    return guard.ok() ? *std::move(guard) : nullptr;
  }

  FakeClock clock_{absl::FromUnixSeconds(1700000000)};
};

// Issue 18, finding 9: Postfix delivers from many processes at once, each
// with its own clock reading; 6 of 23 parallel genuine connections were
// refused because their timestamps did not increase.
TEST_P(ReplayGuardTest, ParallelHandshakesOfOneInitiatorAreAllAccepted) {
  auto guard = NewGuard();
  ASSERT_NE(guard, nullptr);
  const int64_t now = Ms(clock_.Now());
  for (int i = 0; i < 23; ++i) {
    // Same, then decreasing timestamps, as processes that read the clock in
    // one order and finish the handshake in another.
    const int64_t ts = i < 5 ? now : now - 37 * i;
    EXPECT_TRUE(guard->Accept("mx1.a.example", Ephemeral(absl::StrCat(i)), ts)
                    .ok())
        << i;
  }
  // Another initiator may use the same timestamp, and even (by chance or
  // malice) the same ephemeral key: the pair is what counts.
  EXPECT_TRUE(guard->Accept("mx9.c.example", Ephemeral("0"), now).ok());
}

TEST_P(ReplayGuardTest, TheSameFirstMessageTwiceIsAReplay) {
  auto guard = NewGuard();
  ASSERT_NE(guard, nullptr);
  const int64_t now = Ms(clock_.Now());
  ASSERT_TRUE(guard->Accept("mx1.a.example", Ephemeral("e"), now).ok());
  clock_.Advance(absl::Seconds(90));
  absl::Status again = guard->Accept("mx1.a.example", Ephemeral("e"), now);
  EXPECT_EQ(again.code(), absl::StatusCode::kPermissionDenied) << again;
  EXPECT_NE(again.message().find("replayed"), std::string::npos) << again;
}

TEST_P(ReplayGuardTest, OutOfWindowTimestampsAreRefused) {
  auto guard = NewGuard();
  ASSERT_NE(guard, nullptr);
  const int64_t now = Ms(clock_.Now());
  for (int64_t ts : {now - 120001, now + 120001}) {
    absl::Status st = guard->Accept("mx1.a.example", Ephemeral("x"), ts);
    EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
    EXPECT_NE(st.message().find("off this host's clock"), std::string::npos);
  }
  EXPECT_TRUE(guard->Accept("mx1.a.example", Ephemeral("x"), now - 120000).ok());
  EXPECT_EQ(guard->Accept("mx1.a.example", "short", now).code(),
            absl::StatusCode::kInvalidArgument);
}

// The bound: a full guard refuses new first messages (fails closed) until
// entries leave the window; it never forgets a live one to make room.
TEST_P(ReplayGuardTest, FullGuardRefusesUntilEntriesExpire) {
  auto guard = NewGuard(/*max_entries=*/4);
  ASSERT_NE(guard, nullptr);
  const int64_t now = Ms(clock_.Now());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(guard->Accept("mx1.a.example", Ephemeral(absl::StrCat(i)), now)
                    .ok());
  }
  absl::Status full = guard->Accept("mx1.a.example", Ephemeral("4"), now);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_NE(full.message().find("full"), std::string::npos) << full;
  // The remembered ones are still refused as replays, not forgotten.
  EXPECT_EQ(guard->Accept("mx1.a.example", Ephemeral("0"), now).code(),
            absl::StatusCode::kPermissionDenied);
  // Once their timestamps leave the window, there is room again.
  clock_.Advance(absl::Minutes(2) + absl::Milliseconds(1));
  const int64_t later = Ms(clock_.Now());
  for (int i = 4; i < 8; ++i) {
    EXPECT_TRUE(guard->Accept("mx1.a.example", Ephemeral(absl::StrCat(i)),
                              later)
                    .ok())
        << i;
  }
}

INSTANTIATE_TEST_SUITE_P(MemoryAndShared, ReplayGuardTest,
                         ::testing::Values(false, true),
                         [](const auto& info) {
                           return info.param ? "Shared" : "Memory";
                         });

TEST(MemoryReplayStoreTest, ExpiredEntriesAreDropped) {
  MemoryReplayStore store(100);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(*store.Insert(Ephemeral(absl::StrCat(i)), 1000 + i, 0));
  }
  EXPECT_EQ(store.size(), 50u);
  ASSERT_TRUE(*store.Insert(Ephemeral("new"), 5000, 1025));
  EXPECT_EQ(store.size(), 26u);  // 1025..1049 and "new"
}

TEST(LmdbReplayStoreTest, ASecondGuardOnTheSameDirectoryRefusesTheReplay) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  ReplayGuardOptions options;
  options.dir = TempDir("second_guard");
  auto first = ReplayGuard::Create(&clock, options);
  ASSERT_TRUE(first.ok()) << first.status();
  const int64_t now = Ms(clock.Now());
  ASSERT_TRUE((*first)->Accept("mx1.a.example", Ephemeral("e"), now).ok());
  auto second = ReplayGuard::Create(&clock, options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->Accept("mx1.a.example", Ephemeral("e"), now).code(),
            absl::StatusCode::kPermissionDenied);
  // Closed and opened again: the store is on disk, not in the object.
  first->reset();
  second->reset();
  auto third = ReplayGuard::Create(&clock, options);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)->Accept("mx1.a.example", Ephemeral("e"), now).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE((*third)->Accept("mx1.a.example", Ephemeral("f"), now).ok());
}

// Like smtpd processes: each child opens the directory itself. Exactly one
// of them accepts the first message they all received; their own ones are
// all accepted; the parent, opening last, sees the replay too.
TEST(LmdbReplayStoreTest, ProcessesShareWhatTheyAccepted) {
  const std::string dir = TempDir("processes");
  const int64_t now = Ms(absl::Now());
  constexpr int kChildren = 6;
  constexpr int kOwn = 15;
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ReplayGuardOptions options;
      options.dir = dir;
      auto guard = ReplayGuard::Create(Clock::Real(), options);
      if (!guard.ok()) _exit(10);
      int code = 0;
      for (int i = 0; i < kOwn; ++i) {
        if (!(*guard)->Accept("mx1.a.example",
                              Ephemeral(absl::StrCat(c, "/", i)), now)
                 .ok()) {
          _exit(11);
        }
        if (i == kOwn / 2) {
          absl::Status st =
              (*guard)->Accept("mx1.a.example", Ephemeral("shared"), now);
          if (absl::IsPermissionDenied(st)) {
            code = 1;
          } else if (!st.ok()) {
            _exit(12);
          }
        }
      }
      _exit(code);
    }
    children.push_back(pid);
  }
  int accepted_shared = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_LE(WEXITSTATUS(status), 1) << "child failed: " << WEXITSTATUS(status);
    if (WEXITSTATUS(status) == 0) ++accepted_shared;
  }
  EXPECT_EQ(accepted_shared, 1);
  ReplayGuardOptions options;
  options.dir = dir;
  auto guard = ReplayGuard::Create(Clock::Real(), options);
  ASSERT_TRUE(guard.ok()) << guard.status();
  EXPECT_EQ((*guard)->Accept("mx1.a.example", Ephemeral("shared"), now).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*guard)->Accept("mx1.a.example", Ephemeral("3/4"), now).code(),
            absl::StatusCode::kPermissionDenied);
  auto store = LmdbReplayStore::Open(dir);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(*(*store)->Entries(), size_t{kChildren * kOwn + 1});
}

TEST(LmdbReplayStoreTest, ExpiredEntriesArePruned) {
  auto store = LmdbReplayStore::Open(TempDir("prune"));
  ASSERT_TRUE(store.ok()) << store.status();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(*(*store)->Insert(Ephemeral(absl::StrCat(i)), 1000 + i, 0));
  }
  EXPECT_FALSE(*(*store)->Insert(Ephemeral("7"), 9999, 1007));  // still live
  ASSERT_TRUE(*(*store)->Insert(Ephemeral("new"), 5000, 1025));
  EXPECT_EQ(*(*store)->Entries(), 26u);
  // An expired key may be inserted again.
  EXPECT_TRUE(*(*store)->Insert(Ephemeral("3"), 5000, 1025));
}

TEST(LmdbReplayStoreTest, AFullMapIsAClearErrorNotAForgottenEntry) {
  LmdbReplayStoreOptions options;
  options.max_entries = 1000000;
  options.map_size = 64 * 1024;
  auto store = LmdbReplayStore::Open(TempDir("map_full"), options);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<bool> inserted = true;
  int n = 0;
  for (; n < 5000 && inserted.ok(); ++n) {
    inserted = (*store)->Insert(Ephemeral(absl::StrCat(n)), 1000000, 0);
  }
  EXPECT_EQ(inserted.status().code(), absl::StatusCode::kResourceExhausted)
      << inserted.status();
  EXPECT_NE(inserted.status().message().find("full"), std::string::npos);
  // What it remembers, it still refuses.
  EXPECT_FALSE(*(*store)->Insert(Ephemeral("0"), 1000000, 0));
}

TEST(LmdbReplayStoreTest, ModesAreTightAndAWritableDirectoryIsRefused) {
  const std::string dir = TempDir("modes");
  ASSERT_TRUE(LmdbReplayStore::Open(dir).ok());
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((dir + "/data.mdb").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);

  const std::string open_dir = TempDir("group_writable");
  ASSERT_EQ(mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0770), 0);
  auto refused = LmdbReplayStore::Open(open_dir);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition)
      << refused.status();
}

}  // namespace
}  // namespace mxkey
