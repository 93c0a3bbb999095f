// The keyed session with the real KeyClient and a real in-process keyd:
// the responder accepts only initiators whose static key is certified and
// unrevoked in its trust set.
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <vector>

#include "client/key_client.h"
#include "gtest/gtest.h"
#include "mta-hooks/session/peer_verifier.h"
#include "mta-hooks/session/session.h"
#include "tests/inprocess_keyd.h"

namespace mxkey {
namespace {

LocalIdentity IdentityOf(const EnrolledTestHost& h) {
  LocalIdentity id;
  id.hostname = h.hostname;
  id.serial = h.cert.serial();
  id.agreement = h.keys.agreement;
  return id;
}

class SessionE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KeydOptions options;
    options.cert_validity = absl::Hours(24);
    keyd_ = InProcessKeyd::Start(&clock_, "example", options);
    ASSERT_NE(keyd_, nullptr);
    responder_host_ = std::make_unique<EnrolledTestHost>(
        keyd_->AddAndEnroll("mx2.example.org"));
    auto client = KeyClient::Create(keyd_->ClientOptions());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    ASSERT_TRUE(client_->WaitForFeedPosition(0, absl::Seconds(10)));
    peers_ = std::make_unique<KeyClientPeerVerifier>(client_.get());
  }

  // Runs both sides over a socket pair; returns the responder's result.
  absl::Status Handshake(const LocalIdentity& initiator) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    FdStream a(fds[0]), b(fds[1]);
    LocalIdentity responder = IdentityOf(*responder_host_);
    auto resp = std::async(std::launch::async, [&] {
      auto s = Session::Respond(b, responder, *peers_, replay_);
      shutdown(fds[1], SHUT_RDWR);
      return s;
    });
    absl::StatusOr<AnswerRef> answer = client_->LookupHost("mx2.example.org");
    EXPECT_TRUE(answer.ok()) << answer.status();
    auto init = Session::Initiate(a, initiator, "mx2.example.org",
                                  *ResponderKey(**answer), &clock_);
    absl::Status result = resp.get().status();
    EXPECT_EQ(init.ok(), result.ok()) << init.status();
    close(fds[0]);
    close(fds[1]);
    return result;
  }

  FakeClock clock_{absl::Now()};
  std::unique_ptr<InProcessKeyd> keyd_;
  std::unique_ptr<EnrolledTestHost> responder_host_;
  std::unique_ptr<KeyClient> client_;
  std::unique_ptr<KeyClientPeerVerifier> peers_;
  ReplayGuard replay_{&clock_};
};

TEST_F(SessionE2eTest, CertifiedInitiatorIsAccepted) {
  EnrolledTestHost mx1 = keyd_->AddAndEnroll("mx1.example.org");
  EXPECT_TRUE(Handshake(IdentityOf(mx1)).ok());
}

// Issue 18, finding 9: parallel genuine connections of one initiator (like
// Postfix's smtp processes) at the same clock reading are all accepted.
TEST_F(SessionE2eTest, ParallelHandshakesOfOneInitiatorAreAllAccepted) {
  EnrolledTestHost mx1 = keyd_->AddAndEnroll("mx1.example.org");
  const LocalIdentity initiator = IdentityOf(mx1);
  ASSERT_TRUE(Handshake(initiator).ok());  // warms the lookup caches
  std::vector<std::future<absl::Status>> runs;
  for (int i = 0; i < 23; ++i) {
    runs.push_back(std::async(std::launch::async,
                              [&] { return Handshake(initiator); }));
  }
  int refused = 0;
  for (auto& run : runs) {
    absl::Status st = run.get();
    if (!st.ok()) {
      ++refused;
      ADD_FAILURE() << st;
    }
  }
  EXPECT_EQ(refused, 0);
}

TEST_F(SessionE2eTest, RevokedInitiatorIsRejected) {
  EnrolledTestHost mx1 = keyd_->AddAndEnroll("mx1.example.org");
  ASSERT_TRUE(Handshake(IdentityOf(mx1)).ok());
  uint64_t seq = keyd_->Revoke("mx1.example.org", "stolen");
  ASSERT_TRUE(client_->WaitForFeedPosition(seq, absl::Seconds(10)));
  clock_.Advance(absl::Seconds(1));
  absl::Status st = Handshake(IdentityOf(mx1));
  EXPECT_EQ(LookupFailureOf(st), LookupFailure::kRevoked) << st;
}

TEST_F(SessionE2eTest, UnknownInitiatorIsRejected) {
  EnrolledTestHost mx1 = keyd_->AddAndEnroll("mx1.example.org");
  LocalIdentity unknown = IdentityOf(mx1);
  unknown.hostname = "mx7.example.org";
  absl::Status st = Handshake(unknown);
  EXPECT_EQ(LookupFailureOf(st), LookupFailure::kUnknown) << st;
}

TEST_F(SessionE2eTest, InitiatorCertifiedByAnOrgOutsideTheTrustSetIsRejected) {
  auto other = InProcessKeyd::Start(&clock_, "other");
  EnrolledTestHost foreign = other->AddAndEnroll("mx1.example.org");
  // Our org also has an mx1, with other keys: the foreign key is not it.
  keyd_->AddAndEnroll("mx1.example.org");
  absl::Status st = Handshake(IdentityOf(foreign));
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
}

TEST_F(SessionE2eTest, ExpiredInitiatorIsRejected) {
  EnrolledTestHost mx1 = keyd_->AddAndEnroll("mx1.example.org");
  // The responder's own certificate is renewed so only mx1 has expired.
  clock_.Advance(absl::Hours(25));
  responder_host_ = std::make_unique<EnrolledTestHost>(
      keyd_->ReEnroll("mx2.example.org"));
  absl::Status st = Handshake(IdentityOf(mx1));
  EXPECT_EQ(LookupFailureOf(st), LookupFailure::kExpired) << st;
}

}  // namespace
}  // namespace mxkey
