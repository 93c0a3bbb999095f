// keyd: the mxkey key daemon.
//
//   keyd init  --data-dir DIR --org ORG [--passphrase-file F]
//   keyd serve --data-dir DIR [--listen 127.0.0.1:7700] [--admin-socket PATH]
//              [--admin-group GROUP] [--passphrase-file F] [--freshness 5m]
//              [--cert-validity 30d] [--rotation-overlap 7d] [--tls auto]
//
// Exit codes: 0 clean shutdown, 1 error, 2 usage.
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "base/duration_flag.h"
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

int Serve(ServerOptions options, const std::string& passphrase_file) {
  absl::StatusOr<SecretBytes> pass =
      LoadPassphrase(options.data_dir, passphrase_file);
  if (!pass.ok()) return Fail(pass.status());

  // Block the shutdown signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<KeydServer>> server =
      KeydServer::Start(options, *pass, Clock::Real());
  if (!server.ok()) return Fail(server.status());
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  LogInfo("listening on %s:%d", host, (*server)->port());

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    LogInfo("signal %d: shutting down", sig);
    (*server)->Shutdown();
  });
  (*server)->Wait();
  waiter.join();
  server->reset();
  LogInfo("keyd stopped");
  return 0;
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
  CLI::App app{"keyd: issues, publishes and revokes MTA host keys"};
  app.require_subcommand(1);

  std::string data_dir, org, passphrase_file;
  int kdf_log2n = 15;
  auto* init = app.add_subcommand("init", "create the org root and keys");
  init->add_option("--data-dir", data_dir, "data directory")->required();
  init->add_option("--org", org, "organization name")->required();
  init->add_option("--passphrase-file", passphrase_file,
                   "file holding the key-file passphrase");
  init->add_option("--kdf-cost", kdf_log2n,
                   "scrypt cost as log2(N) (default 15)")
      ->check(CLI::Range(1, 20));

  mxkey::ServerOptions options;
  std::string freshness = "5m";
  auto* serve = app.add_subcommand("serve", "serve the key directory");
  serve->add_option("--data-dir", options.data_dir, "data directory")
      ->required();
  serve->add_option("--listen", options.listen,
                    "public HOST:PORT (default 127.0.0.1:7700; port 0 picks)");
  serve->add_option("--admin-socket", options.admin_socket,
                    "admin Unix socket (default DATA_DIR/admin.sock)");
  serve->add_option("--admin-group", options.admin_group,
                    "group allowed on the admin socket");
  serve->add_option("--passphrase-file", passphrase_file,
                    "key-file passphrase (default DATA_DIR/passphrase)");
  serve->add_option("--freshness", freshness,
                    "validity of freshness statements (default 5m)");
  std::string cert_validity = "30d", rotation_overlap = "7d";
  serve->add_option("--cert-validity", cert_validity,
                    "validity of host certificates; keyd re-certifies them "
                    "when a third is left (default 30d, at least 1h)");
  serve->add_option("--rotation-overlap", rotation_overlap,
                    "how long a rotated host's old key stays in use beside "
                    "the next one unless the host runs keyctl rotate "
                    "--finish (default 7d; 2x freshness to 90d)");
  std::string tls = "auto";
  serve->add_option("--tls", tls,
                    "TLS on the public endpoint and to peers, keyd's TLS key "
                    "certified by the org root: auto (TLS unless the address "
                    "is loopback), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  int enroll_limit = 60, failure_limit = 10;
  serve->add_option("--enroll-limit", enroll_limit,
                    "Enroll/Rotate requests per minute per source address, "
                    "bursts of half that (default 60; 0: no limit)")
      ->check(CLI::Range(0, 1000000));
  serve->add_option("--enroll-failure-limit", failure_limit,
                    "rejected Enroll/Rotate requests per 10 minutes per "
                    "source address before it is refused (default 10; 0: no "
                    "limit)")
      ->check(CLI::Range(0, 1000000));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (init->parsed()) {
    return mxkey::Init(data_dir, org, passphrase_file, kdf_log2n);
  }
  absl::Status durations = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(options.keyd.freshness,
                     mxkey::ParseDurationFlag(freshness, "--freshness"));
    ASSIGN_OR_RETURN(options.keyd.cert_validity,
                     mxkey::ParseDurationFlag(cert_validity, "--cert-validity"));
    ASSIGN_OR_RETURN(
        options.keyd.rotation_overlap,
        mxkey::ParseDurationFlag(rotation_overlap, "--rotation-overlap"));
    if (options.keyd.cert_validity < absl::Hours(1)) {
      return absl::InvalidArgumentError("--cert-validity must be at least 1h");
    }
    absl::Status overlap = mxkey::CheckRotationOverlap(
        options.keyd, options.keyd.rotation_overlap);
    if (!overlap.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--rotation-overlap: ", overlap.message()));
    }
    return absl::OkStatus();
  }();
  if (!durations.ok()) {
    std::cerr << "keyd: " << durations.message() << "\n";
    return 2;
  }
  options.tls = *mxkey::ParseKeydTransport(tls);  // checked by IsMember
  options.enrollment_limits.requests = {static_cast<double>(enroll_limit),
                                        std::max(1.0, enroll_limit / 2.0)};
  options.enrollment_limits.failures = {failure_limit / 10.0,
                                        static_cast<double>(failure_limit)};
  return mxkey::Serve(options, passphrase_file);
}
