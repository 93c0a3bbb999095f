#include "crypto/random.h"

#include "crypto++/osrng.h"
#include "crypto/cryptopp_boundary.h"

namespace mxkey {

using crypto_internal::GuardCryptoPP;

absl::StatusOr<SecretBytes> RandomSecret(size_t size) {
  return GuardCryptoPP("random", [&]() -> absl::StatusOr<SecretBytes> {
    SecretBytes out(size);
    CryptoPP::OS_GenerateRandomBlock(/*blocking=*/false, out.data(), size);
    return out;
  });
}

absl::StatusOr<std::string> RandomBytes(size_t size) {
  return GuardCryptoPP("random", [&]() -> absl::StatusOr<std::string> {
    std::string out(size, '\0');
    CryptoPP::OS_GenerateRandomBlock(
        false, reinterpret_cast<CryptoPP::byte*>(&out[0]), size);
    return out;
  });
}

}  // namespace mxkey
