// Where a ReplayGuard remembers the first messages it accepted.
//
// A set of fixed-size keys, each with an expiry (Unix ms). An entry is live
// while its expiry is >= now; expired entries may be dropped at any time.
// A store holds at most its max_entries live entries and never drops a live
// one to make room: when full it refuses (RESOURCE_EXHAUSTED), so a replay
// guard fails closed, not open.
#ifndef MXKEY_MTA_HOOKS_SESSION_REPLAY_STORE_H_
#define MXKEY_MTA_HOOKS_SESSION_REPLAY_STORE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxkey {

// Default bound on remembered first messages (SECURITY.md): about 1,000
// accepted handshakes a second, sustained over the longest time an entry
// lives (a hello up to 2 minutes in the future, kept until 2 minutes past).
inline constexpr size_t kDefaultReplayMaxEntries = 262144;

// Keys are SHA-256 digests.
inline constexpr size_t kReplayKeySize = 32;

class ReplayStore {
 public:
  virtual ~ReplayStore() = default;

  // Adds `key` with `expiry_ms` unless a live entry has that key. True if it
  // was added, false if a live entry had it (a replay). RESOURCE_EXHAUSTED
  // if the store holds max_entries live entries; other errors of the
  // storage (the caller must refuse the handshake on any error).
  virtual absl::StatusOr<bool> Insert(absl::string_view key, int64_t expiry_ms,
                                      int64_t now_ms) = 0;
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_REPLAY_STORE_H_
