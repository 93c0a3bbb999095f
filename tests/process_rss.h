// A process's resident set, for tests that measure what a flood costs a
// daemon they started.
#ifndef MXKEY_TESTS_PROCESS_RSS_H_
#define MXKEY_TESTS_PROCESS_RSS_H_

#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace mxkey {

// VmRSS of `pid` in KiB; -1 if it cannot be read.
inline int64_t RssKib(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

}  // namespace mxkey

#endif  // MXKEY_TESTS_PROCESS_RSS_H_
