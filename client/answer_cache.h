// The in-memory cache of verified keyd answers: sharded, bounded by entry
// count and by bytes, with LRU eviction per shard.
//
// Entries are immutable and shared (shared_ptr), so a hit copies a pointer:
// no allocation and no verification. Each shard's mutex is held only for a
// hash lookup and a list splice, never across I/O or crypto. Cannot fail.
#ifndef MXKEY_CLIENT_ANSWER_CACHE_H_
#define MXKEY_CLIENT_ANSWER_CACHE_H_

#include <array>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/answer_verifier.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

// One verified answer as the cache holds it.
struct CachedAnswer {
  VerifiedAnswer verified;
  mxkey::v1::KeyAnswer raw;  // as signed, for re-verification when stale
  // OK if the answer names a usable key, else the lookup error (precomputed
  // so a hit does no work).
  absl::Status usable;
  // The earliest of the freshness limit and the next certificate state
  // change (expiry, activation): a hit is served only before this.
  absl::Time serve_until;
  size_t bytes = 0;
};

class AnswerCache {
 public:
  AnswerCache(size_t max_entries, size_t max_bytes);

  // The entry for `name` (bumped to most recent), or null.
  std::shared_ptr<const CachedAnswer> Get(absl::string_view name);
  void Put(const std::string& name, std::shared_ptr<const CachedAnswer> entry);
  void Erase(absl::string_view name);
  // Erases every entry for which `pred` is true.
  void EraseIf(const std::function<bool(const CachedAnswer&)>& pred);
  void Clear();
  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  struct Node {
    std::string name;
    std::shared_ptr<const CachedAnswer> entry;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Node> lru;  // front = most recent
    absl::flat_hash_map<std::string, std::list<Node>::iterator> index;
    size_t bytes = 0;
  };
  Shard& ShardFor(absl::string_view name);
  static void EraseNode(Shard& s, std::list<Node>::iterator it);

  size_t max_entries_per_shard_;
  size_t max_bytes_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace mxkey

#endif  // MXKEY_CLIENT_ANSWER_CACHE_H_
