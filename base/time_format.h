// The one text form of a Unix time in output and messages:
// "2026-11-28T18:09:24Z" (UTC, seconds). Cannot fail.
#ifndef MXKEY_BASE_TIME_FORMAT_H_
#define MXKEY_BASE_TIME_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace mxkey {

inline std::string FormatUnixTime(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

}  // namespace mxkey

#endif  // MXKEY_BASE_TIME_FORMAT_H_
