// Closed-loop load on a Postfix socketmap server (TCP on loopback, or a
// Unix socket): C connections, each sending one request and waiting for its
// reply, keys drawn at random from a list, for a fixed time. The same tool drives mxkey-policyd and
// postfix-mta-sts-resolver, so their figures compare like for like.
//
// Prints one JSON object: qps, p50_us, p99_us, p999_us, requests, errors
// (replies that do not start with --expect, or broken connections).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "mta-hooks/postfix/netstring.h"

namespace {

struct Worker {
  std::vector<int64_t> latencies_ns;
  int64_t errors = 0;
};

// Connects to 127.0.0.1:port, or to the Unix socket `unix_path` if set.
int Connect(int port, const std::string& unix_path) {
  if (!unix_path.empty()) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (unix_path.size() >= sizeof(a.sun_path)) return -1;
    unix_path.copy(a.sun_path, unix_path.size());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// One request/reply; false if the connection broke.
bool RoundTrip(int fd, const std::string& wire, mxkey::NetstringDecoder& d,
               std::string* reply) {
  if (write(fd, wire.data(), wire.size()) != static_cast<ssize_t>(wire.size())) {
    return false;
  }
  char buf[4096];
  for (;;) {
    auto r = d.Next();
    if (r.kind == mxkey::NetstringDecoder::Kind::kPayload) {
      *reply = std::move(r.payload);
      return true;
    }
    if (r.kind == mxkey::NetstringDecoder::Kind::kBroken) return false;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return false;
    d.Append(absl::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"socketmap closed-loop load generator"};
  int port = 0, connections = 1;
  double seconds = 3, warmup = 1;
  std::string map = "tlspolicy", keys_csv, expect = "OK ", unix_path;
  auto* port_opt = app.add_option("--port", port, "127.0.0.1 port");
  app.add_option("--unix", unix_path, "Unix socket path")->excludes(port_opt);
  app.add_option("--map", map, "map name");
  app.add_option("--keys", keys_csv, "comma-separated lookup keys")->required();
  app.add_option("--connections", connections, "concurrent connections");
  app.add_option("--duration", seconds, "measured seconds");
  app.add_option("--warmup", warmup, "unmeasured seconds first");
  app.add_option("--expect", expect, "prefix every reply must have");
  CLI11_PARSE(app, argc, argv);
  if (port == 0 && unix_path.empty()) {
    std::fprintf(stderr, "socketmap_load: --port or --unix is required\n");
    return 2;
  }
  std::vector<std::string> wires;
  for (absl::string_view k : absl::StrSplit(keys_csv, ',', absl::SkipEmpty())) {
    wires.push_back(mxkey::EncodeNetstring(absl::StrCat(map, " ", k)));
  }
  if (wires.empty()) return 2;

  std::atomic<bool> measuring{false}, done{false};
  std::vector<Worker> workers(static_cast<size_t>(connections));
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      Worker& w = workers[static_cast<size_t>(c)];
      std::mt19937 rng(static_cast<unsigned>(c) * 7919u + 1);
      int fd = Connect(port, unix_path);
      mxkey::NetstringDecoder d(200000);
      std::string reply;
      while (!done.load(std::memory_order_relaxed)) {
        if (fd < 0) {
          ++w.errors;
          return;
        }
        const std::string& wire = wires[rng() % wires.size()];
        const absl::Time start = absl::Now();
        const bool ok = RoundTrip(fd, wire, d, &reply);
        const int64_t ns = absl::ToInt64Nanoseconds(absl::Now() - start);
        if (!measuring.load(std::memory_order_relaxed)) continue;
        if (!ok || reply.compare(0, expect.size(), expect) != 0) {
          ++w.errors;
          if (!ok) {
            close(fd);
            fd = Connect(port, unix_path);
            d = mxkey::NetstringDecoder(200000);
          }
          continue;
        }
        w.latencies_ns.push_back(ns);
      }
      if (fd >= 0) close(fd);
    });
  }
  absl::SleepFor(absl::Seconds(warmup));
  measuring = true;
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  measuring = false;
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  done = true;
  for (auto& t : threads) t.join();
  std::vector<int64_t> all;
  int64_t errors = 0;
  for (auto& w : workers) {
    all.insert(all.end(), w.latencies_ns.begin(), w.latencies_ns.end());
    errors += w.errors;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0
                       : all[std::min(all.size() - 1,
                                      static_cast<size_t>(p * all.size()))] /
                             1e3;
  };
  std::printf(
      "{\"qps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
      "\"requests\": %zu, \"errors\": %lld}\n",
      static_cast<double>(all.size()) / elapsed, pct(0.5), pct(0.99),
      pct(0.999), all.size(), static_cast<long long>(errors));
  return 0;
}
