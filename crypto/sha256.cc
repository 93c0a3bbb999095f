#include "crypto/sha256.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto++/hkdf.h"
#include "crypto++/hmac.h"
#include "crypto++/sha.h"
#include "crypto/cryptopp_boundary.h"

namespace mxkey {

using crypto_internal::Bytes;

std::string Sha256(absl::string_view data) {
  Sha256Hasher h;
  h.Update(data);
  return h.Finish();
}

struct Sha256Hasher::State {
  CryptoPP::SHA256 hash;
};

Sha256Hasher::Sha256Hasher() : state_(new State) {}
Sha256Hasher::~Sha256Hasher() { delete state_; }

void Sha256Hasher::Update(absl::string_view data) {
  state_->hash.Update(Bytes(data), data.size());
}

std::string Sha256Hasher::Finish() {
  std::string out(kSha256Size, '\0');
  state_->hash.Final(reinterpret_cast<CryptoPP::byte*>(&out[0]));
  return out;
}

SecretBytes HmacSha256(const SecretBytes& key, absl::string_view data) {
  CryptoPP::HMAC<CryptoPP::SHA256> mac(key.data(), key.size());
  mac.Update(Bytes(data), data.size());
  SecretBytes out(kSha256Size);
  mac.Final(out.data());
  return out;
}

absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& input_key,
                                       absl::string_view salt,
                                       absl::string_view info, size_t length) {
  if (length == 0 || length > 255 * kSha256Size) {
    return absl::InvalidArgumentError(
        "HKDF-SHA-256 output length must be between 1 and 8160 bytes");
  }
  return crypto_internal::GuardCryptoPP(
      "HKDF", [&]() -> absl::StatusOr<SecretBytes> {
        SecretBytes out(length);
        CryptoPP::HKDF<CryptoPP::SHA256> hkdf;
        hkdf.DeriveKey(out.data(), length, input_key.data(), input_key.size(),
                       Bytes(salt), salt.size(), Bytes(info), info.size());
        return out;
      });
}

std::string KeyFingerprint(absl::string_view public_key) {
  return absl::StrCat("sha256:", absl::BytesToHexString(Sha256(public_key)));
}

}  // namespace mxkey
