// keyd and mxkey-policyd as an operator runs them: config files (and their
// errors), check-config, --version, SIGHUP, and /metrics scraped by a real
// Prometheus on loopback. Every process is started here and stopped by PID.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/keyd_process.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Keyd() { return RunfilePath("keyd/keyd"); }
std::string Policyd() {
  return RunfilePath("mta-hooks/postfix/mxkey-policyd");
}

std::string Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

// A loopback port free right now (bound, then released).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Polls `read` until it contains `needle`; bounded.
bool WaitFor(const std::function<std::string()>& read,
             const std::string& needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (read().find(needle) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

// The port of a "metrics on http://HOST:PORT/metrics" log line.
int MetricsPort(const std::string& log) {
  std::smatch m;
  int port = 0;
  if (std::regex_search(log, m, std::regex("metrics on http://[^ ]+:([0-9]+)/metrics"))) {
    absl::SimpleAtoi(m[1].str(), &port);
  }
  return port;
}

std::string Scrape(int port) {
  httplib::Client client("127.0.0.1", port);
  httplib::Result r = client.Get("/metrics");
  return r && r->status == 200 ? r->body : "";
}

// The value of the sample `series` (name and labels exactly as rendered).
double Sample(const std::string& text, const std::string& series) {
  const std::string prefix = series + " ";
  size_t pos = text.find("\n" + prefix);
  if (pos == std::string::npos) return -1;
  pos += 1 + prefix.size();
  double v = -1;
  absl::SimpleAtod(text.substr(pos, text.find('\n', pos) - pos), &v);
  return v;
}

// One socketmap request over TCP; the reply payload.
std::string Socketmap(int port, const std::string& map, const std::string& key,
                      int timeout_seconds = 5) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string body = map + " " + key;
  const std::string request = absl::StrCat(body.size(), ":", body, ",");
  if (write(fd, request.data(), request.size()) < 0) {
    close(fd);
    return "";
  }
  std::string reply;
  char buf[4096];
  timeval tv{timeout_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (int i = 0; i < 100 && (reply.empty() || reply.back() != ','); ++i) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t colon = reply.find(':');
  if (colon == std::string::npos || reply.empty()) return "";
  return reply.substr(colon + 1, reply.size() - colon - 2);
}

class DaemonsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keyd = KeydProcess::Init();
    ASSERT_TRUE(keyd.ok()) << keyd.status();
    keyd_ = *std::move(keyd);
    config_dir_ = keyd_->dir() + "/..";
  }
  // `keyd --config FILE serve --data-dir D` with `text` as the file.
  CommandResult ServeWith(const std::string& text) {
    const std::string path = Write(config_dir_ + "/keyd.toml", text);
    return RunCommand({Keyd(), "--config", path, "serve", "--data-dir",
                       keyd_->dir(), "--listen", "127.0.0.1:0"},
                      absl::Seconds(20));
  }
  std::unique_ptr<KeydProcess> keyd_;
  std::string config_dir_;
};

TEST_F(DaemonsE2eTest, KeydRefusesABadConfigFileNamingFileLineAndKey) {
  struct Case {
    std::string text, expected;
  } cases[] = {
      {"freshnes = \"5m\"\n", "keyd.toml:1:1: unknown key \"freshnes\""},
      {"\n# c\nenroll-limit = \"60\"\n",
       "keyd.toml:3:16: enroll-limit: expected an integer"},
      {"freshness = \"5 minutes\"\n",
       "keyd.toml:1:13: freshness: expected a positive duration"},
      {"metrics-listen = \"localhost\"\n",
       "keyd.toml:1:18: metrics-listen: expected HOST:PORT"},
      {"tls = \"maybe\"\n", "keyd.toml:1:7: tls: "},
      {"freshness = 5m\n", "keyd.toml:1:"},
  };
  for (const Case& c : cases) {
    CommandResult r = ServeWith(c.text);
    EXPECT_EQ(r.exit_code, 2) << c.text << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.expected)) << c.text;
    // Refused before anything started: no socket, no "listening" line.
    EXPECT_THAT(r.err, Not(HasSubstr("listening on")));
    EXPECT_NE(access(keyd_->admin_socket().c_str(), F_OK), 0);
  }
  CommandResult missing =
      RunCommand({Keyd(), "--config", config_dir_ + "/absent.toml", "serve",
                  "--data-dir", keyd_->dir()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("absent.toml"));
}

TEST_F(DaemonsE2eTest, CheckConfigAnswersZeroOrOneWithoutStarting) {
  const std::string good = Write(config_dir_ + "/good.toml",
                                 absl::StrCat("data-dir = \"", keyd_->dir(),
                                              "\"\nfreshness = \"60s\"\n"));
  const std::string bad =
      Write(config_dir_ + "/bad.toml", "data-dir = \"/x\"\nfreshness = 60\n");
  CommandResult ok = RunCommand({Keyd(), "--config", good, "check-config"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("configuration is valid"));
  CommandResult no = RunCommand({Keyd(), "check-config", "--config", bad});
  EXPECT_EQ(no.exit_code, 1);
  EXPECT_THAT(no.err, HasSubstr("bad.toml:2:13: freshness: expected a string"));
  // Cross-flag checks too: an overlap shorter than two freshness periods.
  CommandResult overlap =
      RunCommand({Keyd(), "--config", good, "check-config",
                  "--rotation-overlap", "1m"});
  EXPECT_EQ(overlap.exit_code, 1);
  EXPECT_THAT(overlap.err, HasSubstr("--rotation-overlap"));
  // The refusal delays: 0s allowed (refusals at once), past 2 s (a
  // watch's: 10 min) refused.
  struct DelayCase {
    const char* flag;
    std::vector<const char*> good, bad;
  };
  for (const DelayCase& c :
       {DelayCase{"--refusal-delay", {"0s", "1500ms", "2s"}, {"3s", "soon"}},
        DelayCase{"--watch-refusal-delay", {"0", "90s", "10m"},
                  {"11m", "-1s"}}}) {
    for (const char* delay : c.good) {
      CommandResult d = RunCommand(
          {Keyd(), "--config", good, "check-config", c.flag, delay});
      EXPECT_EQ(d.exit_code, 0) << c.flag << " " << delay << ": " << d.err;
    }
    for (const char* delay : c.bad) {
      CommandResult d = RunCommand(
          {Keyd(), "--config", good, "check-config", c.flag, delay});
      EXPECT_EQ(d.exit_code, 1) << c.flag << " " << delay;
      EXPECT_THAT(d.err, HasSubstr(c.flag)) << delay;
    }
  }

  const std::string fp = "sha256:" + std::string(64, 'a');
  const std::string pgood = Write(config_dir_ + "/p.toml",
                                  "listen = [\"inet:127.0.0.1:0\"]\n"
                                  "ccert-action = \"OK\"\n");
  CommandResult pok = RunCommand({Policyd(), "--config", pgood,
                                  "--check-config", "--root-fingerprint", fp});
  EXPECT_EQ(pok.exit_code, 0) << pok.err;
  const std::string pbad =
      Write(config_dir_ + "/pbad.toml", "listen = \"inet:127.0.0.1:0\"\n"
                                        "max-connections = \"9\"\n");
  CommandResult pno = RunCommand({Policyd(), "--config", pbad,
                                  "--check-config", "--root-fingerprint", fp});
  EXPECT_EQ(pno.exit_code, 1);
  EXPECT_THAT(pno.err, HasSubstr("pbad.toml:2:19: max-connections"));
}

TEST_F(DaemonsE2eTest, EveryBinaryHasAVersion) {
  for (const std::string& binary :
       {Keyd(), Policyd(), RunfilePath("tools/keyctl/keyctl")}) {
    CommandResult r = RunCommand({binary, "--version"});
    EXPECT_EQ(r.exit_code, 0) << binary << r.err;
    EXPECT_THAT(r.out, ::testing::MatchesRegex(".* [0-9]+\\.[0-9]+\\.[0-9]+\n"))
        << binary;
  }
}

TEST_F(DaemonsE2eTest, SighupChecksTheConfigAndNeverStopsKeyd) {
  const std::string path =
      Write(config_dir_ + "/keyd.toml", "freshness = \"60s\"\n");
  ASSERT_TRUE(keyd_->Start({"--config", path}).ok()) << keyd_->log();
  CommandResult before = keyd_->RunKeyctl({"org", "show"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  const pid_t pid = [&] {
    CommandResult r = RunCommand({"/usr/bin/pgrep", "-f", "-n", keyd_->dir()});
    int p = 0;
    absl::SimpleAtoi(absl::StripAsciiWhitespace(r.out), &p);
    return p;
  }();
  ASSERT_GT(pid, 0);
  Write(path, "freshness = \"90s\"\n");
  kill(pid, SIGHUP);
  EXPECT_TRUE(WaitFor([&] { return keyd_->log(); },
                      "signal=SIGHUP action=checked config=ok "
                      "restart_needed=freshness",
                      absl::Seconds(10)))
      << keyd_->log();
  Write(path, "freshness = \"ninety\"\n");
  kill(pid, SIGHUP);
  EXPECT_TRUE(WaitFor([&] { return keyd_->log(); },
                      "signal=SIGHUP action=none config_error=",
                      absl::Seconds(10)))
      << keyd_->log();
  CommandResult after = keyd_->RunKeyctl({"org", "show"});
  EXPECT_EQ(after.exit_code, 0) << after.err << keyd_->log();
  EXPECT_EQ(keyd_->Stop(), 0);
}

TEST_F(DaemonsE2eTest, PrometheusScrapesBothDaemonsAndCountsLookups) {
  ASSERT_EQ(access("/usr/bin/prometheus", X_OK), 0)
      << "prometheus missing: tools/install-deps installs it";
  ASSERT_TRUE(keyd_->Start({"--metrics-listen", "127.0.0.1:0"}).ok())
      << keyd_->log();
  const int keyd_metrics = MetricsPort(keyd_->log());
  ASSERT_GT(keyd_metrics, 0) << keyd_->log();

  // Enroll one host (and fail one enrollment), then look it up 5 times.
  CommandResult add = keyd_->RunKeyctl(
      {"--json", "host", "add", "mx1.example.org", "--domain", "example.org"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  const std::string token =
      add.out.substr(add.out.find("\"token\":\"") + 9, 64);
  const std::string keys = config_dir_ + "/host-keys";
  CommandResult wrong = keyd_->RunKeyctl({"enroll", "mx1.example.org",
                                          "--token-file",
                                          TokenFile(config_dir_,
                                                    std::string(64, '0')),
                                          "--key-dir", keys + "-x"});
  EXPECT_NE(wrong.exit_code, 0);
  CommandResult enroll = keyd_->RunKeyctl(
      {"enroll", "mx1.example.org", "--token-file",
       TokenFile(config_dir_, token), "--key-dir", keys});
  ASSERT_EQ(enroll.exit_code, 0) << enroll.err;
  constexpr int kLookups = 5;
  for (int i = 0; i < kLookups; ++i) {
    ASSERT_EQ(keyd_->RunKeyctl({"lookup", "mx1.example.org"}).exit_code, 0);
  }

  const std::string dir = config_dir_;
  const std::string empty = Write(dir + "/empty.toml", "");
  std::unique_ptr<Subprocess> policyd = *Subprocess::Start(
      {Policyd(), "--config", empty, "--keyd", keyd_->address(),
       "--root-fingerprint", keyd_->fingerprint(), "--listen",
       "inet:127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
       "--report-dir", dir},
      dir + "/policyd.log");
  absl::StatusOr<int> map_port =
      WaitForListeningPort(dir + "/policyd.log", absl::Seconds(20));
  ASSERT_TRUE(map_port.ok()) << ReadFile(dir + "/policyd.log", 1 << 20).value_or("");
  const int policyd_metrics =
      MetricsPort(ReadFile(dir + "/policyd.log", 1 << 20).value_or(""));
  ASSERT_GT(policyd_metrics, 0);
  constexpr int kMapQueries = 3;
  for (int i = 0; i < kMapQueries; ++i) {
    EXPECT_EQ(Socketmap(*map_port, "tlspolicy", "example.net"), "NOTFOUND ");
  }
  EXPECT_THAT(Socketmap(*map_port, "nosuchmap", "x"), HasSubstr("PERM"));

  // The text itself: what promtool accepts, and no hostname in it.
  const std::string keyd_text = Scrape(keyd_metrics);
  const std::string policyd_text = Scrape(policyd_metrics);
  EXPECT_EQ(Sample(keyd_text, "mxkey_keyd_requests_total{rpc=\"GetHostKeys\","
                              "code=\"ok\"}"),
            kLookups)
      << keyd_text;
  EXPECT_EQ(Sample(keyd_text,
                   "mxkey_keyd_requests_total{rpc=\"Enroll\",code=\"ok\"}"),
            1);
  EXPECT_GE(Sample(keyd_text, "mxkey_keyd_feed_head"), 1);
  EXPECT_THAT(keyd_text, Not(HasSubstr("mx1.example.org")));
  EXPECT_THAT(keyd_text, Not(HasSubstr(token)));
  EXPECT_EQ(Sample(policyd_text, "mxkey_policyd_answers_total{map=\"tlspolicy\","
                                 "result=\"NOTFOUND\"}"),
            kMapQueries)
      << policyd_text;
  EXPECT_EQ(Sample(policyd_text, "mxkey_policyd_answers_total{map=\"other\","
                                 "result=\"PERM\"}"),
            1);
  for (const auto& [name, text] :
       {std::pair<std::string, std::string>{"keyd", keyd_text},
        {"policyd", policyd_text}}) {
    const std::string file = Write(dir + "/" + name + ".metrics", text);
    CommandResult lint = RunCommand(
        {"/bin/sh", "-c", "promtool check metrics < " + file + " 2>&1"});
    EXPECT_EQ(lint.exit_code, 0) << name << ": " << lint.out << lint.err;
  }

  // A real Prometheus scraping both, on loopback, every second.
  const int web = FreePort();
  const std::string config = Write(
      dir + "/prometheus.yml",
      absl::StrCat("global:\n  scrape_interval: 1s\n"
                   "scrape_configs:\n"
                   "  - job_name: keyd\n    static_configs:\n"
                   "      - targets: ['127.0.0.1:", keyd_metrics, "']\n"
                   "  - job_name: policyd\n    static_configs:\n"
                   "      - targets: ['127.0.0.1:", policyd_metrics, "']\n"));
  std::unique_ptr<Subprocess> prometheus = *Subprocess::Start(
      {"/usr/bin/prometheus", "--config.file=" + config,
       "--storage.tsdb.path=" + dir + "/tsdb",
       absl::StrCat("--web.listen-address=127.0.0.1:", web)},
      dir + "/prometheus.log");
  httplib::Client api("127.0.0.1", web);
  auto query = [&](const std::string& q) -> std::string {
    httplib::Result r =
        api.Get("/api/v1/query", httplib::Params{{"query", q}}, {});
    return r && r->status == 200 ? r->body : "";
  };
  EXPECT_TRUE(WaitFor(
      [&] {
        return query("sum(mxkey_keyd_requests_total{rpc=\"GetHostKeys\","
                     "code=\"ok\"})");
      },
      absl::StrCat("\"", kLookups, "\"]"), absl::Seconds(60)))
      << ReadFile(dir + "/prometheus.log", 1 << 20).value_or("");
  EXPECT_TRUE(WaitFor(
      [&] {
        return query("sum(mxkey_policyd_answers_total{map=\"tlspolicy\"})");
      },
      absl::StrCat("\"", kMapQueries, "\"]"), absl::Seconds(60)));
  EXPECT_TRUE(WaitFor([&] { return query("up"); }, "\"job\":\"policyd\"",
                      absl::Seconds(30)));
  prometheus->Signal(SIGTERM);
  EXPECT_GE(prometheus->Wait(absl::Seconds(20)), 0);
  policyd->Signal(SIGTERM);
  EXPECT_EQ(policyd->Wait(absl::Seconds(20)), 0);
  EXPECT_EQ(keyd_->Stop(), 0);
}

// An operator saw mxkey-policyd stay "unreachable" ~45 s after a keyd
// restart (gRPC's reconnect backoff) and log nothing about it. Now it says
// when keyd goes and comes back, and is back within a few seconds.
TEST_F(DaemonsE2eTest, PolicydLogsKeydOutageAndIsBackSoonAfterARestart) {
  const int keyd_port = FreePort();
  const std::string listen = absl::StrCat("127.0.0.1:", keyd_port);
  ASSERT_TRUE(keyd_->Start({"--listen", listen}).ok()) << keyd_->log();
  CommandResult add = keyd_->RunKeyctl(
      {"--json", "host", "add", "mx1.example.org", "--domain", "example.org"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  const std::string dir = config_dir_;
  const std::string log = dir + "/policyd-restart.log";
  const std::string empty = Write(dir + "/empty.toml", "");
  std::unique_ptr<Subprocess> policyd = *Subprocess::Start(
      {Policyd(), "--config", empty, "--keyd", listen, "--root-fingerprint",
       keyd_->fingerprint(), "--listen", "inet:127.0.0.1:0"},
      log);
  absl::StatusOr<int> port = WaitForListeningPort(log, absl::Seconds(20));
  ASSERT_TRUE(port.ok());
  auto policyd_log = [&] { return ReadFile(log, 1 << 20).value_or(""); };
  // An unknown host: keyd's signed denial, NOTFOUND, keyd is reachable.
  EXPECT_EQ(Socketmap(*port, "tlspolicy", "[mx9.example.org]"), "NOTFOUND ");
  ASSERT_EQ(keyd_->Stop(), 0);
  // Names it never asked about: no answer held, keyd is down, for 30 s of
  // lookups.
  const absl::Time down = absl::Now();
  for (int i = 0; absl::Now() - down < absl::Seconds(30) && i < 200; ++i) {
    Socketmap(*port, "tlspolicy", absl::StrCat("[mx", i, ".down.example.org]"),
              1);
    absl::SleepFor(absl::Milliseconds(300));
  }
  EXPECT_TRUE(WaitFor(policyd_log, "state=unreachable", absl::Seconds(10)))
      << policyd_log();
  ASSERT_TRUE(keyd_->Start({"--listen", listen}).ok()) << keyd_->log();
  const absl::Time restarted = absl::Now();
  // Back within gRPC's capped reconnect backoff (2 s) plus a lookup.
  bool back = false;
  // Short reads: an answer that waits on keyd's reconnect must not stall
  // the sampling (what is measured is when policyd reaches keyd again).
  for (int i = 0; absl::Now() - restarted < absl::Seconds(20) && i < 400; ++i) {
    Socketmap(*port, "tlspolicy", absl::StrCat("[mx", i, ".up.example.org]"),
              1);
    if (policyd_log().find("state=reachable") != std::string::npos) {
      back = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  const absl::Duration took = absl::Now() - restarted;
  EXPECT_TRUE(back) << policyd_log();
  // Measured here 1.7-6.9 s with the 2 s backoff cap and 2.9-3.9 s without
  // it (gRPC 1.51 connects again when a call comes); ~45 s in the report,
  // not reproduced. The bound catches a client that stays away.
  EXPECT_LT(took, absl::Seconds(10)) << "reconnect took " << took << "\n"
                                     << policyd_log();
  std::cout << "policyd was back " << took << " after keyd's restart\n";
  policyd->Signal(SIGTERM);
  EXPECT_EQ(policyd->Wait(absl::Seconds(20)), 0);
}

}  // namespace
}  // namespace mxkey

namespace mxkey {
namespace {

// An operator who starts keyd on an empty data dir is told to run init,
// not that a passphrase file is missing.
TEST(DaemonsE2eUninitializedTest, ServeOnAnEmptyDirSaysRunInit) {
  const std::string dir = ShortTempDir();
  CommandResult r = RunCommand({Keyd(), "serve", "--data-dir", dir});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is not an initialized keyd data directory"));
  EXPECT_THAT(r.err, HasSubstr("keyd init --data-dir " + dir));
  RunCommand({"/bin/rm", "-rf", dir});
}

}  // namespace
}  // namespace mxkey
