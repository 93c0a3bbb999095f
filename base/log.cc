#include "base/log.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mxkey {
namespace {

// True when stderr is a journald stream (systemd sets JOURNAL_STREAM to
// "DEVICE:INODE" of it): then each line starts with a syslog priority
// ("<6>", "<4>"), which journald turns into the entry's level.
bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  std::pair<std::string, std::string> parts = absl::StrSplit(env, ':');
  unsigned long long dev = 0, ino = 0;
  struct stat st;
  return absl::SimpleAtoi(parts.first, &dev) &&
         absl::SimpleAtoi(parts.second, &ino) && fstat(2, &st) == 0 &&
         st.st_dev == dev && st.st_ino == ino;
}

const char* Priority(absl::string_view level) {
  if (level == "WARN") return "<4>";
  if (level == "ERROR") return "<3>";
  return "<6>";
}

}  // namespace

void LogLine(absl::string_view level, absl::string_view message) {
  static const bool journal = StderrIsJournal();
  std::string line = absl::StrFormat(
      "%s%s %s %s\n", journal ? Priority(level) : "",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      level, message);
  // One fwrite per line keeps concurrent lines from interleaving.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace mxkey
