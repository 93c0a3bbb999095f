// What every keyd component shares: storage, keys, clock, feed and limits.
// Plain data; owned by the daemon (or a test), outliving the components.
#ifndef MXKEY_KEYD_KEYD_CONTEXT_H_
#define MXKEY_KEYD_KEYD_CONTEXT_H_

#include "absl/time/time.h"
#include "base/clock.h"
#include "client/keyd_channel.h"
#include "keyd/feed_notifier.h"
#include "keyd/keyd_metrics.h"
#include "keyd/org_keys.h"
#include "keyd/store.h"

namespace mxkey {

struct KeydOptions {
  absl::Duration token_ttl = absl::Hours(24);
  absl::Duration cert_validity = absl::Hours(24 * 30);
  // Validity of freshness statements (keyd serve --freshness).
  absl::Duration freshness = absl::Minutes(5);
  // How far a host's clock may be off in enrollment and rotation requests.
  absl::Duration max_clock_skew = absl::Minutes(5);
  // Memory for everything kept per looked-up name: whole answers and the
  // denial and freshness signatures (keyd serve --answer-cache-mb).
  size_t answer_cache_bytes = size_t{128} << 20;
  // New signed denials (lookups of names nobody registered) per minute per
  // source network, in bursts of a sixth of that; 0: no limit (keyd serve
  // --denial-limit).
  double denial_limit_per_minute = 6000;
  int max_tls_pins = 8;
  int max_mail_domains = 32;
  size_t max_reason_bytes = 256;
  // How keyd reaches its peers' endpoints (keyd serve --tls): TLS checked
  // against each peer's root, except where plaintext is asked for.
  KeydTransport peer_transport = KeydTransport::kAuto;

  // How long a rotation keeps the current key in use beside the next one
  // when the host neither asks for an overlap of its own nor finishes the
  // rotation earlier (keyd serve --rotation-overlap).
  absl::Duration rotation_overlap = absl::Hours(24 * 7);
  static constexpr absl::Duration kMaxRotationOverlap = absl::Hours(24 * 90);

  // The shortest overlap: every cache holds an answer at most one freshness
  // period, so a key pre-published this long is in every answer in use
  // before the old key can leave them.
  absl::Duration prepublish() const { return freshness * 2; }
};

struct KeydContext {
  Store* store;
  const OrgKeys* keys;
  Clock* clock;
  FeedNotifier* feed;
  KeydOptions options;
  // Never null: the server's metrics, or a test's.
  KeydMetrics* metrics;

  int64_t now() const { return absl::ToUnixSeconds(clock->Now()); }
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_KEYD_CONTEXT_H_
