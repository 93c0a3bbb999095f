// Token-bucket rate limits per source address, for the public Enrollment
// service: one bucket for requests, one for failed attempts (token
// guessing). Thread-safe; memory is bounded (sources idle long enough to be
// full again are forgotten). Take fails with RESOURCE_EXHAUSTED, naming the
// source and when to retry.
#ifndef MXKEY_KEYD_RATE_LIMITER_H_
#define MXKEY_KEYD_RATE_LIMITER_H_

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
  };
  absl::Status Use(absl::string_view source, absl::string_view what,
                   double cost);
  void Refill(Bucket& b, absl::Time now) const;

  Clock* clock_;
  RateLimit limit_;
  size_t max_sources_;
  Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

// The client's address from a gRPC peer string, without the port:
// "ipv4:192.0.2.1:5000" -> "ipv4:192.0.2.1", "ipv6:[::1]:5000" ->
// "ipv6:[::1]"; anything else is returned as is.
std::string SourceAddress(absl::string_view grpc_peer);

}  // namespace mxkey

#endif  // MXKEY_KEYD_RATE_LIMITER_H_
