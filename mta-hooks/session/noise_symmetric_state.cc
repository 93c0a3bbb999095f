#include "mta-hooks/session/noise_symmetric_state.h"

#include "crypto/sha256.h"

namespace mxkey {
namespace {

// HKDF of the Noise spec (§4.3) with two 32-byte outputs. It is exactly
// RFC 5869 HKDF-SHA-256 with the chaining key as salt, empty info and 64
// bytes of output, which one keyed HMAC computes (no per-output rekeying).
std::pair<SecretBytes, SecretBytes> NoiseHkdf2(const SecretBytes& chaining_key,
                                               const SecretBytes& ikm) {
  absl::StatusOr<SecretBytes> out =
      HkdfSha256(ikm, chaining_key.view(), "", 2 * kSha256Size);
  // Cannot fail: the length is fixed and valid.
  SecretBytes out1(out->view().substr(0, kSha256Size));
  SecretBytes out2(out->view().substr(kSha256Size));
  return {std::move(out1), std::move(out2)};
}

}  // namespace

SymmetricState::SymmetricState(absl::string_view protocol_name) {
  if (protocol_name.size() <= kSha256Size) {
    h_ = std::string(protocol_name);
    h_.resize(kSha256Size, '\0');
  } else {
    h_ = Sha256(protocol_name);
  }
  ck_ = SecretBytes(h_);
}

void SymmetricState::MixKey(const SecretBytes& input_key_material) {
  auto [ck, temp_k] = NoiseHkdf2(ck_, input_key_material);
  ck_ = std::move(ck);
  cipher_.InitializeKey(std::move(temp_k));
}

void SymmetricState::MixHash(absl::string_view data) {
  Sha256Hasher hasher;
  hasher.Update(h_);
  hasher.Update(data);
  h_ = hasher.Finish();
}

absl::StatusOr<std::string> SymmetricState::EncryptAndHash(
    absl::string_view plaintext) {
  absl::StatusOr<std::string> ciphertext = cipher_.EncryptWithAd(h_, plaintext);
  if (ciphertext.ok()) MixHash(*ciphertext);
  return ciphertext;
}

absl::StatusOr<SecretBytes> SymmetricState::DecryptAndHash(
    absl::string_view ciphertext) {
  absl::StatusOr<SecretBytes> plaintext = cipher_.DecryptWithAd(h_, ciphertext);
  if (plaintext.ok()) MixHash(ciphertext);
  return plaintext;
}

std::pair<CipherState, CipherState> SymmetricState::Split() const {
  auto [k1, k2] = NoiseHkdf2(ck_, SecretBytes());
  CipherState c1, c2;
  c1.InitializeKey(std::move(k1));
  c2.InitializeKey(std::move(k2));
  return {std::move(c1), std::move(c2)};
}

}  // namespace mxkey
