// A fresh client takes keyd's unsigned head_seq as the start of its watch;
// an answer made before that (lower feed_head, still fresh) may predate a
// revocation the client never saw (trust core I, finding 5). The client
// must read the events in between before it uses such an answer. Before
// the fix an on-path replay of the pre-revocation answer was accepted as
// valid.
#include "client/key_client.h"
#include "gtest/gtest.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/inprocess_keyd.h"
#include "tests/onpath_proxy.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

TEST(FeedStartTest, AnAnswerOlderThanTheWatchIsCheckedAgainstTheEventsBetween) {
  FakeClock clock(absl::FromUnixSeconds(1900000000));
  KeydOptions options;
  options.freshness = absl::Seconds(120);
  auto keyd = InProcessKeyd::Start(&clock, "example", options);
  ASSERT_NE(keyd, nullptr);
  keyd->AddAndEnroll("mx1.example.org");
  keyd->AddAndEnroll("mx2.example.org");
  // Genuine answers from before the revocation, both still fresh later.
  RecordedResponse mx1_before =
      RecordLookup(keyd->endpoint(), ProxyRpc::kGetHostKeys, "mx1.example.org");
  RecordedResponse mx2_before =
      RecordLookup(keyd->endpoint(), ProxyRpc::kGetHostKeys, "mx2.example.org");
  ASSERT_TRUE(mx1_before.ok() && mx2_before.ok());
  const uint64_t head = keyd->Revoke("mx1.example.org", "key compromise");

  OnPathProxy proxy(keyd->endpoint());
  const std::string endpoint = proxy.Start();
  ASSERT_FALSE(endpoint.empty());
  proxy.Substitute(ProxyRpc::kGetHostKeys, "mx1.example.org", mx1_before);
  proxy.Substitute(ProxyRpc::kGetHostKeys, "mx2.example.org", mx2_before);
  clock.Advance(absl::Seconds(30));

  KeyClientOptions o = keyd->ClientOptions();
  o.endpoints = {endpoint};
  auto client = KeyClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  // The watch starts at the head, after the revocation.
  ASSERT_TRUE((*client)->WaitForFeedPosition(head, absl::Seconds(10)));
  auto mx1 = (*client)->LookupHost("mx1.example.org");
  EXPECT_EQ(LookupFailureOf(mx1.status()), LookupFailure::kRevoked)
      << "a replayed pre-revocation answer was accepted: " << mx1.status();
  // An answer made before the revocation of another host is still good:
  // keyd reuses freshness statements, so older heads are normal.
  auto mx2 = (*client)->LookupHost("mx2.example.org");
  EXPECT_TRUE(mx2.ok()) << mx2.status();
  EXPECT_EQ(proxy.substituted(ProxyRpc::kGetHostKeys, "mx1.example.org"), 1);
}

}  // namespace
}  // namespace mxkey

namespace mxkey {
namespace {

// The same for a peer's answer (found by review): b revokes, a republishes,
// then a client of a starts and an on-path attacker replays a's relayed
// pre-revocation answer of b. Its feed_head is b's, so the client reads its
// own feed back to the time the answer was made.
TEST(FeedStartTest, APeersAnswerOlderThanTheWatchIsCheckedToo) {
  Clock* clock = Clock::Real();
  auto a = InProcessKeyd::Start(clock, "a");
  auto b = InProcessKeyd::Start(clock, "b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  b->AddAndEnroll("mx1.b.example", "b.example");
  ASSERT_TRUE(
      a->AddPeer("b", {"b.example"}, b->endpoint(), b->root_fingerprint()).ok());
  RecordedResponse before =
      RecordLookup(a->endpoint(), ProxyRpc::kGetHostKeys, "mx1.b.example");
  ASSERT_TRUE(before.ok()) << before.message;
  // Wait until a's feed has b's event (a watching client sees it).
  {
    auto watcher = KeyClient::Create(a->ClientOptions());
    ASSERT_TRUE(watcher.ok());
    ASSERT_TRUE((*watcher)->WaitForFeedPosition(0, absl::Seconds(10)));
    const uint64_t start = *(*watcher)->FeedPosition();
    b->Revoke("mx1.b.example", "key compromise");
    ASSERT_TRUE((*watcher)->WaitForFeedPosition(start + 1, absl::Seconds(10)));
  }
  OnPathProxy proxy(a->endpoint());
  const std::string endpoint = proxy.Start();
  ASSERT_FALSE(endpoint.empty());
  proxy.Substitute(ProxyRpc::kGetHostKeys, "mx1.b.example", before);
  KeyClientOptions o = a->ClientOptions();
  o.endpoints = {endpoint};
  auto client = KeyClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->WaitForFeedPosition(1, absl::Seconds(10)));
  auto mx1 = (*client)->LookupHost("mx1.b.example");
  EXPECT_FALSE(mx1.ok()) << "a replayed pre-revocation peer answer was accepted";
  EXPECT_EQ(LookupFailureOf(mx1.status()), LookupFailure::kRevoked) << mx1.status();
  EXPECT_EQ(proxy.substituted(ProxyRpc::kGetHostKeys, "mx1.b.example"), 1);
}

}  // namespace
}  // namespace mxkey
