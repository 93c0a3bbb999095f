// mxkey-enroll-load: honest enrollments for bench/run's under-attack rows
// (issue 18, attack 4). Registers --hosts hosts "en<i>.<domain>" through
// the admin socket and prepares their requests (keys, token and identity
// signatures) first; then enrolls them, --concurrency at a time, each the
// way a mail server runs `keyctl enroll` once: a new connection from its
// own address, in its own /64 (2001:db8:ffff:<start + i>::1 by default;
// bench/source_address.h), one Enroll call. Latency is from the connect to
// the answer. Prints one JSON line: enrolled, refused (RESOURCE_EXHAUSTED:
// a rate limit said no), failed (any error, refused included), the first
// error, enroll_per_s, p50/p99/max in ms. Exit status 1 if any failed.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "bench/source_address.h"
#include "bench/parallel.h"
#include "client/host_keys.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace {

namespace v1 = ::mxkey::v1;
using Clock = std::chrono::steady_clock;

using ::mxkey::Parallel;

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(30);
}

}  // namespace

int main(int argc, char** argv) {
  std::string keyd = "[::1]:7700", admin_socket, domain = "enroll.example";
  int hosts = 1000, start = 0, concurrency = 8;
  uint32_t net_base = 0xffff0000u;
  CLI::App app{"mxkey-enroll-load: honest enrollments, each from its own /64"};
  app.add_option("--keyd", keyd);
  app.add_option("--admin-socket", admin_socket)->required();
  app.add_option("--hosts", hosts)->check(CLI::Range(1, 65536));
  app.add_option("--start", start, "first index")->check(CLI::Range(0, 65535));
  app.add_option("--concurrency", concurrency)->check(CLI::Range(1, 1024));
  app.add_option("--domain", domain);
  app.add_option("--net-base", net_base,
                 "first /64 (its number in 2001:db8::/32)");
  CLI11_PARSE(app, argc, argv);

  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      "unix:" + admin_socket, grpc::InsecureChannelCredentials()));
  auto name = [&](int i) { return absl::StrCat("en", start + i, ".", domain); };
  std::vector<std::string> tokens(hosts);
  int setup_failed = Parallel(hosts, 16, [&](int i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::AddHostRequest req;
    req.set_hostname(name(i));
    req.add_mail_domains(domain);
    v1::TokenResponse resp;
    grpc::Status st = admin->AddHost(&ctx, req, &resp);
    tokens[i] = resp.token();
    if (!st.ok()) std::fprintf(stderr, "AddHost: %s\n", st.error_message().c_str());
    return st.ok();
  });
  std::vector<v1::EnrollRequest> requests(hosts);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  setup_failed += Parallel(hosts, static_cast<int>(cores), [&](int i) {
    auto keys = mxkey::HostKeys::Generate();
    auto token = mxkey::TokenKey(tokens[i]);
    if (!keys.ok() || !token.ok()) return false;
    auto req = mxkey::MakeEnrollRequest(name(i), *token, *keys, {}, absl::Now());
    if (!req.ok()) return false;
    requests[i] = *std::move(req);
    return true;
  });
  if (setup_failed > 0) {
    std::fprintf(stderr, "mxkey-enroll-load: %d hosts not prepared\n",
                 setup_failed);
    return 1;
  }

  std::mutex mu;
  std::vector<double> latencies_ms;
  std::string first_error;
  std::atomic<int> refused{0}, failed{0};
  const auto begin = Clock::now();
  Parallel(hosts, concurrency, [&](int i) {
    const auto t0 = Clock::now();
    const std::string source = mxkey::SourceInDocPrefix(
        net_base + static_cast<uint32_t>(start + i), 1);
    grpc::Status st;
    if (auto channel = mxkey::ChannelFrom(source, keyd)) {
      auto stub = v1::Enrollment::NewStub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(Deadline());
      v1::EnrollResponse resp;
      st = stub->Enroll(&ctx, requests[i], &resp);
    } else {
      st = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("connect from ", source, ": ",
                                     std::strerror(errno)));
    }
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::lock_guard<std::mutex> lock(mu);
    latencies_ms.push_back(ms);
    if (!st.ok()) {
      ++failed;
      if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++refused;
      if (first_error.empty()) {
        first_error = absl::StrCat(source, ": ", st.error_code(), " ",
                                   st.error_message());
      }
    }
    return st.ok();
  });
  const double seconds =
      std::chrono::duration<double>(Clock::now() - begin).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms[std::min(latencies_ms.size() - 1,
                                 static_cast<size_t>(p * latencies_ms.size()))];
  };
  std::printf(
      "{\"enrolled\": %d, \"refused\": %d, \"failed\": %d, \"first_error\": "
      "\"%s\", \"seconds\": %.2f, \"enroll_per_s\": %.1f, \"p50_ms\": %.2f, "
      "\"p99_ms\": %.2f, \"max_ms\": %.2f}\n",
      hosts - failed.load(), refused.load(), failed.load(),
      absl::StrReplaceAll(first_error, {{"\\", "\\\\"}, {"\"", "'"}}).c_str(),
      seconds, (hosts - failed.load()) / seconds, pct(0.5), pct(0.99),
      latencies_ms.back());
  return failed.load() == 0 ? 0 : 1;
}
