// mxkey-watchers: revocation propagation at scale (issue 6 figure
// "revoke_propagation"). Opens --watchers WatchRevocations streams to keyd
// (async, over --channels connections) from the feed's current head, waits
// until every stream has its first batch, revokes --revoke HOST through the
// admin socket, and measures for every stream the time from the revocation
// request to the arrival of its event (a REVOCATION event for HOST: the
// feed also carries enrollments, rotations and policy changes). Prints one JSON line with p50/p99/max in milliseconds; exit 1
// if a stream missed the event within --timeout seconds.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "proto/mxkey/v1/objects.pb.h"

namespace {

namespace v1 = ::mxkey::v1;
using Clock = std::chrono::steady_clock;

struct Stream {
  grpc::ClientContext ctx;
  v1::WatchRevocationsResponse batch;
  std::unique_ptr<grpc::ClientAsyncReader<v1::WatchRevocationsResponse>> reader;
  bool ready = false;  // first batch received
  uint64_t head = 0;
  Clock::time_point got_event{};
};

}  // namespace

int main(int argc, char** argv) {
  std::string keyd = "127.0.0.1:7700", admin_socket, host;
  int watchers = 1000, channels = 50;
  double timeout_s = 30;
  CLI::App app{"mxkey-watchers: revocation propagation to many watchers"};
  app.add_option("--keyd", keyd);
  app.add_option("--admin-socket", admin_socket)->required();
  app.add_option("--revoke", host, "enrolled host to revoke")->required();
  app.add_option("--watchers", watchers)->check(CLI::Range(1, 100000));
  app.add_option("--channels", channels)->check(CLI::Range(1, 10000));
  app.add_option("--timeout", timeout_s)->check(CLI::Range(1.0, 600.0));
  CLI11_PARSE(app, argc, argv);

  std::vector<std::unique_ptr<v1::KeyDirectory::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // one connection each
    stubs.push_back(v1::KeyDirectory::NewStub(grpc::CreateCustomChannel(
        keyd, grpc::InsecureChannelCredentials(), args)));
  }
  // From the feed's head, so that the first batch is the (empty) head and
  // not a backlog (every enrollment is an event too).
  v1::WatchRevocationsRequest from_head;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    auto reader = stubs[0]->WatchRevocations(&ctx, v1::WatchRevocationsRequest());
    v1::WatchRevocationsResponse first;
    if (!reader->Read(&first)) {
      std::fprintf(stderr, "mxkey-watchers: feed head: %s\n",
                   reader->Finish().error_message().c_str());
      return 1;
    }
    from_head.set_from_seq(first.head_seq());
    ctx.TryCancel();
  }
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Stream>> streams(watchers);
  for (int i = 0; i < watchers; ++i) {
    streams[i] = std::make_unique<Stream>();
    streams[i]->reader = stubs[i % channels]->PrepareAsyncWatchRevocations(
        &streams[i]->ctx, from_head, &cq);
    streams[i]->reader->StartCall(reinterpret_cast<void*>(2 * i));
  }
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_s));
  int ready = 0, done = 0;
  Clock::time_point revoked_at{};
  bool revoked = false;
  void* tag;
  bool ok;
  while (done < watchers) {
    if (!revoked && ready == watchers) {
      auto admin = v1::Admin::NewStub(grpc::CreateChannel(
          "unix:" + admin_socket, grpc::InsecureChannelCredentials()));
      v1::RevokeRequest req;
      req.set_hostname(host);
      req.set_reason("propagation benchmark");
      v1::RevokeResponse resp;
      grpc::ClientContext ctx;
      revoked_at = Clock::now();
      grpc::Status st = admin->Revoke(&ctx, req, &resp);
      if (!st.ok()) {
        std::fprintf(stderr, "mxkey-watchers: revoke: %s\n",
                     st.error_message().c_str());
        return 1;
      }
      revoked = true;
    }
    auto status = cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() +
                                              std::chrono::milliseconds(200));
    if (Clock::now() > deadline) break;
    if (status != grpc::CompletionQueue::GOT_EVENT) continue;
    const uintptr_t t = reinterpret_cast<uintptr_t>(tag);
    Stream& s = *streams[t / 2];
    if (!ok) {
      std::fprintf(stderr, "mxkey-watchers: a stream ended early\n");
      return 1;
    }
    if (t % 2 == 1) {  // a batch arrived
      if (!s.ready) {
        s.ready = true;
        ++ready;
      } else if (revoked && s.got_event == Clock::time_point{}) {
        for (const auto& e : s.batch.events()) {
          v1::RevocationEventBody body;
          if (body.ParseFromString(e.body()) &&
              body.kind() == v1::FEED_EVENT_KIND_REVOCATION &&
              body.hostname() == host) {
            s.got_event = Clock::now();
            ++done;
            break;
          }
        }
      }
    }
    s.reader->Read(&s.batch, reinterpret_cast<void*>(t | 1));
  }
  std::vector<double> ms;
  for (auto& s : streams) {
    if (s->got_event != Clock::time_point{}) {
      ms.push_back(std::chrono::duration<double, std::milli>(s->got_event -
                                                              revoked_at)
                       .count());
    }
    s->ctx.TryCancel();
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms.empty() ? 0.0
                      : ms[std::min(ms.size() - 1,
                                    static_cast<size_t>(p * ms.size()))];
  };
  std::printf(
      "{\"watchers\": %d, \"delivered\": %zu, \"p50_ms\": %.1f, \"p99_ms\": "
      "%.1f, \"max_ms\": %.1f}\n",
      watchers, ms.size(), pct(0.5), pct(0.99), ms.empty() ? 0.0 : ms.back());
  // Drain the queue before it is destroyed.
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return ms.size() == static_cast<size_t>(watchers) ? 0 : 1;
}
