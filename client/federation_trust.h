// The peer organizations a client trusts, from its own root's signed
// federation bundle (DESIGN.md §3).
//
// Verify checks the bundle against the own root public key (never an
// issuing key), its validity, and that its version is not below the highest
// one the client has seen (no rollback). Errors: UNAUTHENTICATED (bad
// signature, not signed by the own root), FAILED_PRECONDITION ("expired",
// "rollback"), INVALID_ARGUMENT (malformed bundle: bad suffix, bad key, a
// suffix claimed twice, a peer with the own root).
#ifndef MXKEY_CLIENT_FEDERATION_TRUST_H_
#define MXKEY_CLIENT_FEDERATION_TRUST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/answer_verifier.h"
#include "proto/mxkey/v1/objects.pb.h"

namespace mxkey {

struct TrustedPeer {
  std::string org;
  std::vector<std::string> domain_suffixes;  // canonical
  std::string endpoint;
  std::string root_public_key;  // 32 bytes
};

// A peer may certify only what is under its suffixes: UNAUTHENTICATED when
// a certificate in `answer` (verified against the peer's root) names a host
// or a mail domain outside them, or the answer is about such a name.
absl::Status CheckPeerScope(const VerifiedAnswer& answer,
                            const std::vector<std::string>& suffixes,
                            const std::string& peer_org);

class FederationTrust {
 public:
  static absl::StatusOr<FederationTrust> Verify(
      const mxkey::v1::SignedObject& bundle, absl::string_view own_root,
      absl::Time now, uint64_t min_version);

  // The peer with the longest suffix that `name` (canonical) is under, or
  // nullptr when the name belongs to no peer.
  const TrustedPeer* PeerFor(absl::string_view name) const;

  uint64_t version() const { return version_; }
  absl::Time not_after() const { return not_after_; }
  const std::vector<TrustedPeer>& peers() const { return peers_; }

 private:
  FederationTrust() = default;
  uint64_t version_ = 0;
  absl::Time not_after_;
  std::vector<TrustedPeer> peers_;
};

}  // namespace mxkey

#endif  // MXKEY_CLIENT_FEDERATION_TRUST_H_
