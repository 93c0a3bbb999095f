#include "keyd/rate_limiter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

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
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    // Full: forget the source seen least recently. Refusing instead would
    // let anyone with many addresses lock every new source out.
    if (buckets_.size() >= max_sources_ && !by_recency_.empty()) {
      buckets_.erase(by_recency_.back());
      by_recency_.pop_back();
    }
    by_recency_.emplace_front(source);
    it = buckets_.emplace(std::string(source),
                          Bucket{limit_.burst, now, by_recency_.begin()})
             .first;
  } else {
    by_recency_.splice(by_recency_.begin(), by_recency_, it->second.recency);
  }
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

namespace {

// Clears every bit of `bytes` after the first `prefix` bits.
void Mask(unsigned char* bytes, size_t size, int prefix) {
  for (size_t i = 0; i < size; ++i) {
    const int keep = std::clamp(prefix - static_cast<int>(i) * 8, 0, 8);
    bytes[i] &= static_cast<unsigned char>(0xff00 >> keep);
  }
}

std::string Ipv4Network(in_addr addr, int prefix) {
  Mask(reinterpret_cast<unsigned char*>(&addr), sizeof(addr), prefix);
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, text, sizeof(text));
  return absl::StrCat("ipv4:", text, "/", prefix);
}

}  // namespace

std::string SourceNetwork(absl::string_view peer,
                          const SourcePrefixes& prefixes) {
  if (absl::StartsWith(peer, "ipv4:")) {
    const size_t colon = peer.rfind(':');
    in_addr addr;
    if (colon > 4 &&
        inet_pton(AF_INET, std::string(peer.substr(5, colon - 5)).c_str(),
                  &addr) == 1) {
      return Ipv4Network(addr, prefixes.ipv4);
    }
  }
  if (absl::StartsWith(peer, "ipv6:")) {
    // gRPC writes the brackets plain or percent-encoded ("%5B::1%5D:5000").
    absl::string_view rest = peer.substr(5);
    size_t open = 1, close = rest.rfind(']');
    if (absl::StartsWith(rest, "%5B")) {
      open = 3;
      close = rest.rfind("%5D");
    }
    in6_addr addr;
    if (close != absl::string_view::npos && close > open &&
        inet_pton(AF_INET6, std::string(rest.substr(open, close - open)).c_str(),
                  &addr) == 1) {
      if (IN6_IS_ADDR_V4MAPPED(&addr)) {
        in_addr v4;
        memcpy(&v4, addr.s6_addr + 12, sizeof(v4));
        return Ipv4Network(v4, prefixes.ipv4);
      }
      Mask(addr.s6_addr, sizeof(addr.s6_addr), prefixes.ipv6);
      char text[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, &addr, text, sizeof(text));
      return absl::StrCat("ipv6:", text, "/", prefixes.ipv6);
    }
  }
  return std::string(peer);
}

}  // namespace mxkey
