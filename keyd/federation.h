// Peer organizations and the federation bundle that lists them.
//
// An admin adds a peer with the root fingerprint obtained out of band; the
// root key itself is fetched from the peer's GetOrgInfo and must match.
// Every change signs a new bundle (FederationBundleBody) with the org root,
// with a higher version; Bundle() re-signs, again with a higher version,
// once half of the bundle's validity has passed. Errors: INVALID_ARGUMENT
// (bad name, suffix, fingerprint, endpoint), UNAUTHENTICATED (the endpoint
// presents another root than the fingerprint), FAILED_PRECONDITION (it
// calls itself by another name, or a suffix belongs to another peer),
// UNAVAILABLE (the endpoint did not answer), NOT_FOUND (no such peer).
#ifndef MXKEY_KEYD_FEDERATION_H_
#define MXKEY_KEYD_FEDERATION_H_

#include <functional>

#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "keyd/keyd_context.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

// Fetches a peer's OrgInfo from its endpoint (a gRPC call in keyd; a fake
// in tests).
using OrgInfoFetcher = std::function<absl::StatusOr<mxkey::v1::OrgInfo>(
    const std::string& endpoint)>;

// The real fetcher: GetOrgInfo with a 5 s deadline, over `transport`. Over
// TLS the root that certifies the endpoint's TLS key must be the root its
// OrgInfo reports (UNAUTHENTICATED otherwise); the caller then checks that
// root against the admin's fingerprint.
OrgInfoFetcher OrgInfoFetcherFor(KeydTransport transport, Clock* clock);

class Federation {
 public:
  Federation(const KeydContext* ctx, OrgInfoFetcher fetch)
      : ctx_(ctx), fetch_(std::move(fetch)) {}

  absl::StatusOr<mxkey::v1::PeerInfo> AddPeer(
      const mxkey::v1::AddPeerRequest& request);
  absl::StatusOr<mxkey::v1::ListPeersResponse> ListPeers();
  absl::StatusOr<mxkey::v1::RemovePeerResponse> RemovePeer(
      const mxkey::v1::RemovePeerRequest& request);
  // The current signed bundle (an empty list until a peer is added).
  absl::StatusOr<mxkey::v1::SignedObject> Bundle();

  // How long a bundle is valid.
  static constexpr absl::Duration kBundleValidity = absl::Hours(24 * 7);

 private:
  // Signs a bundle of the stored peers with the next version, in `txn`.
  absl::StatusOr<uint64_t> SignBundle(WriteTxn& txn);

  const KeydContext* ctx_;
  OrgInfoFetcher fetch_;
  Mutex resign_mu_;  // one re-signing at a time
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_FEDERATION_H_
