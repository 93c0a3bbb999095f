#include "crypto/sealed_secret.h"

#include "crypto++/scrypt.h"
#include "crypto/aead.h"
#include "crypto/cryptopp_boundary.h"
#include "crypto/random.h"

namespace mxkey {

using crypto_internal::Bytes;

namespace {

constexpr absl::string_view kMagic = "MXKEYSK1";
constexpr size_t kSaltSize = 16;
constexpr size_t kHeaderSize = 8 + 3 + kSaltSize + kAeadNonceSize;

absl::Status CheckParams(const ScryptParams& p) {
  if (p.log2_n < 1 || p.log2_n > 20 || p.r < 1 || p.r > 16 || p.p < 1 ||
      p.p > 4) {
    return absl::InvalidArgumentError(
        "scrypt parameters out of bounds: expected log2(N) 1..20, r 1..16, "
        "p 1..4");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SecretBytes> ScryptKey(const SecretBytes& passphrase,
                                      absl::string_view salt,
                                      const ScryptParams& params) {
  absl::Status ok = CheckParams(params);
  if (!ok.ok()) return ok;
  return crypto_internal::GuardCryptoPP(
      "scrypt", [&]() -> absl::StatusOr<SecretBytes> {
        SecretBytes key(kAeadKeySize);
        CryptoPP::Scrypt scrypt;
        scrypt.DeriveKey(key.data(), key.size(), passphrase.data(),
                         passphrase.size(), Bytes(salt), salt.size(),
                         CryptoPP::word64{1} << params.log2_n, params.r,
                         params.p);
        return key;
      });
}

absl::StatusOr<std::string> SealSecret(const SecretBytes& passphrase,
                                       const SecretBytes& secret,
                                       const ScryptParams& params) {
  absl::StatusOr<std::string> salt = RandomBytes(kSaltSize);
  if (!salt.ok()) return salt.status();
  absl::StatusOr<std::string> nonce = RandomBytes(kAeadNonceSize);
  if (!nonce.ok()) return nonce.status();
  absl::StatusOr<SecretBytes> key = ScryptKey(passphrase, *salt, params);
  if (!key.ok()) return key.status();

  std::string header(kMagic);
  header.push_back(static_cast<char>(params.log2_n));
  header.push_back(static_cast<char>(params.r));
  header.push_back(static_cast<char>(params.p));
  header += *salt;
  header += *nonce;
  absl::StatusOr<std::string> sealed =
      AeadSeal(*key, *nonce, header, secret.view());
  if (!sealed.ok()) return sealed.status();
  return header + *sealed;
}

absl::StatusOr<SecretBytes> OpenSealedSecret(const SecretBytes& passphrase,
                                             absl::string_view sealed) {
  if (sealed.size() < kHeaderSize + kAeadTagSize ||
      sealed.substr(0, kMagic.size()) != kMagic) {
    return absl::InvalidArgumentError(
        "not an mxkey sealed key file (expected magic MXKEYSK1 and a complete "
        "header)");
  }
  ScryptParams params;
  params.log2_n = static_cast<uint8_t>(sealed[8]);
  params.r = static_cast<uint8_t>(sealed[9]);
  params.p = static_cast<uint8_t>(sealed[10]);
  absl::string_view salt = sealed.substr(11, kSaltSize);
  absl::string_view nonce = sealed.substr(11 + kSaltSize, kAeadNonceSize);
  absl::StatusOr<SecretBytes> key = ScryptKey(passphrase, salt, params);
  if (!key.ok()) return key.status();
  absl::StatusOr<SecretBytes> secret =
      AeadOpen(*key, nonce, sealed.substr(0, kHeaderSize),
               sealed.substr(kHeaderSize));
  if (!secret.ok()) {
    return absl::UnauthenticatedError(
        "cannot open key file: wrong passphrase or the file was modified");
  }
  return secret;
}

}  // namespace mxkey
