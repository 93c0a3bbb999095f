#include "tests/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/files.h"

namespace mxkey {

namespace {

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out,
            const std::string& err) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  int err_fd = err == out ? out_fd
                          : open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  int null_fd = open("/dev/null", O_RDONLY);
  dup2(null_fd, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv, const std::string& log_path) {
  pid_t pid = Spawn(argv, log_path, log_path);
  if (pid < 0) return absl::InternalError("fork failed");
  return std::unique_ptr<Subprocess>(new Subprocess(pid));
}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int Subprocess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return DecodeStatus(status);
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return -1;
}

CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout) {
  static int counter = 0;
  std::string base = absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR")
                                                        : "/tmp",
                                  "/cmd.", getpid(), ".", ++counter);
  std::string out = base + ".out", err = base + ".err";
  pid_t pid = Spawn(argv, out, err);
  Subprocess process(pid);
  CommandResult result;
  result.exit_code = process.Wait(timeout);
  result.out = ReadFile(out).value_or("");
  result.err = ReadFile(err).value_or("");
  unlink(out.c_str());
  unlink(err.c_str());
  return result;
}

std::string RunfilePath(const std::string& relative) {
  const char* srcdir = getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/mxkey/", relative);
}

std::string TokenFile(const std::string& dir, const std::string& token) {
  static std::atomic<int> next{0};
  const std::string path = absl::StrCat(dir, "/token-", getpid(), "-", next++);
  absl::Status st = WriteFileAtomically(path, token + "\n", 0600);
  return st.ok() ? path : "";
}

std::string ShortTempDir() {
  std::string tmpl = "/tmp/mxk.XXXXXX";
  return mkdtemp(&tmpl[0]);
}

absl::StatusOr<int> WaitForListeningPort(const std::string& log_path,
                                         absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::string log = ReadFile(log_path, 16 << 20).value_or("");
    // The last "listening on" line belongs to the newest start.
    size_t pos = log.rfind("listening on ");
    if (pos != std::string::npos) {
      size_t end = log.find('\n', pos);
      if (end != std::string::npos) {
        std::string addr = log.substr(pos + 13, end - pos - 13);
        int port;
        if (absl::SimpleAtoi(addr.substr(addr.rfind(':') + 1), &port)) {
          return port;
        }
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no 'listening on' line in ", log_path));
}

}  // namespace mxkey
