// Rejects replayed or out-of-window first handshake messages (PROTOCOL.md §10).
//
// An initiator's hello timestamp must lie within `window` of the
// responder's clock and be greater than any earlier accepted timestamp of
// the same initiator. Call Accept only after the initiator's identity was
// verified, so no one can block a host by claiming its name. Memory is
// bounded: hosts whose last timestamp left the window are forgotten (their
// old messages are stale anyway). Thread-safe. Errors: PERMISSION_DENIED.
#ifndef MXKEY_MTA_HOOKS_SESSION_REPLAY_GUARD_H_
#define MXKEY_MTA_HOOKS_SESSION_REPLAY_GUARD_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"

namespace mxkey {

class ReplayGuard {
 public:
  explicit ReplayGuard(Clock* clock, absl::Duration window = absl::Minutes(2))
      : clock_(clock), window_(window) {}

  absl::Status Accept(const std::string& initiator, int64_t timestamp_ms);

 private:
  void ForgetOld(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* clock_;
  absl::Duration window_;
  Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> last_ ABSL_GUARDED_BY(mu_);
  size_t forget_at_ ABSL_GUARDED_BY(mu_) = 1024;
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_REPLAY_GUARD_H_
