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
