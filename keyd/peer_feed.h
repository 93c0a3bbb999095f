// Follows every peer organization's revocation feed (WatchRevocations on
// its endpoint, resuming after the last event taken, which is kept in the
// store) and republishes each verified event on the own feed
// (AppendPeerRevocations), so this org's clients evict a peer's revoked
// host within the time of two watch hops.
//
// A batch must verify against the peer's root (each event against the
// peer's issuing key of its time), follow the last event without a gap,
// and name only names the peer owns; otherwise it is dropped: a batch that
// does not verify is retried later from the same place. A gap or an
// OUT_OF_RANGE end is unsigned, so the position stays until the peer
// proves that its feed went back (keyd/peer_feed_reset.h); only then does
// the follower drop every relayed answer of the peer and go on from the
// peer's signed head (never republishing its history again). The position
// (peer seq and the digest of that event) is stored with the events it
// took, in one transaction, and never goes back otherwise, so no event of
// a peer's feed is republished twice. Unreachable peers are retried with
// exponential backoff. Nothing here fails the caller: problems are logged.
#ifndef MXKEY_KEYD_PEER_FEED_H_
#define MXKEY_KEYD_PEER_FEED_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <functional>
#include <thread>

#include "base/mutex.h"
#include "absl/time/time.h"
#include "keyd/keyd_context.h"
#include "keyd/peer_relay.h"
#include "keyd/records.pb.h"
#include "client/answer_verifier.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "keyd/store.h"
#include "proto/mxkey/v1/objects.pb.h"

namespace mxkey {

// Whether a peer's feed event may enter the own feed: every name in it
// (hostname or policy domain, and mail domains) canonical, and the main one
// owned by the peer (`owns`). INVALID_ARGUMENT (the name escaped) or
// PERMISSION_DENIED says why not.
absl::Status CheckPeerEventNames(
    const mxkey::v1::RevocationEventBody& e,
    const std::function<bool(const std::string&)>& owns);

class PeerFeedFollower {
 public:
  // `relay` (may be null) drops its relayed answers for each event before
  // the event is republished.
  PeerFeedFollower(const KeydContext* ctx, PeerRelay* relay)
      : ctx_(ctx), relay_(relay) {}
  ~PeerFeedFollower() { Stop(); }

  void Start();
  void Stop();

 private:
  struct Follower {
    mxkey::v1::FederationPeer peer;
    std::thread thread;
    Mutex mu;
    bool stop ABSL_GUARDED_BY(mu) = false;
    grpc::ClientContext* call ABSL_GUARDED_BY(mu) = nullptr;
    // The rest is its thread's only.
    std::string last_failure;  // logged once per cause
    // After a gap or OUT_OF_RANGE: ask for proof of a reset (CheckReset)
    // before the next stream.
    bool suspect_reset = false;
    // As stored; its digest is sent back on resume, so that a rewound peer
    // feed is noticed.
    keyd::PeerFeedPosition position;
  };
  // Starts and stops followers as peers are added, changed and removed.
  void Reconcile();
  void Follow(Follower* f);
  // One stream, from f->position; returns when it ends.
  void FollowOnce(Follower* f);
  // Asks the peer for proof that its feed went back; true if it did (the
  // position is then the peer's signed head).
  bool CheckReset(Follower* f);
  void LogOnce(Follower* f, const std::string& why);
  static absl::StatusOr<keyd::PeerFeedPosition> LoadPosition(
      ReadTxn& txn, const std::string& org);
  static absl::Status StorePosition(WriteTxn& txn, const Follower& f,
                                    const keyd::PeerFeedPosition& p);
  absl::StatusOr<AnswerVerifier> PeerVerifier(
      const mxkey::v1::FederationPeer& peer) const;
  std::unique_ptr<mxkey::v1::KeyDirectory::Stub> PeerStub(
      const mxkey::v1::FederationPeer& peer) const;

  const KeydContext* ctx_;
  PeerRelay* const relay_;
  std::thread reconciler_;
  Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t seen_generation_ = 0;  // reconciler thread only
  std::map<std::string, std::unique_ptr<Follower>> followers_;  // same
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_PEER_FEED_H_
