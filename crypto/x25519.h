// X25519 key agreement (RFC 7748).
//
// Agreement validates the peer's public key and rejects small-order points
// and an all-zero shared secret (INVALID_ARGUMENT), so a malicious peer
// cannot force a predictable secret.
#ifndef MXKEY_CRYPTO_X25519_H_
#define MXKEY_CRYPTO_X25519_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace mxkey {

inline constexpr size_t kX25519KeySize = 32;

class X25519PrivateKey {
 public:
  static absl::StatusOr<X25519PrivateKey> Generate();
  // Uses the 32 bytes as given (clamping happens inside the scalar mult).
  static absl::StatusOr<X25519PrivateKey> FromBytes(const SecretBytes& key);

  const SecretBytes& private_key() const { return private_key_; }
  const std::string& public_key() const { return public_key_; }

  // The 32-byte shared secret with `peer_public_key`.
  absl::StatusOr<SecretBytes> Agree(absl::string_view peer_public_key) const;

 private:
  X25519PrivateKey(SecretBytes priv, std::string pub)
      : private_key_(std::move(priv)), public_key_(std::move(pub)) {}
  SecretBytes private_key_;
  std::string public_key_;
};

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_X25519_H_
