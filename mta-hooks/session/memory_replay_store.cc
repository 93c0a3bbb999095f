#include "mta-hooks/session/memory_replay_store.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace mxkey {

void MemoryReplayStore::DropExpired(int64_t now_ms) {
  while (!by_expiry_.empty() && by_expiry_.top().first < now_ms) {
    expiry_of_.erase(by_expiry_.top().second);
    by_expiry_.pop();
  }
}

absl::StatusOr<bool> MemoryReplayStore::Insert(absl::string_view key,
                                               int64_t expiry_ms,
                                               int64_t now_ms) {
  if (key.size() != kReplayKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("replay key of ", key.size(), " bytes, not ",
                     kReplayKeySize));
  }
  Key k;
  std::memcpy(k.data(), key.data(), k.size());
  MutexLock lock(&mu_);
  // After this, every entry left is live.
  DropExpired(now_ms);
  if (expiry_of_.contains(k)) return false;
  if (expiry_of_.size() >= max_entries_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "replay guard full: it remembers ", max_entries_,
        " first messages accepted within the window and forgets none early; "
        "refusing the handshake (raise the guard's max_entries)"));
  }
  expiry_of_.emplace(k, expiry_ms);
  by_expiry_.emplace(expiry_ms, k);
  return true;
}

size_t MemoryReplayStore::size() const {
  MutexLock lock(&mu_);
  return expiry_of_.size();
}

}  // namespace mxkey
