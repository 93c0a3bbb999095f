// Crash tests: keyd is killed with SIGKILL at random points while
// enrollments, rotations and revocations run, then restarted. Every acknowledged
// operation must be there afterwards, the revocation feed must have no gap,
// and mdb_stat must read the environment cleanly.
#include <grpcpp/grpcpp.h>
#include <glob.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/strings/match.h"
#include "client/answer_verifier.h"
#include "client/host_keys.h"
#include "gmock/gmock.h"
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

// libfaketime's thread-safe library (Debian's faketime package), or "".
std::string LibFaketime() {
  glob_t g;
  std::string path;
  if (glob("/usr/lib/*/faketime/libfaketimeMT.so.1", 0, nullptr, &g) == 0 &&
      g.gl_pathc > 0) {
    path = g.gl_pathv[0];
  }
  globfree(&g);
  return path;
}

// Runs a command with its clock `offset` ahead. env execs the command, so
// the PID the test kills is keyd's own (the faketime wrapper would fork).
std::vector<std::string> Faketime(const std::string& lib, absl::Duration offset) {
  return {"/usr/bin/env", "LD_PRELOAD=" + lib,
          absl::StrCat("FAKETIME=+", absl::ToInt64Seconds(offset))};
}

// Re-certification of many hosts, killed part-way: keyd comes back under
// libfaketime 45 minutes later each cycle, when every host certificate (1 h
// validity) is due and the older ones have already expired, and is killed
// with SIGKILL while it re-certifies them at its start, before it serves.
// A final clean start must leave every host verifiable at keyd's time with
// a valid certificate, and the database readable.
TEST(CrashTest, KillNineDuringRecertificationLeavesEveryHostVerifiable) {
  const std::string libfaketime = LibFaketime();
  ASSERT_FALSE(libfaketime.empty()) << "libfaketime missing: run tools/install-deps";
  auto keyd_or = KeydProcess::Init();
  ASSERT_TRUE(keyd_or.ok()) << keyd_or.status();
  KeydProcess& keyd = **keyd_or;
  std::vector<std::string> args = kNoEnrollLimits;
  args.insert(args.end(), {"--cert-validity", "1h"});
  ASSERT_TRUE(keyd.Start(args).ok()) << keyd.log();
  Acked acked;
  {
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w) {
      workers.emplace_back(EnrollLoop, std::cref(keyd), w, 0, &stop, &acked);
    }
    for (auto& w : workers) w.join();
  }
  ASSERT_EQ(acked.enrolled.size(), 2000u) << keyd.log();
  ASSERT_EQ(keyd.Stop(), 0);

  const unsigned seed = static_cast<unsigned>(absl::ToUnixNanos(absl::Now()));
  std::mt19937 rng(seed);
  std::cerr << "re-certification crash seed " << seed << "\n";
  int interrupted = 0, batches_before_kill = 0;
  absl::Duration offset;
  for (int cycle = 0; cycle < 12; ++cycle) {
    offset = absl::Minutes(45) * (cycle + 1);
    ASSERT_TRUE(keyd.Spawn(args, Faketime(libfaketime, offset)).ok());
    // Kill once the first batch is durable (or at a random point before).
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    const bool wait_for_batch = rng() % 4 != 0;
    while (wait_for_batch && absl::Now() < deadline &&
           !absl::StrContains(keyd.log(), "re-certification in progress") &&
           !absl::StrContains(keyd.log(), "re-certified")) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    absl::SleepFor(absl::Microseconds(rng() % 40000));
    keyd.Kill();
    const std::string log = keyd.log();
    if (!absl::StrContains(log, "re-certified ")) ++interrupted;
    for (size_t at = log.find("re-certification in progress");
         at != std::string::npos;
         at = log.find("re-certification in progress", at + 1)) {
      ++batches_before_kill;
    }
    CommandResult stat = RunCommand(
        {"/usr/bin/mdb_stat", "-a", "-e", keyd.dir() + "/db"});
    ASSERT_EQ(stat.exit_code, 0) << stat.err;
  }
  // At the last cycle's time: what that cycle re-certified is not due
  // again, the rest (expired meanwhile) is finished now.
  ASSERT_TRUE(keyd.Start(args, Faketime(libfaketime, offset)).ok()) << keyd.log();
  EXPECT_THAT(keyd.log(), ::testing::HasSubstr("re-certified "));
  std::cerr << "re-certification passes interrupted by kill -9: "
            << interrupted << " of 12, after " << batches_before_kill
            << " durable batches in all\n";
  EXPECT_GT(interrupted, 0) << "no kill landed inside a re-certification";
  EXPECT_GT(batches_before_kill, 0) << "no kill landed after a durable batch";

  auto channel =
      grpc::CreateChannel(keyd.address(), grpc::InsecureChannelCredentials());
  auto directory = v1::KeyDirectory::NewStub(channel);
  v1::OrgInfo org;
  ASSERT_TRUE(directory->GetOrgInfo(Ctx().get(), {}, &org).ok());
  absl::StatusOr<AnswerVerifier> verifier =
      AnswerVerifier::Create(keyd.fingerprint(), org.root_public_key());
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  const absl::Time keyd_now = absl::Now() + offset;
  int verified = 0;
  for (const auto& [host, serial] : acked.enrolled) {
    v1::GetHostKeysRequest req;
    req.set_hostname(host);
    v1::KeyAnswer answer;
    ASSERT_TRUE(directory->GetHostKeys(Ctx().get(), req, &answer).ok());
    absl::StatusOr<VerifiedAnswer> v =
        verifier->Verify(answer, host, v1::LOOKUP_KIND_HOST, keyd_now);
    ASSERT_TRUE(v.ok()) << host << ": " << v.status();
    ASSERT_EQ(v->certificates.size(), 1u) << host;
    EXPECT_EQ(v->certificates[0].state, VerifiedCertState::kActive) << host;
    EXPECT_EQ(v->certificates[0].body.serial(), serial) << host;
    EXPECT_GT(v->certificates[0].body.not_after(),
              absl::ToUnixSeconds(keyd_now) + 30 * 60)
        << host << " was not re-certified";
    ++verified;
  }
  EXPECT_EQ(verified, 2000);
}

}  // namespace
}  // namespace mxkey
