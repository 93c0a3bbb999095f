// The C ABI (mta-hooks/include/mxkey.h) from C++: error codes and messages,
// handshakes through I/O callbacks, message encryption, rekey and key
// export, the shared replay guard and a responder mid-rotation, against a
// real in-process keyd.
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstring>
#include <future>

#include "client/host_keys.h"
#include "gtest/gtest.h"
#include "mxkey.h"
#include "tests/inprocess_keyd.h"
#include "tests/onpath_proxy.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

long ReadFd(void* io, uint8_t* buf, size_t len) {
  return static_cast<long>(read(*static_cast<int*>(io), buf, len));
}
long WriteFd(void* io, const uint8_t* buf, size_t len) {
  return static_cast<long>(write(*static_cast<int*>(io), buf, len));
}

// Writes to a socket and keeps a copy, so a test can replay the bytes.
struct RecordingFd {
  int fd;
  std::string written;
};
long WriteRecording(void* io, const uint8_t* buf, size_t len) {
  auto* r = static_cast<RecordingFd*>(io);
  long n = static_cast<long>(write(r->fd, buf, len));
  if (n > 0) r->written.append(reinterpret_cast<const char*>(buf), n);
  return n;
}
long ReadRecording(void* io, uint8_t* buf, size_t len) {
  return static_cast<long>(read(static_cast<RecordingFd*>(io)->fd, buf, len));
}

// Replays recorded bytes, then the end of the stream; drops what is written.
struct Replay {
  std::string data;
  size_t at = 0;
};
long ReadReplay(void* io, uint8_t* buf, size_t len) {
  auto* r = static_cast<Replay*>(io);
  size_t n = std::min(len, r->data.size() - r->at);
  std::memcpy(buf, r->data.data() + r->at, n);
  r->at += n;
  return static_cast<long>(n);
}
long WriteNowhere(void*, const uint8_t*, size_t len) {
  return static_cast<long>(len);
}

class CAbiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keyd_ = InProcessKeyd::Start(Clock::Real());
    ASSERT_NE(keyd_, nullptr);
    dir_ = ShortTempDir();
    InProcessKeyd::SaveKeyDir(keyd_->AddAndEnroll("mx1.example.org"),
                              dir_ + "/mx1");
    InProcessKeyd::SaveKeyDir(keyd_->AddAndEnroll("mx2.example.org"),
                              dir_ + "/mx2");
    ASSERT_EQ(mxkey_client_new(keyd_->endpoint().c_str(),
                               keyd_->root_fingerprint().c_str(), nullptr,
                               &client_),
              MXKEY_OK)
        << mxkey_last_error();
    ASSERT_EQ(mxkey_identity_load((dir_ + "/mx1").c_str(), &mx1_), MXKEY_OK)
        << mxkey_last_error();
    ASSERT_EQ(mxkey_identity_load((dir_ + "/mx2").c_str(), &mx2_), MXKEY_OK);
  }
  void TearDown() override {
    mxkey_identity_free(mx1_);
    mxkey_identity_free(mx2_);
    mxkey_client_free(client_);
    RunCommand({"/bin/rm", "-rf", dir_});
  }

  // mx1 initiates to mx2 through callbacks on a socket pair.
  void Connect(mxkey_session** initiator, mxkey_session** responder) {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
    auto resp = std::async(std::launch::async, [&] {
      return mxkey_session_respond_io(client_, mx2_, ReadFd, WriteFd,
                                      &fds_[1], responder);
    });
    mxkey_status st = mxkey_session_initiate_io(
        client_, mx1_, "mx2.example.org", ReadFd, WriteFd, &fds_[0], initiator);
    ASSERT_EQ(st, MXKEY_OK) << mxkey_last_error();
    ASSERT_EQ(resp.get(), MXKEY_OK);
  }

  struct Outcome {
    mxkey_status initiator, responder;
    std::string responder_error;
    std::string sent;  // the initiator's bytes
  };
  // mx1 initiates to `responder_name`, answered by `responder_client` as
  // `responder`.
  Outcome Handshake(mxkey_client* responder_client,
                    const mxkey_identity* responder,
                    const char* responder_name) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    mxkey_session *a = nullptr, *b = nullptr;
    Outcome out;
    auto resp = std::async(std::launch::async, [&] {
      out.responder = mxkey_session_respond_io(responder_client, responder,
                                               ReadFd, WriteFd, &fds[1], &b);
      out.responder_error = mxkey_last_error();
      shutdown(fds[1], SHUT_RDWR);
    });
    RecordingFd rec{fds[0], ""};
    out.initiator =
        mxkey_session_initiate_io(client_, mx1_, responder_name, ReadRecording,
                                  WriteRecording, &rec, &a);
    resp.get();
    out.sent = rec.written;
    mxkey_session_free(a);
    mxkey_session_free(b);
    close(fds[0]);
    close(fds[1]);
    return out;
  }

  // The responder's verdict on replayed initiator bytes.
  static mxkey_status RespondToReplay(mxkey_client* c, const mxkey_identity* id,
                                      const std::string& bytes) {
    Replay replay{bytes};
    mxkey_session* s = nullptr;
    mxkey_status st =
        mxkey_session_respond_io(c, id, ReadReplay, WriteNowhere, &replay, &s);
    mxkey_session_free(s);
    return st;
  }

  mxkey_client* NewClient() {
    mxkey_client* c = nullptr;
    EXPECT_EQ(mxkey_client_new(keyd_->endpoint().c_str(),
                               keyd_->root_fingerprint().c_str(), nullptr, &c),
              MXKEY_OK)
        << mxkey_last_error();
    return c;
  }

  std::unique_ptr<InProcessKeyd> keyd_;
  std::string dir_;
  mxkey_client* client_ = nullptr;
  mxkey_identity* mx1_ = nullptr;
  mxkey_identity* mx2_ = nullptr;
  int fds_[2] = {-1, -1};
};

TEST_F(CAbiTest, ErrorsHaveCodesAndMessages) {
  mxkey_client* c = nullptr;
  EXPECT_EQ(mxkey_client_new("127.0.0.1:1", "sha256:nothex", nullptr, &c),
            MXKEY_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mxkey_last_error()).find("fingerprint"),
            std::string::npos);
  EXPECT_EQ(mxkey_client_new(nullptr, "x", nullptr, &c),
            MXKEY_E_INVALID_ARGUMENT);
  uint8_t key[MXKEY_KEY_SIZE];
  EXPECT_EQ(mxkey_lookup_host(client_, "mx9.example.org", key, nullptr),
            MXKEY_E_UNKNOWN_HOST);
  EXPECT_EQ(mxkey_lookup_host(client_, "bad_name", key, nullptr),
            MXKEY_E_INVALID_ARGUMENT);
  keyd_->Revoke("mx2.example.org", "test");
  EXPECT_EQ(mxkey_lookup_host(client_, "mx2.example.org", key, nullptr),
            MXKEY_E_REVOKED);
  EXPECT_STREQ(mxkey_status_name(MXKEY_E_STALE), "stale");
  mxkey_identity* id = nullptr;
  EXPECT_NE(mxkey_identity_load("/nonexistent", &id), MXKEY_OK);
  // Freeing NULL is harmless.
  mxkey_session_free(nullptr);
  mxkey_client_free(nullptr);
}

// Trust core I, finding 4: MXKEY_E_UNKNOWN_HOST (on which a caller may
// fall back to unauthenticated Noise_NN) only for a verified denial, never
// for an unsigned NOT_FOUND made up on the path.
TEST_F(CAbiTest, UnsignedNotFoundIsNotUnknownHost) {
  OnPathProxy proxy(keyd_->endpoint());
  const std::string endpoint = proxy.Start();
  ASSERT_FALSE(endpoint.empty());
  proxy.ReturnUnsignedNotFound(ProxyRpc::kGetHostKeys, "mx1.example.org");
  mxkey_client* c = nullptr;
  ASSERT_EQ(mxkey_client_new(endpoint.c_str(), keyd_->root_fingerprint().c_str(),
                             nullptr, &c),
            MXKEY_OK)
      << mxkey_last_error();
  uint8_t key[MXKEY_KEY_SIZE];
  EXPECT_EQ(mxkey_lookup_host(c, "mx1.example.org", key, nullptr),
            MXKEY_E_UNAVAILABLE)
      << mxkey_last_error();
  // The genuine signed denial still is.
  EXPECT_EQ(mxkey_lookup_host(c, "mx9.example.org", key, nullptr),
            MXKEY_E_UNKNOWN_HOST);
  mxkey_client_free(c);
}

TEST_F(CAbiTest, LookupGivesTheCertifiedKey) {
  uint8_t key[MXKEY_KEY_SIZE];
  uint64_t serial = 0;
  ASSERT_EQ(mxkey_lookup_host(client_, "MX2.example.org", key, &serial),
            MXKEY_OK);
  EXPECT_GT(serial, 0u);
  EXPECT_STREQ(mxkey_identity_hostname(mx2_), "mx2.example.org");
}

TEST_F(CAbiTest, CallbackHandshakeEncryptRekeyAndExport) {
  mxkey_session *a = nullptr, *b = nullptr;
  Connect(&a, &b);
  EXPECT_STREQ(mxkey_session_peer_hostname(b), "mx1.example.org");
  EXPECT_STREQ(mxkey_session_peer_hostname(a), "mx2.example.org");
  EXPECT_EQ(mxkey_session_authenticated(a), 1);

  const char* msg = "MAIL FROM:<a@example.org>";
  ASSERT_EQ(mxkey_session_send(a, reinterpret_cast<const uint8_t*>(msg),
                               strlen(msg)),
            MXKEY_OK);
  uint8_t buf[256];
  size_t n = 0;
  ASSERT_EQ(mxkey_session_recv(b, buf, sizeof buf, &n), MXKEY_OK);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), msg);

  // Without I/O: encrypt on one side, decrypt on the other.
  uint8_t sealed[64], opened[64];
  size_t sealed_len = 0, opened_len = 0;
  EXPECT_EQ(mxkey_session_encrypt(b, buf, 5, sealed, 20, &sealed_len),
            MXKEY_E_BUFFER_TOO_SMALL);
  ASSERT_EQ(mxkey_session_encrypt(b, buf, 5, sealed, sizeof sealed,
                                  &sealed_len),
            MXKEY_OK);
  EXPECT_EQ(sealed_len, 21u);
  ASSERT_EQ(mxkey_session_rekey_send(b), MXKEY_OK);
  ASSERT_EQ(mxkey_session_rekey_recv(a), MXKEY_OK);
  // Sealed before the rekey: a no longer has that key.
  EXPECT_EQ(mxkey_session_decrypt(a, sealed, sealed_len, opened, sizeof opened,
                                  &opened_len),
            MXKEY_E_HANDSHAKE);
  EXPECT_EQ(mxkey_session_decrypt(a, sealed, sealed_len, opened, sizeof opened,
                                  &opened_len),
            MXKEY_E_SESSION_CLOSED);
  // A failed session gives no keys either (issue: export succeeded).
  uint8_t as[32], ar[32];
  uint64_t asn = 0, arn = 0;
  EXPECT_EQ(mxkey_session_export_keys(a, as, &asn, ar, &arn),
            MXKEY_E_SESSION_CLOSED);

  // Export: b's send key is a's receive key; b is closed afterwards.
  uint8_t bs[32], br[32];
  uint64_t bsn = 0, brn = 0;
  ASSERT_EQ(mxkey_session_export_keys(b, bs, &bsn, br, &brn), MXKEY_OK);
  EXPECT_EQ(bsn, 1u);
  EXPECT_EQ(brn, 1u);
  EXPECT_EQ(mxkey_session_send(b, buf, 1), MXKEY_E_SESSION_CLOSED);
  EXPECT_EQ(mxkey_session_export_keys(b, bs, &bsn, br, &brn),
            MXKEY_E_SESSION_CLOSED);
  mxkey_session_free(a);
  mxkey_session_free(b);
  close(fds_[0]);
  close(fds_[1]);
}

// Issue 18, finding 9: replay protection was per responder process. Two
// clients on one replay directory stand for two smtpd processes.
TEST_F(CAbiTest, ReplayToAnotherProcessIsRefusedWithASharedReplayDir) {
  const std::string replay_dir = dir_ + "/replay";
  mxkey_client* first = NewClient();
  mxkey_client* second = NewClient();
  mxkey_client* unshared = NewClient();
  ASSERT_EQ(mxkey_client_set_replay_guard(first, replay_dir.c_str(), 0),
            MXKEY_OK)
      << mxkey_last_error();
  ASSERT_EQ(mxkey_client_set_replay_guard(second, replay_dir.c_str(), 0),
            MXKEY_OK)
      << mxkey_last_error();
  Outcome genuine = Handshake(first, mx2_, "mx2.example.org");
  ASSERT_EQ(genuine.responder, MXKEY_OK) << genuine.responder_error;
  ASSERT_EQ(genuine.initiator, MXKEY_OK);
  const std::string& sent = genuine.sent;
  // Several genuine handshakes in a row, also through the other process.
  EXPECT_EQ(Handshake(second, mx2_, "mx2.example.org").responder, MXKEY_OK);
  EXPECT_EQ(Handshake(first, mx2_, "mx2.example.org").responder, MXKEY_OK);

  EXPECT_EQ(RespondToReplay(second, mx2_, sent), MXKEY_E_REJECTED);
  EXPECT_NE(std::string(mxkey_last_error()).find("replayed"), std::string::npos)
      << mxkey_last_error();
  EXPECT_EQ(RespondToReplay(first, mx2_, sent), MXKEY_E_REJECTED);
  // A client left on its own memory (the default) does not know of it: the
  // documented reason to share the directory.
  EXPECT_EQ(RespondToReplay(unshared, mx2_, sent), MXKEY_OK)
      << mxkey_last_error();
  EXPECT_EQ(RespondToReplay(unshared, mx2_, sent), MXKEY_E_REJECTED);

  struct stat st_dir;
  ASSERT_EQ(stat(replay_dir.c_str(), &st_dir), 0);
  EXPECT_EQ(st_dir.st_mode & 0777, 0700u);
  mxkey_client_free(first);
  mxkey_client_free(second);
  mxkey_client_free(unshared);
}

TEST_F(CAbiTest, ReplayGuardSetterRefusesBadDirectoriesAndBounds) {
  EXPECT_EQ(mxkey_client_set_replay_guard(nullptr, nullptr, 0),
            MXKEY_E_INVALID_ARGUMENT);
  const std::string open_dir = dir_ + "/group-writable";
  ASSERT_EQ(mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0770), 0);
  EXPECT_EQ(mxkey_client_set_replay_guard(client_, open_dir.c_str(), 0),
            MXKEY_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mxkey_last_error()).find("writable"), std::string::npos)
      << mxkey_last_error();
  // A bound of 2: the third handshake within the window is refused, not
  // let through by forgetting one.
  mxkey_client* small = NewClient();
  ASSERT_EQ(mxkey_client_set_replay_guard(small, nullptr, 2), MXKEY_OK);
  EXPECT_EQ(Handshake(small, mx2_, "mx2.example.org").responder, MXKEY_OK);
  EXPECT_EQ(Handshake(small, mx2_, "mx2.example.org").responder, MXKEY_OK);
  Outcome full = Handshake(small, mx2_, "mx2.example.org");
  EXPECT_EQ(full.responder, MXKEY_E_REJECTED);
  EXPECT_NE(full.responder_error.find("replay guard full"), std::string::npos)
      << full.responder_error;
  EXPECT_NE(full.initiator, MXKEY_OK);
  mxkey_client_free(small);
}

// A responder mid-rotation: keyd already made its next certificate active
// (finished, or active_from passed) while its key directory still holds the
// old keys as current and the new ones in next/. The initiator encrypts to
// the next key; the responder must answer with it.
TEST_F(CAbiTest, ResponderMidRotationAnswersAnInitiatorUsingItsNextKey) {
  EnrolledTestHost mx3 = keyd_->AddAndEnroll("mx3.example.org");
  EnrolledTestHost next = keyd_->Rotate(mx3);
  keyd_->FinishRotation(next);
  const std::string dir = dir_ + "/mx3";
  InProcessKeyd::SaveKeyDir(mx3, dir);
  ASSERT_TRUE(SaveHostKeys(dir, "next", next.keys, &next.response).ok());
  mxkey_identity* id = nullptr;
  ASSERT_EQ(mxkey_identity_load(dir.c_str(), &id), MXKEY_OK)
      << mxkey_last_error();
  uint8_t key[MXKEY_KEY_SIZE];
  ASSERT_EQ(mxkey_lookup_host(client_, "mx3.example.org", key, nullptr),
            MXKEY_OK);
  ASSERT_EQ(std::string(reinterpret_cast<char*>(key), MXKEY_KEY_SIZE),
            next.keys.agreement.public_key());
  Outcome out = Handshake(client_, id, "mx3.example.org");
  EXPECT_EQ(out.responder, MXKEY_OK) << out.responder_error;
  EXPECT_EQ(out.initiator, MXKEY_OK);
  mxkey_identity_free(id);
}

TEST_F(CAbiTest, OversizedPayloadIsRefused) {
  mxkey_session *a = nullptr, *b = nullptr;
  Connect(&a, &b);
  std::string big(MXKEY_MAX_PAYLOAD + 1, 'x');
  EXPECT_EQ(mxkey_session_send(a, reinterpret_cast<const uint8_t*>(big.data()),
                               big.size()),
            MXKEY_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mxkey_last_error()).find("exceeds"), std::string::npos);
  mxkey_session_free(a);
  mxkey_session_free(b);
  close(fds_[0]);
  close(fds_[1]);
}

}  // namespace
}  // namespace mxkey
