#include "keyd/name_cache.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace mxkey {
namespace {

size_t KeyBytes(const std::string& key) { return 2 * key.size(); }

}  // namespace

// What an entry costs beyond its bodies and keys: its map slot, twice over
// (an open-addressing table is between half and 7/8 full), the list node
// with its copy of the key, and the allocator's share. Calibrated by RSS
// under a flood of new names (tests:unknown_name_flood_test, bench
// random_names_rss): 160 bytes flat let RSS grow 1.4x the budget.
size_t NameCache::EntryOverhead() {
  return 2 * sizeof(std::pair<const std::string, Entry>) +
         sizeof(std::string) + 3 * sizeof(void*) + 64;
}

NameCache::Shard& NameCache::ShardFor(const std::string& key) {
  return shards_[absl::Hash<std::string>()(key) % kShards];
}

NameCache::Entry* NameCache::Touch(Shard& shard, const std::string& key) {
  auto it = shard.entries.find(key);
  if (it == shard.entries.end()) return nullptr;
  shard.recency.splice(shard.recency.begin(), shard.recency,
                       it->second.recency);
  return &it->second;
}

void NameCache::Erase(Shard& shard,
                      absl::flat_hash_map<std::string, Entry>::iterator it) {
  if (const Answer* a = std::get_if<Answer>(&it->second.value)) {
    // What it knew of writes to its name is gone with it.
    shard.floor = std::max(shard.floor, a->generation);
  }
  shard.bytes -= it->second.bytes;
  shard.recency.erase(it->second.recency);
  shard.entries.erase(it);
}

void NameCache::Put(Shard& shard, const std::string& key,
                    std::variant<Answer, Signature> value, size_t bytes) {
  auto old = shard.entries.find(key);
  if (old != shard.entries.end()) {
    // Replaced, not evicted: no floor change.
    shard.bytes -= old->second.bytes;
    shard.recency.erase(old->second.recency);
    shard.entries.erase(old);
  }
  // Larger than the whole shard: not kept (and nothing evicted for it).
  if (bytes > shard_budget_) return;
  while (!shard.recency.empty() && shard.bytes + bytes > shard_budget_) {
    Erase(shard, shard.entries.find(shard.recency.back()));
  }
  shard.recency.push_front(key);
  Entry& e = shard.entries[key];
  e.value = std::move(value);
  e.bytes = bytes;
  e.recency = shard.recency.begin();
  shard.bytes += bytes;
}

std::optional<mxkey::v1::KeyAnswer> NameCache::FindAnswer(
    const std::string& key, uint64_t generation, bool all_reported,
    int64_t now) {
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  Entry* e = Touch(shard, key);
  if (e == nullptr) return std::nullopt;
  const Answer* a = std::get_if<Answer>(&e->value);
  if (a == nullptr || a->tombstone || now >= a->expires) return std::nullopt;
  if (a->generation != generation && !all_reported) return std::nullopt;
  return a->answer;
}

void NameCache::KeepAnswer(const std::string& key, uint64_t generation,
                           int64_t expires,
                           const mxkey::v1::KeyAnswer& answer) {
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (generation < shard.floor) return;
  auto it = shard.entries.find(key);
  if (it != shard.entries.end()) {
    const Answer* a = std::get_if<Answer>(&it->second.value);
    // A newer answer, or a write reported since this one was read, wins.
    if (a != nullptr && a->generation > generation) return;
  }
  const size_t bytes =
      2 * answer.ByteSizeLong() + KeyBytes(key) + EntryOverhead();
  Put(shard, key, Answer{generation, expires, false, answer}, bytes);
  // Evictions may have raised the floor past this answer: then a write it
  // does not reflect may have been forgotten, and it must not stay.
  if (generation < shard.floor) {
    auto kept = shard.entries.find(key);
    if (kept != shard.entries.end()) {
      shard.bytes -= kept->second.bytes;
      shard.recency.erase(kept->second.recency);
      shard.entries.erase(kept);
    }
  }
}

void NameCache::Tombstone(const std::string& key, uint64_t generation) {
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(key);
  if (it != shard.entries.end()) {
    const Answer* a = std::get_if<Answer>(&it->second.value);
    if (a != nullptr && a->generation > generation) return;
  }
  // Below the floor, no answer that old is kept anyway.
  if (generation < shard.floor) {
    if (it != shard.entries.end()) Erase(shard, it);
    return;
  }
  Put(shard, key, Answer{generation, 0, true, {}},
      KeyBytes(key) + EntryOverhead());
}

void NameCache::DropAnswers(uint64_t generation) {
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (auto it = shard.entries.begin(); it != shard.entries.end();) {
      auto next = std::next(it);
      if (std::holds_alternative<Answer>(it->second.value)) Erase(shard, it);
      it = next;
    }
    shard.floor = std::max(shard.floor, generation);
  }
}

std::optional<mxkey::v1::SignedObject> NameCache::FindSignature(
    const std::string& key, const std::string& digest, int64_t now,
    int64_t reuse_for) {
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  Entry* e = Touch(shard, key);
  if (e == nullptr) return std::nullopt;
  const Signature* s = std::get_if<Signature>(&e->value);
  if (s == nullptr || s->digest != digest || now < s->made_at ||
      now - s->made_at >= reuse_for) {
    return std::nullopt;
  }
  return s->object;
}

void NameCache::KeepSignature(const std::string& key,
                              const std::string& digest, int64_t made_at,
                              const mxkey::v1::SignedObject& object) {
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  const size_t bytes = 2 * object.ByteSizeLong() + digest.size() +
                       KeyBytes(key) + EntryOverhead();
  Put(shard, key, Signature{digest, made_at, object}, bytes);
}

size_t NameCache::bytes() const {
  size_t total = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    total += shard.bytes;
  }
  return total;
}

}  // namespace mxkey
