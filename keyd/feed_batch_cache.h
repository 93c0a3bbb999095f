// WatchRevocations batches, serialized once and shared by every watch that
// sends the same batch (cold clients reading the backlog from 0, every
// client at the head when a new event arrives). gRPC sends a serialized
// batch by reference, so N unread streams at one place hold one copy, not
// N.
//
// Every batch alive, cached or still held by a write in flight, counts
// against one byte budget (keyd serve --watch-buffer-mb). A new batch that
// would go past it is refused with RESOURCE_EXHAUSTED (the watch ends and
// its client retries with backoff); the cache keeps the most recently used
// batches while they fit; batches that reach the head have a reserve.
// Thread-safe.
#ifndef MXKEY_KEYD_FEED_BATCH_CACHE_H_
#define MXKEY_KEYD_FEED_BATCH_CACHE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

// What makes two batches the same: where it starts, the head it was read
// at, whether it is a stream's first (which always names the head digest),
// and the issuing key that is current (its certificate is in every batch).
struct FeedBatchKey {
  uint64_t from_seq = 0;
  uint64_t head = 0;
  bool first = false;
  std::string issuer_key_id;
};

// One serialized WatchRevocationsResponse and how many events it carries.
struct FeedBatch {
  grpc::ByteBuffer bytes;
  uint64_t events = 0;
};

class FeedBatchCache {
 public:
  using Batch = std::shared_ptr<const FeedBatch>;

  explicit FeedBatchCache(size_t max_bytes, size_t max_entries = 64)
      : max_bytes_(max_bytes),
        max_entries_(max_entries),
        alive_bytes_(std::make_shared<std::atomic<size_t>>(0)) {}

  // The cached batch for `key`, or null.
  Batch Find(const FeedBatchKey& key);
  // Serializes `response` and caches it under `key`. RESOURCE_EXHAUSTED
  // when the batches alive would exceed the budget even after dropping
  // every cached batch no watch holds. A `live` batch (one that reaches
  // the head: what every reading client sends next, shared by all of them)
  // may also use a reserve of a quarter of the budget, so that watches
  // holding the buffer with old batches cannot hold back new events.
  absl::StatusOr<Batch> Insert(const FeedBatchKey& key,
                               const mxkey::v1::WatchRevocationsResponse& response,
                               bool live = false);

  // Bytes of every batch alive (cached or held by a write).
  size_t alive_bytes() const { return alive_bytes_->load(); }
  size_t max_bytes() const { return max_bytes_; }

 private:
  static std::string KeyString(const FeedBatchKey& key);
  // Drops least recently used entries until `need` more bytes fit or no
  // entry that only the cache holds is left.
  void MakeRoom(size_t need) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_bytes_;
  const size_t max_entries_;
  // Shared with each batch's deleter, which may run after the cache is gone
  // (the last write of a stream that outlived it).
  std::shared_ptr<std::atomic<size_t>> alive_bytes_;
  Mutex mu_;
  // Most recently used first.
  std::list<std::pair<std::string, Batch>> lru_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string,
                      std::list<std::pair<std::string, Batch>>::iterator>
      index_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_FEED_BATCH_CACHE_H_
