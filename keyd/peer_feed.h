// Follows every peer organization's revocation feed (WatchRevocations on
// its endpoint, resuming after the last event taken, which is kept in the
// store) and republishes each verified event on the own feed
// (AppendPeerRevocations), so this org's clients evict a peer's revoked
// host within the time of two watch hops.
//
// A batch must verify against the peer's root (each event against the
// peer's issuing key of its time), follow the last event without a gap,
// and name only names the peer owns; otherwise it is dropped: a batch that
// does not verify is retried later from the same place, and after a gap or
// a reset the follower drops every relayed answer of the peer and goes on
// from the peer's head (never republishing its history again). Unreachable peers are retried with exponential
// backoff. Nothing here fails the caller: problems are logged.
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
    std::string last_failure;  // its thread's only: logged once per cause
    bool skip_to_head = false;  // its thread's only: after a gap or reset
    // SHA-256 of the body of the peer's event at the position taken (its
    // thread's only; empty after a start or a skip to the head), sent back
    // on resume so that a rewound peer feed is noticed.
    std::string last_digest;
  };
  // Starts and stops followers as peers are added, changed and removed.
  void Reconcile();
  void Follow(Follower* f);
  // One stream; returns when it ends. `last` is the peer seq taken.
  void FollowOnce(Follower* f, uint64_t* last);

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
