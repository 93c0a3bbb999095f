#include "tests/keyd_process.h"

#include <algorithm>

#include <signal.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/files.h"

namespace mxkey {

absl::StatusOr<std::unique_ptr<KeydProcess>> KeydProcess::Init(
    const std::string& org) {
  std::unique_ptr<KeydProcess> k(new KeydProcess());
  k->dir_ = ShortTempDir();
  std::string data = k->dir_ + "/data";
  CommandResult init =
      RunCommand({RunfilePath("keyd/keyd"), "init", "--data-dir", data,
                  "--org", org, "--kdf-cost", "4"});
  if (init.exit_code != 0) {
    return absl::InternalError(absl::StrCat("keyd init failed: ", init.err));
  }
  k->dir_ = data;
  k->fingerprint_ = std::string(absl::StripAsciiWhitespace(init.out));
  return k;
}

KeydProcess::~KeydProcess() {
  process_.reset();  // SIGKILL if still running
  RunCommand({"/bin/rm", "-rf", dir_.substr(0, dir_.rfind('/'))});
}

absl::Status KeydProcess::Spawn(const std::vector<std::string>& extra_args,
                                const std::vector<std::string>& wrapper) {
  std::vector<std::string> argv = wrapper;
  argv.insert(argv.end(),
              {RunfilePath("keyd/keyd"), "serve", "--data-dir", dir_});
  if (std::find(extra_args.begin(), extra_args.end(), "--listen") ==
      extra_args.end()) {
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<Subprocess>> p =
      Subprocess::Start(argv, LogPath(++starts_));
  if (!p.ok()) return p.status();
  process_ = *std::move(p);
  return absl::OkStatus();
}

std::string KeydProcess::LogPath(int start) const {
  return absl::StrCat(dir_, "/../keyd.", start, ".log");
}

absl::Status KeydProcess::Start(const std::vector<std::string>& extra_args,
                                const std::vector<std::string>& wrapper) {
  if (absl::Status s = Spawn(extra_args, wrapper); !s.ok()) return s;
  absl::StatusOr<int> port =
      WaitForListeningPort(LogPath(starts_), absl::Seconds(20));
  if (!port.ok()) return port.status();
  port_ = *port;
  return absl::OkStatus();
}

int KeydProcess::Stop() {
  if (!process_) return -1;
  process_->Signal(SIGTERM);
  int code = process_->Wait(absl::Seconds(20));
  process_.reset();
  return code;
}

void KeydProcess::Kill() {
  if (!process_) return;
  process_->Signal(SIGKILL);
  process_->Wait(absl::Seconds(20));
  process_.reset();
}

std::string KeydProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::string KeydProcess::log() const {
  return ReadFile(LogPath(starts_), 16 << 20).value_or("");
}

std::vector<std::string> KeydProcess::Keyctl(
    const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {RunfilePath("tools/keyctl/keyctl"),
                                   "--keyd",
                                   address(),
                                   "--admin-socket",
                                   admin_socket(),
                                   "--root-fingerprint",
                                   fingerprint_};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

CommandResult KeydProcess::RunKeyctl(const std::vector<std::string>& args) const {
  return RunCommand(Keyctl(args), absl::Seconds(30));
}

}  // namespace mxkey
