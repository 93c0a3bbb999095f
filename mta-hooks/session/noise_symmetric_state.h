// The Noise SymmetricState (Noise spec rev. 34, §5.2) with SHA-256: the
// chaining key, the handshake hash and the handshake CipherState.
//
// Fails only where its CipherState fails (see noise_cipher_state.h).
#ifndef MXKEY_MTA_HOOKS_SESSION_NOISE_SYMMETRIC_STATE_H_
#define MXKEY_MTA_HOOKS_SESSION_NOISE_SYMMETRIC_STATE_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"
#include "mta-hooks/session/noise_cipher_state.h"

namespace mxkey {

class SymmetricState {
 public:
  explicit SymmetricState(absl::string_view protocol_name);

  void MixKey(const SecretBytes& input_key_material);
  void MixHash(absl::string_view data);
  absl::StatusOr<std::string> EncryptAndHash(absl::string_view plaintext);
  absl::StatusOr<SecretBytes> DecryptAndHash(absl::string_view ciphertext);
  // The two transport CipherStates: first for initiator→responder.
  std::pair<CipherState, CipherState> Split() const;

  bool HasKey() const { return cipher_.HasKey(); }
  const std::string& handshake_hash() const { return h_; }

 private:
  SecretBytes ck_;
  std::string h_;
  CipherState cipher_;
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_NOISE_SYMMETRIC_STATE_H_
