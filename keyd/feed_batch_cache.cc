#include "keyd/feed_batch_cache.h"

#include "absl/strings/str_cat.h"

namespace mxkey {

std::string FeedBatchCache::KeyString(const FeedBatchKey& key) {
  return absl::StrCat(key.from_seq, "/", key.head, "/", key.first ? 1 : 0,
                      "/", key.issuer_key_id);
}

FeedBatchCache::Batch FeedBatchCache::Find(const FeedBatchKey& key) {
  MutexLock lock(&mu_);
  auto it = index_.find(KeyString(key));
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void FeedBatchCache::MakeRoom(size_t need) {
  auto it = lru_.end();
  while (it != lru_.begin() && (alive_bytes_->load() + need > max_bytes_ ||
                                lru_.size() >= max_entries_)) {
    --it;
    // Over the byte budget only: a batch a write still holds stays alive
    // either way, so dropping it would free nothing now.
    if (lru_.size() < max_entries_ && it->second.use_count() > 1) continue;
    index_.erase(it->first);
    it = lru_.erase(it);
  }
}

absl::StatusOr<FeedBatchCache::Batch> FeedBatchCache::Insert(
    const FeedBatchKey& key,
    const mxkey::v1::WatchRevocationsResponse& response, bool live) {
  std::string bytes;
  if (!response.SerializeToString(&bytes)) {
    return absl::InternalError("cannot serialize a revocation batch");
  }
  const size_t size = bytes.size();
  std::string k = KeyString(key);
  MutexLock lock(&mu_);
  if (auto it = index_.find(k); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;  // another watch made it meanwhile
  }
  MakeRoom(size);
  const size_t limit = live ? max_bytes_ + max_bytes_ / 4 : max_bytes_;
  if (alive_bytes_->load() + size > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "keyd's revocation batch buffer is full (", max_bytes_ >> 20,
        " MiB, --watch-buffer-mb: held by watches whose clients do not "
        "read); retry later"));
  }
  alive_bytes_->fetch_add(size);
  grpc::Slice slice(bytes);
  auto* made = new FeedBatch{grpc::ByteBuffer(&slice, 1),
                             static_cast<uint64_t>(response.events_size())};
  Batch batch(made, [alive = alive_bytes_, size](const FeedBatch* b) {
    delete b;
    alive->fetch_sub(size);
  });
  lru_.emplace_front(k, batch);
  index_[k] = lru_.begin();
  return batch;
}

}  // namespace mxkey
