// When a host certificate next changes state (becomes valid, becomes
// active, expires). An answer that states a certificate's state is true
// only until then, so keyd's answer cache and KeyClient's cache both stop
// serving it at that moment. Cannot fail.
#ifndef MXKEY_PROTOCOL_CERTIFICATE_TIMES_H_
#define MXKEY_PROTOCOL_CERTIFICATE_TIMES_H_

#include <algorithm>
#include <cstdint>

#include "proto/mxkey/v1/objects.pb.h"

namespace mxkey {

// How far in the past keyd puts `not_before` of what it certifies (issuing
// keys, host certificates, its TLS key), so that a client whose clock runs
// a few minutes behind accepts them at once.
inline constexpr int64_t kBackdateSeconds = 300;

// The earliest of `until` and the certificate's state changes after `now`
// (Unix seconds).
inline int64_t NextCertificateChange(const mxkey::v1::HostCertificateBody& c,
                                     int64_t now, int64_t until) {
  for (int64_t t : {c.not_before(), c.active_from(), c.not_after()}) {
    if (t > now) until = std::min(until, t);
  }
  return until;
}

}  // namespace mxkey

#endif  // MXKEY_PROTOCOL_CERTIFICATE_TIMES_H_
