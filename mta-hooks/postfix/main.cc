// mxkey-policyd: Postfix socketmap server for TLS-key pinning (tlspolicy)
// and client-key checks (ccert). See policy_maps.h for the answers and
// docs/OPERATIONS.md for the Postfix configuration.
#include <signal.h>
#include <sys/stat.h>

#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "client/key_client.h"
#include "mta-hooks/postfix/policy_maps.h"
#include "mta-hooks/postfix/socketmap_server.h"

int main(int argc, char** argv) {
  umask(027);
  CLI::App app{"mxkey-policyd: Postfix socketmap for mxkey TLS key pins"};
  std::string keyd = "127.0.0.1:7700";
  mxkey::KeyClientOptions client_options;
  mxkey::SocketmapServerOptions server_options;
  mxkey::PolicyMapsOptions map_options;
  int max_connections = 256;
  app.add_option("--keyd", keyd, "keyd HOST:PORT (default 127.0.0.1:7700)");
  app.add_option("--root-fingerprint", client_options.root_fingerprint,
                 "the org root's sha256:HEX fingerprint (the trust anchor)")
      ->required()
      ->envname("MXKEY_ROOT_FINGERPRINT");
  app.add_option("--listen", server_options.listen,
                 "inet:HOST:PORT or unix:PATH (repeatable)")
      ->required();
  app.add_option("--cache-dir", client_options.cache_dir,
                 "signed answers and enforce memory survive restarts here");
  app.add_option("--report-dir", map_options.report_dir,
                 "testing-mode report files (mxkey-tlsrpt-DATE.jsonl)");
  app.add_option("--ccert-action", map_options.ccert_action,
                 "ccert answer for a certified client key (default OK)");
  std::string tls = "auto";
  app.add_option("--tls", tls,
                 "TLS to keyd, its key checked against the root: auto (TLS "
                 "unless --keyd is loopback), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--max-connections", max_connections,
                 "concurrent socketmap connections (default 256)")
      ->check(CLI::Range(1, 100000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  client_options.endpoints = {keyd};
  client_options.transport = *mxkey::ParseKeydTransport(tls);
  map_options.state_dir = client_options.cache_dir;
  server_options.max_connections = static_cast<size_t>(max_connections);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<mxkey::KeyClient>> client =
      mxkey::KeyClient::Create(client_options);
  if (!client.ok()) {
    std::cerr << "mxkey-policyd: " << client.status().message() << "\n";
    return 1;
  }
  mxkey::PolicyMaps maps(client->get(), map_options);
  mxkey::SocketmapServer server(
      server_options, [&maps](const std::string& map, const std::string& key) {
        return maps.Lookup(map, key);
      });
  absl::Status started = server.Start();
  if (!started.ok()) {
    std::cerr << "mxkey-policyd: " << started.message() << "\n";
    return 1;
  }
  mxkey::LogInfo("mxkey-policyd listening on %s",
                 absl::StrJoin(server.bound(), " "));
  int sig = 0;
  sigwait(&signals, &sig);
  mxkey::LogInfo("signal %d: shutting down", sig);
  server.Stop();
  return 0;
}
