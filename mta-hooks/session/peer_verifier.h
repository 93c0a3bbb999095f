// Who may be on the other end of a keyed session.
//
// PeerKeyVerifier decides whether a Noise static key is the certified,
// unrevoked X25519 key of the host it claims to be; KeyClientPeerVerifier
// answers that through KeyClient (own org, or a federated one through the
// own keyd). Errors: those of the lookup (revoked, unknown, stale, ...,
// see client/lookup_error.h) with the host named, or PERMISSION_DENIED when
// the key or serial does not match what the host's certificate says.
#ifndef MXKEY_MTA_HOOKS_SESSION_PEER_VERIFIER_H_
#define MXKEY_MTA_HOOKS_SESSION_PEER_VERIFIER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/key_client.h"

namespace mxkey {

class PeerKeyVerifier {
 public:
  virtual ~PeerKeyVerifier() = default;
  virtual absl::Status VerifyPeer(const std::string& hostname, uint64_t serial,
                                  absl::string_view static_key) = 0;
};

class KeyClientPeerVerifier : public PeerKeyVerifier {
 public:
  explicit KeyClientPeerVerifier(KeyClient* client) : client_(client) {}
  absl::Status VerifyPeer(const std::string& hostname, uint64_t serial,
                          absl::string_view static_key) override;

 private:
  KeyClient* client_;
};

// The X25519 key to use when initiating to a host: that of its active
// certificate, else of its next one. NOT_FOUND if it has neither.
absl::StatusOr<std::string> ResponderKey(const VerifiedAnswer& answer);

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_PEER_VERIFIER_H_
