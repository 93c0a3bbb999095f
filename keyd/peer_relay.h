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
#ifndef MXKEY_KEYD_PEER_RELAY_H_
#define MXKEY_KEYD_PEER_RELAY_H_

#include <deque>
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

class PeerRelay {
 public:
  // One peer as the relay uses it.
  struct Peer {
    mxkey::v1::FederationPeer peer;
    std::unique_ptr<mxkey::v1::KeyDirectory::Stub> stub;
    std::unique_ptr<AnswerVerifier> verifier;
  };

  explicit PeerRelay(const KeydContext* ctx) : ctx_(ctx) {}

  // Relearns the peer events republished on the own feed (its last
  // kMaxRevokedCerts events), so that after a restart a peer answer made
  // before one of them is still refused. Call once, before serving.
  absl::Status LoadRepublishedEvents();

  // The peer `name` (canonical) belongs to, or nullptr.
  std::shared_ptr<const Peer> For(const std::string& name);
  // Whether `peer` is the one `name` belongs to (for CheckPeerScope).
  std::function<bool(const std::string&)> Owns(const Peer& peer);

  absl::StatusOr<mxkey::v1::KeyAnswer> Lookup(const Peer& peer,
                                              const std::string& name,
                                              bool is_domain);

  // Asks every peer, in turn, for the host certified with `tls_pin`: the
  // first answer that verifies against that peer's root, stays inside its
  // suffixes and has a usable certificate with the pin wins; else the first
  // that verifies (it says why the key is not usable). NOT_FOUND when no
  // peer has a host with the pin. `*usable` says which of the two it is.
  absl::StatusOr<mxkey::v1::KeyAnswer> FindByTlsPin(absl::string_view tls_pin,
                                                    bool* usable);

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
  // One call to the peer: verified and scope-checked, not cached.
  absl::StatusOr<std::pair<mxkey::v1::KeyAnswer, VerifiedAnswer>> Fetch(
      const Peer& peer, const std::string& name, bool is_domain,
      grpc::Status* rpc_status);

  const KeydContext* ctx_;
  Mutex mu_;
  std::shared_ptr<const Peers> peers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  std::deque<RevokedCert> revoked_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_PEER_RELAY_H_
