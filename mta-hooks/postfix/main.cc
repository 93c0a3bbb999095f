// mxkey-policyd: Postfix socketmap server for TLS-key pinning (tlspolicy)
// and client-key checks (ccert). See policy_maps.h for the answers and
// docs/OPERATIONS.md for the Postfix configuration.
//
//   mxkey-policyd [--config /etc/mxkey/policyd.toml] --root-fingerprint FP
//                 --listen unix:PATH|inet:HOST:PORT ... [flags]
//   mxkey-policyd --check-config [flags]     0 if valid, 1 if not
//   mxkey-policyd --version
//
// Every flag is also a key of the config file (packaging/policyd.toml is
// the commented example). SIGTERM/SIGINT stop it; SIGHUP re-checks the
// config and logs what a restart would change.
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "base/config_file.h"
#include "base/log.h"
#include "base/metrics_http.h"
#include "base/version.h"
#include "client/key_client.h"
#include "mta-hooks/postfix/policy_maps.h"
#include "mta-hooks/postfix/socketmap_server.h"

namespace mxkey {
namespace {

constexpr const char* kDefaultConfig = "/etc/mxkey/policyd.toml";

// --socket-mode: "0660" -> 0660; octal, at most 0777, and always open to
// mxkey-policyd's own user.
absl::StatusOr<mode_t> ParseSocketMode(const std::string& text) {
  unsigned long mode = 0;
  if (text.empty() || text.size() > 4 ||
      text.find_first_not_of("01234567") != std::string::npos) {
    return absl::InvalidArgumentError(
        "--socket-mode must be an octal mode such as 0660");
  }
  mode = std::stoul(text, nullptr, 8);
  if (mode > 0777) {
    return absl::InvalidArgumentError("--socket-mode must be at most 0777");
  }
  if ((mode & 0600) != 0600) {
    return absl::InvalidArgumentError(
        "--socket-mode must let mxkey-policyd's own user read and write "
        "(0600 at least)");
  }
  return static_cast<mode_t>(mode);
}

struct Flags {
  std::string keyd = "127.0.0.1:7700";
  std::string root_fingerprint;
  std::vector<std::string> listen;
  std::string cache_dir, report_dir, ccert_action = "OK", tls = "auto";
  std::string metrics_listen;
  int max_connections = 1024;
  int max_connections_per_peer = 512;
  std::string socket_mode = "0666";
  std::string socket_group;
  bool check_config = false;

  // Every setting, for SIGHUP's comparison.
  std::vector<std::pair<const char*, std::string>> Settings() const {
    return {{"keyd", keyd},
            {"root-fingerprint", root_fingerprint},
            {"listen", absl::StrJoin(listen, " ")},
            {"cache-dir", cache_dir},
            {"report-dir", report_dir},
            {"ccert-action", ccert_action},
            {"tls", tls},
            {"metrics-listen", metrics_listen},
            {"max-connections", absl::StrCat(max_connections)},
            {"max-connections-per-peer", absl::StrCat(max_connections_per_peer)},
            {"socket-mode", socket_mode},
            {"socket-group", socket_group}};
  }
};

struct Command {
  CLI::App app{"mxkey-policyd: Postfix socketmap for mxkey TLS key pins"};
  Flags f;

  Command() {
    app.set_version_flag("--version", std::string("mxkey-policyd ") + kVersion);
    app.add_option("--keyd", f.keyd, "keyd HOST:PORT (default 127.0.0.1:7700)")
        ->check(HostPortCheck());
    app.add_option("--root-fingerprint", f.root_fingerprint,
                   "the org root's sha256:HEX fingerprint (the trust anchor)")
        ->required()
        ->envname("MXKEY_ROOT_FINGERPRINT");
    app.add_option("--listen", f.listen,
                   "inet:HOST:PORT or unix:PATH (repeatable)")
        ->required();
    app.add_option("--cache-dir", f.cache_dir,
                   "signed answers and enforce memory survive restarts here");
    app.add_option("--report-dir", f.report_dir,
                   "testing-mode report files (mxkey-tlsrpt-DATE.jsonl)");
    app.add_option("--ccert-action", f.ccert_action,
                   "ccert answer for a certified client key (default OK)");
    app.add_option("--tls", f.tls,
                   "TLS to keyd, its key checked against the root: auto (TLS "
                   "unless --keyd is loopback), on, off")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    app.add_option("--max-connections", f.max_connections,
                   "concurrent socketmap connections (default 1024)")
        ->check(CLI::Range(1, 100000));
    app.add_option("--max-connections-per-peer", f.max_connections_per_peer,
                   "socketmap connections one local user (uid) or remote "
                   "address may hold (default 512; Postfix is one uid, "
                   "with a connection per smtp/smtpd process)")
        ->check(CLI::Range(1, 100000));
    app.add_option("--socket-mode", f.socket_mode,
                   "mode of unix: listen sockets, octal (default 0666: any "
                   "local user; 0660 with --socket-group postfix: Postfix "
                   "only)")
        ->check([](const std::string& v) -> std::string {
          return ParseSocketMode(v).ok()
                     ? ""
                     : std::string(ParseSocketMode(v).status().message());
        });
    app.add_option("--socket-group", f.socket_group,
                   "group of unix: listen sockets (mxkey-policyd's user must "
                   "be a member; default: its own group)");
    app.add_option("--metrics-listen", f.metrics_listen,
                   "HOST:PORT serving Prometheus /metrics (default: off)")
        ->check(HostPortCheck());
    app.add_flag("--check-config", f.check_config,
                 "check the config file and flags without starting; exit 0 "
                 "if they are valid, 1 if not");
    AddConfigFile(app, kDefaultConfig, {&app});
  }
};

std::string DescribeChanges(const Flags& running, const Flags& next) {
  std::vector<std::string> changed;
  auto a = running.Settings(), b = next.Settings();
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].second != b[i].second) changed.push_back(a[i].first);
  }
  return changed.empty() ? "none" : absl::StrJoin(changed, ",");
}

int Run(const Flags& f, int argc, char** argv) {
  KeyClientOptions client_options;
  client_options.root_fingerprint = f.root_fingerprint;
  client_options.endpoints = {f.keyd};
  client_options.transport = *ParseKeydTransport(f.tls);  // IsMember
  client_options.cache_dir = f.cache_dir;
  SocketmapServerOptions server_options;
  server_options.listen = f.listen;
  server_options.max_connections = static_cast<size_t>(f.max_connections);
  server_options.max_connections_per_peer =
      static_cast<size_t>(f.max_connections_per_peer);
  server_options.unix_mode = *ParseSocketMode(f.socket_mode);  // checked
  if (!f.socket_group.empty()) {
    struct group* g = getgrnam(f.socket_group.c_str());
    if (g == nullptr) {
      std::cerr << "mxkey-policyd: --socket-group " << f.socket_group
                << ": no such group\n";
      return 1;
    }
    server_options.unix_group = g->gr_gid;
  }
  MetricsRegistry metrics;
  PolicyMapsOptions map_options;
  map_options.report_dir = f.report_dir;
  map_options.ccert_action = f.ccert_action;
  map_options.state_dir = f.cache_dir;
  map_options.metrics = &metrics;

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<KeyClient>> client =
      KeyClient::Create(client_options);
  if (!client.ok()) {
    std::cerr << "mxkey-policyd: " << client.status().message() << "\n";
    return 1;
  }
  PolicyMaps maps(client->get(), map_options);
  SocketmapServer server(
      server_options, [&maps](const std::string& map, const std::string& key) {
        return maps.Lookup(map, key);
      });
  absl::Status started = server.Start();
  if (!started.ok()) {
    std::cerr << "mxkey-policyd: " << started.message() << "\n";
    return 1;
  }
  std::unique_ptr<MetricsServer> metrics_server;
  if (!f.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> m =
        MetricsServer::Start(f.metrics_listen, &metrics);
    if (!m.ok()) {
      std::cerr << "mxkey-policyd: " << m.status().message() << "\n";
      return 1;
    }
    metrics_server = *std::move(m);
    LogInfo("metrics on http://%s:%d/metrics",
            f.metrics_listen.substr(0, f.metrics_listen.rfind(':')),
            metrics_server->port());
  }
  LogInfo("mxkey-policyd listening on %s", absl::StrJoin(server.bound(), " "));
  sd_notify(0, "READY=1");
  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != SIGHUP) {
      LogInfo("signal=SIG%s action=shutdown", sigabbrev_np(sig));
      break;
    }
    // Open connections and caches stay; a reload only checks the file and
    // says what a restart would change.
    Command again;
    try {
      again.app.parse(argc, argv);
      LogInfo("signal=SIGHUP action=checked config=ok restart_needed=%s",
              DescribeChanges(f, again.f));
    } catch (const CLI::ParseError& e) {
      LogWarning("signal=SIGHUP action=none config_error=\"%s\": keeping the "
                 "running settings",
                 absl::CHexEscape(e.what()));
    }
  }
  sd_notify(0, "STOPPING=1");
  metrics_server.reset();
  server.Stop();
  return 0;
}

}  // namespace
}  // namespace mxkey

int main(int argc, char** argv) {
  umask(027);
  mxkey::Command command;
  const int parsed = mxkey::ParseCommandLine(command.app, argc, argv);
  if (parsed >= 0) {
    if (parsed == 0) return 0;
    // The flag may not be set yet when the config file failed: look at argv.
    for (int i = 1; i < argc; ++i) {
      if (std::string(argv[i]) == "--check-config") return 1;
    }
    return 2;
  }
  if (command.f.check_config) {
    std::cout << "mxkey-policyd: configuration is valid ("
              << mxkey::ConfigSource(command.app) << ")\n";
    return 0;
  }
  return mxkey::Run(command.f, argc, argv);
}
