// The Noise CipherState (Noise spec rev. 34, §5.1) for ChaChaPoly.
//
// Holds a key and a 64-bit nonce. Fails with:
//   RESOURCE_EXHAUSTED  the nonce reached 2^64-1 (reserved by the spec); the
//                       session must end, nothing was encrypted
//   UNAUTHENTICATED     a ciphertext did not authenticate; the nonce is not
//                       advanced and no plaintext is returned
#ifndef MXKEY_MTA_HOOKS_SESSION_NOISE_CIPHER_STATE_H_
#define MXKEY_MTA_HOOKS_SESSION_NOISE_CIPHER_STATE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace mxkey {

class CipherState {
 public:
  static constexpr uint64_t kReservedNonce = ~uint64_t{0};

  // An empty key means "no key": Encrypt/Decrypt pass data through, as the
  // spec wants before the first MixKey.
  void InitializeKey(SecretBytes key);
  bool HasKey() const { return !key_.empty(); }
  void SetNonce(uint64_t nonce) { nonce_ = nonce; }
  uint64_t nonce() const { return nonce_; }

  absl::StatusOr<std::string> EncryptWithAd(absl::string_view ad,
                                            absl::string_view plaintext);
  absl::StatusOr<SecretBytes> DecryptWithAd(absl::string_view ad,
                                            absl::string_view ciphertext);
  // REKEY(k): the first 32 bytes of ENCRYPT(k, 2^64-1, "", zeros[32]).
  absl::Status Rekey();

  // The raw key, for MTAs that encrypt on their own (C ABI key export).
  const SecretBytes& key() const { return key_; }

 private:
  SecretBytes key_;
  uint64_t nonce_ = 0;
};

// The 12-byte ChaChaPoly nonce of the spec: 4 zero bytes, then n little-endian.
std::string NoiseNonce(uint64_t n);

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_NOISE_CIPHER_STATE_H_
