// The peer organizations a client trusts, from its own root's signed
// federation bundle (docs/PROTOCOL.md §7.6).
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
#include <functional>
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

// A peer may certify only names it owns: names under its suffixes for which
// no other peer has a longer matching suffix (nested suffixes: when P owns
// "example" and Q owns "b.example", only Q speaks for "x.b.example").
// `owns(name)` says whether the peer is the longest-suffix owner of a name.
// UNAUTHENTICATED when the answer is about, or a certificate in it (verified
// against the peer's root) names, a host or mail domain the peer does not
// own.
absl::Status CheckPeerScope(const VerifiedAnswer& answer,
                            const std::function<bool(const std::string&)>& owns,
                            const std::string& peer_org);

class FederationTrust;

// The client's rule for an answer verified against the OWN root
// (PROTOCOL.md §7.3): a denial says "no key" only for a name the own org
// owns, so it needs a valid own bundle (`trust`, nullptr if none is valid
// at `now`) under which the name is no peer's, and must have been made
// under that bundle's version or a newer one. UNAVAILABLE without a valid
// bundle (the name cannot be attributed); UNAUTHENTICATED otherwise.
// Positive answers pass: keyd certifies no name under a peer's suffix.
absl::Status CheckOwnAnswer(const VerifiedAnswer& answer,
                            const FederationTrust* trust, absl::Time now);

class FederationTrust {
 public:
  // Also FAILED_PRECONDITION for a bundle issued more than
  // `max_clock_skew` in the future.
  static absl::StatusOr<FederationTrust> Verify(
      const mxkey::v1::SignedObject& bundle, absl::string_view own_root,
      absl::Time now, uint64_t min_version,
      absl::Duration max_clock_skew = absl::Minutes(5));

  // The peer with the longest suffix that `name` (canonical) is under, or
  // nullptr when the name belongs to no peer.
  const TrustedPeer* PeerFor(absl::string_view name) const;

  uint64_t version() const { return version_; }
  // SHA-256 of the bundle body: two different bundles of one version are
  // an equivocation (KeyClient refuses the second).
  const std::string& body_sha256() const { return body_sha256_; }
  absl::Time not_after() const { return not_after_; }
  const std::vector<TrustedPeer>& peers() const { return peers_; }

 private:
  FederationTrust() = default;
  uint64_t version_ = 0;
  std::string body_sha256_;
  absl::Time not_after_;
  std::vector<TrustedPeer> peers_;
};

}  // namespace mxkey

#endif  // MXKEY_CLIENT_FEDERATION_TRUST_H_
