// Decides whether a peer organization's revocation feed really went back
// (its store was replaced, or restored from an older copy), from signed
// evidence only.
//
// The peer says so with an OUT_OF_RANGE end of WatchRevocations, and a
// batch that does not follow our position (a gap) suggests it; both are
// unsigned, so anyone on the keyd-to-peer path can make them up. Taking
// them at their word made keyd skip to the peer's head and never republish
// the revocations in between (trust core III #6). So before it resyncs,
// keyd asks for proof:
//   1. a fresh statement: a lookup of a random name under the peer's
//      suffix, answered and signed by the peer after we asked (the name is
//      new, so the answer cannot be one recorded earlier). Its `feed_head`
//      below our position proves that the feed went back;
//   2. otherwise the peer's own event at our position, signed: a body
//      other than the one we took there proves that the feed diverged.
// Anything else (the same event, a failed call, a signature that does not
// verify) proves nothing, and keyd keeps its position.
#ifndef MXKEY_KEYD_PEER_FEED_RESET_H_
#define MXKEY_KEYD_PEER_FEED_RESET_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/answer_verifier.h"
#include "keyd/records.pb.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace mxkey {

struct PeerFeedVerdict {
  // True: the feed went back; resynchronize at `signed_head`, the peer's
  // head by its fresh signed statement. False: it did not; keep the
  // position.
  bool reset = false;
  uint64_t signed_head = 0;
  // When not reset: the digest of the peer's signed event at the position,
  // for a position that had none (else empty).
  std::string event_digest;
};

// Asks the peer (through `stub`, whose answers verify with `verifier`, the
// peer's root) for the evidence above. `suffix` is one of the peer's domain
// suffixes. Errors (UNAVAILABLE, UNAUTHENTICATED, ...) mean undecided: ask
// again later. Each call waits at most `timeout`.
absl::StatusOr<PeerFeedVerdict> CheckPeerFeedReset(
    mxkey::v1::KeyDirectory::Stub& stub, const AnswerVerifier& verifier,
    const std::string& suffix, const keyd::PeerFeedPosition& position,
    absl::Time now, absl::Duration timeout);

}  // namespace mxkey

#endif  // MXKEY_KEYD_PEER_FEED_RESET_H_
