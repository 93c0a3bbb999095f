// The one parser for durations given on command lines: absl's forms
// ("30s", "5m", "1h30m") and whole days ("7d"), positive only.
// INVALID_ARGUMENT names the flag and what was given.
#ifndef MXKEY_BASE_DURATION_FLAG_H_
#define MXKEY_BASE_DURATION_FLAG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mxkey {

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text,
                                                 absl::string_view flag);

}  // namespace mxkey

#endif  // MXKEY_BASE_DURATION_FLAG_H_
