// The mxkey session profile over a socket pair, with a fixed table of
// certified peers standing in for KeyClient (tests/session_e2e_test uses the
// real one).
#include "mta-hooks/session/session.h"

#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <map>

#include "absl/strings/str_cat.h"
#include "client/host_keys.h"
#include "crypto/aead.h"
#include "gtest/gtest.h"
#include "mta-hooks/session/noise_handshake.h"
#include "mta-hooks/session/noise_pattern.h"
#include "proto/mxkey/v1/session.pb.h"

namespace mxkey {
namespace {

class TablePeers : public PeerKeyVerifier {
 public:
  absl::Status VerifyPeer(const std::string& hostname, uint64_t serial,
                          absl::string_view key) override {
    auto it = certified_.find(hostname);
    if (it == certified_.end()) {
      return absl::NotFoundError(absl::StrCat("no such host: ", hostname));
    }
    if (it->second.first != serial || it->second.second != key) {
      return absl::PermissionDeniedError("not the certified key");
    }
    return absl::OkStatus();
  }
  std::map<std::string, std::pair<uint64_t, std::string>> certified_;
};

// Records what passes through, so a test can replay it.
class RecordingStream : public ByteStream {
 public:
  explicit RecordingStream(ByteStream& inner) : inner_(inner) {}
  absl::StatusOr<size_t> ReadSome(char* buf, size_t n) override {
    return inner_.ReadSome(buf, n);
  }
  absl::Status WriteAll(absl::string_view data) override {
    written.append(data.data(), data.size());
    return inner_.WriteAll(data);
  }
  std::string written;

 private:
  ByteStream& inner_;
};

LocalIdentity NewIdentity(const std::string& host, uint64_t serial) {
  LocalIdentity id;
  id.hostname = host;
  id.serial = serial;
  id.agreement = *X25519PrivateKey::Generate();
  return id;
}

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
    client_stream_ = FdStream(fds_[0]);
    server_stream_ = FdStream(fds_[1]);
    peers_.certified_["mx1.a.example"] = {7, client_.agreement->public_key()};
  }
  void TearDown() override {
    CloseInitiatorSide();
    if (fds_[1] >= 0) close(fds_[1]);
  }
  void CloseInitiatorSide() {
    if (fds_[0] >= 0) close(fds_[0]);
    fds_[0] = -1;
  }

  // Like a server, the responder hangs up when the handshake fails.
  std::future<absl::StatusOr<std::unique_ptr<Session>>> RespondAsync() {
    return std::async(std::launch::async, [this] {
      auto s = Session::Respond(server_stream_, server_, peers_, replay_);
      if (!s.ok()) shutdown(fds_[1], SHUT_RDWR);
      return s;
    });
  }
  absl::StatusOr<std::unique_ptr<Session>> Initiate(
      const LocalIdentity& who, absl::string_view responder_key) {
    return Session::Initiate(client_stream_, who, "mx2.b.example",
                             responder_key, &clock_);
  }

  int fds_[2] = {-1, -1};
  FdStream client_stream_{fds_[0]};
  FdStream server_stream_{fds_[1]};
  LocalIdentity client_ = NewIdentity("mx1.a.example", 7);
  LocalIdentity server_ = NewIdentity("mx2.b.example", 3);
  TablePeers peers_;
  FakeClock clock_{absl::Now()};
  ReplayGuard replay_{&clock_};
};

TEST_F(SessionTest, HandshakeAuthenticatesBothAndEchoes) {
  auto responder = RespondAsync();
  auto initiator = Initiate(client_, server_.agreement->public_key());
  ASSERT_TRUE(initiator.ok()) << initiator.status();
  auto resp = responder.get();
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_TRUE((*resp)->authenticated());
  EXPECT_EQ((*resp)->peer_hostname(), "mx1.a.example");
  EXPECT_EQ((*resp)->peer_serial(), 7u);
  EXPECT_EQ((*initiator)->handshake_hash(), (*resp)->handshake_hash());

  ASSERT_TRUE((*initiator)->Send(client_stream_, "EHLO mx1.a.example").ok());
  auto got = (*resp)->Receive(server_stream_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->view(), "EHLO mx1.a.example");
  ASSERT_TRUE((*resp)->Send(server_stream_, "250 ok").ok());
  EXPECT_EQ((*initiator)->Receive(client_stream_)->view(), "250 ok");

  // Both sides rekey their direction in step.
  ASSERT_TRUE((*initiator)->RekeySend().ok());
  ASSERT_TRUE((*resp)->RekeyReceive().ok());
  ASSERT_TRUE((*initiator)->Send(client_stream_, "after rekey").ok());
  EXPECT_EQ((*resp)->Receive(server_stream_)->view(), "after rekey");
}

TEST_F(SessionTest, WrongResponderKeyFails) {
  auto responder = RespondAsync();
  X25519PrivateKey wrong = *X25519PrivateKey::Generate();
  auto initiator = Initiate(client_, wrong.public_key());
  auto resp = responder.get();
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnauthenticated)
      << resp.status();
  // The responder gave up without answering; the initiator sees that.
  EXPECT_EQ(initiator.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(SessionTest, UnknownOrMismatchedInitiatorIsRejected) {
  auto responder = RespondAsync();
  LocalIdentity stranger = NewIdentity("mx9.c.example", 1);
  auto initiator = std::async(std::launch::async, [&] {
    return Initiate(stranger, server_.agreement->public_key());
  });
  auto resp = responder.get();
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kNotFound);
  auto init = initiator.get();
  EXPECT_EQ(init.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(init.status().message().find("rejected"), std::string::npos);
}

TEST_F(SessionTest, ClaimingAnotherHostsNameWithOwnKeyIsRejected) {
  auto responder = RespondAsync();
  LocalIdentity impostor = NewIdentity("mx1.a.example", 7);  // other key
  auto initiator = std::async(std::launch::async, [&] {
    return Initiate(impostor, server_.agreement->public_key());
  });
  auto resp = responder.get();
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(initiator.get().ok());
}

TEST_F(SessionTest, ReplayedFirstMessageIsRejectedBeforeAnswering) {
  RecordingStream recorder(client_stream_);
  auto responder = RespondAsync();
  auto initiator = Session::Initiate(recorder, client_, "mx2.b.example",
                                     server_.agreement->public_key(), &clock_);
  ASSERT_TRUE(initiator.ok()) << initiator.status();
  ASSERT_TRUE(responder.get().ok());

  // The same first message, replayed into a new session.
  int again[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, again), 0);
  ASSERT_TRUE(FdStream(again[0]).WriteAll(recorder.written).ok());
  FdStream replay_stream(again[1]);
  auto replayed = Session::Respond(replay_stream, server_, peers_, replay_);
  EXPECT_EQ(replayed.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(replayed.status().message().find("replayed"), std::string::npos)
      << replayed.status();
  // Nothing was sent back.
  shutdown(again[1], SHUT_WR);
  char byte;
  EXPECT_EQ(read(again[0], &byte, 1), 0);
  close(again[0]);
  close(again[1]);
}

// Message 1 as another process of the same initiator would make it: its
// own ephemeral key, its own reading of the clock.
std::string FirstMessageFrom(const LocalIdentity& who,
                             absl::string_view responder_key,
                             int64_t timestamp_ms) {
  NoiseHandshakeConfig config;
  config.pattern = FindNoisePattern("IK");
  config.initiator = true;
  config.prologue = SessionPrologue("mx2.b.example");
  config.static_key = who.agreement;
  config.remote_static_key = std::string(responder_key);
  absl::StatusOr<NoiseHandshake> hs = NoiseHandshake::Create(std::move(config));
  EXPECT_TRUE(hs.ok()) << hs.status();
  mxkey::v1::SessionHello hello;
  hello.set_hostname(who.hostname);
  hello.set_serial(who.serial);
  hello.set_timestamp_ms(timestamp_ms);
  absl::StatusOr<std::string> m1 = hs->WriteMessage(hello.SerializeAsString());
  EXPECT_TRUE(m1.ok()) << m1.status();
  return m1.ok() ? *m1 : "";
}

// The responder's verdict on one first message, sent on a fresh connection.
absl::Status RespondTo(const std::string& m1, const LocalIdentity& server,
                       PeerKeyVerifier& peers, ReplayGuard& replay) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    return absl::InternalError("socketpair");
  }
  FdStream initiator(fds[0]), responder(fds[1]);
  absl::Status st = WriteFrame(initiator, m1);
  if (st.ok()) st = Session::Respond(responder, server, peers, replay).status();
  close(fds[0]);
  close(fds[1]);
  return st;
}

// Issue 18, finding 9: Postfix delivers from many processes at once; their
// hellos carry the same or even decreasing timestamps. The old guard (a
// strictly increasing timestamp per initiator) refused all but the first.
TEST_F(SessionTest, ParallelInitiatorProcessesAreAllAccepted) {
  const int64_t now = absl::ToUnixMillis(clock_.Now());
  std::vector<std::string> firsts;
  for (int i = 0; i < 23; ++i) {
    firsts.push_back(FirstMessageFrom(
        client_, server_.agreement->public_key(), i < 8 ? now : now - 11 * i));
  }
  for (size_t i = 0; i < firsts.size(); ++i) {
    absl::Status st = RespondTo(firsts[i], server_, peers_, replay_);
    EXPECT_TRUE(st.ok()) << "connection " << i << ": " << st;
  }
  // A true replay, the same bytes again, is still refused.
  absl::Status replayed = RespondTo(firsts[3], server_, peers_, replay_);
  EXPECT_EQ(replayed.code(), absl::StatusCode::kPermissionDenied) << replayed;
  EXPECT_NE(replayed.message().find("replayed"), std::string::npos)
      << replayed;
}

// During a rotation the initiator encrypts to the certificate it sees as
// active: the responder's current key or, once the next certificate is
// active, the next one. The responder answers both.
TEST_F(SessionTest, ResponderAnswersAnInitiatorUsingItsNextKey) {
  X25519PrivateKey next = *X25519PrivateKey::Generate();
  server_.next_agreement = next;
  auto responder = RespondAsync();
  auto initiator = Initiate(client_, next.public_key());
  ASSERT_TRUE(initiator.ok()) << initiator.status();
  auto resp = responder.get();
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ((*initiator)->handshake_hash(), (*resp)->handshake_hash());
  ASSERT_TRUE((*initiator)->Send(client_stream_, "to the next key").ok());
  EXPECT_EQ((*resp)->Receive(server_stream_)->view(), "to the next key");

  // The current key still works, and a key that is neither is refused
  // without an answer.
  const int64_t now = absl::ToUnixMillis(clock_.Now());
  EXPECT_TRUE(RespondTo(FirstMessageFrom(client_,
                                         server_.agreement->public_key(), now),
                        server_, peers_, replay_)
                  .ok());
  X25519PrivateKey other = *X25519PrivateKey::Generate();
  absl::Status wrong = RespondTo(
      FirstMessageFrom(client_, other.public_key(), now), server_, peers_,
      replay_);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated) << wrong;
  EXPECT_NE(wrong.message().find("current and next"), std::string::npos)
      << wrong;
}

// keyctl rotate leaves next/ beside the current keys; the identity loaded
// from the key directory holds both.
TEST(LocalIdentityTest, FromKeyDirLoadsTheNextKeysOfARotation) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/keydir");
  auto save = [&](const std::string& subdir, uint64_t serial) {
    HostKeys keys = *HostKeys::Generate();
    mxkey::v1::HostCertificateBody body;
    body.set_hostname("mx2.b.example");
    body.set_serial(serial);
    body.set_agreement_key(keys.agreement.public_key());
    mxkey::v1::EnrollResponse cert;
    cert.mutable_certificate()->set_body(body.SerializeAsString());
    EXPECT_TRUE(SaveHostKeys(dir, subdir, keys, &cert).ok());
    return keys;
  };
  HostKeys current = save("", 3);
  absl::StatusOr<LocalIdentity> before = LocalIdentity::FromKeyDir(dir);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_FALSE(before->next_agreement.has_value());
  HostKeys next = save("next", 4);
  absl::StatusOr<LocalIdentity> during = LocalIdentity::FromKeyDir(dir);
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->serial, 3u);
  EXPECT_EQ(during->agreement->public_key(), current.agreement.public_key());
  ASSERT_TRUE(during->next_agreement.has_value());
  EXPECT_EQ(during->next_agreement->public_key(), next.agreement.public_key());
}

// PROTOCOL.md §10, rekey: k' = the first 32 bytes of
// ENCRYPT(k, 2^64-1, "", 32 zero bytes); the nonce carries on.
TEST_F(SessionTest, RekeyIsNoiseRekeyAndBothSidesKeepTalking) {
  auto responder = RespondAsync();
  auto initiator = Initiate(client_, server_.agreement->public_key());
  ASSERT_TRUE(initiator.ok()) << initiator.status();
  auto resp = responder.get();
  ASSERT_TRUE(resp.ok()) << resp.status();
  Session& a = **initiator;
  Session& b = **resp;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(a.Send(client_stream_, absl::StrCat("m", i)).ok());
    ASSERT_TRUE(b.Receive(server_stream_).ok());
  }
  const SecretBytes old_key = a.send_cipher().key();
  ASSERT_TRUE(a.RekeySend().ok());
  ASSERT_TRUE(b.RekeyReceive().ok());
  absl::StatusOr<std::string> derived =
      AeadSeal(old_key, NoiseNonce(CipherState::kReservedNonce), "",
               std::string(32, '\0'));
  ASSERT_TRUE(derived.ok());
  const SecretBytes new_key(absl::string_view(*derived).substr(0, 32));
  EXPECT_TRUE(a.send_cipher().key().Equals(new_key));
  EXPECT_EQ(a.send_cipher().nonce(), 3u);
  // The 4th message: the new key, nonce 3.
  absl::StatusOr<std::string> m = a.Encrypt("after rekey");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, *AeadSeal(new_key, NoiseNonce(3), "", "after rekey"));
  EXPECT_EQ(b.Decrypt(*m)->view(), "after rekey");
  // The other direction is independent, and rekeys the same way.
  ASSERT_TRUE(b.Send(server_stream_, "before").ok());
  EXPECT_EQ(a.Receive(client_stream_)->view(), "before");
  ASSERT_TRUE(b.RekeySend().ok());
  ASSERT_TRUE(a.RekeyReceive().ok());
  ASSERT_TRUE(b.Send(server_stream_, "after").ok());
  EXPECT_EQ(a.Receive(client_stream_)->view(), "after");
  ASSERT_TRUE(a.Send(client_stream_, "still").ok());
  EXPECT_EQ(b.Receive(server_stream_)->view(), "still");
}

TEST_F(SessionTest, OneSidedRekeyClosesTheSessionWithoutPlaintext) {
  auto responder = RespondAsync();
  auto initiator = Initiate(client_, server_.agreement->public_key());
  ASSERT_TRUE(initiator.ok()) << initiator.status();
  auto resp = responder.get();
  ASSERT_TRUE(resp.ok()) << resp.status();
  ASSERT_TRUE((*initiator)->RekeySend().ok());  // the responder does not
  ASSERT_TRUE((*initiator)->Send(client_stream_, "unreadable").ok());
  auto got = (*resp)->Receive(server_stream_);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated)
      << got.status();
  EXPECT_TRUE((*resp)->failed());
  // Rekeying now does not repair it: the session stays closed.
  EXPECT_EQ((*resp)->RekeyReceive().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*initiator)->Send(client_stream_, "again").ok());
  EXPECT_EQ((*resp)->Receive(server_stream_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SessionTest, StaleHelloIsRejected) {
  // The responder's clock is 10 minutes ahead of the initiator's.
  FakeClock initiator_clock(clock_.Now());
  clock_.Advance(absl::Minutes(10));
  auto responder = RespondAsync();
  auto initiator = std::async(std::launch::async, [&] {
    return Session::Initiate(client_stream_, client_, "mx2.b.example",
                             server_.agreement->public_key(),
                             &initiator_clock);
  });
  auto resp = responder.get();
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kPermissionDenied)
      << resp.status();
  EXPECT_FALSE(initiator.get().ok());
}

TEST_F(SessionTest, TruncatedAndOversizedFrames) {
  // A frame header promising 100 bytes, then the connection closes.
  ASSERT_TRUE(client_stream_.WriteAll(std::string("\x00\x64 short", 8)).ok());
  CloseInitiatorSide();
  auto resp = Session::Respond(server_stream_, server_, peers_, replay_);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDataLoss) << resp.status();
  EXPECT_NE(resp.status().message().find("truncated"), std::string::npos);

  EXPECT_EQ(WriteFrame(server_stream_, std::string(65536, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionTest, TamperedTransportMessageClosesTheSession) {
  auto responder = RespondAsync();
  auto initiator = Initiate(client_, server_.agreement->public_key());
  ASSERT_TRUE(initiator.ok());
  auto resp = responder.get();
  ASSERT_TRUE(resp.ok());
  std::string m = *(*initiator)->Encrypt("secret");
  m[2] ^= 0x20;
  auto got = (*resp)->Decrypt(m);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated);
  // No plaintext, and nothing more from this session.
  std::string good = *(*initiator)->Encrypt("more");
  EXPECT_EQ((*resp)->Decrypt(good).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // An oversized payload is refused without harming the session.
  EXPECT_EQ((*initiator)->Encrypt(std::string(kMaxSessionPlaintext + 1, 'x'))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*initiator)->Encrypt(std::string(kMaxSessionPlaintext, 'x')).ok());
}

TEST_F(SessionTest, OpportunisticModeOnlyWhenPolicyAllows) {
  SessionPolicy no;
  EXPECT_EQ(Session::InitiateOpportunistic(client_stream_, "mx2.b.example", no)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Session::RespondOpportunistic(server_stream_, "mx2.b.example", no)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  SessionPolicy yes;
  yes.allow_opportunistic = true;
  auto responder = std::async(std::launch::async, [&] {
    return Session::RespondOpportunistic(server_stream_, "mx2.b.example", yes);
  });
  auto initiator =
      Session::InitiateOpportunistic(client_stream_, "mx2.b.example", yes);
  ASSERT_TRUE(initiator.ok()) << initiator.status();
  auto resp = responder.get();
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_FALSE((*initiator)->authenticated());
  ASSERT_TRUE((*initiator)->Send(client_stream_, "hi").ok());
  EXPECT_EQ((*resp)->Receive(server_stream_)->view(), "hi");
}

}  // namespace
}  // namespace mxkey
