// Crash test: keyd is killed with SIGKILL at random points while
// enrollments, rotations and revocations run, then restarted. Every acknowledged
// operation must be there afterwards, the revocation feed must have no gap,
// and mdb_stat must read the environment cleanly.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/host_keys.h"
#include "gtest/gtest.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "protocol/signed_object.h"
#include "tests/keyd_process.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr int kCycles = 100;

struct Acked {
  std::mutex mu;
  std::map<std::string, uint64_t> enrolled;  // host -> serial
  std::map<std::string, uint64_t> revoked;   // host -> serial
  std::map<std::string, uint64_t> rotated;   // host -> next serial
  // Hosts enrolled, rotated or revoked since the last check.
  std::set<std::string> touched;
  std::vector<std::string> revocable;
  // Enrolled hosts not yet rotated, with their current serial and keys.
  std::vector<std::tuple<std::string, uint64_t, std::shared_ptr<HostKeys>>>
      rotatable;
};

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  return ctx;
}

void EnrollLoop(const KeydProcess& keyd, int worker, int cycle,
                std::atomic<bool>* stop, Acked* acked) {
  auto channel = grpc::CreateChannel(keyd.address(),
                                     grpc::InsecureChannelCredentials());
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      "unix:" + keyd.admin_socket(), grpc::InsecureChannelCredentials()));
  auto enrollment = v1::Enrollment::NewStub(channel);
  for (int i = 0; i < 500 && !stop->load(); ++i) {
    std::string host = absl::StrCat("h", cycle, "-", worker, "-", i,
                                    ".example.org");
    v1::AddHostRequest add;
    add.set_hostname(host);
    add.add_mail_domains("example.org");
    v1::TokenResponse token;
    if (!admin->AddHost(Ctx().get(), add, &token).ok()) return;
    HostKeys keys = *HostKeys::Generate();
    auto req = *MakeEnrollRequest(host, *TokenKey(token.token()), keys, {},
                                  absl::Now());
    v1::EnrollResponse resp;
    if (!enrollment->Enroll(Ctx().get(), req, &resp).ok()) return;
    auto body = *ParseBody<v1::HostCertificateBody>(resp.certificate());
    std::lock_guard<std::mutex> lock(acked->mu);
    acked->enrolled[host] = body.serial();
    acked->touched.insert(host);
    acked->revocable.push_back(host);
    acked->rotatable.emplace_back(host, body.serial(),
                                  std::make_shared<HostKeys>(std::move(keys)));
  }
}

void RotateLoop(const KeydProcess& keyd, std::atomic<bool>* stop,
                Acked* acked) {
  auto enrollment = v1::Enrollment::NewStub(
      grpc::CreateChannel(keyd.address(), grpc::InsecureChannelCredentials()));
  for (int i = 0; i < 500 && !stop->load(); ++i) {
    std::tuple<std::string, uint64_t, std::shared_ptr<HostKeys>> pick;
    {
      std::lock_guard<std::mutex> lock(acked->mu);
      if (!acked->rotatable.empty()) {
        pick = acked->rotatable.front();
        acked->rotatable.erase(acked->rotatable.begin());
      }
    }
    const auto& [host, serial, keys] = pick;
    if (host.empty()) {
      absl::SleepFor(absl::Milliseconds(5));
      continue;
    }
    auto req = *MakeRotateRequest(host, serial, keys->identity,
                                  *HostKeys::Generate(), {}, absl::Now());
    v1::EnrollResponse resp;
    grpc::Status st = enrollment->Rotate(Ctx().get(), req, &resp);
    // A host revoked meanwhile may not rotate; a killed keyd ends the loop.
    if (st.error_code() == grpc::StatusCode::FAILED_PRECONDITION) continue;
    if (!st.ok()) return;
    auto body = *ParseBody<v1::HostCertificateBody>(resp.certificate());
    std::lock_guard<std::mutex> lock(acked->mu);
    acked->rotated[host] = body.serial();
    acked->touched.insert(host);
  }
}

void RevokeLoop(const KeydProcess& keyd, std::atomic<bool>* stop,
                Acked* acked) {
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      "unix:" + keyd.admin_socket(), grpc::InsecureChannelCredentials()));
  for (int i = 0; i < 500 && !stop->load(); ++i) {
    std::string host;
    {
      std::lock_guard<std::mutex> lock(acked->mu);
      if (!acked->revocable.empty()) {
        host = acked->revocable.back();
        acked->revocable.pop_back();
      }
    }
    if (host.empty()) {
      absl::SleepFor(absl::Milliseconds(5));
      continue;
    }
    v1::RevokeRequest req;
    req.set_hostname(host);
    req.set_reason("crash test");
    v1::RevokeResponse resp;
    if (!admin->Revoke(Ctx().get(), req, &resp).ok()) return;
    std::lock_guard<std::mutex> lock(acked->mu);
    acked->revoked[host] = resp.revoked_serials(0);
    acked->touched.insert(host);
  }
}

// Checks acknowledged operations against a restarted keyd: those of hosts
// touched since the last check, or (`all`) every one ever acknowledged.
void VerifyAcked(const KeydProcess& keyd, Acked& acked, bool all) {
  auto directory = v1::KeyDirectory::NewStub(grpc::CreateChannel(
      keyd.address(), grpc::InsecureChannelCredentials()));
  std::lock_guard<std::mutex> lock(acked.mu);
  std::vector<std::pair<std::string, uint64_t>> serials;
  for (const auto* acks : {&acked.enrolled, &acked.rotated}) {
    for (const auto& [host, serial] : *acks) {
      if (all || acked.touched.count(host)) serials.emplace_back(host, serial);
    }
  }
  acked.touched.clear();
  for (const auto& [host, serial] : serials) {
    v1::GetHostKeysRequest req;
    req.set_hostname(host);
    v1::KeyAnswer answer;
    ASSERT_TRUE(directory->GetHostKeys(Ctx().get(), req, &answer).ok());
    bool found = false;
    for (const auto& c : answer.certificates()) {
      found |= ParseBody<v1::HostCertificateBody>(c)->serial() == serial;
    }
    bool revoked = false;
    for (const auto& r : answer.revocations()) {
      revoked |= ParseBody<v1::RevocationEventBody>(r)->serial() == serial;
    }
    EXPECT_TRUE(found || revoked) << "acknowledged certificate lost: " << host
                                  << " serial " << serial;
    if (acked.revoked.count(host) && acked.enrolled[host] == serial) {
      EXPECT_TRUE(revoked) << "acknowledged revocation lost: " << host;
    }
  }
}

// Reads the whole feed and checks seq 1..head without a gap.
void VerifyFeed(const KeydProcess& keyd) {
  auto directory = v1::KeyDirectory::NewStub(grpc::CreateChannel(
      keyd.address(), grpc::InsecureChannelCredentials()));
  auto ctx = Ctx();
  v1::WatchRevocationsRequest req;
  auto reader = directory->WatchRevocations(ctx.get(), req);
  uint64_t expect = 1, head = 0;
  v1::WatchRevocationsResponse resp;
  for (int reads = 0; reads < 1000 && reader->Read(&resp); ++reads) {
    head = resp.head_seq();
    for (const auto& e : resp.events()) {
      ASSERT_EQ(ParseBody<v1::RevocationEventBody>(e)->seq(), expect);
      ++expect;
    }
    if (expect > head) break;
  }
  EXPECT_EQ(expect, head + 1) << "feed ends before its head";
  ctx->TryCancel();
}

// The load comes from one address, far above the per-source defaults.
const std::vector<std::string> kNoEnrollLimits = {
    "--enroll-limit", "0", "--enroll-failure-limit", "0"};

TEST(CrashTest, AcknowledgedOperationsSurviveKillNine) {
  auto keyd_or = KeydProcess::Init();
  ASSERT_TRUE(keyd_or.ok()) << keyd_or.status();
  KeydProcess& keyd = **keyd_or;
  ASSERT_TRUE(keyd.Start(kNoEnrollLimits).ok());
  const unsigned seed = static_cast<unsigned>(absl::ToUnixNanos(absl::Now()));
  std::mt19937 rng(seed);
  std::cerr << "crash test seed " << seed << "\n";
  Acked acked;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int w = 0; w < 3; ++w) {
      workers.emplace_back(EnrollLoop, std::cref(keyd), w, cycle, &stop,
                           &acked);
    }
    workers.emplace_back(RevokeLoop, std::cref(keyd), &stop, &acked);
    workers.emplace_back(RotateLoop, std::cref(keyd), &stop, &acked);
    absl::SleepFor(absl::Milliseconds(100 + rng() % 500));
    keyd.Kill();
    stop = true;
    for (auto& w : workers) w.join();

    CommandResult stat = RunCommand(
        {"/usr/bin/mdb_stat", "-a", "-e", keyd.dir() + "/db"});
    ASSERT_EQ(stat.exit_code, 0) << stat.err;
    ASSERT_TRUE(keyd.Start(kNoEnrollLimits).ok()) << keyd.log();
    // Every cycle checks what it touched; every tenth, and the last, all:
    // checking everything every cycle grows quadratically.
    VerifyAcked(keyd, acked, cycle % 10 == 9 || cycle == kCycles - 1);
    VerifyFeed(keyd);
    if (HasFatalFailure()) return;
  }
  std::lock_guard<std::mutex> lock(acked.mu);
  std::cerr << "acknowledged: " << acked.enrolled.size() << " enrollments, "
            << acked.rotated.size() << " rotations, " << acked.revoked.size()
            << " revocations over " << kCycles << " kill -9 cycles\n";
  EXPECT_GT(acked.enrolled.size(), static_cast<size_t>(kCycles));
  EXPECT_GT(acked.rotated.size(), 0u);
  EXPECT_GT(acked.revoked.size(), 0u);
}

}  // namespace
}  // namespace mxkey
