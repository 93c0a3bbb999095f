#include "crypto/ed25519.h"

#include "crypto++/osrng.h"
#include "crypto++/xed25519.h"
#include "crypto/cryptopp_boundary.h"
#include "crypto/random.h"

namespace mxkey {

using crypto_internal::Bytes;
using crypto_internal::GuardCryptoPP;

namespace {

// The group order L = 2^252 + 27742317777372353535851937790883648493,
// little-endian.
constexpr uint8_t kGroupOrder[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
    0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

// True if the little-endian scalar `s` is below L.
bool ScalarIsCanonical(const uint8_t* s) {
  for (int i = 31; i >= 0; --i) {
    if (s[i] < kGroupOrder[i]) return true;
    if (s[i] > kGroupOrder[i]) return false;
  }
  return false;  // equal to L
}

}  // namespace

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::Generate() {
  absl::StatusOr<SecretBytes> seed = RandomSecret(kEd25519SeedSize);
  if (!seed.ok()) return seed.status();
  return FromSeed(*seed);
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromSeed(
    const SecretBytes& seed) {
  if (seed.size() != kEd25519SeedSize) {
    return absl::InvalidArgumentError(
        "Ed25519 private key seed must be 32 bytes");
  }
  return GuardCryptoPP(
      "Ed25519 key", [&]() -> absl::StatusOr<Ed25519PrivateKey> {
        CryptoPP::ed25519Signer signer(seed.data());
        const auto& key = static_cast<const CryptoPP::ed25519PrivateKey&>(
            signer.GetPrivateKey());
        std::string pub(reinterpret_cast<const char*>(key.GetPublicKeyBytePtr()),
                        kEd25519PublicKeySize);
        return Ed25519PrivateKey(seed, std::move(pub));
      });
}

absl::StatusOr<std::string> Ed25519PrivateKey::Sign(
    absl::string_view message) const {
  return GuardCryptoPP("Ed25519 sign", [&]() -> absl::StatusOr<std::string> {
    CryptoPP::ed25519Signer signer(Bytes(public_key_), seed_.data());
    CryptoPP::RandomNumberGenerator& rng = CryptoPP::NullRNG();
    std::string sig(kEd25519SignatureSize, '\0');
    signer.SignMessage(rng, Bytes(message), message.size(),
                       reinterpret_cast<CryptoPP::byte*>(&sig[0]));
    return sig;
  });
}

absl::Status Ed25519Verify(absl::string_view public_key,
                           absl::string_view message,
                           absl::string_view signature) {
  if (public_key.size() != kEd25519PublicKeySize) {
    return absl::InvalidArgumentError("Ed25519 public key must be 32 bytes");
  }
  if (signature.size() != kEd25519SignatureSize) {
    return absl::InvalidArgumentError("Ed25519 signature must be 64 bytes");
  }
  if (!ScalarIsCanonical(Bytes(signature) + 32)) {
    return absl::UnauthenticatedError(
        "Ed25519 signature is not canonical (S >= L)");
  }
  return GuardCryptoPP("Ed25519 verify", [&]() -> absl::Status {
    CryptoPP::ed25519Verifier verifier(Bytes(public_key));
    if (!verifier.VerifyMessage(Bytes(message), message.size(),
                                Bytes(signature), signature.size())) {
      return absl::UnauthenticatedError("Ed25519 signature does not verify");
    }
    return absl::OkStatus();
  });
}

}  // namespace mxkey
