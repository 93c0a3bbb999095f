// Ed25519 signing keys and strict signature verification (RFC 8032).
//
// Verification is strict: besides the curve check done by Crypto++, it
// rejects a signature whose scalar S is not below the group order L, which
// Crypto++ 8.7 would accept (S + L verifies). Errors: INVALID_ARGUMENT for
// malformed lengths, UNAUTHENTICATED for a signature that does not verify.
#ifndef MXKEY_CRYPTO_ED25519_H_
#define MXKEY_CRYPTO_ED25519_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace mxkey {

inline constexpr size_t kEd25519PublicKeySize = 32;
inline constexpr size_t kEd25519SeedSize = 32;
inline constexpr size_t kEd25519SignatureSize = 64;

class Ed25519PrivateKey {
 public:
  // A fresh random key.
  static absl::StatusOr<Ed25519PrivateKey> Generate();
  // The key whose RFC 8032 secret (seed) is `seed`; it must be 32 bytes.
  static absl::StatusOr<Ed25519PrivateKey> FromSeed(const SecretBytes& seed);

  const SecretBytes& seed() const { return seed_; }
  const std::string& public_key() const { return public_key_; }

  // The 64-byte signature of `message`.
  absl::StatusOr<std::string> Sign(absl::string_view message) const;

 private:
  Ed25519PrivateKey(SecretBytes seed, std::string public_key)
      : seed_(std::move(seed)), public_key_(std::move(public_key)) {}
  SecretBytes seed_;
  std::string public_key_;
};

// OK if `signature` is a valid, canonical signature of `message` by
// `public_key`.
absl::Status Ed25519Verify(absl::string_view public_key,
                           absl::string_view message,
                           absl::string_view signature);

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_ED25519_H_
