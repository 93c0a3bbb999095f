// mxkey-change-propagation: "every change reaches every watching client
// within 2 s" (figure change_propagation), measured as the change being in
// use, not just announced. Opens --watchers WatchRevocations streams to the
// keyd at --keyd (async, over --channels connections, from the feed's
// current head), looks --domain up once there (its policy version v0 and
// mode), then changes the domain's mode through the Admin socket given
// (SetDomainPolicy): the same keyd's for the own org, or a peer's for a
// cross-org figure (the keyd at --keyd republishes the peer's event and
// relays the lookup to it). For every watcher it measures the time from
// the change request until it has received a feed event naming the domain
// (POLICY_CHANGE, version > v0) and then done a GetDomainPolicy lookup at
// --keyd whose answer carries a policy (DomainPolicyBody, signatures not
// checked) of a version > v0 with the new mode. A stale or failed answer
// is asked again after --retry-ms. Lookups are async on the same completion
// queue, so one thread serves every watcher.
//
// Prints one JSON line: p50/p99/max of change -> in use, the same for
// change -> event arrival, the lookups made, stale answers and lookup
// errors, in milliseconds. Exit status 1 if a watcher did not have the
// change in use within --timeout seconds of the request (or on setup
// errors).
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "proto/mxkey/v1/objects.pb.h"

namespace {

namespace v1 = ::mxkey::v1;
using Clock = std::chrono::steady_clock;

// What a completion-queue tag stands for: (index << 3) | op.
enum Op : uintptr_t { kStart = 0, kRead = 1, kLookup = 2, kRetry = 3 };

struct Watcher {
  grpc::ClientContext ctx;
  v1::WatchRevocationsResponse batch;
  std::unique_ptr<grpc::ClientAsyncReader<v1::WatchRevocationsResponse>> reader;
  bool ready = false;  // first batch (the head) received
  Clock::time_point event_at{}, in_use_at{};
  // The lookup in flight, if any.
  std::unique_ptr<grpc::ClientContext> lookup_ctx;
  v1::KeyAnswer answer;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::KeyAnswer>> lookup;
  grpc::Alarm retry;  // after a stale or failed answer
};

void* Tag(size_t index, Op op) {
  return reinterpret_cast<void*>((index << 3) | op);
}

std::chrono::system_clock::time_point In(std::chrono::milliseconds d) {
  return std::chrono::system_clock::now() + d;
}

// The policy an answer carries: false if none or unparsable.
bool PolicyOf(const v1::KeyAnswer& answer, v1::DomainPolicyBody* body) {
  return answer.has_policy() && body->ParseFromString(answer.policy().body());
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct Percentiles {
  double p50 = 0, p99 = 0, max = 0;
};

Percentiles Of(std::vector<double> ms) {
  Percentiles p;
  if (ms.empty()) return p;
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))];
  };
  p.p50 = at(0.5);
  p.p99 = at(0.99);
  p.max = ms.back();
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::string keyd = "127.0.0.1:7700", admin_socket, domain;
  int watchers = 1000, channels = 50, retry_ms = 50;
  double timeout_s = 30;
  CLI::App app{
      "mxkey-change-propagation: a policy change in use at many watchers"};
  app.add_option("--keyd", keyd, "keyd the watchers watch and look up at");
  app.add_option("--admin-socket", admin_socket,
                 "Admin socket of the keyd that makes the change (this "
                 "keyd's, or a peer's for a cross-org figure)")
      ->required();
  app.add_option("--domain", domain, "mail domain whose mode is changed")
      ->required();
  app.add_option("--watchers", watchers)->check(CLI::Range(1, 100000));
  app.add_option("--channels", channels)->check(CLI::Range(1, 10000));
  app.add_option("--retry-ms", retry_ms,
                 "delay before asking again after a stale or failed answer")
      ->check(CLI::Range(1, 10000));
  app.add_option("--timeout", timeout_s)->check(CLI::Range(1.0, 600.0));
  CLI11_PARSE(app, argc, argv);
  auto fail = [](const std::string& what, const grpc::Status& st) {
    std::fprintf(stderr, "mxkey-change-propagation: %s: %s\n", what.c_str(),
                 st.error_message().c_str());
    return 1;
  };
  const auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(timeout_s));

  std::vector<std::unique_ptr<v1::KeyDirectory::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // one connection each
    stubs.push_back(v1::KeyDirectory::NewStub(grpc::CreateCustomChannel(
        keyd, grpc::InsecureChannelCredentials(), args)));
  }
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      "unix:" + admin_socket, grpc::InsecureChannelCredentials()));

  // Before: the domain's policy as the watchers' keyd answers it now (for a
  // peer's domain this also leaves the answer in its relay cache, which the
  // change must evict), and the feed head to watch from.
  uint64_t v0 = 0;
  v1::PolicyMode old_mode = v1::POLICY_MODE_NONE;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(std::chrono::seconds(10)));
    v1::GetDomainPolicyRequest req;
    req.set_domain(domain);
    v1::KeyAnswer answer;
    grpc::Status st = stubs[0]->GetDomainPolicy(&ctx, req, &answer);
    if (!st.ok()) return fail("lookup before the change", st);
    v1::DomainPolicyBody body;
    if (PolicyOf(answer, &body)) {
      v0 = body.version();
      old_mode = body.mode();
    }
  }
  const v1::PolicyMode new_mode = old_mode == v1::POLICY_MODE_ENFORCE
                                      ? v1::POLICY_MODE_TESTING
                                      : v1::POLICY_MODE_ENFORCE;
  uint64_t head = 0;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(std::chrono::seconds(10)));
    auto reader = stubs[0]->WatchRevocations(&ctx, v1::WatchRevocationsRequest());
    v1::WatchRevocationsResponse first;
    if (!reader->Read(&first)) return fail("feed head", reader->Finish());
    head = first.head_seq();
    ctx.TryCancel();
  }
  {
    // Connects the admin channel, so the change is not delayed by it.
    grpc::ClientContext ctx;
    ctx.set_deadline(In(std::chrono::seconds(10)));
    v1::ListPeersResponse peers;
    grpc::Status st = admin->ListPeers(&ctx, v1::ListPeersRequest(), &peers);
    if (!st.ok()) return fail("admin socket", st);
  }

  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Watcher>> ws(watchers);
  v1::WatchRevocationsRequest from_head;
  from_head.set_from_seq(head);
  for (int i = 0; i < watchers; ++i) {
    ws[i] = std::make_unique<Watcher>();
    ws[i]->reader = stubs[i % channels]->PrepareAsyncWatchRevocations(
        &ws[i]->ctx, from_head, &cq);
    ws[i]->reader->StartCall(Tag(i, kStart));
  }
  const size_t kChange = watchers;  // the tag index of the change call
  grpc::ClientContext change_ctx;
  v1::SetDomainPolicyResponse change_resp;
  grpc::Status change_status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::SetDomainPolicyResponse>>
      change_call;
  Clock::time_point changed_at{}, change_answered_at{};
  bool changed = false;
  auto deadline = Clock::now() + timeout;  // for the setup, then the change

  auto start_lookup = [&](size_t i) {
    Watcher& w = *ws[i];
    w.lookup_ctx = std::make_unique<grpc::ClientContext>();
    w.lookup_ctx->set_deadline(In(std::chrono::seconds(5)));
    v1::GetDomainPolicyRequest req;
    req.set_domain(domain);
    w.lookup = stubs[i % channels]->PrepareAsyncGetDomainPolicy(
        w.lookup_ctx.get(), req, &cq);
    w.lookup->StartCall();
    w.lookup->Finish(&w.answer, &w.status, Tag(i, kLookup));
  };

  int ready = 0, in_use = 0, lookups = 0, stale = 0, errors = 0;
  std::string first_error;
  void* tag;
  bool ok;
  while (in_use < watchers) {
    if (!changed && ready == watchers) {
      v1::SetDomainPolicyRequest req;
      req.set_domain(domain);
      req.set_mode(new_mode);
      change_ctx.set_deadline(In(std::chrono::seconds(10)));
      changed_at = Clock::now();
      deadline = changed_at + timeout;
      change_call = admin->PrepareAsyncSetDomainPolicy(&change_ctx, req, &cq);
      change_call->StartCall();
      change_call->Finish(&change_resp, &change_status, Tag(kChange, kLookup));
      changed = true;
    }
    auto status = cq.AsyncNext(&tag, &ok, In(std::chrono::milliseconds(200)));
    if (Clock::now() > deadline) break;
    if (status != grpc::CompletionQueue::GOT_EVENT) continue;
    const uintptr_t t = reinterpret_cast<uintptr_t>(tag);
    const size_t i = t >> 3;
    const Op op = static_cast<Op>(t & 7);
    if (i == kChange) {
      change_answered_at = Clock::now();
      if (!change_status.ok()) return fail("SetDomainPolicy", change_status);
      continue;
    }
    Watcher& w = *ws[i];
    switch (op) {
      case kStart:
      case kRead:
        if (!ok) {
          std::fprintf(stderr,
                       "mxkey-change-propagation: a stream ended early\n");
          return 1;
        }
        if (op == kRead && !w.ready) {
          w.ready = true;
          ++ready;
        } else if (op == kRead && changed && w.event_at == Clock::time_point{}) {
          for (const auto& e : w.batch.events()) {
            v1::RevocationEventBody body;
            if (body.ParseFromString(e.body()) &&
                body.kind() == v1::FEED_EVENT_KIND_POLICY_CHANGE &&
                body.policy_domain() == domain && body.policy_version() > v0) {
              w.event_at = Clock::now();
              start_lookup(i);
              break;
            }
          }
        }
        w.reader->Read(&w.batch, Tag(i, kRead));
        break;
      case kLookup: {
        ++lookups;
        v1::DomainPolicyBody body;
        if (!w.status.ok()) {
          if (errors++ == 0) first_error = w.status.error_message();
        } else if (PolicyOf(w.answer, &body) && body.version() > v0 &&
                   body.mode() == new_mode) {
          w.in_use_at = Clock::now();
          ++in_use;
          break;
        } else {
          ++stale;
        }
        w.retry.Set(&cq, In(std::chrono::milliseconds(retry_ms)),
                    Tag(i, kRetry));
        break;
      }
      case kRetry:
        if (ok) start_lookup(i);
        break;
    }
  }
  std::vector<double> in_use_ms, event_ms;
  for (auto& w : ws) {
    if (w->event_at != Clock::time_point{}) {
      event_ms.push_back(Ms(w->event_at - changed_at));
    }
    if (w->in_use_at != Clock::time_point{}) {
      in_use_ms.push_back(Ms(w->in_use_at - changed_at));
    }
  }
  if (!changed) {
    std::fprintf(stderr,
                 "mxkey-change-propagation: only %d of %d streams opened "
                 "within --timeout\n", ready, watchers);
  } else if (in_use < watchers) {
    std::fprintf(stderr,
                 "mxkey-change-propagation: %d of %d watchers had the change "
                 "in use within %.0f s (%zu got the event)%s%s\n", in_use,
                 watchers, timeout_s, event_ms.size(),
                 first_error.empty() ? "" : "; first lookup error: ",
                 first_error.c_str());
  }
  const Percentiles u = Of(in_use_ms), e = Of(event_ms);
  std::printf(
      "{\"watchers\": %d, \"in_use\": %zu, \"p50_ms\": %.1f, \"p99_ms\": %.1f, "
      "\"max_ms\": %.1f, \"events\": %zu, \"event_p50_ms\": %.1f, "
      "\"event_p99_ms\": %.1f, \"event_max_ms\": %.1f, \"change_rpc_ms\": "
      "%.1f, \"lookups\": %d, \"stale_answers\": %d, \"lookup_errors\": %d, "
      "\"old_version\": %llu}\n",
      watchers, in_use_ms.size(), u.p50, u.p99, u.max, event_ms.size(), e.p50,
      e.p99, e.max,
      change_answered_at == Clock::time_point{}
          ? -1.0
          : Ms(change_answered_at - changed_at),
      lookups, stale, errors, static_cast<unsigned long long>(v0));
  std::fflush(stdout);
  // Cancel everything still pending and drain the queue before it is
  // destroyed.
  for (auto& w : ws) {
    w->ctx.TryCancel();
    if (w->lookup_ctx) w->lookup_ctx->TryCancel();
    w->retry.Cancel();
  }
  change_ctx.TryCancel();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return in_use == watchers ? 0 : 1;
}
