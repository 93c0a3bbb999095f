// One-line, timestamped log output to stderr for daemons and tools.
//
// Callers pass already-formatted text; nothing here knows about keys, so the
// rule "never log key material or tokens" is enforced at the call sites by
// only logging names, serials and fingerprints. Logging cannot fail.
#ifndef MXKEY_BASE_LOG_H_
#define MXKEY_BASE_LOG_H_

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace mxkey {

void LogLine(absl::string_view level, absl::string_view message);

template <typename... Args>
void LogInfo(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine("INFO", absl::StrFormat(format, args...));
}

template <typename... Args>
void LogWarning(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine("WARN", absl::StrFormat(format, args...));
}

}  // namespace mxkey

#endif  // MXKEY_BASE_LOG_H_
