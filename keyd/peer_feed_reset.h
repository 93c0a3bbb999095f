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
//      other than the one we took there, made later than ours, proves
//      that the feed diverged. (An event of a feed the peer abandoned
//      earlier is signed too, and anyone who watched it can replay it; but
//      the feed a restore starts is made after the one it abandons, so an
//      event older than ours at our number is never the current one.)
// Anything else (the same event, an older one, a failed call, a signature
// that does not verify, a position without digest or time) proves
// nothing, and keyd keeps its position.
#ifndef MXKEY_KEYD_PEER_FEED_RESET_H_
#define MXKEY_KEYD_PEER_FEED_RESET_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/answer_verifier.h"
#include "keyd/records.pb.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace mxkey {

struct PeerFeedVerdict {
  // True: the feed went back; resynchronize at `signed_head`, the peer's
  // head by its fresh signed statement. False: it did not (the peer's
  // signed event at our position is the one we took); keep the position.
  bool reset = false;
  uint64_t signed_head = 0;
};

// Asks the peer (through `stub`, whose answers verify with `verifier`, the
// peer's root) for the evidence above. `suffix` is one of the peer's domain
// suffixes. Errors (UNAVAILABLE, UNAUTHENTICATED, FAILED_PRECONDITION for
// evidence that proves nothing, ...) mean undecided: ask again later. Each
// call waits at most `timeout`; `track` is given each call's context before
// it starts (false: do not start, the caller is stopping) and null after
// it ends, so that the caller can cancel it.
absl::StatusOr<PeerFeedVerdict> CheckPeerFeedReset(
    mxkey::v1::KeyDirectory::Stub& stub, const AnswerVerifier& verifier,
    const std::string& suffix, const keyd::PeerFeedPosition& position,
    absl::Time now, absl::Duration timeout,
    const std::function<bool(grpc::ClientContext*)>& track);

}  // namespace mxkey

#endif  // MXKEY_KEYD_PEER_FEED_RESET_H_
