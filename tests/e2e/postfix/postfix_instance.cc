#include "tests/e2e/postfix/postfix_instance.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/files.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

// The daemons a sending and receiving instance needs; chroot off ("n"),
// because the instance's files are outside any chroot.
constexpr const char* kMasterCf[] = {
    "pickup    unix  n       -       n       60      1       pickup",
    "cleanup   unix  n       -       n       -       0       cleanup",
    "qmgr      unix  n       -       n       300     1       qmgr",
    "tlsmgr    unix  -       -       n       1000?   1       tlsmgr",
    "rewrite   unix  -       -       n       -       -       trivial-rewrite",
    "bounce    unix  -       -       n       -       0       bounce",
    "defer     unix  -       -       n       -       0       bounce",
    "trace     unix  -       -       n       -       0       bounce",
    "verify    unix  -       -       n       -       1       verify",
    "flush     unix  n       -       n       1000?   0       flush",
    "proxymap  unix  -       -       n       -       -       proxymap",
    "smtp      unix  -       -       n       -       -       smtp",
    "relay     unix  -       -       n       -       -       smtp",
    "showq     unix  n       -       n       -       -       showq",
    "error     unix  -       -       n       -       -       error",
    "retry     unix  -       -       n       -       -       error",
    "discard   unix  -       -       n       -       -       discard",
    "virtual   unix  -       n       n       -       -       virtual",
    "anvil     unix  -       -       n       -       1       anvil",
    "scache    unix  -       -       n       -       1       scache",
    // There is no syslog on this machine: log to maillog_file.
    "postlog   unix-dgram n  -       n       -       1       postlogd",
};

}  // namespace

absl::StatusOr<std::unique_ptr<PostfixInstance>> PostfixInstance::Start(
    PostfixConfig config) {
  const passwd* pw = getpwnam("postfix");
  if (pw == nullptr) {
    return absl::FailedPreconditionError("no postfix user: install postfix");
  }
  const std::string& d = config.dir;
  for (const std::string sub : {"", "/conf", "/queue", "/data"}) {
    if (mkdir((d + sub).c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("mkdir ", d, sub));
    }
    chmod((d + sub).c_str(), 0755);
  }
  if (chown((d + "/data").c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return absl::InternalError("chown data directory to postfix");
  }
  std::vector<std::string> main_cf = {
      "compatibility_level = 3.6",
      "myhostname = " + config.myhostname,
      "mydestination =",
      "inet_interfaces = 127.0.0.1",
      "inet_protocols = ipv4",
      "queue_directory = " + d + "/queue",
      "data_directory = " + d + "/data",
      "maillog_file = " + d + "/maillog",
      "maillog_file_prefixes = /tmp",
      "biff = no",
      // Retry deferred mail within seconds, not minutes.
      "queue_run_delay = 1s",
      "minimal_backoff_time = 1s",
      "maximal_backoff_time = 2s",
  };
  main_cf.insert(main_cf.end(), config.main_cf.begin(), config.main_cf.end());
  std::vector<std::string> master_cf = config.services;
  master_cf.insert(master_cf.end(), std::begin(kMasterCf), std::end(kMasterCf));
  absl::Status st = WriteFileAtomically(
      d + "/conf/main.cf", absl::StrJoin(main_cf, "\n") + "\n", 0644);
  if (st.ok()) {
    st = WriteFileAtomically(d + "/conf/master.cf",
                             absl::StrJoin(master_cf, "\n") + "\n", 0644);
  }
  if (!st.ok()) return st;
  std::unique_ptr<PostfixInstance> p(new PostfixInstance(std::move(config)));
  if (absl::Status s = p->Postfix({"start"}); !s.ok()) return s;
  p->running_ = true;
  absl::StatusOr<std::string> up =
      p->WaitForLogLine({"daemon started"}, absl::Seconds(30));
  if (!up.ok()) return up.status();
  return p;
}

PostfixInstance::~PostfixInstance() { Stop(); }

absl::Status PostfixInstance::Postfix(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"/usr/sbin/postfix", "-c",
                                   config_.dir + "/conf"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = RunCommand(argv, absl::Seconds(60));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat(
        "postfix ", absl::StrJoin(args, " "), " in ", config_.dir, " exited ",
        r.exit_code, ": ", r.err, r.out, "\nlog:\n", Log()));
  }
  return absl::OkStatus();
}

absl::Status PostfixInstance::Reload() {
  // The master logs "reload -- version ..." once it has re-read its
  // configuration; wait for this reload's line, not an earlier one.
  const size_t before = CountReloads();
  if (absl::Status s = Postfix({"reload"}); !s.ok()) return s;
  for (int i = 0; i < 600; ++i) {
    if (CountReloads() > before) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("postfix reload in ", config_.dir, " logged no reload line"));
}

size_t PostfixInstance::CountReloads() const {
  const std::string log = Log();
  size_t n = 0;
  for (size_t at = log.find("reload -- version"); at != std::string::npos;
       at = log.find("reload -- version", at + 1)) {
    ++n;
  }
  return n;
}
absl::Status PostfixInstance::Flush() { return Postfix({"flush"}); }

void PostfixInstance::Stop() {
  if (!running_) return;
  running_ = false;
  const std::string pid_file = config_.dir + "/queue/pid/master.pid";
  int pid = 0;
  const std::string text = ReadFile(pid_file).value_or("");
  const bool have_pid =
      absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) && pid > 1;
  (void)Postfix({"stop"});
  if (!have_pid) return;
  // The master exits on "stop"; make sure of it, bounded, by its PID.
  for (int i = 0; i < 100 && kill(pid, 0) == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  if (kill(pid, 0) == 0) kill(pid, SIGKILL);
}

std::string PostfixInstance::Log() const {
  return ReadFile(config_.dir + "/maillog", 64 << 20).value_or("");
}

std::string PostfixInstance::QueueJson() const {
  return RunCommand({"/usr/sbin/postqueue", "-c", config_.dir + "/conf", "-j"})
      .out;
}

absl::StatusOr<std::string> PostfixInstance::WaitForLogLine(
    const std::vector<std::string>& parts, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  std::string log;
  while (absl::Now() < deadline) {
    log = Log();
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      bool all = true;
      for (const std::string& p : parts) {
        if (line.find(p) == absl::string_view::npos) {
          all = false;
          break;
        }
      }
      if (all) return std::string(line);
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "no log line with \"", absl::StrJoin(parts, "\" and \""), "\" in ",
      config_.dir, "/maillog within ", absl::FormatDuration(timeout),
      "; tail:\n", log.substr(log.size() > 3000 ? log.size() - 3000 : 0)));
}

}  // namespace mxkey
