#include "client/answer_cache.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace mxkey {

AnswerCache::AnswerCache(size_t max_entries, size_t max_bytes)
    : max_entries_per_shard_(std::max<size_t>(1, max_entries / kShards)),
      max_bytes_per_shard_(std::max<size_t>(1, max_bytes / kShards)) {}

AnswerCache::Shard& AnswerCache::ShardFor(absl::string_view name) {
  return shards_[absl::Hash<absl::string_view>()(name) % kShards];
}

void AnswerCache::EraseNode(Shard& s, std::list<Node>::iterator it) {
  s.bytes -= it->entry->bytes;
  s.index.erase(it->name);
  s.lru.erase(it);
}

std::shared_ptr<const CachedAnswer> AnswerCache::Get(absl::string_view name) {
  Shard& s = ShardFor(name);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.index.find(name);
  if (it == s.index.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->entry;
}

void AnswerCache::Put(const std::string& name,
                      std::shared_ptr<const CachedAnswer> entry) {
  Shard& s = ShardFor(name);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.index.find(name);
  if (it != s.index.end()) EraseNode(s, it->second);
  s.bytes += entry->bytes;
  s.lru.push_front(Node{name, std::move(entry)});
  s.index.emplace(name, s.lru.begin());
  // Evict least recent entries; the new one always stays, even if larger
  // than the byte budget on its own.
  while (s.lru.size() > 1 && (s.lru.size() > max_entries_per_shard_ ||
                              s.bytes > max_bytes_per_shard_)) {
    EraseNode(s, std::prev(s.lru.end()));
  }
}

void AnswerCache::Erase(absl::string_view name) {
  Shard& s = ShardFor(name);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.index.find(name);
  if (it != s.index.end()) EraseNode(s, it->second);
}

void AnswerCache::EraseIf(
    const std::function<bool(const CachedAnswer&)>& pred) {
  for (Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto it = s.lru.begin(); it != s.lru.end();) {
      auto next = std::next(it);
      if (pred(*it->entry)) EraseNode(s, it);
      it = next;
    }
  }
}

void AnswerCache::Clear() {
  EraseIf([](const CachedAnswer&) { return true; });
}

size_t AnswerCache::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.lru.size();
  }
  return n;
}

}  // namespace mxkey
