// Rejects replayed or out-of-window first handshake messages (PROTOCOL.md §10).
//
// A first message is fresh if its hello's timestamp lies within `window` of
// the responder's clock and no first message with the same initiator
// hostname and the same initiator ephemeral key `e` was accepted within the
// window. Timestamps need not increase: an initiator's processes handshake
// in parallel, each with its own ephemeral key. What was accepted is kept
// (as SHA-256(initiator || e)) until its timestamp leaves the window, in
// this process's memory or, with `dir`, in an LMDB store shared by every
// responder process that opens the same directory (lmdb_replay_store.h).
//
// Call Accept only after the initiator's identity was verified, so no one
// can fill the guard or block a host by claiming its name. Memory is
// bounded by max_entries (SECURITY.md); when that many accepted first
// messages are still within the window, Accept refuses (fails closed)
// rather than forgetting one. Thread-safe.
// Errors: PERMISSION_DENIED (replay, or a timestamp out of the window),
// RESOURCE_EXHAUSTED (full), INVALID_ARGUMENT (an ephemeral key that is not
// 32 bytes), and those of opening or writing the shared store.
#ifndef MXKEY_MTA_HOOKS_SESSION_REPLAY_GUARD_H_
#define MXKEY_MTA_HOOKS_SESSION_REPLAY_GUARD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "mta-hooks/session/replay_store.h"

namespace mxkey {

struct ReplayGuardOptions {
  absl::Duration window = absl::Minutes(2);
  // An LMDB environment directory shared by the responder's processes;
  // empty: this process's memory only.
  std::string dir;
  // The most first messages remembered at once (kDefaultReplayMaxEntries).
  size_t max_entries = kDefaultReplayMaxEntries;
};

class ReplayGuard {
 public:
  static absl::StatusOr<std::unique_ptr<ReplayGuard>> Create(
      Clock* clock, const ReplayGuardOptions& options = {});

  // In this process's memory, with the default bound.
  explicit ReplayGuard(Clock* clock, absl::Duration window = absl::Minutes(2));
  ReplayGuard(Clock* clock, absl::Duration window,
              std::unique_ptr<ReplayStore> store);

  // `ephemeral`: the initiator's ephemeral public key, from message 1.
  absl::Status Accept(const std::string& initiator, absl::string_view ephemeral,
                      int64_t timestamp_ms);

 private:
  Clock* clock_;
  absl::Duration window_;
  std::unique_ptr<ReplayStore> store_;
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_REPLAY_GUARD_H_
