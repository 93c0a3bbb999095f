// ChaCha20-Poly1305 (RFC 8439) authenticated encryption.
//
// Open fails with UNAUTHENTICATED when the tag does not match; nothing of the
// plaintext is returned then.
#ifndef MXKEY_CRYPTO_AEAD_H_
#define MXKEY_CRYPTO_AEAD_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace mxkey {

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadNonceSize = 12;
inline constexpr size_t kAeadTagSize = 16;

// ciphertext || 16-byte tag.
absl::StatusOr<std::string> AeadSeal(const SecretBytes& key,
                                     absl::string_view nonce,
                                     absl::string_view aad,
                                     absl::string_view plaintext);

absl::StatusOr<SecretBytes> AeadOpen(const SecretBytes& key,
                                     absl::string_view nonce,
                                     absl::string_view aad,
                                     absl::string_view sealed);

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_AEAD_H_
