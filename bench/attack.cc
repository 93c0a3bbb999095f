// mxkey-attack: the hostile side of bench/run's under-attack rows (issue 18
// of trust core III). Runs one attack at full strength until killed:
//
//   --kind watch-flood --target HOST:PORT [--count 6000]
//       opens COUNT WatchRevocations streams from sequence 0 over 24
//       connections with small HTTP/2 windows, never reads, and opens a new
//       one whenever one ends (refused or dropped), a second later (as a
//       client retrying with backoff would: the attack holds streams, it is
//       not a flood of refused calls).
//   --kind relay-flood --target HOST:PORT --suffix c.example [--count 64]
//       keeps COUNT lookups of random names under SUFFIX (a peer's) in
//       flight, each slot asking again when its lookup ends, at most 10
//       times a second (the finding's stall, not a flood of fast errors).
//   --kind stalling-peer --backend HOST:PORT
//       serves KeyDirectory on 127.0.0.1:0: GetOrgInfo from BACKEND (so it
//       can be added as a peer), every lookup never answered until its
//       caller gives up. Prints "listening on 127.0.0.1:PORT".
//   --kind idle-connections --target HOST:PORT [--count 256]
//       holds COUNT idle TCP connections (to mxkey-policyd's socketmap
//       listener), reconnecting any that are closed, each at most once a
//       second.
//   --kind random-names --target HOST:PORT [--count 256] [--names N]
//       GetHostKeys of random names nobody registered ("r<64 random
//       bits>.example.org"), COUNT always in flight over 4 connections,
//       each completion asking the next at once (finding 3). Prints
//       "stats sent=.. ok=.. refused=.. errors=.." every second (refused:
//       RESOURCE_EXHAUSTED, keyd's --denial-limit); with --names, stops
//       after N answered or refused lookups and prints "done" and the stats.
//   --kind enroll-flood --target [::1]:PORT [--count 64] [--sources 100000]
//       [--per-source 3] [--suffix enroll.example]
//       failing Enroll requests (tokens keyd never issued, for the names
//       en0..en15 under SUFFIX, well signed, so each reaches keyd's token
//       check) from many source addresses (attack 4: lock-out of honest
//       enrollments through the rate limiter's table): COUNT threads, each
//       a new connection from the next address, PER-SOURCE requests on it,
//       closed. Seven connections of eight come from distinct /64s
//       (2001:db8:<n>::1, n cycling through SOURCES: more networks than
//       keyd's 65,536-entry table), one of eight from a new address in the
//       single /64 2001:db8:fffe:0::/64. Needs a local route for
//       2001:db8::/32 on loopback (bench/run adds it). Prints "stats ..."
//       every second.
//
// Prints "attacking" once the attack runs. Exit 2 on bad flags.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

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
#include "absl/time/clock.h"
#include "bench/source_address.h"
#include "client/host_keys.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace {

namespace v1 = ::mxkey::v1;

std::shared_ptr<grpc::Channel> SmallWindowChannel(const std::string& target,
                                                  int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("mxkey.attack.channel", index);  // one connection each
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

// One unread watch; tells its slot when it ended.
class UnreadWatch : public grpc::ClientReadReactor<v1::WatchRevocationsResponse> {
 public:
  UnreadWatch(v1::KeyDirectory::Stub* stub, std::atomic<bool>* ended)
      : ended_(ended) {
    request_.set_from_seq(0);
    stub->async()->WatchRevocations(&ctx_, &request_, this);
    StartCall();  // and never StartRead
  }
  void OnDone(const grpc::Status&) override {
    ended_->store(true);
    delete this;
  }

 private:
  grpc::ClientContext ctx_;
  v1::WatchRevocationsRequest request_;
  std::atomic<bool>* ended_;
};

void WatchFlood(const std::string& target, int count) {
  constexpr int kChannels = 24;
  std::vector<std::unique_ptr<v1::KeyDirectory::Stub>> stubs;
  for (int i = 0; i < kChannels; ++i) {
    stubs.push_back(v1::KeyDirectory::NewStub(SmallWindowChannel(target, i)));
  }
  std::vector<std::atomic<bool>> ended(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    new UnreadWatch(stubs[static_cast<size_t>(i % kChannels)].get(), &ended[i]);
  }
  std::printf("attacking\n");
  std::fflush(stdout);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    for (int i = 0; i < count; ++i) {
      if (ended[i].exchange(false)) {
        new UnreadWatch(stubs[static_cast<size_t>(i % kChannels)].get(),
                        &ended[i]);
      }
    }
  }
}

// COUNT relayed lookups in flight, each followed by another.
class RelayFlood {
 public:
  RelayFlood(const std::string& target, std::string suffix)
      : stub_(v1::KeyDirectory::NewStub(grpc::CreateChannel(
            target, grpc::InsecureChannelCredentials()))),
        suffix_(std::move(suffix)) {}
  void Start() {
    struct Call {
      grpc::ClientContext ctx;
      v1::GetHostKeysRequest req;
      v1::KeyAnswer answer;
      std::chrono::steady_clock::time_point started =
          std::chrono::steady_clock::now();
    };
    auto* call = new Call;
    {
      std::lock_guard<std::mutex> lock(mu_);
      call->req.set_hostname("h" + std::to_string(rng_()) + "." + suffix_);
    }
    call->ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(10));
    stub_->async()->GetHostKeys(&call->ctx, &call->req, &call->answer,
                                [this, call](grpc::Status) {
                                  const auto next = call->started +
                                                    std::chrono::milliseconds(100);
                                  delete call;
                                  std::this_thread::sleep_until(next);
                                  Start();
                                });
  }

 private:
  std::unique_ptr<v1::KeyDirectory::Stub> stub_;
  const std::string suffix_;
  std::mutex mu_;
  std::mt19937_64 rng_{std::random_device{}()};
};

class StallingPeer final : public v1::KeyDirectory::CallbackService {
 public:
  explicit StallingPeer(const std::string& backend)
      : backend_(v1::KeyDirectory::NewStub(grpc::CreateChannel(
            backend, grpc::InsecureChannelCredentials()))) {}
  grpc::ServerUnaryReactor* GetOrgInfo(grpc::CallbackServerContext* ctx,
                                       const v1::GetOrgInfoRequest* r,
                                       v1::OrgInfo* out) override {
    grpc::ClientContext call;
    grpc::Status st = backend_->GetOrgInfo(&call, *r, out);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(st);
    return reactor;
  }
  // Never finished until the caller gives up (holds no thread).
  class Stall : public grpc::ServerUnaryReactor {
   public:
    void OnCancel() override { Finish(grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }
  };
  grpc::ServerUnaryReactor* GetHostKeys(grpc::CallbackServerContext*,
                                        const v1::GetHostKeysRequest*,
                                        v1::KeyAnswer*) override {
    return new Stall;
  }
  grpc::ServerUnaryReactor* GetDomainPolicy(grpc::CallbackServerContext*,
                                            const v1::GetDomainPolicyRequest*,
                                            v1::KeyAnswer*) override {
    return new Stall;
  }
  grpc::ServerUnaryReactor* FindByTlsPin(grpc::CallbackServerContext*,
                                         const v1::FindByTlsPinRequest*,
                                         v1::KeyAnswer*) override {
    return new Stall;
  }

 private:
  std::unique_ptr<v1::KeyDirectory::Stub> backend_;
};

int Connect(const std::string& target) {
  const size_t colon = target.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(target.substr(colon + 1))));
  inet_pton(AF_INET, target.substr(0, colon).c_str(), &a.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void IdleConnections(const std::string& target, int count) {
  std::vector<int> fds(static_cast<size_t>(count), -1);
  std::printf("attacking\n");
  std::fflush(stdout);
  for (;;) {
    for (int& fd : fds) {
      if (fd >= 0) {
        pollfd p{fd, POLLIN, 0};
        char buf[256];
        // Closed by the server (or answered TEMP and closed): reconnect.
        if (poll(&p, 1, 0) > 0 && read(fd, buf, sizeof(buf)) <= 0) {
          close(fd);
          fd = -1;
        }
      }
      if (fd < 0) fd = Connect(target);
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// Counts of an attack's calls, printed every second.
struct Stats {
  std::atomic<long> sent{0}, ok{0}, refused{0}, denied{0}, errors{0},
      connections{0}, connect_errors{0};
  void Count(const grpc::Status& st) {
    if (st.ok()) {
      ++ok;
    } else if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++refused;
    } else if (st.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      ++denied;
    } else {
      ++errors;
    }
  }
  long Done() const { return ok + refused + denied + errors; }
  void Print(const char* what) const {
    std::printf("%s sent=%ld ok=%ld refused=%ld denied=%ld errors=%ld "
                "connections=%ld connect_errors=%ld\n",
                what, sent.load(), ok.load(), refused.load(), denied.load(),
                errors.load(), connections.load(), connect_errors.load());
    std::fflush(stdout);
  }
};

// Lookups of names never registered, as fast as keyd answers them.
class RandomNames {
 public:
  RandomNames(const std::string& target, Stats* stats, long limit)
      : stats_(stats), limit_(limit) {
    for (int i = 0; i < 4; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("mxkey.attack.channel", i);  // one connection each
      stubs_.push_back(v1::KeyDirectory::NewStub(grpc::CreateCustomChannel(
          target, grpc::InsecureChannelCredentials(), args)));
    }
  }
  void Start(size_t slot) {
    if (limit_ > 0 && stats_->sent.fetch_add(1) >= limit_) {
      --stats_->sent;
      return;
    }
    if (limit_ <= 0) ++stats_->sent;
    struct Call {
      grpc::ClientContext ctx;
      v1::GetHostKeysRequest req;
      v1::KeyAnswer answer;
    };
    auto* call = new Call;
    uint64_t r;
    {
      std::lock_guard<std::mutex> lock(mu_);
      r = rng_();
    }
    char label[24];
    std::snprintf(label, sizeof(label), "r%016llx",
                  static_cast<unsigned long long>(r));
    call->req.set_hostname(absl::StrCat(label, ".example.org"));
    call->ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(30));
    stubs_[slot % stubs_.size()]->async()->GetHostKeys(
        &call->ctx, &call->req, &call->answer,
        [this, call, slot](grpc::Status st) {
          stats_->Count(st);
          delete call;
          Start(slot);
        });
  }

 private:
  Stats* stats_;
  const long limit_;
  std::vector<std::unique_ptr<v1::KeyDirectory::Stub>> stubs_;
  std::mutex mu_;
  std::mt19937_64 rng_{std::random_device{}()};
};

void EnrollFlood(const std::string& target, const std::string& suffix,
                 int threads, uint32_t sources, int per_source, Stats* stats) {
  // Requests nobody can tell from real ones until keyd looks the token up.
  std::vector<v1::EnrollRequest> requests;
  std::mt19937_64 rng{std::random_device{}()};
  for (int i = 0; i < 16; ++i) {
    char hex[65];
    for (int j = 0; j < 64; j += 16) {
      std::snprintf(hex + j, 17, "%016llx",
                    static_cast<unsigned long long>(rng()));
    }
    auto token = mxkey::TokenKey(hex);
    auto keys = mxkey::HostKeys::Generate();
    if (!token.ok() || !keys.ok()) std::exit(1);
    auto req = mxkey::MakeEnrollRequest(absl::StrCat("en", i, ".", suffix),
                                        *token, *keys, {}, absl::Now());
    if (!req.ok()) std::exit(1);
    requests.push_back(*std::move(req));
  }
  std::atomic<uint64_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 local{rng() + static_cast<uint64_t>(t)};
      for (;;) {
        const uint64_t n = next.fetch_add(1);
        const std::string source =
            n % 8 == 7 ? mxkey::SourceInDocPrefix(0xfffe0000u, local() | 1)
                       : mxkey::SourceInDocPrefix(
                             static_cast<uint32_t>(n % sources), 1);
        auto channel = mxkey::ChannelFrom(source, target);
        if (!channel) {
          ++stats->connect_errors;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          continue;
        }
        ++stats->connections;
        auto stub = v1::Enrollment::NewStub(channel);
        for (int k = 0; k < per_source; ++k) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(10));
          v1::EnrollResponse resp;
          ++stats->sent;
          stats->Count(stub->Enroll(&ctx, requests[(n + k) % requests.size()],
                                    &resp));
        }
      }
    });
  }
  std::printf("attacking\n");
  std::fflush(stdout);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    stats->Print("stats");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mxkey-attack: hostile load for bench/run"};
  std::string kind, target, backend, suffix = "c.example";
  int count = 0;
  app.add_option("--kind", kind)->required()->check(CLI::IsMember(
      {"watch-flood", "relay-flood", "stalling-peer", "idle-connections",
       "random-names", "enroll-flood"}));
  app.add_option("--target", target);
  app.add_option("--backend", backend);
  app.add_option("--suffix", suffix);
  app.add_option("--count", count)->check(CLI::Range(1, 1000000));
  long names = 0;
  uint32_t sources = 100000;
  int per_source = 3;
  app.add_option("--names", names, "random-names: stop after this many")
      ->check(CLI::Range(1L, 1000000000L));
  app.add_option("--sources", sources, "enroll-flood: distinct /64s")
      ->check(CLI::Range(1u, 0xfffe0000u));
  app.add_option("--per-source", per_source,
                 "enroll-flood: requests per connection")
      ->check(CLI::Range(1, 1000));
  CLI11_PARSE(app, argc, argv);
  if (kind == "stalling-peer") {
    StallingPeer service(backend);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    std::printf("listening on 127.0.0.1:%d\n", port);
    std::fflush(stdout);
    server->Wait();
    return 0;
  }
  if (target.empty()) {
    std::fprintf(stderr, "mxkey-attack: --target is required\n");
    return 2;
  }
  if (kind == "watch-flood") WatchFlood(target, count ? count : 6000);
  if (kind == "idle-connections") IdleConnections(target, count ? count : 256);
  Stats stats;
  if (kind == "enroll-flood") {
    EnrollFlood(target, suffix == "c.example" ? "enroll.example" : suffix,
                count ? count : 64, sources, per_source, &stats);
  }
  if (kind == "random-names") {
    RandomNames flood(target, &stats, names);
    for (int i = 0; i < (count ? count : 256); ++i) {
      flood.Start(static_cast<size_t>(i));
    }
    std::printf("attacking\n");
    std::fflush(stdout);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      if (names > 0 && stats.Done() >= names) {
        stats.Print("done");
        return 0;
      }
      stats.Print("stats");
    }
  }
  RelayFlood flood(target, suffix);
  for (int i = 0; i < (count ? count : 64); ++i) flood.Start();
  std::printf("attacking\n");
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}
