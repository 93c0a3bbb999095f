#include "mta-hooks/session/replay_guard.h"

#include "absl/strings/str_cat.h"

namespace mxkey {

void ReplayGuard::ForgetOld(int64_t now_ms) {
  const int64_t oldest = now_ms - absl::ToInt64Milliseconds(window_);
  absl::erase_if(last_, [&](const auto& kv) { return kv.second < oldest; });
  forget_at_ = std::max<size_t>(1024, 2 * last_.size());
}

absl::Status ReplayGuard::Accept(const std::string& initiator,
                                 int64_t timestamp_ms) {
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  const int64_t window_ms = absl::ToInt64Milliseconds(window_);
  if (timestamp_ms < now_ms - window_ms || timestamp_ms > now_ms + window_ms) {
    return absl::PermissionDeniedError(absl::StrCat(
        "handshake from ", initiator, " rejected: its timestamp is ",
        (now_ms - timestamp_ms) / 1000, " s off this host's clock (window ",
        window_ms / 1000, " s); a replay or a wrong clock"));
  }
  MutexLock lock(&mu_);
  auto [it, inserted] = last_.try_emplace(initiator, timestamp_ms);
  if (!inserted) {
    if (timestamp_ms <= it->second) {
      return absl::PermissionDeniedError(absl::StrCat(
          "handshake from ", initiator,
          " rejected: a replayed first message (timestamp not newer than the "
          "last accepted one)"));
    }
    it->second = timestamp_ms;
  }
  if (last_.size() >= forget_at_) ForgetOld(now_ms);
  return absl::OkStatus();
}

}  // namespace mxkey
