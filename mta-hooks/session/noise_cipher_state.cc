#include "mta-hooks/session/noise_cipher_state.h"

#include "crypto/aead.h"

namespace mxkey {

std::string NoiseNonce(uint64_t n) {
  std::string nonce(kAeadNonceSize, '\0');
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<char>(n >> (8 * i));
  return nonce;
}

void CipherState::InitializeKey(SecretBytes key) {
  key_ = std::move(key);
  nonce_ = 0;
}

absl::StatusOr<std::string> CipherState::EncryptWithAd(
    absl::string_view ad, absl::string_view plaintext) {
  if (!HasKey()) return std::string(plaintext);
  if (nonce_ == kReservedNonce) {
    return absl::ResourceExhaustedError(
        "Noise nonce exhausted (2^64-1 messages): the session must end");
  }
  absl::StatusOr<std::string> sealed =
      AeadSeal(key_, NoiseNonce(nonce_), ad, plaintext);
  if (sealed.ok()) ++nonce_;
  return sealed;
}

absl::StatusOr<SecretBytes> CipherState::DecryptWithAd(
    absl::string_view ad, absl::string_view ciphertext) {
  if (!HasKey()) return SecretBytes(ciphertext);
  if (nonce_ == kReservedNonce) {
    return absl::ResourceExhaustedError(
        "Noise nonce exhausted (2^64-1 messages): the session must end");
  }
  absl::StatusOr<SecretBytes> opened =
      AeadOpen(key_, NoiseNonce(nonce_), ad, ciphertext);
  if (opened.ok()) ++nonce_;
  return opened;
}

absl::Status CipherState::Rekey() {
  if (!HasKey()) {
    return absl::FailedPreconditionError("Noise rekey without a key");
  }
  absl::StatusOr<std::string> sealed = AeadSeal(
      key_, NoiseNonce(kReservedNonce), "", std::string(kAeadKeySize, '\0'));
  if (!sealed.ok()) return sealed.status();
  key_ = SecretBytes(absl::string_view(*sealed).substr(0, kAeadKeySize));
  SecureWipe(&(*sealed)[0], sealed->size());
  return absl::OkStatus();
}

}  // namespace mxkey
