#include "base/duration_flag.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mxkey {

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text,
                                                 absl::string_view flag) {
  absl::Duration d;
  bool parsed = false;
  if (absl::EndsWith(text, "d")) {
    int64_t days = 0;
    // Bounded so that the product cannot overflow anything downstream.
    parsed = absl::SimpleAtoi(text.substr(0, text.size() - 1), &days) &&
             days > 0 && days <= 36500;
    d = absl::Hours(24) * days;
  } else {
    parsed = absl::ParseDuration(std::string(text), &d);
  }
  if (!parsed || d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " expects a positive duration like 30s, 5m, 1h or 7d, got \"",
        absl::CHexEscape(text), "\""));
  }
  return d;
}

}  // namespace mxkey
