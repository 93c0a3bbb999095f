// Concurrent enrollments against LMDB share durable commits, and each is
// acknowledged only with its certificate stored.
#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "keyd/issuer.h"
#include "keyd/keyd_test_env.h"
#include "keyd/lmdb_store.h"

namespace mxkey {
namespace {

TEST(IssuanceGroupCommitTest, ConcurrentEnrollmentsShareCommits) {
  KeydTestEnv env;  // org keys and clock; storage swapped for LMDB below
  auto lmdb = LmdbStore::Open(absl::StrCat(env.dir, "/db"));
  ASSERT_TRUE(lmdb.ok()) << lmdb.status();
  KeydContext ctx = env.ctx;
  ctx.store = lmdb->get();
  HostAdmin admin(&ctx);
  Issuer issuer(&ctx);

  constexpr int kHosts = 64;
  std::vector<std::string> tokens;
  for (int i = 0; i < kHosts; ++i) {
    mxkey::v1::AddHostRequest add;
    add.set_hostname(absl::StrCat("mx", i, ".example.org"));
    add.add_mail_domains("example.org");
    tokens.push_back(admin.AddHost(add)->token());
  }
  uint64_t commits_before = (*lmdb)->commit_count();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kHosts; ++i) {
    threads.emplace_back([&, i] {
      HostKeys keys = *HostKeys::Generate();
      auto req = *MakeEnrollRequest(absl::StrCat("mx", i, ".example.org"),
                                    *TokenKey(tokens[i]), keys, {},
                                    env.clock.Now());
      if (issuer.Enroll(req).ok()) ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kHosts);
  uint64_t commits = (*lmdb)->commit_count() - commits_before;
  EXPECT_LT(commits, static_cast<uint64_t>(kHosts));
  std::cerr << kHosts << " enrollments in " << commits << " commits\n";
}

}  // namespace
}  // namespace mxkey
