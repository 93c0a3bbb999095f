// keyd's TLS identity as an X.509 certificate (OpenSSL: Crypto++ has no
// X.509 or TLS). The certificate is self-signed, for a fresh ECDSA P-256
// key, and carries one non-critical extension (kKeydBindingOid) with bytes
// the caller chooses: keyd puts its org root's signed statement of the TLS
// key there, so a client checks the key against its one trust anchor
// during the handshake, not against the Web PKI (client/keyd_channel.h).
//
// Errors: INTERNAL when OpenSSL fails to make a key or certificate;
// INVALID_ARGUMENT for a certificate that does not parse.
#ifndef MXKEY_CRYPTO_X509_IDENTITY_H_
#define MXKEY_CRYPTO_X509_IDENTITY_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"

namespace mxkey {

// A UUID-based OID (2.25.<uuid>, ITU-T X.667: no registration needed).
inline constexpr char kKeydBindingOid[] =
    "2.25.313489741444759290211978686647960642853";

struct TlsIdentity {
  SecretBytes key_pem;   // PKCS#8 PEM of the private key
  std::string cert_pem;  // the certificate
  std::string spki_der;  // its SubjectPublicKeyInfo
};

// A new key and certificate, valid [not_before, not_after); `binding` gets
// the key's DER SubjectPublicKeyInfo and returns the extension's bytes.
absl::StatusOr<TlsIdentity> MakeTlsIdentity(
    const std::function<absl::StatusOr<std::string>(absl::string_view spki)>&
        binding,
    absl::Time not_before, absl::Time not_after);

// What a peer's certificate says about itself.
struct PresentedCertificate {
  std::string spki_der;
  std::optional<std::string> binding;  // the extension's bytes, if present
  absl::Time not_after;
};

// Parses the first certificate of `pem`.
absl::StatusOr<PresentedCertificate> ReadPresentedCertificate(
    absl::string_view pem);

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_X509_IDENTITY_H_
