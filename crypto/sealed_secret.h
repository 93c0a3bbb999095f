// A secret sealed under a passphrase: the on-disk format of key files.
//
// Layout (all integers big-endian):
//   magic "MXKEYSK1" | u8 log2(N) | u8 r | u8 p | salt[16] | nonce[12] |
//   ChaCha20-Poly1305(key = scrypt(passphrase, salt, N, r, p), aad = header)
// The scrypt parameters sit in the header, so tests may use cheap ones. Open
// fails with INVALID_ARGUMENT on a malformed file (or parameters out of
// bounds) and UNAUTHENTICATED on a wrong passphrase or tampering.
#ifndef MXKEY_CRYPTO_SEALED_SECRET_H_
#define MXKEY_CRYPTO_SEALED_SECRET_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace mxkey {

struct ScryptParams {
  uint8_t log2_n = 15;  // N = 32768: about 32 MiB and 0.1 s per unseal.
  uint8_t r = 8;
  uint8_t p = 1;
};

// Derives a 32-byte key. INVALID_ARGUMENT if the parameters are out of the
// bounds that Open accepts (log2_n 1..20, r 1..16, p 1..4).
absl::StatusOr<SecretBytes> ScryptKey(const SecretBytes& passphrase,
                                      absl::string_view salt,
                                      const ScryptParams& params);

absl::StatusOr<std::string> SealSecret(const SecretBytes& passphrase,
                                       const SecretBytes& secret,
                                       const ScryptParams& params);

absl::StatusOr<SecretBytes> OpenSealedSecret(const SecretBytes& passphrase,
                                             absl::string_view sealed);

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_SEALED_SECRET_H_
