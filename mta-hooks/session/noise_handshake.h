// The Noise HandshakeState (Noise spec rev. 34, §5.3) for
// 25519/ChaChaPoly/SHA256, driven by a NoisePattern.
//
// Any failure poisons the handshake: every later call fails with
// FAILED_PRECONDITION, so a caller cannot continue after a bad message.
// Errors:
//   INVALID_ARGUMENT     wrong key sizes, a message longer than 65,535 bytes
//                        or too short for its tokens, an invalid DH key
//   UNAUTHENTICATED      a payload or static key did not decrypt
//   FAILED_PRECONDITION  out of turn, after completion or after a failure
#ifndef MXKEY_MTA_HOOKS_SESSION_NOISE_HANDSHAKE_H_
#define MXKEY_MTA_HOOKS_SESSION_NOISE_HANDSHAKE_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"
#include "crypto/x25519.h"
#include "mta-hooks/session/noise_cipher_state.h"
#include "mta-hooks/session/noise_pattern.h"
#include "mta-hooks/session/noise_symmetric_state.h"

namespace mxkey {

inline constexpr size_t kNoiseMaxMessageSize = 65535;

struct NoiseHandshakeConfig {
  const NoisePattern* pattern = nullptr;
  bool initiator = false;
  std::string prologue;
  std::optional<X25519PrivateKey> static_key;  // s, if the pattern uses it
  std::string remote_static_key;               // rs, if known in advance
};

// The result of a completed handshake.
struct NoiseTransport {
  CipherState send;
  CipherState receive;
  std::string handshake_hash;
  std::string remote_static_key;  // empty if the pattern has none
};

class NoiseHandshake {
 public:
  static absl::StatusOr<NoiseHandshake> Create(NoiseHandshakeConfig config);

  // True when the next message is ours to write.
  bool IsMyTurn() const;
  bool IsComplete() const { return next_message_ == pattern_->messages.size(); }

  absl::StatusOr<std::string> WriteMessage(absl::string_view payload);
  absl::StatusOr<SecretBytes> ReadMessage(absl::string_view message);

  // The remote static key, once received (or given in advance).
  const std::string& remote_static_key() const { return rs_; }
  // The remote ephemeral key, once received (the replay guard's key).
  const std::string& remote_ephemeral_key() const { return re_; }
  const std::string& handshake_hash() const { return symmetric_.handshake_hash(); }

  // FAILED_PRECONDITION unless complete. Consumes the handshake.
  absl::StatusOr<NoiseTransport> Split();

 private:
  friend class NoiseHandshakeTestAccess;  // fixes ephemeral keys for vectors

  NoiseHandshake(NoiseHandshakeConfig config);
  absl::Status MixDh(const X25519PrivateKey& local, absl::string_view remote);
  absl::Status MixDhToken(NoiseToken t);
  absl::Status Fail(absl::Status status);
  absl::StatusOr<X25519PrivateKey> NewEphemeral();
  absl::Status CheckUsable(bool writing) const;

  const NoisePattern* pattern_;
  bool initiator_;
  SymmetricState symmetric_;
  std::optional<X25519PrivateKey> s_, e_;
  std::string rs_, re_;
  size_t next_message_ = 0;
  bool failed_ = false;
  std::optional<X25519PrivateKey> fixed_ephemeral_;  // tests only
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_NOISE_HANDSHAKE_H_
