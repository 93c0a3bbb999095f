#include "crypto/aead.h"

#include "crypto++/chachapoly.h"
#include "crypto/cryptopp_boundary.h"

namespace mxkey {

using crypto_internal::Bytes;
using crypto_internal::GuardCryptoPP;

namespace {

absl::Status CheckSizes(const SecretBytes& key, absl::string_view nonce) {
  if (key.size() != kAeadKeySize) {
    return absl::InvalidArgumentError("ChaCha20-Poly1305 key must be 32 bytes");
  }
  if (nonce.size() != kAeadNonceSize) {
    return absl::InvalidArgumentError(
        "ChaCha20-Poly1305 nonce must be 12 bytes");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> AeadSeal(const SecretBytes& key,
                                     absl::string_view nonce,
                                     absl::string_view aad,
                                     absl::string_view plaintext) {
  absl::Status sizes = CheckSizes(key, nonce);
  if (!sizes.ok()) return sizes;
  return GuardCryptoPP("AEAD seal", [&]() -> absl::StatusOr<std::string> {
    CryptoPP::ChaCha20Poly1305::Encryption enc;
    enc.SetKeyWithIV(key.data(), key.size(), Bytes(nonce), nonce.size());
    std::string out(plaintext.size() + kAeadTagSize, '\0');
    auto* o = reinterpret_cast<CryptoPP::byte*>(&out[0]);
    enc.EncryptAndAuthenticate(o, o + plaintext.size(), kAeadTagSize,
                               Bytes(nonce), nonce.size(), Bytes(aad),
                               aad.size(), Bytes(plaintext), plaintext.size());
    return out;
  });
}

absl::StatusOr<SecretBytes> AeadOpen(const SecretBytes& key,
                                     absl::string_view nonce,
                                     absl::string_view aad,
                                     absl::string_view sealed) {
  absl::Status sizes = CheckSizes(key, nonce);
  if (!sizes.ok()) return sizes;
  if (sealed.size() < kAeadTagSize) {
    return absl::UnauthenticatedError("sealed data is shorter than its tag");
  }
  return GuardCryptoPP("AEAD open", [&]() -> absl::StatusOr<SecretBytes> {
    size_t n = sealed.size() - kAeadTagSize;
    CryptoPP::ChaCha20Poly1305::Decryption dec;
    dec.SetKeyWithIV(key.data(), key.size(), Bytes(nonce), nonce.size());
    SecretBytes out(n);
    bool ok = dec.DecryptAndVerify(out.data(), Bytes(sealed) + n, kAeadTagSize,
                                   Bytes(nonce), nonce.size(), Bytes(aad),
                                   aad.size(), Bytes(sealed), n);
    if (!ok) {
      return absl::UnauthenticatedError(
          "decryption failed: wrong key or corrupted data");
    }
    return out;
  });
}

}  // namespace mxkey
