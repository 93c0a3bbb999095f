// A real keyd process for end-to-end tests: initialized in a short temp
// directory (cheap scrypt), listening on 127.0.0.1 with a kernel-chosen
// port, stopped by PID when the object dies.
#ifndef MXKEY_TESTS_KEYD_PROCESS_H_
#define MXKEY_TESTS_KEYD_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/subprocess.h"

namespace mxkey {

class KeydProcess {
 public:
  // Runs `keyd init --org ORG` in a fresh directory.
  static absl::StatusOr<std::unique_ptr<KeydProcess>> Init(
      const std::string& org = "example");
  ~KeydProcess();

  // Starts `keyd serve` and waits until it listens (on 127.0.0.1:0 unless
  // `extra_args` has a --listen of its own). `wrapper` runs keyd under
  // another command, e.g. {"/usr/bin/faketime", "-f", "+45m"}.
  absl::Status Start(const std::vector<std::string>& extra_args = {},
                     const std::vector<std::string>& wrapper = {});
  // Starts it without waiting (to kill it during its start).
  absl::Status Spawn(const std::vector<std::string>& extra_args = {},
                     const std::vector<std::string>& wrapper = {});
  // SIGTERM, then wait; returns the exit code.
  int Stop();
  // SIGKILL, no cleanup (crash tests).
  void Kill();

  // A keyctl command line for this keyd, trusting its root.
  std::vector<std::string> Keyctl(const std::vector<std::string>& args) const;
  CommandResult RunKeyctl(const std::vector<std::string>& args) const;

  const std::string& dir() const { return dir_; }
  const std::string& fingerprint() const { return fingerprint_; }
  std::string admin_socket() const { return dir_ + "/admin.sock"; }
  int port() const { return port_; }
  // The running keyd's PID, or -1.
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  std::string address() const;
  std::string log() const;

 private:
  KeydProcess() = default;
  std::string LogPath(int start) const;
  std::string dir_;
  std::string fingerprint_;
  int port_ = 0;
  int starts_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace mxkey

#endif  // MXKEY_TESTS_KEYD_PROCESS_H_
