// The public lookups: signed answers for hosts and mail domains, and the
// org's public information.
//
// Answers carry only objects signed ahead of time (certificates, policies,
// revocation events) plus a denial and a freshness statement. Those two are
// signed once per name per quarter to half freshness period (the name
// decides), and again only when the answer changes: never per request.
// Whole answers are reused until a write touches their name. Answers and
// signatures share one byte budget (NameCache), and new denials are rate
// limited per source network, so a flood of unknown names costs neither
// unbounded memory nor unbounded signing. Errors: INVALID_ARGUMENT for a
// bad name; RESOURCE_EXHAUSTED for a source past its denial limit; storage
// errors pass through.
#ifndef MXKEY_KEYD_DIRECTORY_H_
#define MXKEY_KEYD_DIRECTORY_H_

#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "keyd/change_tracking_store.h"
#include "keyd/keyd_context.h"
#include "keyd/name_cache.h"
#include "keyd/rate_limiter.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

class Directory {
 public:
  explicit Directory(const KeydContext* ctx);

  // `source` (the client's network, SourceNetwork) is charged for every
  // new signed denial, at most options.denial_limit per minute per source;
  // past it the lookup fails with RESOURCE_EXHAUSTED and signs nothing.
  // An empty source is not limited (keyd's own calls).
  absl::StatusOr<mxkey::v1::KeyAnswer> GetHostKeys(
      absl::string_view hostname, absl::string_view source = "");
  absl::StatusOr<mxkey::v1::KeyAnswer> GetDomainPolicy(
      absl::string_view domain, absl::string_view source = "");
  // The GetHostKeys answer of the own host that claimed `tls_pin` (32
  // bytes). NOT_FOUND if no host ever did (the service then asks the peers
  // and answers with PinDenial, never with an unsigned NOT_FOUND);
  // INVALID_ARGUMENT for a bad pin.
  absl::StatusOr<mxkey::v1::KeyAnswer> FindByTlsPin(absl::string_view tls_pin);
  // The signed NO_SUCH_PIN denial (LOOKUP_KIND_TLS_PIN) for `tls_pin`.
  absl::StatusOr<mxkey::v1::KeyAnswer> PinDenial(absl::string_view tls_pin,
                                                 absl::string_view source = "");
  mxkey::v1::OrgInfo GetOrgInfo() const;

  // Drops the answers a write changed. Without these reports (a store that
  // is not a ChangeTrackingStore) every write drops every answer.
  void Invalidate(const StoreChange& change);

  // Bytes held by the per-name cache (answers and signatures), by its
  // estimate; at most options.answer_cache_bytes.
  size_t cached_bytes() const { return cache_.bytes(); }

 private:
  // Returns a cached object for `key` if it covers `digest` and is younger
  // than ReuseSeconds(name); otherwise signs `make_body()` anew, first
  // charging `source` if `limited`.
  absl::StatusOr<mxkey::v1::SignedObject> CachedSign(
      const std::string& key, const std::string& name,
      const std::string& digest, ObjectType type, absl::string_view source,
      const std::function<std::string(int64_t now)>& make_body);

  // How long signatures and answers for `name` are reused: half a
  // freshness period, less up to a quarter period chosen by the name.
  // Statements made together (a restart, a bulk enrollment, the first
  // lookups of a busy server) are then not all re-signed in one burst.
  int64_t ReuseSeconds(absl::string_view name) const;

  absl::Status AddDenial(const std::string& name,
                         mxkey::v1::DenialReason reason,
                         absl::string_view source,
                         mxkey::v1::KeyAnswer& answer);
  // Where the store was when an answer was read: the feed head and the
  // federation bundle version, both bound into its freshness statement.
  struct Position {
    uint64_t feed_head = 0;
    uint64_t bundle_version = 0;
  };
  static absl::StatusOr<Position> ReadPosition(ReadTxn& txn);
  // Adds issuing certificates and the freshness statement for `kind`.
  absl::Status Finish(mxkey::v1::LookupKind kind, const Position& at,
                      mxkey::v1::KeyAnswer& answer);

  // Whole answers are reused while no write has touched their name, the
  // freshness statement is younger than half a period, and no certificate
  // in it changes state. A hit is a copy: no storage read, no signature.
  //
  // `generation` is the store generation read before the answer was read.
  // An answer is current if the store is still at that generation, or if
  // every write up to now has been reported (reported_) and none touched
  // the name since: a report leaves a tombstone at its generation, and an
  // answer read before that generation is never kept over it.
  std::optional<mxkey::v1::KeyAnswer> ReuseAnswer(const std::string& key,
                                                  uint64_t generation);
  void KeepAnswer(const std::string& key, uint64_t generation,
                  const mxkey::v1::KeyAnswer& answer);

  const KeydContext* ctx_;
  // The newest generation whose writes have all been reported.
  std::atomic<uint64_t> reported_{0};
  // Answers and signatures, in one budget (options.answer_cache_bytes).
  NameCache cache_;
  // New signed denials per source network.
  RateLimiter denial_limit_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_DIRECTORY_H_
