// mxkey-loadgen: a gRPC load generator for KeyDirectory.GetHostKeys (ghz is
// not packaged here). Async client: one CompletionQueue thread per --threads,
// requests spread over --channels channels.
//
//   closed loop (default): --concurrency requests always in flight; reports
//     the peak QPS.
//   open loop (--rate QPS): requests sent on a fixed schedule; latency is
//     measured from the scheduled time, so a stalled server cannot hide its
//     queueing (no coordinated omission).
//
// Names are "<prefix><i>.<domain>" for random i in [0, --hosts). Prints one
// JSON line: qps, p50/p99/p999 latency in microseconds, requests, errors.
// Exit status 1 if any request failed.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace mxkey {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string target = "127.0.0.1:7700";
  int channels = 8;
  int threads = 1;
  int concurrency = 64;
  double rate = 0;  // 0: closed loop
  double duration_s = 10;
  double warmup_s = 1;
  int hosts = 10000;
  std::string prefix = "mx";
  std::string domain = "example.org";
  // Each name once, in order, then stop: every lookup is the first for its
  // name (cold caches), and the figure is over the time that took.
  bool sequential = false;
};

struct Call {
  grpc::ClientContext ctx;
  mxkey::v1::KeyAnswer reply;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<mxkey::v1::KeyAnswer>> rpc;
  Clock::time_point start;
};

class LoadGenerator {
 public:
  explicit LoadGenerator(const Options& o) : o_(o) {
    for (int i = 0; i < o.channels; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", i);  // distinct connections
      stubs_.push_back(mxkey::v1::KeyDirectory::NewStub(grpc::CreateCustomChannel(
          o.target, grpc::InsecureChannelCredentials(), args)));
    }
    for (int i = 0; i < o.threads; ++i) {
      cqs_.push_back(std::make_unique<grpc::CompletionQueue>());
    }
  }

  int Run() {
    begin_ = Clock::now();
    measure_from_ = begin_ + Seconds(o_.warmup_s);
    end_ = measure_from_ + Seconds(o_.duration_s);
    std::vector<std::thread> pollers;
    for (int i = 0; i < o_.threads; ++i) {
      pollers.emplace_back([this, i] { Poll(i); });
    }
    if (o_.rate > 0) {
      OpenLoop();
    } else {
      for (int i = 0; i < o_.concurrency; ++i) Start(i, Clock::now());
    }
    // Wait for the calls still in flight, then stop the queues.
    while (in_flight_.load() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& cq : cqs_) cq->Shutdown();
    for (auto& t : pollers) t.join();
    Report();
    return errors_.load() == 0 ? 0 : 1;
  }

 private:
  static Clock::duration Seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(s));
  }

  // The next name to ask, or "" when a sequential pass is through.
  std::string NextName(uint64_t seed) {
    if (o_.sequential) {
      const int i = next_.fetch_add(1);
      if (i >= o_.hosts) return "";
      return absl::StrCat(o_.prefix, i, ".", o_.domain);
    }
    thread_local std::mt19937_64 rng(seed * 7919 + 17);
    return absl::StrCat(o_.prefix, rng() % o_.hosts, ".", o_.domain);
  }

  void Start(uint64_t n, Clock::time_point scheduled) {
    std::string name = NextName(n);
    if (name.empty()) return;
    auto* call = new Call;
    call->start = scheduled;
    mxkey::v1::GetHostKeysRequest req;
    req.set_hostname(std::move(name));
    call->ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(10));
    auto& stub = stubs_[n % stubs_.size()];
    auto& cq = cqs_[n % cqs_.size()];
    in_flight_.fetch_add(1);
    call->rpc = stub->PrepareAsyncGetHostKeys(&call->ctx, req, cq.get());
    call->rpc->StartCall();
    call->rpc->Finish(&call->reply, &call->status, call);
  }

  void Poll(int i) {
    void* tag;
    bool ok;
    uint64_t n = i;
    while (cqs_[i]->Next(&tag, &ok)) {
      auto* call = static_cast<Call*>(tag);
      Clock::time_point now = Clock::now();
      if (call->start >= measure_from_ && now <= end_) {
        std::lock_guard<std::mutex> lock(mu_);
        latencies_us_.push_back(
            std::chrono::duration<double, std::micro>(now - call->start)
                .count());
        last_done_ = std::max(last_done_, now);
        if (!call->status.ok()) ++errors_;
      }
      delete call;
      if (o_.rate <= 0 && now < end_) Start(n += o_.threads, now);
      in_flight_.fetch_sub(1);
    }
  }

  void OpenLoop() {
    const auto interval = Seconds(1.0 / o_.rate);
    Clock::time_point next = begin_;
    for (uint64_t n = 0; next < end_; ++n, next += interval) {
      std::this_thread::sleep_until(next);
      Start(n, next);
    }
  }

  // A sequential pass may end before the duration does.
  double MeasuredSeconds() const {
    if (!o_.sequential || last_done_ <= measure_from_) return o_.duration_s;
    return std::min(o_.duration_s,
                    std::chrono::duration<double>(last_done_ - measure_from_)
                        .count());
  }

  void Report() {
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto pct = [&](double p) {
      if (latencies_us_.empty()) return 0.0;
      size_t i = std::min(latencies_us_.size() - 1,
                          static_cast<size_t>(p * latencies_us_.size()));
      return latencies_us_[i];
    };
    std::printf(
        "{\"qps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": "
        "%.1f, \"requests\": %zu, \"errors\": %d}\n",
        latencies_us_.size() / MeasuredSeconds(), pct(0.50), pct(0.99),
        pct(0.999), latencies_us_.size(), errors_.load());
  }

  const Options o_;
  std::vector<std::unique_ptr<mxkey::v1::KeyDirectory::Stub>> stubs_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs_;
  Clock::time_point begin_, measure_from_, end_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> next_{0};  // sequential mode
  Clock::time_point last_done_;  // guarded by mu_
  std::atomic<int> errors_{0};
  std::mutex mu_;
  std::vector<double> latencies_us_;
};

}  // namespace
}  // namespace mxkey

int main(int argc, char** argv) {
  mxkey::Options o;
  CLI::App app{"mxkey-loadgen: gRPC load for KeyDirectory.GetHostKeys"};
  app.add_option("--target", o.target, "keyd HOST:PORT");
  app.add_option("--channels", o.channels)->check(CLI::Range(1, 1024));
  app.add_option("--threads", o.threads, "completion-queue threads")
      ->check(CLI::Range(1, 64));
  app.add_option("--concurrency", o.concurrency, "closed loop: in flight")
      ->check(CLI::Range(1, 100000));
  app.add_option("--rate", o.rate, "open loop: requests per second")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--duration", o.duration_s, "measured seconds")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", o.warmup_s, "unmeasured seconds first")
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--hosts", o.hosts, "names mx0.. mx(N-1)")
      ->check(CLI::Range(1, 100000000));
  app.add_option("--prefix", o.prefix);
  app.add_option("--domain", o.domain);
  app.add_flag("--sequential", o.sequential,
               "each name once, in order, then stop (cold caches)");
  CLI11_PARSE(app, argc, argv);
  return mxkey::LoadGenerator(o).Run();
}
