// A ReplayStore in this process's memory: what one responder process
// accepted. Expired entries are dropped as time passes (a min-heap by
// expiry), so memory follows the live entries, at most max_entries of
// them: about 40 MB at the default cap (measured), little otherwise. Keys are
// kReplayKeySize bytes (INVALID_ARGUMENT otherwise). Thread-safe.
#ifndef MXKEY_MTA_HOOKS_SESSION_MEMORY_REPLAY_STORE_H_
#define MXKEY_MTA_HOOKS_SESSION_MEMORY_REPLAY_STORE_H_

#include <cstdint>
#include <array>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "mta-hooks/session/replay_store.h"

namespace mxkey {

class MemoryReplayStore : public ReplayStore {
 public:
  explicit MemoryReplayStore(size_t max_entries = kDefaultReplayMaxEntries)
      : max_entries_(max_entries) {}

  absl::StatusOr<bool> Insert(absl::string_view key, int64_t expiry_ms,
                              int64_t now_ms) override;

  size_t size() const;

 private:
  using Key = std::array<char, kReplayKeySize>;
  using Expiry = std::pair<int64_t, Key>;
  void DropExpired(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_entries_;
  mutable Mutex mu_;
  absl::flat_hash_map<Key, int64_t> expiry_of_ ABSL_GUARDED_BY(mu_);
  // The same entries, soonest expiry on top.
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<Expiry>>
      by_expiry_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_MEMORY_REPLAY_STORE_H_
