#include "keyd/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mxkey {

void RateLimiter::Refill(Bucket& b, absl::Time now) const {
  if (now > b.updated) {
    b.tokens = std::min(limit_.burst,
                        b.tokens + absl::ToDoubleMinutes(now - b.updated) *
                                       limit_.per_minute);
  }
  b.updated = now;
}

absl::Status RateLimiter::Use(absl::string_view source, absl::string_view what,
                              double cost) {
  if (limit_.per_minute <= 0) return absl::OkStatus();
  const absl::Time now = clock_->Now();
  MutexLock lock(&mu_);
  if (buckets_.size() >= max_sources_) {
    // Forget sources whose bucket has refilled: they lose nothing.
    absl::erase_if(buckets_, [&](auto& kv) {
      Refill(kv.second, now);
      return kv.second.tokens >= limit_.burst;
    });
    if (buckets_.size() >= max_sources_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "too many distinct sources are rate-limited for ", what,
          "; retry later"));
    }
  }
  auto [it, inserted] =
      buckets_.try_emplace(std::string(source), Bucket{limit_.burst, now});
  Bucket& b = it->second;
  Refill(b, now);
  if (b.tokens < 1) {
    const double wait_s = std::ceil((1 - b.tokens) * 60 / limit_.per_minute);
    return absl::ResourceExhaustedError(absl::StrCat(
        "rate limit for ", what, " from ", source, " reached (",
        limit_.per_minute, " per minute, burst ", limit_.burst,
        "); retry in ", wait_s, " s"));
  }
  b.tokens -= cost;
  return absl::OkStatus();
}

absl::Status RateLimiter::Take(absl::string_view source,
                               absl::string_view what) {
  return Use(source, what, 1);
}

absl::Status RateLimiter::Check(absl::string_view source,
                                absl::string_view what) {
  return Use(source, what, 0);
}

std::string SourceAddress(absl::string_view peer) {
  if (absl::StartsWith(peer, "ipv4:")) {
    size_t colon = peer.rfind(':');
    if (colon > 4) return std::string(peer.substr(0, colon));
  }
  if (absl::StartsWith(peer, "ipv6:")) {
    // gRPC writes the brackets plain or percent-encoded ("%5B::1%5D:5000").
    size_t bracket = peer.rfind(']');
    if (bracket != absl::string_view::npos) {
      return std::string(peer.substr(0, bracket + 1));
    }
    size_t encoded = peer.rfind("%5D");
    if (encoded != absl::string_view::npos) {
      return std::string(peer.substr(0, encoded + 3));
    }
  }
  return std::string(peer);
}

}  // namespace mxkey
