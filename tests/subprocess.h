// Starting and stopping real processes in end-to-end tests.
//
// Every process is tracked by PID and killed (SIGKILL) when its Subprocess
// is destroyed, so a failing test leaves nothing running. Every wait is
// bounded in time.
#ifndef MXKEY_TESTS_SUBPROCESS_H_
#define MXKEY_TESTS_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mxkey {

class Subprocess {
 public:
  // Runs argv[0] with stdout and stderr appended to `log_path`.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::string& log_path);
  ~Subprocess();

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // The exit code, or 128 + signal number; SIGKILLs the process and
  // returns -1 if it has not ended within `timeout`.
  int Wait(absl::Duration timeout);
  bool running() const { return pid_ > 0; }

  // Takes ownership of an already started child.
  explicit Subprocess(pid_t pid) : pid_(pid) {}

 private:
  pid_t pid_;
};

struct CommandResult {
  int exit_code;
  std::string out;
  std::string err;
};

// Runs a command to completion (killed after `timeout`).
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(60));

// Path of a runfile of this workspace, e.g. "keyd/keyd".
std::string RunfilePath(const std::string& relative);

// Writes `token` to a new mode-0600 file in `dir` and returns its path, for
// `keyctl enroll --token-file` (keyctl refuses a token on its command line).
std::string TokenFile(const std::string& dir, const std::string& token);

// A fresh directory under /tmp with a short name (Unix socket paths must
// stay under 108 bytes). Removed by the caller.
std::string ShortTempDir();

// Polls `log_path` until a line "listening on HOST:PORT" appears; returns
// the port. DEADLINE_EXCEEDED after `timeout`.
absl::StatusOr<int> WaitForListeningPort(const std::string& log_path,
                                         absl::Duration timeout);

}  // namespace mxkey

#endif  // MXKEY_TESTS_SUBPROCESS_H_
