// Everything keyd keeps per looked-up name, in one byte budget: whole
// answers (and tombstones of names a write touched since), and the denial
// and freshness signatures it reuses. When the budget is full the least
// recently used entries go first, whatever their kind, so a flood of new
// names (each one an answer, a denial and a freshness statement) costs
// this budget and nothing more, and the names honest clients keep asking
// for stay (trust core III #3: two caches of 16 x 65,536 signatures outside
// the budget took keyd to 1.9 GB).
//
// Answers follow the Directory's rules (keyd/directory.h): an answer read
// at store generation G is kept only if no tombstone or newer answer of
// its name is newer, and not below the shard's floor. Evicting an answer
// or tombstone raises the floor to its generation, so an answer read
// before a write whose tombstone was evicted is never kept over it.
// Thread-safe (one lock per shard). Sizes are estimates of the memory an
// entry holds (bodies, keys, map and list nodes).
#ifndef MXKEY_KEYD_NAME_CACHE_H_
#define MXKEY_KEYD_NAME_CACHE_H_

#include <array>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

namespace name_cache_internal {
// Defined outside NameCache: a variant of nested classes with default
// member initializers is not default-constructible inside it (GCC).
struct Answer {
  uint64_t generation = 0;
  int64_t expires = 0;
  bool tombstone = false;
  mxkey::v1::KeyAnswer answer;
};
struct Signature {
  std::string digest;
  int64_t made_at = 0;
  mxkey::v1::SignedObject object;
};
}  // namespace name_cache_internal

class NameCache {
 public:
  static constexpr size_t kShards = 16;

  explicit NameCache(size_t budget_bytes)
      : shard_budget_(budget_bytes / kShards) {}

  // The answer kept for `key`, if one is and it is current: not a
  // tombstone, not expired at `now`, and read at `generation` or (when
  // every write up to `generation` was reported) at any generation since
  // which no write touched it.
  std::optional<mxkey::v1::KeyAnswer> FindAnswer(const std::string& key,
                                                 uint64_t generation,
                                                 bool all_reported,
                                                 int64_t now);
  // Keeps `answer`, read at `generation`, until `expires`. Not kept if a
  // newer answer or tombstone of `key` is, or the shard's floor is above
  // `generation`.
  void KeepAnswer(const std::string& key, uint64_t generation,
                  int64_t expires, const mxkey::v1::KeyAnswer& answer);
  // A write at `generation` touched `key`: no answer read before it is
  // kept or reused.
  void Tombstone(const std::string& key, uint64_t generation);
  // Every answer (not the signatures) is dropped, and none read before
  // `generation` is kept.
  void DropAnswers(uint64_t generation);

  // The signature kept for `key`, if it covers `digest` and was made at
  // most `reuse_for` seconds before `now`.
  std::optional<mxkey::v1::SignedObject> FindSignature(const std::string& key,
                                                       const std::string& digest,
                                                       int64_t now,
                                                       int64_t reuse_for);
  void KeepSignature(const std::string& key, const std::string& digest,
                     int64_t made_at, const mxkey::v1::SignedObject& object);

  // Bytes held now, by the estimate.
  size_t bytes() const;
  size_t budget() const { return shard_budget_ * kShards; }

 private:
  using Answer = name_cache_internal::Answer;
  using Signature = name_cache_internal::Signature;
  struct Entry {
    std::variant<Answer, Signature> value;
    size_t bytes = 0;
    std::list<std::string>::iterator recency;  // into Shard::recency
  };
  struct Shard {
    mutable std::mutex mu;
    // Answers read before this generation are not kept.
    uint64_t floor ABSL_GUARDED_BY(mu) = 0;
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
    absl::flat_hash_map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
    std::list<std::string> recency ABSL_GUARDED_BY(mu);  // newest first
  };

  static size_t EntryOverhead();
  Shard& ShardFor(const std::string& key);
  // Finds `key` and marks it used; null if absent.
  static Entry* Touch(Shard& shard, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  static void Erase(Shard& shard,
                    absl::flat_hash_map<std::string, Entry>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Stores `value` under `key` (replacing any entry), after evicting the
  // least recently used entries until `bytes` more fit.
  void Put(Shard& shard, const std::string& key,
           std::variant<Answer, Signature> value, size_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  const size_t shard_budget_;
  std::array<Shard, kShards> shards_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_NAME_CACHE_H_
