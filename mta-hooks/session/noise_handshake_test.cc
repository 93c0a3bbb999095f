// Failure behaviour of the generic Noise core: tampering, wrong keys,
// truncation, size limits, turn order, nonce exhaustion and rekey.
#include "mta-hooks/session/noise_handshake.h"

#include "gtest/gtest.h"

namespace mxkey {
namespace {

struct Pair {
  NoiseHandshake initiator;
  NoiseHandshake responder;
};

Pair NewIk(const X25519PrivateKey& resp_static,
           const std::string& initiator_view_of_responder) {
  NoiseHandshakeConfig i;
  i.pattern = FindNoisePattern("IK");
  i.initiator = true;
  i.prologue = "test";
  i.static_key = *X25519PrivateKey::Generate();
  i.remote_static_key = initiator_view_of_responder;
  NoiseHandshakeConfig r;
  r.pattern = FindNoisePattern("IK");
  r.prologue = "test";
  r.static_key = resp_static;
  return Pair{*NoiseHandshake::Create(std::move(i)),
              *NoiseHandshake::Create(std::move(r))};
}

TEST(NoiseHandshakeTest, TamperedByteInEitherMessageFails) {
  X25519PrivateKey rs = *X25519PrivateKey::Generate();
  for (int message = 0; message < 2; ++message) {
    for (size_t pos : {0, 5, 40, 70, 95}) {
      Pair p = NewIk(rs, rs.public_key());
      std::string m1 = *p.initiator.WriteMessage("hello");
      if (message == 0) {
        m1[pos % m1.size()] ^= 0x01;
        EXPECT_FALSE(p.responder.ReadMessage(m1).ok()) << pos;
        continue;
      }
      ASSERT_TRUE(p.responder.ReadMessage(m1).ok());
      std::string m2 = *p.responder.WriteMessage("");
      m2[pos % m2.size()] ^= 0x01;
      absl::StatusOr<SecretBytes> r = p.initiator.ReadMessage(m2);
      EXPECT_FALSE(r.ok()) << pos;
      // A failed handshake stays failed.
      EXPECT_EQ(p.initiator.ReadMessage(m2).status().code(),
                absl::StatusCode::kFailedPrecondition);
      EXPECT_FALSE(p.initiator.Split().ok());
    }
  }
}

TEST(NoiseHandshakeTest, WrongResponderKeyFailsAtTheResponder) {
  X25519PrivateKey rs = *X25519PrivateKey::Generate();
  X25519PrivateKey other = *X25519PrivateKey::Generate();
  Pair p = NewIk(rs, other.public_key());
  std::string m1 = *p.initiator.WriteMessage("");
  absl::StatusOr<SecretBytes> r = p.responder.ReadMessage(m1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(NoiseHandshakeTest, TruncatedAndOversizedMessagesFail) {
  X25519PrivateKey rs = *X25519PrivateKey::Generate();
  Pair p = NewIk(rs, rs.public_key());
  std::string m1 = *p.initiator.WriteMessage("");
  absl::StatusOr<SecretBytes> r = p.responder.ReadMessage(m1.substr(0, 40));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos);

  Pair q = NewIk(rs, rs.public_key());
  r = q.responder.ReadMessage(std::string(65536, 'x'));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  Pair w = NewIk(rs, rs.public_key());
  EXPECT_EQ(w.initiator.WriteMessage(std::string(65535, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(NoiseHandshakeTest, OutOfTurnIsRefused) {
  X25519PrivateKey rs = *X25519PrivateKey::Generate();
  Pair p = NewIk(rs, rs.public_key());
  EXPECT_EQ(p.responder.WriteMessage("").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(p.initiator.Split().ok());
}

TEST(NoiseHandshakeTest, MissingKeysAreRejectedAtCreate) {
  NoiseHandshakeConfig c;
  c.pattern = FindNoisePattern("IK");
  c.initiator = true;
  EXPECT_EQ(NoiseHandshake::Create(c).status().code(),
            absl::StatusCode::kInvalidArgument);
  c.pattern = nullptr;
  EXPECT_FALSE(NoiseHandshake::Create(c).ok());
  EXPECT_EQ(FindNoisePattern("XK1"), nullptr);
}

TEST(CipherStateTest, NonceExhaustionEndsTheSession) {
  CipherState c;
  c.InitializeKey(SecretBytes(std::string(32, 'k')));
  c.SetNonce(CipherState::kReservedNonce - 1);
  EXPECT_TRUE(c.EncryptWithAd("", "last").ok());
  absl::StatusOr<std::string> over = c.EncryptWithAd("", "one too many");
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(c.DecryptWithAd("", std::string(20, 'x')).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(CipherStateTest, RekeyChangesTheKeyOnBothSidesAlike) {
  CipherState a, b;
  a.InitializeKey(SecretBytes(std::string(32, 'k')));
  b.InitializeKey(SecretBytes(std::string(32, 'k')));
  std::string before = *a.EncryptWithAd("", "x");
  ASSERT_TRUE(b.DecryptWithAd("", before).ok());
  ASSERT_TRUE(a.Rekey().ok());
  EXPECT_FALSE(a.key().Equals(SecretBytes(std::string(32, 'k'))));
  std::string after = *a.EncryptWithAd("", "y");
  // Without the matching rekey the receiver cannot read it...
  CipherState stale = b;
  EXPECT_FALSE(stale.DecryptWithAd("", after).ok());
  // ...with it, it can; the nonce carries on.
  ASSERT_TRUE(b.Rekey().ok());
  absl::StatusOr<SecretBytes> y = b.DecryptWithAd("", after);
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->view(), "y");
  EXPECT_EQ(a.nonce(), 2u);
}

TEST(CipherStateTest, FailedDecryptDoesNotAdvanceTheNonce) {
  CipherState a, b;
  a.InitializeKey(SecretBytes(std::string(32, 'k')));
  b.InitializeKey(SecretBytes(std::string(32, 'k')));
  std::string m = *a.EncryptWithAd("", "x");
  std::string bad = m;
  bad[0] ^= 1;
  EXPECT_EQ(b.DecryptWithAd("", bad).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(b.nonce(), 0u);
  EXPECT_TRUE(b.DecryptWithAd("", m).ok());
}

}  // namespace
}  // namespace mxkey
