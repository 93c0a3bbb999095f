// Cryptographically secure random bytes from the operating system.
#ifndef MXKEY_CRYPTO_RANDOM_H_
#define MXKEY_CRYPTO_RANDOM_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace mxkey {

// Fails only if the OS random source fails (INTERNAL).
absl::StatusOr<SecretBytes> RandomSecret(size_t size);
absl::StatusOr<std::string> RandomBytes(size_t size);

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_RANDOM_H_
