// One real Postfix instance for end-to-end tests: its own config directory,
// queue, data directory (owned by postfix) and log file under `dir`, never
// /etc/postfix. Started with `postfix -c DIR start`; stopped, and its
// master killed by PID, when the object dies.
//
// Failures are returned as Status with the command's output; the instance
// logs to DIR/maillog through postlogd (there is no syslog here).
#ifndef MXKEY_TESTS_E2E_POSTFIX_POSTFIX_INSTANCE_H_
#define MXKEY_TESTS_E2E_POSTFIX_POSTFIX_INSTANCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mxkey {

struct PostfixConfig {
  std::string dir;         // everything of the instance lives here
  std::string myhostname;  // distinct per instance
  // main.cf lines beyond the common ones (loopback only, no chroot, ...).
  std::vector<std::string> main_cf;
  // master.cf service lines beyond the standard daemons, e.g.
  // "127.0.0.1:10025 inet n - n - - smtpd".
  std::vector<std::string> services;
};

class PostfixInstance {
 public:
  static absl::StatusOr<std::unique_ptr<PostfixInstance>> Start(
      PostfixConfig config);
  ~PostfixInstance();

  // `postfix reload`, returning once the master has logged the reload.
  absl::Status Reload();
  // Asks the queue manager to retry deferred mail now.
  absl::Status Flush();
  void Stop();

  std::string Log() const;
  // `postqueue -j`: one JSON object per queued message.
  std::string QueueJson() const;
  // Waits until the log has a line containing every one of `parts`;
  // returns that line, or DEADLINE_EXCEEDED with the log's tail.
  absl::StatusOr<std::string> WaitForLogLine(
      const std::vector<std::string>& parts, absl::Duration timeout) const;
  const std::string& dir() const { return config_.dir; }

 private:
  explicit PostfixInstance(PostfixConfig config) : config_(std::move(config)) {}
  absl::Status Postfix(const std::vector<std::string>& args) const;
  size_t CountReloads() const;

  PostfixConfig config_;
  bool running_ = false;
};

}  // namespace mxkey

#endif  // MXKEY_TESTS_E2E_POSTFIX_POSTFIX_INSTANCE_H_
