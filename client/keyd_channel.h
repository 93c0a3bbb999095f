// How clients (KeyClient, keyctl) and peer keyds reach a keyd: over TLS,
// with keyd's TLS key checked during the handshake against the org root
// the caller already trusts (its fingerprint), never against the Web PKI;
// or in plaintext where the operator asks for it (loopback and Unix
// sockets by default, or an explicit "off"). The signatures of every answer
// hold with no transport security at all; TLS keeps lookups private and an
// on-path attacker from trying.
//
// keyd's certificate carries a KeydTlsBinding (crypto/x509_identity.h): the
// root public key and the root's signed KeydTlsKeyBody naming the TLS key.
// CheckKeydCertificate fails with UNAUTHENTICATED (no binding, another
// root, bad signature, another key, outside validity) or INVALID_ARGUMENT
// (a certificate that does not parse); the handshake then fails, and the
// call with it (UNAVAILABLE), before any request is sent.
#ifndef MXKEY_CLIENT_KEYD_CHANNEL_H_
#define MXKEY_CLIENT_KEYD_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"

namespace mxkey {

enum class KeydTransport {
  kAuto,       // TLS, except for loopback addresses and unix: endpoints
  kTls,        // TLS always (not for unix: endpoints)
  kPlaintext,  // never TLS
};

// "auto", "on" or "off"; INVALID_ARGUMENT otherwise.
absl::StatusOr<KeydTransport> ParseKeydTransport(absl::string_view text);

// unix:..., localhost, 127.0.0.0/8 and [::1] endpoints.
bool IsLocalEndpoint(absl::string_view endpoint);
bool UsesTls(absl::string_view endpoint, KeydTransport transport);

// Checks keyd's certificate (PEM) against the root with `root_fingerprint`
// ("sha256:..."), at `now`. An empty fingerprint accepts any root whose
// binding is valid (for keyd's AddPeer, which compares the root it learns
// with the admin's fingerprint afterwards). On success `*root` (if given)
// is the root public key.
absl::Status CheckKeydCertificate(absl::string_view pem,
                                  const std::string& root_fingerprint,
                                  absl::Time now, std::string* root = nullptr);

// A channel to `endpoint` with the transport above. `on_root`, if given,
// hears the root public key of every TLS handshake that passed the check.
std::shared_ptr<grpc::Channel> KeydChannel(
    const std::string& endpoint, KeydTransport transport,
    const std::string& root_fingerprint, Clock* clock,
    std::function<void(const std::string& root)> on_root = nullptr);

}  // namespace mxkey

#endif  // MXKEY_CLIENT_KEYD_CHANNEL_H_
