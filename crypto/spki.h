// TLS key pins: SubjectPublicKeyInfo extraction and fingerprints.
//
// A pin is SHA-256 over the DER SubjectPublicKeyInfo, cut verbatim from an
// X.509 certificate (DANE 3 1 1, Postfix smtp_tls_fingerprint_digest=sha256).
// Crypto++ has no X.509 parser, so a small, bounds-checked DER walker finds
// the SPKI. It fails with INVALID_ARGUMENT on anything it cannot parse.
#ifndef MXKEY_CRYPTO_SPKI_H_
#define MXKEY_CRYPTO_SPKI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxkey {

// DER SubjectPublicKeyInfo of a 32-byte Ed25519 public key (RFC 8410).
absl::StatusOr<std::string> Ed25519SpkiDer(absl::string_view public_key);

// The SPKI bytes inside a DER X.509 certificate; a view into `cert_der`.
absl::StatusOr<absl::string_view> SpkiFromCertificateDer(
    absl::string_view cert_der);

// DER bytes of every "CERTIFICATE" block in a PEM text, in order.
// INVALID_ARGUMENT if there is none or a block is not valid base64.
absl::StatusOr<std::vector<std::string>> CertificatesFromPem(
    absl::string_view pem);

// SHA-256 of the SPKI of the first certificate in `pem` (32 bytes).
absl::StatusOr<std::string> TlsPinFromPem(absl::string_view pem);

// Postfix's form of a pin: upper-case hex bytes joined by ':'.
std::string PostfixFingerprint(absl::string_view pin);

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_SPKI_H_
