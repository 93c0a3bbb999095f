// Token-bucket rate limits per source network, for the public Enrollment
// service: one bucket for requests, one for failed attempts (token
// guessing). Thread-safe. Memory is bounded by `max_sources` buckets; when
// the table is full the least recently used bucket is forgotten, so a new
// source is never refused because others filled the table (a forgotten
// source only gets a full bucket back). Sources are networks, not single
// addresses (SourceNetwork: IPv4 /24, IPv6 /64 by default), since one host
// commonly holds a whole IPv6 /64. Take fails with RESOURCE_EXHAUSTED,
// naming the source and when to retry.
#ifndef MXKEY_KEYD_RATE_LIMITER_H_
#define MXKEY_KEYD_RATE_LIMITER_H_

#include <list>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/mutex.h"
#include "base/clock.h"

namespace mxkey {

struct RateLimit {
  double per_minute = 60;  // refill rate; 0 disables the limit
  double burst = 30;       // bucket size
};

class RateLimiter {
 public:
  RateLimiter(Clock* clock, RateLimit limit, size_t max_sources = 65536)
      : clock_(clock), limit_(limit), max_sources_(max_sources) {}

  // Takes one token from `source`'s bucket. `what` names the limit in the
  // error ("enrollment requests").
  absl::Status Take(absl::string_view source, absl::string_view what);
  // Fails like Take when the bucket is empty, without taking a token.
  absl::Status Check(absl::string_view source, absl::string_view what);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
    std::list<std::string>::iterator recency;  // into by_recency_
  };
  absl::Status Use(absl::string_view source, absl::string_view what,
                   double cost);
  void Refill(Bucket& b, absl::Time now) const;

  Clock* clock_;
  RateLimit limit_;
  size_t max_sources_;
  Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  // Sources, most recently used first.
  std::list<std::string> by_recency_ ABSL_GUARDED_BY(mu_);
};

// How wide a source is: the prefix lengths that count as one source.
struct SourcePrefixes {
  int ipv4 = 24;  // 0..32
  int ipv6 = 64;  // 0..128
};

// The client's network from a gRPC peer string: "ipv4:192.0.2.77:5000" ->
// "ipv4:192.0.2.0/24", "ipv6:[2001:db8::1]:5000" -> "ipv6:2001:db8::/64"
// (brackets plain or percent-encoded). An IPv4-mapped IPv6 address counts
// as IPv4. Anything else (a Unix socket) is returned as is.
std::string SourceNetwork(absl::string_view grpc_peer,
                          const SourcePrefixes& prefixes = {});

}  // namespace mxkey

#endif  // MXKEY_KEYD_RATE_LIMITER_H_
