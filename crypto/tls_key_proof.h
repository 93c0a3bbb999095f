// Proof that a host holds the TLS private key whose pin it asks keyd to
// certify (trust core III #7: pins were claimed without it, so any
// enrolled host could claim another MX's public TLS key).
//
// The host signs the context "mxkey/v1 tls-key-proof\0" followed by the
// bytes of its EnrollmentBody or RotationBody with its TLS key, and sends
// the key's DER SubjectPublicKeyInfo with the signature. Accepted keys and
// algorithms (docs/PROTOCOL.md 8.2): RSA of 2048 to 8192 bits with
// RSASSA-PKCS1-v1_5 and SHA-256; ECDSA on P-256, P-384 or P-521 with
// SHA-256 (DER-encoded signature); Ed25519 (pure). OpenSSL does the work,
// as for keyd's own TLS (Crypto++ reads no PEM private keys of these
// kinds). Errors: INVALID_ARGUMENT for a key that does not parse or of
// another kind or size; PERMISSION_DENIED for a signature that does not
// verify; INTERNAL when OpenSSL fails otherwise.
#ifndef MXKEY_CRYPTO_TLS_KEY_PROOF_H_
#define MXKEY_CRYPTO_TLS_KEY_PROOF_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxkey {

// The largest SPKI and signature keyd accepts (RSA 8192: 1,062 and 1,024
// bytes).
inline constexpr size_t kMaxTlsSpkiBytes = 2048;
inline constexpr size_t kMaxTlsKeySignatureBytes = 1024;

// A TLS private key that signs proofs. Move-only; the key is freed (and
// OpenSSL clears it) when the signer goes.
class TlsKeySigner {
 public:
  // From a PEM private key (PKCS#8, or the traditional RSA/EC forms), as
  // MTAs keep them; unencrypted.
  static absl::StatusOr<TlsKeySigner> FromPem(absl::string_view pem);
  // A new ECDSA P-256 key (tests, examples).
  static absl::StatusOr<TlsKeySigner> GenerateP256();

  TlsKeySigner(TlsKeySigner&&) noexcept;
  TlsKeySigner& operator=(TlsKeySigner&&) noexcept;
  ~TlsKeySigner();

  // DER SubjectPublicKeyInfo of the key, and its pin (SHA-256 of that).
  const std::string& spki_der() const { return spki_der_; }
  std::string pin() const;
  // The proof for `body` (an EnrollmentBody's or RotationBody's bytes).
  absl::StatusOr<std::string> SignProof(absl::string_view body) const;

 private:
  struct Key;
  TlsKeySigner(std::unique_ptr<Key> key, std::string spki);
  std::unique_ptr<Key> key_;
  std::string spki_der_;
};

// Checks `signature` over the proof of `body` by the key `spki_der`.
absl::Status VerifyTlsKeyProof(absl::string_view spki_der,
                               absl::string_view body,
                               absl::string_view signature);

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_TLS_KEY_PROOF_H_
