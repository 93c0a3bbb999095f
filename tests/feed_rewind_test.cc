// A keyd whose data directory is restored from an older copy numbers new
// feed events with sequence numbers its clients already hold (issue: the
// operator's mdb_copy backup, restored, reused feed seq 4 for a different
// host). A client resuming after its seq 4 would never see the new event 4
// and kept using the revoked key. Clients send the digest of the event they
// resume after; keyd refuses a resume its own feed contradicts, and the
// client resynchronizes. Before the fix, the revoked host stayed valid.
#include "client/key_client.h"
#include "gtest/gtest.h"
#include "tests/inprocess_keyd.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

// Looks `host` up until the client says it is revoked, for at most 8 s
// (keyd's restart, then the watcher's reconnect backoff of at most 5 s);
// the last status.
absl::Status LookupUntilRevoked(KeyClient& client, const std::string& host) {
  absl::Status st = absl::OkStatus();
  const absl::Time deadline = absl::Now() + absl::Seconds(8);
  while (absl::Now() < deadline) {
    st = client.LookupHost(host).status();
    if (LookupFailureOf(st) == LookupFailure::kRevoked) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return st;
}

TEST(FeedRewindTest, AClientNoticesAFeedRestoredFromAnOlderCopy) {
  FakeClock clock(absl::FromUnixSeconds(1900000000));
  KeydOptions options;
  options.freshness = absl::Seconds(300);
  auto keyd = InProcessKeyd::Start(&clock, "example", options);
  ASSERT_NE(keyd, nullptr);
  keyd->AddAndEnroll("mx1.example.org");
  keyd->AddAndEnroll("mx2.example.org");
  // The operator's backup, taken while keyd is stopped.
  keyd->Stop();
  const std::string dir = keyd->data_dir();
  ASSERT_EQ(RunCommand({"/bin/cp", "-a", dir + "/db", dir + "/db.backup"})
                .exit_code,
            0);
  ASSERT_TRUE(keyd->Restart());

  // A running client, and one that is down during the restore and resumes
  // from its cache directory afterwards.
  KeyClientOptions o = keyd->ClientOptions();
  o.cache_dir = dir + "/../client-cache";
  KeyClientOptions o2 = keyd->ClientOptions();
  o2.cache_dir = dir + "/../client2-cache";
  auto client = KeyClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  auto later = KeyClient::Create(o2);
  ASSERT_TRUE(later.ok()) << later.status();
  const uint64_t revoked_mx1 = keyd->Revoke("mx1.example.org", "retired");
  ASSERT_TRUE((*client)->WaitForFeedPosition(revoked_mx1, absl::Seconds(10)));
  ASSERT_TRUE((*later)->WaitForFeedPosition(revoked_mx1, absl::Seconds(10)));
  ASSERT_TRUE((*client)->LookupHost("mx2.example.org").ok());
  ASSERT_TRUE((*later)->LookupHost("mx2.example.org").ok());
  later->reset();

  // Restore the older copy over the data directory; keyd's next event gets
  // the number the client already holds, for another host.
  keyd->Stop();
  ASSERT_EQ(RunCommand({"/bin/sh", "-c",
                        "rm -rf '" + dir + "/db' && mv '" + dir +
                            "/db.backup' '" + dir + "/db'"})
                .exit_code,
            0);
  ASSERT_TRUE(keyd->Restart());
  const uint64_t revoked_mx2 = keyd->Revoke("mx2.example.org", "compromised");
  ASSERT_EQ(revoked_mx2, revoked_mx1) << "the copy should reuse the number";

  // Once its watch is back (after keyd's restart, within the watcher's
  // reconnect backoff, at most 5 s), the client has resynchronized and sees
  // mx2 revoked.
  absl::Status mx2 = LookupUntilRevoked(**client, "mx2.example.org");
  EXPECT_EQ(LookupFailureOf(mx2), LookupFailure::kRevoked)
      << "a client kept the revoked mx2 after the feed was rewound: " << mx2;
  // And mx1, revoked only in the lost timeline, is what keyd says now.
  EXPECT_TRUE((*client)->LookupHost("mx1.example.org").ok());

  // The client that was down resumes at its stored position (and digest),
  // is told the feed diverged, and drops what it cached.
  auto again = KeyClient::Create(o2);
  ASSERT_TRUE(again.ok()) << again.status();
  absl::Status mx2_again = LookupUntilRevoked(**again, "mx2.example.org");
  EXPECT_EQ(LookupFailureOf(mx2_again), LookupFailure::kRevoked)
      << "a restarted client kept the revoked mx2: " << mx2_again;
}

}  // namespace
}  // namespace mxkey
