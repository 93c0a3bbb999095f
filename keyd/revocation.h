// Revocation: marking certificates revoked and appending signed,
// sequence-numbered events to the change feed, in the caller's write
// transaction, so a revocation and its event commit together or not at all.
#ifndef MXKEY_KEYD_REVOCATION_H_
#define MXKEY_KEYD_REVOCATION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "keyd/keyd_context.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

// Revokes each serial (which must exist and be unrevoked) and appends one
// feed event per serial. Returns the new feed head.
absl::StatusOr<uint64_t> AppendRevocations(WriteTxn& txn,
                                           const KeydContext& ctx,
                                           const std::vector<uint64_t>& serials,
                                           absl::string_view reason);

// Appends one policy-change event for `domain` (its new policy `version`)
// to the feed, so clients drop answers for the domain made before it.
// Returns the new feed head.
absl::StatusOr<uint64_t> AppendPolicyChange(WriteTxn& txn,
                                            const KeydContext& ctx,
                                            absl::string_view domain,
                                            uint64_t version,
                                            absl::string_view reason);

// Appends one key-change event: `host` (serving `domains`) has the new
// certificate `serial`. Returns the new feed head.
absl::StatusOr<uint64_t> AppendKeyChange(
    WriteTxn& txn, const KeydContext& ctx, absl::string_view host,
    uint64_t serial, const std::vector<std::string>& domains,
    absl::string_view reason);

// The republished reason's prefix ("peer ORG: ") can push a peer's reason
// past max_reason_bytes: cut to at most `max` bytes on a UTF-8 boundary.
std::string TruncateUtf8(std::string text, size_t max);

// Republishes a peer organization's verified feed events (revocations and
// policy changes) on the own feed, signed by the own issuing key, so this org's clients evict the
// peer's hosts as they do their own (an event can only take trust away).
// The reason names the peer. Returns the new feed head.
absl::StatusOr<uint64_t> AppendPeerRevocations(
    WriteTxn& txn, const KeydContext& ctx, absl::string_view peer_org,
    const std::vector<mxkey::v1::RevocationEventBody>& events);

// The Admin Revoke operation. Errors: INVALID_ARGUMENT (bad hostname or
// reason), NOT_FOUND (unknown host or serial), FAILED_PRECONDITION (already
// revoked, or nothing left to revoke).
absl::StatusOr<mxkey::v1::RevokeResponse> Revoke(
    const KeydContext& ctx, const mxkey::v1::RevokeRequest& request);

// Events with seq > from_seq, at most `limit`, and the head.
struct FeedSlice {
  std::vector<mxkey::v1::SignedObject> events;
  uint64_t head = 0;
};
absl::StatusOr<FeedSlice> ReadFeed(Store& store, uint64_t from_seq,
                                   size_t limit);

}  // namespace mxkey

#endif  // MXKEY_KEYD_REVOCATION_H_
