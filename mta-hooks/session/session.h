// The mxkey keyed session: Noise_IK_25519_ChaChaPoly_SHA256 with the mxkey
// profile (PROTOCOL.md §10), over a framed byte stream.
//
//   prologue   "mxkey/1" || responder hostname
//   message 1  initiator -> responder, payload SessionHello{hostname,
//              serial, timestamp_ms}; identity only, no application data
//   message 2  responder -> initiator, empty payload
//
// The responder reads message 1 under its current static key and, during a
// rotation, under its next one if the first did not decrypt (the initiator
// encrypts to whichever certificate it sees as active). It verifies the
// initiator's static key against its certificate (PeerKeyVerifier) and
// only then the hello's freshness (ReplayGuard: timestamp window, and
// initiator + ephemeral key not seen), before it answers. Noise_NN runs
// only in the explicit opportunistic mode, and only if SessionPolicy
// allows it. Rekey is explicit and per direction (PROTOCOL.md §10).
//
// Any failure ends the session: later calls fail with FAILED_PRECONDITION
// and no plaintext of a message that did not authenticate is returned.
// Errors: those of the peer check (see peer_verifier.h), PERMISSION_DENIED
// (replay, opportunistic mode not allowed, wrong responder), UNAUTHENTICATED
// (a message did not decrypt), INVALID_ARGUMENT (oversized payload or bad
// hello), UNAVAILABLE / DATA_LOSS (the stream), RESOURCE_EXHAUSTED (nonces,
// or a full replay guard), and those of a shared replay store.
#ifndef MXKEY_MTA_HOOKS_SESSION_SESSION_H_
#define MXKEY_MTA_HOOKS_SESSION_SESSION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/clock.h"
#include "crypto/secret_bytes.h"
#include "crypto/x25519.h"
#include "mta-hooks/session/frame_io.h"
#include "mta-hooks/session/noise_cipher_state.h"
#include "mta-hooks/session/noise_handshake.h"
#include "mta-hooks/session/peer_verifier.h"
#include "mta-hooks/session/replay_guard.h"

namespace mxkey {

// The largest plaintext one transport message carries (65,535 - 16).
inline constexpr size_t kMaxSessionPlaintext = 65535 - 16;

// This host's identity for sessions: its certificate's name and serial, and
// the X25519 key that certificate certifies.
struct LocalIdentity {
  std::string hostname;
  uint64_t serial = 0;
  std::optional<X25519PrivateKey> agreement;
  // During a rotation, the key of the pre-published next certificate: a
  // responder also answers initiators that encrypted to it. Never used to
  // initiate (the hello names `serial`).
  std::optional<X25519PrivateKey> next_agreement;

  // From a keyctl key directory: the current keys and certificate.pb, and
  // next/ if a rotation pre-published keys there.
  static absl::StatusOr<LocalIdentity> FromKeyDir(const std::string& dir);
};

struct SessionPolicy {
  // Permits Noise_NN (encrypted, unauthenticated) for peers without keys.
  bool allow_opportunistic = false;
};

class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Initiate(
      ByteStream& stream, const LocalIdentity& self,
      const std::string& responder_hostname,
      absl::string_view responder_static_key, Clock* clock);
  static absl::StatusOr<std::unique_ptr<Session>> Respond(
      ByteStream& stream, const LocalIdentity& self, PeerKeyVerifier& peers,
      ReplayGuard& replay);
  static absl::StatusOr<std::unique_ptr<Session>> InitiateOpportunistic(
      ByteStream& stream, const std::string& responder_hostname,
      const SessionPolicy& policy);
  static absl::StatusOr<std::unique_ptr<Session>> RespondOpportunistic(
      ByteStream& stream, const std::string& own_hostname,
      const SessionPolicy& policy);

  // One Noise transport message (ciphertext || tag), unframed.
  absl::StatusOr<std::string> Encrypt(absl::string_view plaintext);
  absl::StatusOr<SecretBytes> Decrypt(absl::string_view message);
  // Encrypt + frame + write; read + unframe + Decrypt.
  absl::Status Send(ByteStream& stream, absl::string_view plaintext);
  absl::StatusOr<SecretBytes> Receive(ByteStream& stream);
  // Noise REKEY of one direction (PROTOCOL.md §10): the sender's RekeySend
  // and the receiver's RekeyReceive must come at the same point of that
  // direction's messages, as the application protocol over the session
  // defines; the nonce carries on. A one-sided rekey makes the next message
  // fail to authenticate, which closes the session.
  absl::Status RekeySend();
  absl::Status RekeyReceive();

  bool authenticated() const { return authenticated_; }
  // True once any operation failed: the session is closed for good.
  bool failed() const { return failed_; }
  const std::string& peer_hostname() const { return peer_hostname_; }
  uint64_t peer_serial() const { return peer_serial_; }
  const std::string& handshake_hash() const { return handshake_hash_; }
  // For MTAs that encrypt by themselves (C ABI key export).
  const CipherState& send_cipher() const { return send_; }
  const CipherState& receive_cipher() const { return receive_; }

 private:
  Session() = default;
  static absl::StatusOr<std::unique_ptr<Session>> FromHandshake(
      NoiseHandshake& hs, bool authenticated, const std::string& peer_hostname,
      uint64_t peer_serial);
  absl::Status Usable() const;
  template <typename T>
  absl::StatusOr<T> Check(absl::StatusOr<T> result);

  CipherState send_, receive_;
  std::string handshake_hash_;
  bool authenticated_ = false;
  std::string peer_hostname_;
  uint64_t peer_serial_ = 0;
  bool failed_ = false;
};

// The Noise prologue of a session with `responder_hostname`.
std::string SessionPrologue(absl::string_view responder_hostname);

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_SESSION_H_
