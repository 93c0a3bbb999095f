#include "crypto/random.h"

#include "crypto++/osrng.h"
#include "crypto/cryptopp_boundary.h"

namespace mxkey {

using crypto_internal::GuardCryptoPP;

namespace {

// One OS generator per thread: opening the OS source on every call costs
// more than an X25519 key generation's overhead budget.
CryptoPP::NonblockingRng& ThreadRng() {
  thread_local CryptoPP::NonblockingRng rng;
  return rng;
}

}  // namespace

absl::StatusOr<SecretBytes> RandomSecret(size_t size) {
  return GuardCryptoPP("random", [&]() -> absl::StatusOr<SecretBytes> {
    SecretBytes out(size);
    ThreadRng().GenerateBlock(out.data(), size);
    return out;
  });
}

absl::StatusOr<std::string> RandomBytes(size_t size) {
  return GuardCryptoPP("random", [&]() -> absl::StatusOr<std::string> {
    std::string out(size, '\0');
    ThreadRng().GenerateBlock(reinterpret_cast<CryptoPP::byte*>(&out[0]),
                              size);
    return out;
  });
}

}  // namespace mxkey
