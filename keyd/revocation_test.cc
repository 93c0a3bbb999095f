#include "keyd/revocation.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyd/keyd_test_env.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;

mxkey::v1::RevokeRequest Req(const std::string& host, uint64_t serial = 0,
                             const std::string& reason = "compromised") {
  mxkey::v1::RevokeRequest r;
  r.set_hostname(host);
  r.set_serial(serial);
  r.set_reason(reason);
  return r;
}

TEST(RevocationTest, FeedIsGapFreeAndSigned) {
  KeydTestEnv env;
  EnrolledHost a = env.AddAndEnroll("mx1.example.org");
  EnrolledHost b = env.AddAndEnroll("mx2.example.org");
  auto r1 = Revoke(env.ctx, Req("mx1.example.org"));
  auto r2 = Revoke(env.ctx, Req("mx2.example.org", b.body.serial()));
  ASSERT_TRUE(r1.ok() && r2.ok());
  // Events 1 and 2 announced the two enrollments (key changes).
  EXPECT_EQ(r1->feed_seq(), 3u);
  EXPECT_EQ(r2->feed_seq(), 4u);
  EXPECT_EQ(env.feed.head(), 4u);

  auto slice = ReadFeed(env.store, 0, 100);
  ASSERT_TRUE(slice.ok());
  EXPECT_EQ(slice->head, 4u);
  ASSERT_EQ(slice->events.size(), 4u);
  for (size_t i = 0; i < slice->events.size(); ++i) {
    ASSERT_TRUE(VerifyObject(slice->events[i], ObjectType::kRevocation,
                             env.keys->issuing_body().public_key())
                    .ok());
    auto body = *ParseBody<mxkey::v1::RevocationEventBody>(slice->events[i]);
    EXPECT_EQ(body.seq(), i + 1);
  }
  auto tail = ReadFeed(env.store, 3, 100);
  ASSERT_EQ(tail->events.size(), 1u);
  EXPECT_EQ(ParseBody<mxkey::v1::RevocationEventBody>(tail->events[0])->serial(),
            b.body.serial());
  (void)a;
}

TEST(RevocationTest, RevokingTwiceIsFailedPrecondition) {
  KeydTestEnv env;
  EnrolledHost a = env.AddAndEnroll("mx1.example.org");
  ASSERT_TRUE(Revoke(env.ctx, Req("mx1.example.org")).ok());
  std::string before = env.Snapshot();
  auto again = Revoke(env.ctx, Req("mx1.example.org"));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  auto serial_again = Revoke(env.ctx, Req("mx1.example.org", a.body.serial()));
  EXPECT_EQ(serial_again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(serial_again.status().message(), HasSubstr("already revoked"));
  EXPECT_EQ(env.Snapshot(), before);
}

TEST(RevocationTest, UnknownHostSerialOrReasonAreRejected) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  EXPECT_EQ(Revoke(env.ctx, Req("nope.example.org")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Revoke(env.ctx, Req("mx1.example.org", 999)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Revoke(env.ctx, Req("mx1.example.org", 0, "")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Revoke(env.ctx, Req("mx1.example.org", 0, std::string(300, 'x')))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Revoke(env.ctx, Req("mx1.example.org", 0, "two\nlines"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Revoke(env.ctx, Req("not a host")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(env.feed.head(), 1u);  // only the enrollment's key change
}

TEST(RevocationTest, RevokedKeyAppearsRevokedInAnswers) {
  KeydTestEnv env;
  env.AddAndEnroll("mx1.example.org");
  ASSERT_TRUE(Revoke(env.ctx, Req("mx1.example.org")).ok());
  auto answer = env.directory->GetHostKeys("mx1.example.org");
  ASSERT_TRUE(answer.ok());
  auto verified = env.Verifier().Verify(*answer, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST,
                                        env.clock.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_FALSE(verified->HasValidKey());
  ASSERT_EQ(verified->certificates.size(), 1u);
  EXPECT_EQ(verified->certificates[0].state, VerifiedCertState::kRevoked);
  EXPECT_EQ(verified->revocations.size(), 1u);
  EXPECT_EQ(verified->freshness.feed_head(), 2u);  // key change, revocation
}

}  // namespace
}  // namespace mxkey

namespace mxkey {
namespace {

// Trust core III #14: a republished peer reason ("peer ORG: " + the peer's
// 256 bytes) must stay within the limit and valid UTF-8.
TEST(RevocationTest, RepublishedPeerReasonsStayWithinTheLimit) {
  KeydTestEnv env;
  mxkey::v1::RevocationEventBody peer_event;
  peer_event.set_seq(1);
  peer_event.set_hostname("mx1.b.example");
  peer_event.set_serial(1);
  // "peer b: " (8 bytes) + "x" puts the 256-byte cut inside a two-byte é.
  std::string reason = "x";
  while (reason.size() < 254) reason += "\xc3\xa9";
  peer_event.set_reason(reason);
  uint64_t head = 0;
  ASSERT_TRUE(env.ctx.store
                  ->Write([&](WriteTxn& txn) -> absl::Status {
                    absl::StatusOr<uint64_t> h =
                        AppendPeerRevocations(txn, env.ctx, "b", {peer_event});
                    if (!h.ok()) return h.status();
                    head = *h;
                    return absl::OkStatus();
                  })
                  .ok());
  absl::StatusOr<FeedSlice> feed = ReadFeed(*env.ctx.store, head - 1, 1);
  ASSERT_TRUE(feed.ok() && feed->events.size() == 1u);
  mxkey::v1::RevocationEventBody body;
  ASSERT_TRUE(body.ParseFromString(feed->events[0].body()));
  EXPECT_LE(body.reason().size(), env.ctx.options.max_reason_bytes);
  EXPECT_EQ(body.reason().rfind("peer b: ", 0), 0u);
  // Whole characters only: no dangling lead byte at the end.
  const unsigned char last = static_cast<unsigned char>(body.reason().back());
  EXPECT_NE(last, 0xc3);
  EXPECT_EQ(TruncateUtf8("ab\xc3\xa9", 3), "ab");
  EXPECT_EQ(TruncateUtf8("abc", 3), "abc");
}

}  // namespace
}  // namespace mxkey
