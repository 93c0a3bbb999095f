// Two revocations that share one LMDB group commit: once the commit is
// visible, neither host's cached answer may be served (trust core I,
// finding 6). Before the fix, changes were reported one write at a time
// after the commit, so in between the second host's old answer was reused.
#include <string>

#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "gtest/gtest.h"
#include "keyd/change_tracking_store.h"
#include "keyd/directory.h"
#include "keyd/host_admin.h"
#include "keyd/issuer.h"
#include "keyd/keyd_test_env.h"
#include "keyd/lmdb_store.h"
#include "keyd/revocation.h"

namespace mxkey {
namespace {

TEST(DirectoryGroupCommitTest, NoAnswerOfACommitIsReusedOnceItIsVisible) {
  KeydTestEnv env;  // org keys and clock; storage is LMDB below
  auto lmdb = LmdbStore::Open(absl::StrCat(env.dir, "/db"));
  ASSERT_TRUE(lmdb.ok()) << lmdb.status();
  ChangeTrackingStore tracked(lmdb->get());
  KeydContext ctx = env.ctx;
  ctx.store = &tracked;
  Directory directory(&ctx);
  tracked.AddListener(
      [&directory](const StoreChange& change) { directory.Invalidate(change); });
  HostAdmin admin(&ctx);
  Issuer issuer(&ctx);
  std::vector<uint64_t> serials;
  for (const char* host : {"mx1.example.org", "mx2.example.org"}) {
    mxkey::v1::AddHostRequest add;
    add.set_hostname(host);
    add.add_mail_domains("example.org");
    auto token = admin.AddHost(add);
    ASSERT_TRUE(token.ok()) << token.status();
    HostKeys keys = *HostKeys::Generate();
    auto req = *MakeEnrollRequest(host, *TokenKey(token->token()), keys, {},
                                  env.clock.Now());
    auto enrolled = issuer.Enroll(req);
    ASSERT_TRUE(enrolled.ok()) << enrolled.status();
    mxkey::v1::HostCertificateBody body;
    ASSERT_TRUE(body.ParseFromString(enrolled->certificate().body()));
    serials.push_back(body.serial());
    // Cached now: the next lookup would reuse it.
    ASSERT_TRUE(directory.GetHostKeys(host).ok());
  }

  // Hold the writer in one write, so the two revocations queue up behind it
  // and are committed together.
  Notification release, held, all_done;
  tracked.WriteAsync(
      [&](WriteTxn&) {
        held.Notify();
        release.WaitForNotificationWithTimeout(absl::Seconds(30));
        return absl::OkStatus();
      },
      [](absl::Status) {});
  ASSERT_TRUE(held.WaitForNotificationWithTimeout(absl::Seconds(30)));
  int revocations_seen_by_first_done = -1;
  for (int i = 0; i < 2; ++i) {
    tracked.WriteAsync(
        [&, i](WriteTxn& txn) {
          return AppendRevocations(txn, ctx, {serials[i]}, "key compromise")
              .status();
        },
        [&, i](absl::Status st) {
          ASSERT_TRUE(st.ok()) << st;
          if (i == 0) {
            // The commit holding both revocations is visible now.
            auto other = directory.GetHostKeys("mx2.example.org");
            ASSERT_TRUE(other.ok()) << other.status();
            revocations_seen_by_first_done = other->revocations_size();
          } else {
            all_done.Notify();
          }
        });
  }
  const uint64_t before = (*lmdb)->commit_count();
  release.Notify();
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // Both revocations in one commit after the held one, or the test proves
  // nothing.
  ASSERT_EQ((*lmdb)->commit_count() - before, 2u);
  EXPECT_EQ(revocations_seen_by_first_done, 1)
      << "mx2's pre-revocation answer was reused after its revocation "
         "became visible";
}

}  // namespace
}  // namespace mxkey
