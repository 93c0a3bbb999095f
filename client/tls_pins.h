// TLS key pins of verified answers, and the text forms MTAs and DNS use.
//
// A pin is the SHA-256 of a TLS key's DER SubjectPublicKeyInfo (32 bytes):
// Postfix's `fingerprint` level with smtp_tls_fingerprint_digest = sha256
// and pubkey matching, DANE TLSA "3 1 1", and mxkey certificates all name a
// key this way. Only usable certificates (active, or pre-published next)
// contribute pins; revoked and expired ones never do.
#ifndef MXKEY_CLIENT_TLS_PINS_H_
#define MXKEY_CLIENT_TLS_PINS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/answer_verifier.h"

namespace mxkey {

// One host's pins from its usable certificates, deduplicated.
struct HostPins {
  std::string hostname;
  std::vector<std::string> pins;  // raw 32-byte digests
};

// The usable pins of every host the answer names, hosts in answer order.
// Hosts with no usable certificate are left out.
std::vector<HostPins> UsableTlsPins(const VerifiedAnswer& answer);

// Whether a usable (active or next) certificate of `answer` carries `pin`
// (32 raw bytes); AnyCertificateHasPin counts every certificate.
bool UsableCertificateHasPin(const VerifiedAnswer& answer,
                             absl::string_view pin);
bool AnyCertificateHasPin(const VerifiedAnswer& answer, absl::string_view pin);

// "AB:CD:..." (upper-case, colon-separated), as Postfix prints and matches.
std::string ColonHex(absl::string_view bytes);

// Parses a 32-byte pin in colon hex, either case ("ab:CD:..."), as
// check_ccert_access sends it. INVALID_ARGUMENT names what was wrong.
absl::StatusOr<std::string> ParseColonHexPin(absl::string_view text);

}  // namespace mxkey

#endif  // MXKEY_CLIENT_TLS_PINS_H_
