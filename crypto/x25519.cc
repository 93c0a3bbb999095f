#include "crypto/x25519.h"

#include "crypto++/osrng.h"
#include "crypto++/xed25519.h"
#include "crypto/cryptopp_boundary.h"
#include "crypto/random.h"

namespace mxkey {

using crypto_internal::Bytes;
using crypto_internal::GuardCryptoPP;

absl::StatusOr<X25519PrivateKey> X25519PrivateKey::Generate() {
  absl::StatusOr<SecretBytes> key = RandomSecret(kX25519KeySize);
  if (!key.ok()) return key.status();
  return FromBytes(*key);
}

absl::StatusOr<X25519PrivateKey> X25519PrivateKey::FromBytes(
    const SecretBytes& key) {
  if (key.size() != kX25519KeySize) {
    return absl::InvalidArgumentError("X25519 private key must be 32 bytes");
  }
  return GuardCryptoPP("X25519 key", [&]() -> absl::StatusOr<X25519PrivateKey> {
    CryptoPP::x25519 domain;
    CryptoPP::RandomNumberGenerator& rng = CryptoPP::NullRNG();
    std::string pub(kX25519KeySize, '\0');
    domain.GeneratePublicKey(rng, key.data(),
                             reinterpret_cast<CryptoPP::byte*>(&pub[0]));
    return X25519PrivateKey(key, std::move(pub));
  });
}

absl::StatusOr<SecretBytes> X25519PrivateKey::Agree(
    absl::string_view peer_public_key) const {
  if (peer_public_key.size() != kX25519KeySize) {
    return absl::InvalidArgumentError("X25519 public key must be 32 bytes");
  }
  return GuardCryptoPP("X25519 agree", [&]() -> absl::StatusOr<SecretBytes> {
    CryptoPP::x25519 domain;
    SecretBytes shared(kX25519KeySize);
    if (!domain.Agree(shared.data(), private_key_.data(),
                      Bytes(peer_public_key), /*validateOtherPublicKey=*/true)) {
      return absl::InvalidArgumentError(
          "X25519 peer public key is invalid (small order)");
    }
    uint8_t any = 0;
    for (size_t i = 0; i < shared.size(); ++i) any |= shared.data()[i];
    if (any == 0) {
      return absl::InvalidArgumentError("X25519 shared secret is all zero");
    }
    return shared;
  });
}

}  // namespace mxkey
