// Answers lookups for names under a peer organization's domain suffixes by
// asking that peer's keyd (docs/PROTOCOL.md §8.1, "Relaying"): the answer is
// verified against the peer's root, cached until its freshness statement runs
// out, and returned untouched, with the peer's signatures, so a relaying keyd
// cannot forge.
//
// For(name) is nullptr when the name belongs to no peer (the longest
// matching suffix on a label boundary decides). Lookup errors: UNAVAILABLE
// (the peer did not answer; a cached answer is served while fresh),
// UNAUTHENTICATED (the peer's answer failed verification, or names a host or
// domain outside the peer's suffixes), and the peer's own errors.
//
// Nothing here blocks a thread on a peer (finding 1 of trust core III: a
// dead peer used to hold gRPC's few callback threads, 3 s per lookup, and
// stall the own org's lookups too). Calls to peers are asynchronous and
// bounded: one call per name in flight however many ask (single flight),
// at most RelayLimits::max_calls_per_peer per peer, and a peer that did not
// answer is not asked again for RelayLimits::peer_down_for (its held answer,
// or UNAVAILABLE, at once). A pin no peer knows is remembered for
// RelayLimits::pin_miss_ttl.
#ifndef MXKEY_KEYD_PEER_RELAY_H_
#define MXKEY_KEYD_PEER_RELAY_H_

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <deque>
#include <functional>
#include <memory>
#include <utility>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "client/answer_verifier.h"
#include "keyd/keyd_context.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace mxkey {

// gRPC metadata a relaying keyd puts on its calls to peers; a keyd never
// relays a call that carries it, so two orgs that name each other for the
// same suffix cannot bounce a lookup back and forth.
inline constexpr char kRelayedHeader[] = "mxkey-relayed";

// keyd serve --relay-max-calls-per-peer; the rest are fixed.
struct RelayLimits {
  int max_calls_per_peer = 64;
  // Askers of one name beyond the first that wait for its call.
  size_t max_waiters_per_name = 1024;
  absl::Duration peer_down_for = absl::Seconds(2);
  absl::Duration pin_miss_ttl = absl::Seconds(1);
  size_t max_pin_misses = 65536;
};

class PeerRelay {
 public:
  // One peer as the relay uses it.
  struct Peer {
    mxkey::v1::FederationPeer peer;
    std::unique_ptr<mxkey::v1::KeyDirectory::Stub> stub;
    std::unique_ptr<AnswerVerifier> verifier;
    // Calls in flight, and until when (Unix ns, real time) the peer counts
    // as down after a call that did not reach it; kept across reloads of
    // the peer list (by org and endpoint).
    struct Health {
      std::atomic<int> in_flight{0};
      std::atomic<int64_t> down_until_ns{0};
    };
    std::shared_ptr<Health> health;
  };
  using AnswerDone = std::function<void(absl::StatusOr<mxkey::v1::KeyAnswer>)>;
  using PinDone =
      std::function<void(absl::StatusOr<mxkey::v1::KeyAnswer>, bool usable)>;

  explicit PeerRelay(const KeydContext* ctx, RelayLimits limits = {})
      : ctx_(ctx), limits_(limits) {}
  // Waits for the calls in flight (each ends within its 3 s deadline).
  ~PeerRelay();

  // Relearns the peer events republished on the own feed (its last
  // kMaxRevokedCerts events), so that after a restart a peer answer made
  // before one of them is still refused. Call once, before serving.
  absl::Status LoadRepublishedEvents();

  // The peer `name` (canonical) belongs to, or nullptr.
  std::shared_ptr<const Peer> For(const std::string& name);
  // Whether `peer` is the one `name` belongs to (for CheckPeerScope).
  std::function<bool(const std::string&)> Owns(const Peer& peer);

  // `peer`'s answer for `name`: `done` runs at once (a cached answer, or
  // an error when the peer is at its cap or down) or on a gRPC client
  // thread when the peer answers. It must not block.
  void Lookup(std::shared_ptr<const Peer> peer, const std::string& name,
              bool is_domain, AnswerDone done);

  // Asks every peer at once for the host certified with `tls_pin`: the
  // first answer (in peer order) that verifies against that peer's root,
  // stays inside its suffixes and has a usable certificate with the pin
  // wins; else the first that verifies (it says why the key is not usable).
  // NOT_FOUND when no peer has a host with the pin; UNAVAILABLE when a
  // peer could not be asked. `usable` says which of the two it is. `done`
  // as for Lookup.
  void FindByTlsPin(const std::string& tls_pin, PinDone done);

  // Called with a peer's verified revocation events before they are
  // republished on the own feed: drops every relayed answer naming the
  // hosts, and from now on refuses (and refetches) a peer answer that
  // still shows one of the revoked certificates as unrevoked, so no client
  // of ours gets a pre-revocation answer once the event is on our feed.
  // Drops every relayed answer of `peer_org` (its feed had a gap or reset).
  void DropPeerAnswers(const std::string& peer_org);

  void ApplyPeerRevocations(
      const std::string& peer_org,
      const std::vector<mxkey::v1::RevocationEventBody>& events);

 private:
  struct Peers {
    uint64_t generation = 0;
    // The stored records, to tell a change of peers from any other write.
    std::vector<std::string> records;
    std::vector<std::shared_ptr<const Peer>> list;
  };
  struct Cached {
    mxkey::v1::KeyAnswer answer;
    absl::Time valid_until;
  };
  // The stored peers, reread when the store changed; their channels and
  // relayed answers are kept unless the peers themselves changed.
  std::shared_ptr<const Peers> LoadPeers();

  // A peer's revoked certificate, remembered so that an answer fetched
  // before the revocation (or replayed by the peer's path) is not relayed.
  struct RevokedCert {
    std::string org;
    std::string hostname;
    uint64_t serial;
    // Or a policy change: the domain and its new version.
    std::string policy_domain;
    uint64_t policy_version = 0;
  };
  // True if `answer` shows a certificate in `revoked_` (of `org`) without
  // its revocation, or a policy older than a change in `revoked_`.
  bool Outdated(const std::string& org, const VerifiedAnswer& answer) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  enum class CallKind { kHost, kDomain, kPin };
  using CallDone =
      std::function<void(grpc::Status, mxkey::v1::KeyAnswer answer)>;
  // Starts one call to `peer` (`done` on a gRPC thread), or says at once
  // (UNAVAILABLE) that the peer is at its cap or down.
  absl::Status Call(const std::shared_ptr<const Peer>& peer, CallKind kind,
                    const std::string& arg, CallDone done);
  // The fetch for the single flight `key`; `attempt` 1 is the second try
  // for an answer made before a revocation already applied.
  void Fetch(std::shared_ptr<const Peer> peer, std::string key,
             std::string name, bool is_domain,
             std::shared_ptr<const mxkey::v1::KeyAnswer> held, int attempt);
  // Hands `result` to every asker of `key`.
  void Complete(const std::string& key,
                const absl::StatusOr<mxkey::v1::KeyAnswer>& result);
  // One peer's answer for a pin, judged.
  struct PinAnswer {
    enum Kind { kNone, kUsable, kUnusable, kOpen } kind = kNone;
    mxkey::v1::KeyAnswer answer;
    std::string why;  // kOpen: why the question stays open
  };
  PinAnswer JudgePinAnswer(const Peer& peer, const std::string& pin,
                           const grpc::Status& status,
                           mxkey::v1::KeyAnswer answer);
  // Hands the search's outcome to every asker of `pin`.
  void CompletePin(const std::string& pin,
                   const std::vector<PinAnswer>& answers);

  const KeydContext* ctx_;
  const RelayLimits limits_;
  Mutex mu_;
  std::shared_ptr<const Peers> peers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  std::deque<RevokedCert> revoked_ ABSL_GUARDED_BY(mu_);
  // Single flight: the askers waiting for each name's (or pin's) call.
  absl::flat_hash_map<std::string, std::vector<AnswerDone>> waiting_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<PinDone>> waiting_pins_
      ABSL_GUARDED_BY(mu_);
  // Pins no peer had, until when.
  absl::flat_hash_map<std::string, absl::Time> pin_misses_ ABSL_GUARDED_BY(mu_);
  // Each peer's Health, by "ORG ENDPOINT" (admin-set: bounded).
  absl::flat_hash_map<std::string, std::shared_ptr<Peer::Health>> health_
      ABSL_GUARDED_BY(mu_);
  // Calls in flight, for the destructor. Shared with each call's completion,
  // which touches it last: the destructor may return (and the relay go)
  // while a completion is still unlocking it.
  struct CallCount {
    std::mutex mu;
    std::condition_variable zero;
    int calls = 0;
  };
  const std::shared_ptr<CallCount> calls_ = std::make_shared<CallCount>();
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_PEER_RELAY_H_
