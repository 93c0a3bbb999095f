#include "mta-hooks/session/replay_guard.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/sha256.h"
#include "crypto/x25519.h"
#include "mta-hooks/session/lmdb_replay_store.h"
#include "mta-hooks/session/memory_replay_store.h"

namespace mxkey {

absl::StatusOr<std::unique_ptr<ReplayGuard>> ReplayGuard::Create(
    Clock* clock, const ReplayGuardOptions& options) {
  if (options.window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the replay window must be positive");
  }
  if (options.max_entries == 0) {
    return absl::InvalidArgumentError("a replay guard needs max_entries > 0");
  }
  std::unique_ptr<ReplayStore> store;
  if (options.dir.empty()) {
    store = std::make_unique<MemoryReplayStore>(options.max_entries);
  } else {
    LmdbReplayStoreOptions lmdb;
    lmdb.max_entries = options.max_entries;
    absl::StatusOr<std::unique_ptr<LmdbReplayStore>> shared =
        LmdbReplayStore::Open(options.dir, lmdb);
    if (!shared.ok()) return shared.status();
    store = *std::move(shared);
  }
  return std::make_unique<ReplayGuard>(clock, options.window, std::move(store));
}

ReplayGuard::ReplayGuard(Clock* clock, absl::Duration window)
    : ReplayGuard(clock, window, std::make_unique<MemoryReplayStore>()) {}

ReplayGuard::ReplayGuard(Clock* clock, absl::Duration window,
                         std::unique_ptr<ReplayStore> store)
    : clock_(clock), window_(window), store_(std::move(store)) {}

absl::Status ReplayGuard::Accept(const std::string& initiator,
                                 absl::string_view ephemeral,
                                 int64_t timestamp_ms) {
  if (ephemeral.size() != kX25519KeySize) {
    return absl::InvalidArgumentError(
        "replay guard: the initiator's ephemeral key is not 32 bytes");
  }
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  const int64_t window_ms = absl::ToInt64Milliseconds(window_);
  if (timestamp_ms < now_ms - window_ms || timestamp_ms > now_ms + window_ms) {
    return absl::PermissionDeniedError(absl::StrCat(
        "handshake from ", absl::CHexEscape(initiator),
        " rejected: its timestamp is ", (now_ms - timestamp_ms) / 1000,
        " s off this host's clock (window ", window_ms / 1000,
        " s); a replay or a wrong clock"));
  }
  // Past timestamp + window the message fails the window check anyway, so
  // that is when the guard may forget it.
  absl::StatusOr<bool> fresh = store_->Insert(
      Sha256(absl::StrCat(initiator, ephemeral)), timestamp_ms + window_ms,
      now_ms);
  if (!fresh.ok()) {
    return absl::Status(
        fresh.status().code(),
        absl::StrCat("handshake from ", absl::CHexEscape(initiator),
                     " refused: ", fresh.status().message()));
  }
  if (!*fresh) {
    return absl::PermissionDeniedError(absl::StrCat(
        "handshake from ", absl::CHexEscape(initiator),
        " rejected: a replayed first message (its ephemeral key was accepted "
        "within the last ", window_ms / 1000, " s)"));
  }
  return absl::OkStatus();
}

}  // namespace mxkey
