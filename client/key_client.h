// KeyClient: verified key lookups for MTA hooks and keyctl (libmxkey).
//
// It trusts exactly one thing, the configured org root fingerprint; every
// answer it returns has been verified against that root (AnswerVerifier) on
// its way into the cache. Hits are served from memory without verification,
// allocation or long-held locks until the answer's freshness statement (or
// the next certificate state change) runs out. Answers also go to an LMDB
// cache in `cache_dir`, so a restarted hook, or one whose keyd is down,
// still has signed answers; they are re-verified when read and served only
// while fresh. A RevocationWatcher evicts revoked keys from both caches as
// the feed delivers them.
//
// Errors carry a LookupFailure kind (client/lookup_error.h): invalid name,
// unknown (signed denial), revoked, expired, verification failed, stale,
// unavailable. Create fails with INVALID_ARGUMENT for bad options and
// UNAUTHENTICATED when keyd's root does not have the configured fingerprint;
// a keyd that is merely unreachable at start is not an error (lookups say
// "unavailable" or are served from the disk cache).
#ifndef MXKEY_CLIENT_KEY_CLIENT_H_
#define MXKEY_CLIENT_KEY_CLIENT_H_

#include <atomic>
#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "client/answer_cache.h"
#include "client/answer_verifier.h"
#include "client/federation_trust.h"
#include "client/keyd_channel.h"
#include "client/lookup_error.h"
#include "client/persistent_cache.h"
#include "client/revocation_watcher.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace mxkey {

struct KeyClientOptions {
  // keyd endpoints ("host:port" or "unix:/path"), tried in order.
  std::vector<std::string> endpoints;
  // The only trust anchor: "sha256:" + 64 lower-case hex digits.
  std::string root_fingerprint;
  // TLS to keyd, its TLS key checked against the trust anchor (auto: TLS
  // unless the endpoint is loopback or unix:); see client/keyd_channel.h.
  KeydTransport transport = KeydTransport::kAuto;
  // The persistent cache; empty keeps answers in memory only.
  std::string cache_dir;
  absl::Duration rpc_timeout = absl::Seconds(3);
  // How far this machine's clock may be off from keyd's: validity periods
  // (issuing keys, host certificates) are widened by it both ways.
  // Freshness statements stay strict.
  absl::Duration max_clock_skew = absl::Minutes(5);
  size_t max_cached_answers = 100000;
  size_t max_cached_bytes = size_t{256} << 20;
  // Follow the revocation feed (evict on revocation). Without it, cached
  // answers live until their freshness runs out.
  bool watch_revocations = true;
  // How often the federation bundle (the trusted peer orgs) is fetched
  // again; a new version also drops every cached answer.
  absl::Duration federation_refresh = absl::Minutes(1);
  absl::Duration watch_min_backoff = absl::Milliseconds(100);
  absl::Duration watch_max_backoff = absl::Seconds(5);
  // A watch stream silent this long is retried (RevocationWatcherOptions).
  absl::Duration watch_first_response_timeout = absl::Seconds(10);
  Clock* clock = Clock::Real();
};

// The answer a lookup returns: verified, immutable, shared with the cache.
using AnswerRef = std::shared_ptr<const VerifiedAnswer>;

class KeyClient {
 public:
  static absl::StatusOr<std::unique_ptr<KeyClient>> Create(
      KeyClientOptions options);
  ~KeyClient();

  // The host's verified answer if it names a usable key (active, or next
  // with none active), else the error that says why not.
  absl::StatusOr<AnswerRef> LookupHost(absl::string_view hostname);
  // The host's verified answer whatever its keys' state (revoked and expired
  // certificates included), for display. Errors only for invalid names,
  // failed verification, staleness or unavailability.
  absl::StatusOr<AnswerRef> LookupHostAnswer(absl::string_view hostname);
  // The mail domain's verified answer: policy, MX host certificates, or a
  // signed denial (unkeyed domain; not an error).
  absl::StatusOr<AnswerRef> LookupDomain(absl::string_view domain);

  // The answer of the host certified with TLS key pin `tls_pin` (32 raw
  // bytes: SHA-256 of the DER SubjectPublicKeyInfo), if one of its usable
  // certificates (active, or next) carries the pin. kUnknown when no host
  // has the pin, kRevoked/kExpired when its certificate is no longer usable.
  // Served from the host cache (so revocations evict it) after the first
  // lookup of a pin has learned its hostname from keyd (FindByTlsPin).
  absl::StatusOr<AnswerRef> LookupByTlsPin(absl::string_view tls_pin);

  // The peer organizations the own root vouches for (its federation
  // bundle), fetched again after `federation_refresh`. Never an older
  // version than one seen before (also across restarts, with a cache_dir).
  // nullptr until a bundle was fetched; names under a peer's suffixes are
  // then verified against that peer's root, and only within its suffixes.
  std::shared_ptr<const FederationTrust> Federation();
  // Fetches the bundle now; FAILED_PRECONDITION on rollback.
  absl::Status RefreshFederation();

  // The org root public key, once known.
  absl::StatusOr<std::string> RootPublicKey();

  // The verifier for the configured trust anchor: keyd's root (or the one
  // cached on disk when keyd is unreachable) checked against the
  // fingerprint. For callers that verify objects other than answers
  // (enrollment results, feed batches).
  absl::StatusOr<std::shared_ptr<const AnswerVerifier>> Verifier();

  // Revocation events as the watcher applies them (after eviction). After
  // Unsubscribe returns, the listener is not running and never runs again.
  int Subscribe(RevocationListener listener);
  void Unsubscribe(int id);
  // The watcher's feed position (nullopt until known or without a watcher).
  std::optional<uint64_t> FeedPosition() const;
  bool WaitForFeedPosition(uint64_t seq, absl::Duration timeout) const;

  // Drops every cached answer, in memory and on disk.
  void ClearCaches();

 private:
  explicit KeyClient(KeyClientOptions options);

  absl::StatusOr<std::shared_ptr<const CachedAnswer>> Lookup(
      absl::string_view name, bool is_domain);
  // GetHostKeys or GetDomainPolicy for `name`, the raw answer in `raw`.
  grpc::Status Ask(const std::string& name, bool is_domain,
                   mxkey::v1::KeyAnswer& raw);
  absl::StatusOr<std::shared_ptr<const CachedAnswer>> Fetch(
      const std::string& name, bool is_domain,
      std::shared_ptr<const CachedAnswer> expired);
  absl::StatusOr<std::shared_ptr<const CachedAnswer>> Admit(
      const std::string& name, mxkey::v1::LookupKind kind,
      const mxkey::v1::KeyAnswer& raw, bool from_keyd);
  // The feed events after `feed_head` up to the watch start, read from
  // keyd when the answer is older than the watch (none otherwise);
  // kUnavailable if they cannot be read.
  absl::StatusOr<std::vector<mxkey::v1::RevocationEventBody>> CoverFeedFrom(
      uint64_t feed_head);
  // For a peer's answer made at `made_at`: the own-feed events before the
  // watch start back to that time, when the watch began after it.
  absl::StatusOr<std::vector<mxkey::v1::RevocationEventBody>> CoverFeedSince(
      absl::Time made_at);
  // Logs when keyd becomes unreachable and when it is back (once each).
  void NoteReachability(const grpc::Status& st);
  // -1 unknown (no call yet), 0 unreachable, 1 reachable.
  std::atomic<int> reachable_{-1};
  grpc::Status CallKeyd(
      const std::function<grpc::Status(mxkey::v1::KeyDirectory::Stub&,
                                       grpc::ClientContext&)>& call);
  void ApplyRevocations(const std::vector<mxkey::v1::RevocationEventBody>& ev,
                        uint64_t last_seq);
  AnswerCache& CacheFor(bool is_domain) {
    return is_domain ? domains_ : hosts_;
  }

  KeyClientOptions options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<mxkey::v1::KeyDirectory::Stub>> stubs_;
  AnswerCache hosts_;
  AnswerCache domains_;
  std::unique_ptr<PersistentCache> disk_;

  Mutex verifier_mu_;
  std::shared_ptr<const AnswerVerifier> verifier_ ABSL_GUARDED_BY(verifier_mu_);

  // Serializes admitting an answer against applying revocations, so an
  // answer fetched before a revocation cannot be cached after its eviction.
  Mutex apply_mu_;
  std::deque<mxkey::v1::RevocationEventBody> recent_ ABSL_GUARDED_BY(apply_mu_);
  // Every own-feed event after this one is in recent_ (or was applied to
  // the caches): the watch's starting point, raised when recent_ forgets.
  // Older answers are checked against events read for them (CoverFeedFrom).
  // Unset until the watch's position is known.
  std::optional<uint64_t> covered_from_ ABSL_GUARDED_BY(apply_mu_);
  // When covered_from_ was set (this client's clock).
  absl::Time covered_since_ ABSL_GUARDED_BY(apply_mu_);
  // The last read-back for peer answers: the events before the watch start
  // `backfill_start_`, back to `backfill_since_`.
  uint64_t backfill_start_ ABSL_GUARDED_BY(apply_mu_) = 0;
  absl::Time backfill_since_ ABSL_GUARDED_BY(apply_mu_) = absl::InfiniteFuture();
  std::vector<mxkey::v1::RevocationEventBody> backfill_events_
      ABSL_GUARDED_BY(apply_mu_);

  // The verifier for `name`: the own root's, or that of the peer whose
  // suffix the name is under (with the peer, for the scope check).
  struct VerifierFor {
    std::shared_ptr<const AnswerVerifier> verifier;
    const TrustedPeer* peer = nullptr;
    std::shared_ptr<const FederationTrust> trust;  // keeps `peer` alive
    // A valid (unexpired) own bundle decided: without one, no name can be
    // told from a peer's, and own-root denials are not accepted.
    bool trust_valid = false;
  };
  absl::StatusOr<VerifierFor> VerifierForName(const std::string& name);
  absl::StatusOr<VerifierFor> OwnVerifier();
  // The own bundle if it is valid now (asks keyd again, at most once a
  // second, while it is not), else nullptr.
  std::shared_ptr<const FederationTrust> ValidFederation();

  Mutex federation_mu_;
  std::shared_ptr<const FederationTrust> federation_
      ABSL_GUARDED_BY(federation_mu_);
  absl::Time federation_fetched_ ABSL_GUARDED_BY(federation_mu_);
  uint64_t federation_min_version_ ABSL_GUARDED_BY(federation_mu_) = 0;
  // SHA-256 of the body of the bundle with that version, once known.
  std::string federation_min_digest_ ABSL_GUARDED_BY(federation_mu_);
  // Verifiers of peer roots, by root key.
  absl::flat_hash_map<std::string, std::shared_ptr<const AnswerVerifier>>
      peer_verifiers_ ABSL_GUARDED_BY(federation_mu_);

  // TLS pin -> hostname, learned from FindByTlsPin. Only a hint: every
  // answer is checked for the pin, so a stale entry costs one more RPC.
  Mutex pin_hints_mu_;
  absl::flat_hash_map<std::string, std::string> pin_hints_
      ABSL_GUARDED_BY(pin_hints_mu_);
  // TLS pins keyd denied (a signed denial), until when: one lookup per pin
  // and kPinDenialTtl however often a client shows the same unknown
  // certificate (finding 1 of trust core III). Short, since a peer's new key
  // reaches this client through no event of its own feed; cleared by every
  // own feed event.
  struct PinDenial {
    std::shared_ptr<const CachedAnswer> denial;
    absl::Time until;
  };
  absl::flat_hash_map<std::string, PinDenial> pin_denials_
      ABSL_GUARDED_BY(pin_hints_mu_);
  // Bumped whenever pin_denials_ is cleared: a denial fetched across a
  // clear (it may predate the event) is not kept.
  uint64_t pin_denials_generation_ ABSL_GUARDED_BY(pin_hints_mu_) = 0;
  void ForgetPinDenials();

  std::unique_ptr<RevocationWatcher> watcher_;
};

}  // namespace mxkey

#endif  // MXKEY_CLIENT_KEY_CLIENT_H_
