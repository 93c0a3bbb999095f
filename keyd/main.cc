// keyd: the mxkey key daemon.
//
//   keyd init  --data-dir DIR --org ORG [--passphrase-file F]
//   keyd [--config /etc/mxkey/keyd.toml] serve --data-dir DIR
//              [--listen 127.0.0.1:7700] [--admin-socket PATH]
//              [--admin-group GROUP] [--metrics-listen HOST:PORT]
//              [--passphrase-file F] [--freshness 5m] [--cert-validity 30d]
//              [--rotation-overlap 7d] [--tls auto] [--enroll-limit 60]
//              [--enroll-failure-limit 10] [--enroll-ipv4-prefix 24]
//              [--enroll-ipv6-prefix 64] [--max-watches 8192]
//              [--max-watches-per-source 256] [--watch-drain-timeout 60s]
//              [--watch-buffer-mb 64] [--relay-max-calls-per-peer 64]
//              [--answer-cache-mb 128] [--denial-limit 6000]
//              [--refusal-delay 1s] [--max-delayed-refusals 16384]
//              [--watch-refusal-delay 60s]
//   keyd [--config F] check-config [serve's flags]
//   keyd --version
//
// Every serve flag is also a key of the config file (packaging/keyd.toml
// is the commented example). SIGTERM/SIGINT stop keyd cleanly; SIGHUP
// re-checks the config and logs what a restart would change.
//
// Exit codes: 0 clean shutdown (check-config: valid), 1 error (check-config:
// invalid), 2 usage.
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include <systemd/sd-daemon.h>

#include <string.h>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "base/config_file.h"
#include "base/duration_flag.h"
#include "base/version.h"
#include "base/status_macros.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/files.h"
#include "base/log.h"
#include "crypto/random.h"
#include "keyd/issuer.h"
#include "keyd/server.h"

namespace mxkey {
namespace {

int Fail(const absl::Status& status) {
  std::cerr << "keyd: " << status.message() << "\n";
  return 1;
}

int Init(const std::string& dir, const std::string& org,
         const std::string& passphrase_file, int kdf_log2n) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(absl::InternalError(
        absl::StrCat("cannot create ", dir, ": ", strerror(errno))));
  }
  if (passphrase_file.empty()) {
    std::string path = absl::StrCat(dir, "/passphrase");
    if (access(path.c_str(), F_OK) != 0) {
      // No passphrase given: make a random one beside the keys, so the
      // demo works; operators should move it off the machine.
      absl::StatusOr<std::string> random = RandomBytes(32);
      if (!random.ok()) return Fail(random.status());
      absl::Status st = WriteFileAtomically(
          path, absl::BytesToHexString(*random) + "\n", 0600);
      if (!st.ok()) return Fail(st);
      LogWarning("no --passphrase-file: generated %s (mode 0600); keep it "
                 "apart from the key files in production",
                 path);
    }
  }
  absl::StatusOr<SecretBytes> pass = LoadPassphrase(dir, passphrase_file);
  if (!pass.ok()) return Fail(pass.status());
  OrgKeysOptions options;
  options.scrypt.log2_n = static_cast<uint8_t>(kdf_log2n);
  absl::Status st = OrgKeys::Init(dir, org, *pass, options, Clock::Real());
  if (!st.ok()) return Fail(st);
  absl::StatusOr<std::unique_ptr<OrgKeys>> keys =
      OrgKeys::Load(dir, *pass, options, Clock::Real());
  if (!keys.ok()) return Fail(keys.status());
  // Public: lets scripts and operators read the trust anchor offline.
  st = WriteFileAtomically(absl::StrCat(dir, "/root.fingerprint"),
                           (*keys)->root_fingerprint() + "\n", 0644);
  if (!st.ok()) return Fail(st);
  LogInfo("org initialized: org=%s root=%s", org, (*keys)->root_fingerprint());
  std::cout << (*keys)->root_fingerprint() << "\n";
  return 0;
}

// The serve flags, as given on the command line and in the config file.
struct ServeFlags {
  ServerOptions options;
  std::string passphrase_file;
  std::string freshness = "5m";
  std::string cert_validity = "30d";
  std::string rotation_overlap = "7d";
  std::string tls = "auto";
  int enroll_limit = 60;
  int failure_limit = 10;
  int ipv4_prefix = 24;
  int ipv6_prefix = 64;
  int max_watches = 8192;
  int max_watches_per_source = 256;
  std::string watch_drain_timeout = "60s";
  int watch_buffer_mb = 64;
  int relay_calls_per_peer = 64;
  int answer_cache_mb = 128;
  int denial_limit = 6000;
  std::string refusal_delay = "1s";
  int max_delayed_refusals = 16384;
  std::string watch_refusal_delay = "60s";
};

// One list of serve settings for `serve` and `check-config`; each is also a
// key of the config file (base/config_file.h).
void AddServeFlags(CLI::App* cmd, ServeFlags* f) {
  ServerOptions& o = f->options;
  cmd->add_option("--data-dir", o.data_dir, "data directory")->required();
  cmd->add_option("--listen", o.listen,
                  "public HOST:PORT (default 127.0.0.1:7700; port 0 picks)")
      ->check(HostPortCheck());
  cmd->add_option("--admin-socket", o.admin_socket,
                  "admin Unix socket (default DATA_DIR/admin.sock)");
  cmd->add_option("--admin-group", o.admin_group,
                  "group allowed on the admin socket (keyd's user must be a "
                  "member)");
  cmd->add_option("--metrics-listen", o.metrics_listen,
                  "HOST:PORT serving Prometheus /metrics (default: off)")
      ->check(HostPortCheck());
  cmd->add_option("--passphrase-file", f->passphrase_file,
                  "key-file passphrase (default DATA_DIR/passphrase)");
  cmd->add_option("--freshness", f->freshness,
                  "validity of freshness statements (default 5m)")
      ->check(DurationCheck());
  cmd->add_option("--cert-validity", f->cert_validity,
                  "validity of host certificates; keyd re-certifies them "
                  "when a third is left (default 30d, at least 1h)")
      ->check(DurationCheck());
  cmd->add_option("--rotation-overlap", f->rotation_overlap,
                  "how long a rotated host's old key stays in use beside "
                  "the next one unless the host runs keyctl rotate "
                  "--finish (default 7d; 2x freshness to 90d)")
      ->check(DurationCheck());
  cmd->add_option("--tls", f->tls,
                  "TLS on the public endpoint and to peers, keyd's TLS key "
                  "certified by the org root: auto (TLS unless the address "
                  "is loopback), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  cmd->add_option("--enroll-limit", f->enroll_limit,
                  "Enroll/Rotate requests per minute per source address, "
                  "bursts of half that (default 60; 0: no limit)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--enroll-failure-limit", f->failure_limit,
                  "rejected Enroll/Rotate requests per 10 minutes per "
                  "source address before it is refused (default 10; 0: no "
                  "limit)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--enroll-ipv4-prefix", f->ipv4_prefix,
                  "IPv4 addresses in one network of this prefix length share "
                  "one enrollment rate limit and one watch cap (default 24)")
      ->check(CLI::Range(8, 32));
  cmd->add_option("--enroll-ipv6-prefix", f->ipv6_prefix,
                  "IPv6 addresses in one network of this prefix length share "
                  "one enrollment rate limit and one watch cap (default 64: "
                  "one site)")
      ->check(CLI::Range(16, 128));
  cmd->add_option("--max-watches", f->max_watches,
                  "open WatchRevocations streams keyd holds in all; more are "
                  "refused, and clients retry (default 8192)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--max-watches-per-source", f->max_watches_per_source,
                  "open WatchRevocations streams per source network "
                  "(default 256)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--watch-drain-timeout", f->watch_drain_timeout,
                  "a watch whose client reads nothing of a batch for this "
                  "long is dropped (default 60s; 1s to 1h)")
      ->check(DurationCheck());
  cmd->add_option("--watch-buffer-mb", f->watch_buffer_mb,
                  "MiB the revocation batches of all watches may hold "
                  "(shared between watches; default 64)")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--relay-max-calls-per-peer", f->relay_calls_per_peer,
                  "relayed lookups in flight to one peer organization; more "
                  "get UNAVAILABLE at once (default 64)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--answer-cache-mb", f->answer_cache_mb,
                  "MiB for everything kept per looked-up name: whole answers "
                  "and their denial and freshness signatures, least recently "
                  "used out first (default 128)")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--denial-limit", f->denial_limit,
                  "new signed denials (lookups of names nobody registered) "
                  "per minute per source network, bursts of a sixth of that; "
                  "more get RESOURCE_EXHAUSTED (default 6000; 0: no limit)")
      ->check(CLI::Range(0, 100000000));
  // Checked in Finalize, not by DurationCheck: 0s is allowed here.
  cmd->add_option("--refusal-delay", f->refusal_delay,
                  "refusals by the enrollment and denial limits, rejected "
                  "enrollments, and relayed lookups refused without asking "
                  "the peer, are sent this late, so that a "
                  "client asking again at once gains nothing (default 1s; "
                  "0s to 2s; 0s: at once)");
  cmd->add_option("--max-delayed-refusals", f->max_delayed_refusals,
                  "refusals that may wait out --refusal-delay at a time, at "
                  "most half of them from one source network; past that "
                  "they are sent at once (default 16384)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--watch-refusal-delay", f->watch_refusal_delay,
                  "a WatchRevocations stream refused by --max-watches or "
                  "--max-watches-per-source is held open this long before "
                  "its refusal, so that reopening refused streams costs keyd "
                  "nothing (default 60s; 0s to 10m; 0s: at once); held ones "
                  "count against --max-delayed-refusals");
}

// A delay flag of which 0 (or 0s) means none, at most `max`.
absl::StatusOr<absl::Duration> ParseDelayFlag(const std::string& text,
                                              absl::string_view flag,
                                              absl::Duration max,
                                              absl::string_view range) {
  absl::Duration delay = absl::ZeroDuration();
  // ParseDurationFlag takes positive durations only: never negative.
  if (text != "0" && text != "0s") {
    ASSIGN_OR_RETURN(delay, ParseDurationFlag(text, flag));
  }
  if (delay > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " must be between ", range));
  }
  return delay;
}

// The checks that span flags; turns the text flags into options.
absl::Status Finalize(ServeFlags* f) {
  ServerOptions& o = f->options;
  ASSIGN_OR_RETURN(o.keyd.freshness,
                   ParseDurationFlag(f->freshness, "--freshness"));
  ASSIGN_OR_RETURN(o.keyd.cert_validity,
                   ParseDurationFlag(f->cert_validity, "--cert-validity"));
  ASSIGN_OR_RETURN(o.keyd.rotation_overlap,
                   ParseDurationFlag(f->rotation_overlap, "--rotation-overlap"));
  if (o.keyd.cert_validity < absl::Hours(1)) {
    return absl::InvalidArgumentError("--cert-validity must be at least 1h");
  }
  absl::Status overlap = CheckRotationOverlap(o.keyd, o.keyd.rotation_overlap);
  if (!overlap.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rotation-overlap: ", overlap.message()));
  }
  o.tls = *ParseKeydTransport(f->tls);  // checked by IsMember
  o.enrollment_limits.requests = {static_cast<double>(f->enroll_limit),
                                  std::max(1.0, f->enroll_limit / 2.0)};
  o.enrollment_limits.failures = {f->failure_limit / 10.0,
                                  static_cast<double>(f->failure_limit)};
  o.enrollment_limits.prefixes = {f->ipv4_prefix, f->ipv6_prefix};
  o.watch_limits.prefixes = o.enrollment_limits.prefixes;
  o.watch_limits.max_watches = static_cast<size_t>(f->max_watches);
  o.watch_limits.max_watches_per_source =
      static_cast<size_t>(f->max_watches_per_source);
  ASSIGN_OR_RETURN(o.watch_limits.drain_timeout,
                   ParseDurationFlag(f->watch_drain_timeout,
                                     "--watch-drain-timeout"));
  if (o.watch_limits.drain_timeout < absl::Seconds(1) ||
      o.watch_limits.drain_timeout > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        "--watch-drain-timeout must be between 1s and 1h");
  }
  o.watch_buffer_bytes = static_cast<size_t>(f->watch_buffer_mb) << 20;
  o.watch_limits.max_pending_bytes_per_source = o.watch_buffer_bytes / 8;
  o.relay_limits.max_calls_per_peer = f->relay_calls_per_peer;
  o.keyd.answer_cache_bytes = static_cast<size_t>(f->answer_cache_mb) << 20;
  o.keyd.denial_limit_per_minute = f->denial_limit;
  // At most 2 s x 1.5 (the spread): within a client's 3 s RPC deadline, so
  // that a refusal reaches it as a refusal, not as a timeout.
  ASSIGN_OR_RETURN(o.refusal_delay.delay,
                   ParseDelayFlag(f->refusal_delay, "--refusal-delay",
                                  absl::Seconds(2), "0s and 2s"));
  // A watch has no deadline; a client waits for its first response.
  ASSIGN_OR_RETURN(o.watch_limits.refusal_delay,
                   ParseDelayFlag(f->watch_refusal_delay,
                                  "--watch-refusal-delay", absl::Minutes(10),
                                  "0s and 10m"));
  o.refusal_delay.max_held = static_cast<size_t>(f->max_delayed_refusals);
  o.refusal_delay.max_per_source = o.refusal_delay.max_held / 2;
  return absl::OkStatus();
}

// The command line, parsed again: what SIGHUP checks. Errors as text.
absl::StatusOr<ServeFlags> Reparse(int argc, char** argv);
// The settings that differ ("freshness,tls"), or "none".
std::string DescribeChanges(const ServeFlags& running, const ServeFlags& next);

int Serve(ServeFlags flags, int argc, char** argv) {
  const ServerOptions& options = flags.options;
  // Say what is wrong before anything else (a missing passphrase would be
  // the first thing to fail, and point the wrong way).
  if (access(absl::StrCat(options.data_dir, "/root.key").c_str(), F_OK) != 0) {
    return Fail(absl::NotFoundError(absl::StrCat(
        options.data_dir, " is not an initialized keyd data directory (no "
        "root.key): run keyd init --data-dir ", options.data_dir,
        " --org ORG first")));
  }
  absl::StatusOr<SecretBytes> pass =
      LoadPassphrase(options.data_dir, flags.passphrase_file);
  if (!pass.ok()) return Fail(pass.status());

  // Block the signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<KeydServer>> server =
      KeydServer::Start(options, *pass, Clock::Real());
  if (!server.ok()) return Fail(server.status());
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  LogInfo("listening on %s:%d", host, (*server)->port());
  sd_notify(0, "READY=1");

  std::thread waiter([&] {
    for (;;) {
      int sig = 0;
      sigwait(&signals, &sig);
      if (sig != SIGHUP) {
        LogInfo("signal=SIG%s action=shutdown", sigabbrev_np(sig));
        sd_notify(0, "STOPPING=1");
        (*server)->Shutdown();
        return;
      }
      // Nothing keyd holds can change under it safely (keys, listeners,
      // limits are read at start), so a reload checks the file and says
      // what a restart would change; it never stops keyd.
      absl::StatusOr<ServeFlags> next = Reparse(argc, argv);
      if (!next.ok()) {
        LogWarning("signal=SIGHUP action=none config_error=\"%s\": keeping "
                   "the running settings",
                   absl::CHexEscape(next.status().message()));
        continue;
      }
      LogInfo("signal=SIGHUP action=checked config=ok restart_needed=%s",
              DescribeChanges(flags, *next));
    }
  });
  (*server)->Wait();
  waiter.join();
  server->reset();
  LogInfo("keyd stopped");
  return 0;
}

// The whole command line of keyd, for main and for SIGHUP's re-check.
struct Commands {
  CLI::App app{"keyd: issues, publishes and revokes MTA host keys"};
  CLI::App* init = nullptr;
  CLI::App* serve = nullptr;
  CLI::App* check = nullptr;
  std::string data_dir, org, passphrase_file;
  int kdf_log2n = 15;
  ServeFlags flags;

  Commands() {
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("keyd ") + kVersion);
    init = app.add_subcommand("init", "create the org root and keys");
    init->add_option("--data-dir", data_dir, "data directory")->required();
    init->add_option("--org", org, "organization name")->required();
    init->add_option("--passphrase-file", passphrase_file,
                     "file holding the key-file passphrase");
    init->add_option("--kdf-cost", kdf_log2n,
                     "scrypt cost as log2(N) (default 15)")
        ->check(CLI::Range(1, 20));
    serve = app.add_subcommand("serve", "serve the key directory");
    AddServeFlags(serve, &flags);
    check = app.add_subcommand(
        "check-config",
        "check the config file and flags as serve would, without starting; "
        "exit 0 if they are valid, 1 if not");
    AddServeFlags(check, &flags);
    // `keyd serve --config F` as well as `keyd --config F serve`.
    serve->fallthrough();
    check->fallthrough();
    AddConfigFile(app, kDefaultConfig, {serve, check});
  }
  static constexpr const char* kDefaultConfig = "/etc/mxkey/keyd.toml";

};

absl::StatusOr<ServeFlags> Reparse(int argc, char** argv) {
  Commands again;
  try {
    again.app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  RETURN_IF_ERROR(Finalize(&again.flags));
  return again.flags;
}

std::string DescribeChanges(const ServeFlags& running, const ServeFlags& next) {
  std::vector<std::string> changed;
  auto differs = [&](const char* name, const std::string& a,
                     const std::string& b) {
    if (a != b) changed.push_back(name);
  };
  const ServerOptions& a = running.options;
  const ServerOptions& b = next.options;
  differs("data-dir", a.data_dir, b.data_dir);
  differs("listen", a.listen, b.listen);
  differs("admin-socket", a.admin_socket, b.admin_socket);
  differs("admin-group", a.admin_group, b.admin_group);
  differs("metrics-listen", a.metrics_listen, b.metrics_listen);
  differs("passphrase-file", running.passphrase_file, next.passphrase_file);
  differs("freshness", running.freshness, next.freshness);
  differs("cert-validity", running.cert_validity, next.cert_validity);
  differs("rotation-overlap", running.rotation_overlap, next.rotation_overlap);
  differs("tls", running.tls, next.tls);
  differs("enroll-limit", absl::StrCat(running.enroll_limit),
          absl::StrCat(next.enroll_limit));
  differs("enroll-failure-limit", absl::StrCat(running.failure_limit),
          absl::StrCat(next.failure_limit));
  differs("enroll-ipv4-prefix", absl::StrCat(running.ipv4_prefix),
          absl::StrCat(next.ipv4_prefix));
  differs("enroll-ipv6-prefix", absl::StrCat(running.ipv6_prefix),
          absl::StrCat(next.ipv6_prefix));
  differs("max-watches", absl::StrCat(running.max_watches),
          absl::StrCat(next.max_watches));
  differs("max-watches-per-source", absl::StrCat(running.max_watches_per_source),
          absl::StrCat(next.max_watches_per_source));
  differs("watch-drain-timeout", running.watch_drain_timeout,
          next.watch_drain_timeout);
  differs("watch-buffer-mb", absl::StrCat(running.watch_buffer_mb),
          absl::StrCat(next.watch_buffer_mb));
  differs("relay-max-calls-per-peer", absl::StrCat(running.relay_calls_per_peer),
          absl::StrCat(next.relay_calls_per_peer));
  differs("answer-cache-mb", absl::StrCat(running.answer_cache_mb),
          absl::StrCat(next.answer_cache_mb));
  differs("denial-limit", absl::StrCat(running.denial_limit),
          absl::StrCat(next.denial_limit));
  differs("refusal-delay", running.refusal_delay, next.refusal_delay);
  differs("max-delayed-refusals", absl::StrCat(running.max_delayed_refusals),
          absl::StrCat(next.max_delayed_refusals));
  differs("watch-refusal-delay", running.watch_refusal_delay,
          next.watch_refusal_delay);
  return changed.empty() ? "none" : absl::StrJoin(changed, ",");
}

}  // namespace
}  // namespace mxkey

int main(int argc, char** argv) {
  umask(077);
  // absl's lock-order graph takes a global lock on every Mutex acquisition;
  // the lock order is fixed by design (and TSan checks it), so the serving
  // path must not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Answers are built on one gRPC thread and freed on another. With glibc's
  // default of up to 8 arenas per core, memory freed into one thread's arena
  // is not reused by the others, and RSS creeps up under steady load (the
  // soak test's finding). Two arenas for two cores keep it flat; small
  // allocations still come from per-thread caches without a lock.
  mallopt(M_ARENA_MAX, 2);
  mxkey::Commands commands;
  const int parsed = mxkey::ParseCommandLine(commands.app, argc, argv);
  if (parsed >= 0) {
    // --help and --version exit 0; a bad flag or config file is a usage
    // error (2), except for check-config, whose answer is 0 or 1.
    if (parsed == 0) return 0;
    return commands.check->parsed() ? 1 : 2;
  }
  if (commands.init->parsed()) {
    return mxkey::Init(commands.data_dir, commands.org,
                       commands.passphrase_file, commands.kdf_log2n);
  }
  absl::Status valid = mxkey::Finalize(&commands.flags);
  if (!valid.ok()) {
    std::cerr << "keyd: " << valid.message() << "\n";
    return commands.check->parsed() ? 1 : 2;
  }
  if (commands.check->parsed()) {
    std::cout << "keyd: configuration is valid ("
              << mxkey::ConfigSource(commands.app) << ")\n";
    return 0;
  }
  return mxkey::Serve(commands.flags, argc, argv);
}
