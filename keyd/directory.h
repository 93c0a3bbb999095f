// The public lookups: signed answers for hosts and mail domains, and the
// org's public information.
//
// Answers carry only objects signed ahead of time (certificates, policies,
// revocation events) plus a denial and a freshness statement. Those two are
// signed at most once per name per half freshness period, and again only
// when the answer changes: never per request. Whole answers are reused
// until the store changes (see CachedAnswer). Errors: INVALID_ARGUMENT for
// a bad name; storage errors pass through.
#ifndef MXKEY_KEYD_DIRECTORY_H_
#define MXKEY_KEYD_DIRECTORY_H_

#include <array>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "keyd/keyd_context.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

class Directory {
 public:
  explicit Directory(const KeydContext* ctx) : ctx_(ctx) {}

  absl::StatusOr<mxkey::v1::KeyAnswer> GetHostKeys(absl::string_view hostname);
  absl::StatusOr<mxkey::v1::KeyAnswer> GetDomainPolicy(
      absl::string_view domain);
  // The GetHostKeys answer of the host that claimed `tls_pin` (32 bytes).
  // NOT_FOUND if no host ever did; INVALID_ARGUMENT for a bad pin.
  absl::StatusOr<mxkey::v1::KeyAnswer> FindByTlsPin(absl::string_view tls_pin);
  mxkey::v1::OrgInfo GetOrgInfo() const;

 private:
  // A signed object with the time it was made and what it covered.
  struct CachedSignature {
    std::string digest;
    int64_t made_at = 0;
    mxkey::v1::SignedObject object;
  };
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, CachedSignature> entries
        ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxEntriesPerShard = 1 << 16;

  // Returns a cached object for `key` if it covers `digest` and is younger
  // than half a freshness period; otherwise signs `make_body()` anew.
  absl::StatusOr<mxkey::v1::SignedObject> CachedSign(
      std::array<Shard, kShards>& cache, const std::string& key,
      const std::string& digest, ObjectType type,
      const std::function<std::string(int64_t now)>& make_body);

  absl::Status AddDenial(const std::string& name,
                         mxkey::v1::DenialReason reason,
                         mxkey::v1::KeyAnswer& answer);
  // Adds issuing certificates and the freshness statement.
  absl::Status Finish(uint64_t feed_head, mxkey::v1::KeyAnswer& answer);

  // Whole answers, reused while the store is unchanged (generation), the
  // freshness statement is younger than half a period, and no certificate
  // in it changes state. A hit is a copy: no storage read, no signature.
  struct CachedAnswer {
    uint64_t generation = 0;
    int64_t expires = 0;
    mxkey::v1::KeyAnswer answer;
  };
  struct AnswerShard {
    std::mutex mu;
    absl::flat_hash_map<std::string, CachedAnswer> entries ABSL_GUARDED_BY(mu);
  };
  std::optional<mxkey::v1::KeyAnswer> ReuseAnswer(const std::string& key,
                                                  uint64_t generation);
  void KeepAnswer(const std::string& key, uint64_t generation,
                  const mxkey::v1::KeyAnswer& answer);

  const KeydContext* ctx_;
  std::array<AnswerShard, kShards> answers_;
  std::array<Shard, kShards> denials_;
  std::array<Shard, kShards> freshness_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_DIRECTORY_H_
