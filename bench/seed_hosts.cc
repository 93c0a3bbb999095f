// mxkey-seed-hosts: registers and enrolls N hosts "mx<i>.<domain>" in a
// running keyd, the way keyctl would, and measures the durable enrollment
// rate (issue 6 figure "enroll_rate"): requests are prepared first (keys and
// signatures), then --concurrency calls are kept in flight at once (the
// callback API, so the generator's own threads take little of the cores
// keyd shares with it). Prints one JSON line. Exit status 1 if any step
// failed.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/parallel.h"
#include "client/host_keys.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace {

namespace v1 = ::mxkey::v1;

using ::mxkey::Parallel;

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(60);
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(Deadline());
  return ctx;
}

// Sends every request with at most `in_flight` calls outstanding: each
// completion starts the next. Returns the number of failed calls.
int EnrollAll(v1::Enrollment::Stub* stub,
              const std::vector<v1::EnrollRequest>& requests, int in_flight) {
  struct Call {
    grpc::ClientContext ctx;
    v1::EnrollResponse resp;
  };
  const int n = static_cast<int>(requests.size());
  std::atomic<int> next{0}, finished{0}, failures{0};
  std::promise<void> all_done;
  std::function<void()> launch = [&] {
    int i = next.fetch_add(1);
    if (i >= n) return;
    auto call = std::make_shared<Call>();
    call->ctx.set_deadline(Deadline());
    stub->async()->Enroll(&call->ctx, &requests[i], &call->resp,
                          [&, call](grpc::Status st) {
                            if (!st.ok()) ++failures;
                            launch();
                            if (finished.fetch_add(1) + 1 == n) {
                              all_done.set_value();
                            }
                          });
  };
  for (int c = 0; c < std::min(in_flight, n); ++c) launch();
  all_done.get_future().wait();
  return failures.load();
}

}  // namespace

int main(int argc, char** argv) {
  std::string keyd = "127.0.0.1:7700", admin_socket, domain = "example.org";
  int hosts = 1000, start = 0, concurrency = 64;
  CLI::App app{"mxkey-seed-hosts: enroll many hosts, measure the rate"};
  app.add_option("--keyd", keyd);
  app.add_option("--admin-socket", admin_socket)->required();
  app.add_option("--hosts", hosts)->check(CLI::Range(1, 10000000));
  app.add_option("--start", start, "first index")->check(CLI::Range(0, 100000000));
  app.add_option("--concurrency", concurrency)->check(CLI::Range(1, 1024));
  app.add_option("--domain", domain);
  CLI11_PARSE(app, argc, argv);

  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      "unix:" + admin_socket, grpc::InsecureChannelCredentials()));
  auto enrollment = v1::Enrollment::NewStub(
      grpc::CreateChannel(keyd, grpc::InsecureChannelCredentials()));
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());

  std::vector<std::string> tokens(hosts);
  auto name = [&](int i) { return absl::StrCat("mx", start + i, ".", domain); };
  int failed = Parallel(hosts, concurrency, [&](int i) {
    v1::AddHostRequest req;
    req.set_hostname(name(i));
    req.add_mail_domains(domain);
    v1::TokenResponse resp;
    grpc::Status st = admin->AddHost(Ctx().get(), req, &resp);
    tokens[i] = resp.token();
    return st.ok();
  });
  std::vector<v1::EnrollRequest> requests(hosts);
  failed += Parallel(hosts, cores, [&](int i) {
    auto keys = mxkey::HostKeys::Generate();
    auto token = mxkey::TokenKey(tokens[i]);
    if (!keys.ok() || !token.ok()) return false;
    auto req = mxkey::MakeEnrollRequest(name(i), *token, *keys, {}, absl::Now());
    if (!req.ok()) return false;
    requests[i] = *std::move(req);
    return true;
  });
  auto begin = std::chrono::steady_clock::now();
  failed += EnrollAll(enrollment.get(), requests, concurrency);
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - begin)
                       .count();
  std::printf(
      "{\"enrolled\": %d, \"failed\": %d, \"seconds\": %.2f, "
      "\"enroll_per_s\": %.1f}\n",
      hosts - failed, failed, seconds, (hosts - failed) / seconds);
  return failed == 0 ? 0 : 1;
}
