// Trust core II: a year with no person in the loop. Two federated orgs run
// 400 days on a fake clock in steps of 6 hours: hosts enrolled on day 0 and
// later, a rotation and a revocation a month in each org, keyd restarted
// now and then and down for 10 days once. Org a finishes its rotations at
// once (keyctl rotate --finish); org b leaves them to the 7-day overlap. Nobody renews anything by hand:
// each step only runs what keyd's own renewal loop runs (Maintain). At every
// step, with the clients' clocks on time, 2 minutes behind or 2 minutes
// ahead of keyd's:
//   - every live host verifies for a cold client of each org, directly and
//     relayed, by name and by TLS pin, and in its domain's answer;
//   - mxkey-policyd (over a watching client) answers "OK fingerprint" for
//     both orgs' enforce domains;
//   - a brand-new client and a brand-new peer read each whole feed from 0;
//   - every revoked host stays unusable, for cold and warm clients.
#include <chrono>
#include <cstdio>
#include <map>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/key_client.h"
#include "client/revocation_watcher.h"
#include "crypto/sha256.h"
#include "gtest/gtest.h"
#include "mta-hooks/postfix/policy_maps.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/inprocess_keyd.h"
#include "tests/test_tls_keys.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

// A client machine's clock, off from keyd's by a fixed amount.
class ShiftedClock : public Clock {
 public:
  ShiftedClock(const Clock* base, absl::Duration shift)
      : base_(base), shift_(shift) {}
  absl::Time Now() const override { return base_->Now() + shift_; }

 private:
  const Clock* base_;
  absl::Duration shift_;
};

struct Org {
  std::string name, suffix, domain;
  std::unique_ptr<InProcessKeyd> keyd;
  std::map<std::string, EnrolledTestHost> live;  // by hostname
  std::vector<std::string> revoked;
  int next = 1;
  bool down = false;

  std::string Pin(const std::string& host) const {
    return TestTlsPin(host);
  }
  void Enroll() {
    const std::string host = absl::StrCat("mx", next++, ".", suffix);
    live.emplace(host, keyd->AddAndEnroll(host, domain, {Pin(host)}));
  }
};

class SimulatedYearTest : public ::testing::TestWithParam<int> {
 protected:
  static constexpr absl::Duration kStep = absl::Hours(6);
  static constexpr int kDays = 400;

  void SetUp() override {
    KeydOptions options;
    options.freshness = absl::Minutes(5);
    a_ = {"a", "a.example", "a.example"};
    b_ = {"b", "b.example", "b.example"};
    for (Org* o : {&a_, &b_}) {
      o->keyd = InProcessKeyd::Start(&clock_, o->name, options);
      ASSERT_NE(o->keyd, nullptr);
    }
    ASSERT_TRUE(Peer(a_, b_).ok());
    ASSERT_TRUE(Peer(b_, a_).ok());
    for (Org* o : {&a_, &b_}) {
      for (int i = 0; i < 3; ++i) o->Enroll();
      o->keyd->SetPolicy(o->domain, v1::POLICY_MODE_ENFORCE);
    }
  }

  grpc::Status Peer(Org& at, const Org& peer) {
    return at.keyd->AddPeer(peer.name, {peer.suffix}, peer.keyd->endpoint(),
                            peer.keyd->root_fingerprint());
  }

  KeyClientOptions Options(const Org& o, bool watch) {
    KeyClientOptions opt = o.keyd->ClientOptions();
    opt.clock = &client_clock_;
    opt.watch_revocations = watch;
    opt.rpc_timeout = absl::Seconds(5);
    return opt;
  }

  std::unique_ptr<KeyClient> Client(const Org& o, bool watch = false) {
    auto c = KeyClient::Create(Options(o, watch));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // Every check of the header comment, for clients of `o` (other = peer).
  void CheckFrom(const Org& o, const Org& other, int day) {
    SCOPED_TRACE(absl::StrCat("day ", day, ", clients of ", o.name));
    auto cold = Client(o);
    ASSERT_NE(cold, nullptr);
    for (const Org* owner : {&o, &other}) {
      if (owner->down && owner != &o) continue;  // relayed: peer is down
      for (const auto& [host, enrolled] : owner->live) {
        auto answer = cold->LookupHost(host);
        EXPECT_TRUE(answer.ok()) << host << ": " << answer.status();
        auto by_pin = cold->LookupByTlsPin(owner->Pin(host));
        EXPECT_TRUE(by_pin.ok()) << host << " by pin: " << by_pin.status();
      }
      auto domain = cold->LookupDomain(owner->domain);
      ASSERT_TRUE(domain.ok()) << owner->domain << ": " << domain.status();
      ASSERT_TRUE((*domain)->policy.has_value());
      EXPECT_EQ((*domain)->policy->mode(), v1::POLICY_MODE_ENFORCE);
      size_t usable = 0;
      for (const auto& c : (*domain)->certificates) {
        usable += c.state == VerifiedCertState::kActive ||
                  c.state == VerifiedCertState::kNext;
      }
      EXPECT_GE(usable, owner->live.size()) << owner->domain;
      for (const std::string& host : owner->revoked) {
        EXPECT_FALSE(cold->LookupHost(host).ok()) << "revoked " << host;
      }
    }
  }

  // A brand-new reader of `o`'s whole feed, verified against `o`'s root.
  void ReadWholeFeed(const Org& o, int day) {
    auto client = Client(o);
    ASSERT_NE(client, nullptr);
    auto verifier = client->Verifier();
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    // Up to the head it names (a test may trust head_seq; clients do not).
    auto stub = v1::KeyDirectory::NewStub(grpc::CreateChannel(
        o.keyd->endpoint(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::WatchRevocationsRequest request;
    auto reader = stub->WatchRevocations(&ctx, request);
    v1::WatchRevocationsResponse batch;
    uint64_t seq = 0;
    bool whole = false;
    for (int i = 0; i < 10000 && reader->Read(&batch); ++i) {
      auto events = (*verifier)->VerifyFeedBatch(batch, seq, client_clock_.Now());
      ASSERT_TRUE(events.ok()) << "day " << day << ", feed of " << o.name
                               << " from 0: " << events.status();
      if (!events->empty()) seq = events->back().seq();
      if (seq >= batch.head_seq()) {
        whole = true;
        break;
      }
    }
    ctx.TryCancel();
    reader->Finish();
    EXPECT_TRUE(whole) << "day " << day << ": feed of " << o.name
                       << " not read to its head";
  }

  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  ShiftedClock client_clock_{&clock_, absl::Seconds(GetParam())};
  Org a_, b_;
};

TEST_P(SimulatedYearTest, FourHundredDaysWithNobodyInTheLoop) {
  const absl::Time start = absl::Now();
  auto watching = Client(a_, /*watch=*/true);
  ASSERT_NE(watching, nullptr);
  PolicyMapsOptions maps_options;
  maps_options.probe_testing = false;
  maps_options.clock = &client_clock_;
  PolicyMaps policyd(watching.get(), maps_options);
  std::mt19937 rng(GetParam() + 1000);
  int steps = 0, rotations = 0, revocations = 0, restarts = 0;
  for (int step = 0; step * kStep <= absl::Hours(24 * kDays); ++step) {
    const int day = static_cast<int>((step * kStep) / absl::Hours(24));
    const bool new_day = step % 4 == 0;
    // The operator's (scheduled) month: a rotation and a revocation in each
    // org, a new host to replace the revoked one.
    if (new_day && day > 0 && day % 30 == 0 && !a_.down) {
      for (Org* o : {&a_, &b_}) {
        auto rotate = o->live.begin();
        std::advance(rotate, rng() % o->live.size());
        EnrolledTestHost next = o->keyd->Rotate(rotate->second);
        if (next.cert.serial() != 0) {
          // a's hosts finish at once (keyctl rotate --finish); b's wait for
          // the overlap to run out.
          if (o == &a_) o->keyd->FinishRotation(next);
          rotate->second = next;
          ++rotations;
        }
        auto victim = o->live.begin();
        std::advance(victim, rng() % o->live.size());
        o->keyd->Revoke(victim->first, "monthly revocation");
        o->revoked.push_back(victim->first);
        o->live.erase(victim);
        o->Enroll();
        ++revocations;
      }
    }
    // keyd of b restarted now and then; keyd of a down for 10 days once.
    if (new_day && day % 60 == 45) {
      ASSERT_TRUE(b_.keyd->Restart());
      ++restarts;
    }
    if (new_day && day == 200) {
      a_.keyd->Stop();
      a_.down = true;
    }
    if (new_day && day == 210) {
      ASSERT_TRUE(a_.keyd->Restart()) << "keyd a did not come back";
      a_.down = false;
      ++restarts;
    }
    for (Org* o : {&a_, &b_}) {
      if (!o->down) {
        absl::Status st = o->keyd->Maintain();
        ASSERT_TRUE(st.ok()) << "day " << day << ", keyd " << o->name << ": " << st;
      }
    }
    if (!b_.down) CheckFrom(b_, a_, day);
    if (!a_.down) {
      CheckFrom(a_, b_, day);
      for (const Org* o : {&a_, &b_}) {
        const std::string reply = policyd.TlsPolicy(o->domain);
        EXPECT_TRUE(absl::StartsWith(reply, "OK fingerprint match="))
            << "day " << day << ": tlspolicy " << o->domain << " -> " << reply;
      }
      for (const Org* o : {&a_, &b_}) {
        for (const std::string& host : o->revoked) {
          EXPECT_FALSE(watching->LookupHost(host).ok())
              << "day " << day << ": watching client, revoked " << host;
        }
      }
      if (new_day) {
        ReadWholeFeed(a_, day);
        ReadWholeFeed(b_, day);
      }
    }
    if (HasFatalFailure() || ::testing::Test::HasFailure()) break;
    ++steps;
    clock_.Advance(kStep);
  }
  std::printf("simulated year (client clock %+d s): %d steps of 6 h over %d "
              "days, %d rotations, %d revocations, %d restarts, one 10-day "
              "outage; %.1f s\n",
              GetParam(), steps, kDays, rotations, revocations, restarts,
              absl::ToDoubleSeconds(absl::Now() - start));
  EXPECT_GT(steps, kDays * 4);
}

INSTANTIATE_TEST_SUITE_P(ClientClock, SimulatedYearTest,
                         ::testing::Values(0, -120, 120),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == 0   ? std::string("OnTime")
                                  : info.param < 0 ? std::string("TwoMinutesBehind")
                                                   : std::string("TwoMinutesAhead");
                         });

}  // namespace
}  // namespace mxkey
