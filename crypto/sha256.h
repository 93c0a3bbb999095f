// SHA-256, HMAC-SHA-256 and HKDF-SHA-256 (RFC 5869).
#ifndef MXKEY_CRYPTO_SHA256_H_
#define MXKEY_CRYPTO_SHA256_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace mxkey {

inline constexpr size_t kSha256Size = 32;

// The 32-byte digest of `data`. Cannot fail.
std::string Sha256(absl::string_view data);

// Incremental SHA-256 for digests over several pieces.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  void Update(absl::string_view data);
  std::string Finish();

 private:
  struct State;
  State* state_;
};

SecretBytes HmacSha256(const SecretBytes& key, absl::string_view data);

// HKDF extract-and-expand. INVALID_ARGUMENT if `length` > 255 * 32.
absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& input_key,
                                       absl::string_view salt,
                                       absl::string_view info, size_t length);

// "sha256:" + lower-case hex of SHA-256(public_key): the canonical text form
// of a key fingerprint.
std::string KeyFingerprint(absl::string_view public_key);

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_SHA256_H_
