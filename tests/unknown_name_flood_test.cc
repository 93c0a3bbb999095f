// Finding 3 of trust core III: lookups of names nobody registered. Each new
// name cost two signatures (a denial and a freshness statement), and both
// were kept in caches of 16 x 65,536 entries outside the answer memory
// budget: 1.2 M random names from one client took keyd from 23 MB to
// 1.9 GB. These run a real keyd process, measure its RSS under a flood,
// and check the per-source limit on new denials.
#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/clock.h"
#include "gtest/gtest.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/inprocess_keyd.h"
#include "tests/process_rss.h"

namespace mxkey {
namespace {

class UnknownNameFloodTest : public ::testing::Test {
 public:
  void StartKeyd(const std::vector<std::string>& args) {
    keyd_ = InProcessKeyd::StartProcess(Clock::Real(), "example",
                                        KeydOptions(), args);
    ASSERT_NE(keyd_, nullptr);
    directory_ = v1::KeyDirectory::NewStub(grpc::CreateChannel(
        keyd_->endpoint(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Lookup(const std::string& name) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    v1::GetHostKeysRequest req;
    req.set_hostname(name);
    v1::KeyAnswer answer;
    return directory_->GetHostKeys(&ctx, req, &answer);
  }

  // What a run of lookups got back, and the shortest time a refusal took.
  struct LookupCounts {
    int answered = 0, refused = 0, other = 0;
    absl::Duration quickest_refusal = absl::InfiniteDuration();
  };

  // Looks up name(0), name(1), ... with `in_flight` lookups at a time, each
  // completion making room for the next at once, while more(i) says so.
  LookupCounts Lookups(int in_flight,
                       const std::function<std::string(int)>& name,
                       const std::function<bool(int)>& more) {
    struct Call {
      grpc::ClientContext ctx;
      v1::GetHostKeysRequest req;
      v1::KeyAnswer answer;
      absl::Time sent = absl::Now();
    };
    std::mutex mu;
    std::condition_variable cv;
    LookupCounts counts;
    int open = 0;
    for (int i = 0; more(i); ++i) {
      {
        std::unique_lock<std::mutex> lock(mu);
        // Bounded, so that a time-bounded more() is looked at again.
        cv.wait_for(lock, std::chrono::milliseconds(100),
                    [&] { return open < in_flight; });
        if (open >= in_flight) {
          --i;  // this name is still to be asked
          continue;
        }
        ++open;
      }
      auto call = std::make_shared<Call>();
      call->ctx.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(30));
      call->req.set_hostname(name(i));
      directory_->async()->GetHostKeys(
          &call->ctx, &call->req, &call->answer, [&, call](grpc::Status st) {
            std::lock_guard<std::mutex> lock(mu);
            --open;
            if (st.ok()) {
              ++counts.answered;
            } else if (st.error_code() ==
                       grpc::StatusCode::RESOURCE_EXHAUSTED) {
              ++counts.refused;
              counts.quickest_refusal =
                  std::min(counts.quickest_refusal, absl::Now() - call->sent);
            } else {
              ++counts.other;
            }
            cv.notify_all();
          });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return open == 0; });
    return counts;
  }

  // Looks up `n` names never asked before, 32 at a time; returns how many
  // were answered.
  int Flood(int n, const std::string& tag) {
    return Lookups(
               32,
               [&](int i) { return absl::StrCat("r", i, "-", tag, ".example.org"); },
               [&](int i) { return i < n; })
        .answered;
  }

  // Keeps `in_flight` lookups of new unknown names in flight for `how_long`
  // (an attacker's loop).
  LookupCounts Loop(int in_flight, absl::Duration how_long) {
    const absl::Time end = absl::Now() + how_long;
    return Lookups(
        in_flight, [](int i) { return absl::StrCat("loop", i, ".example.org"); },
        [&](int) { return absl::Now() < end; });
  }

  std::unique_ptr<InProcessKeyd> keyd_;
  std::unique_ptr<v1::KeyDirectory::Stub> directory_;
};

TEST_F(UnknownNameFloodTest, AFloodOfUnknownNamesStaysInTheAnswerBudget) {
  // 8 MiB for everything kept per name; no denial limit, so that every
  // name is answered (and signed) and only the budget holds memory.
  StartKeyd({"--answer-cache-mb", "8", "--denial-limit", "0"});
  keyd_->AddAndEnroll("mx1.example.org");
  ASSERT_EQ(Flood(2000, "warm"), 2000);
  absl::SleepFor(absl::Milliseconds(300));
  const int64_t before = RssKib(keyd_->pid());
  ASSERT_GT(before, 0);
  constexpr int kNames = 60000;
  ASSERT_EQ(Flood(kNames, "flood"), kNames);
  const int64_t after = RssKib(keyd_->pid());
  std::cerr << "keyd RSS " << before << " KiB -> " << after << " KiB after "
            << kNames << " unknown names (budget 8 MiB)\n";
  // Unbounded, each name holds about 1.6 KB (60,000: ~95 MB).
  EXPECT_LT(after - before, 32 * 1024)
      << "keyd keeps more per unknown name than its answer budget";
  EXPECT_TRUE(Lookup("mx1.example.org").ok());
}

TEST_F(UnknownNameFloodTest, NewDenialsAreLimitedPerSource) {
  // 60 a minute, bursts of 10 (refusals at once: this is about the limit).
  StartKeyd({"--denial-limit", "60", "--refusal-delay", "0s"});
  keyd_->AddAndEnroll("mx1.example.org");
  int answered = 0;
  grpc::Status refused;
  for (int i = 0; i < 20; ++i) {
    grpc::Status st = Lookup(absl::StrCat("unknown", i, ".example.org"));
    if (st.ok()) {
      ++answered;
    } else {
      refused = st;
    }
  }
  EXPECT_LE(answered, 12) << "new denials were not limited";
  EXPECT_GE(answered, 9) << "the burst should be answered";
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("denials"), std::string::npos)
      << refused.error_message();
  // A registered host, and an unknown name already signed, cost no new
  // denial and are still answered.
  EXPECT_TRUE(Lookup("mx1.example.org").ok());
  EXPECT_TRUE(Lookup("unknown0.example.org").ok());
}

// Past the limit, a client asking again at once got a refusal as fast as
// keyd could make one (13,000 a second from one bench client, most of
// keyd's CPU): now each refusal goes out --refusal-delay (1 s) late, so a
// loop with 16 calls in flight gets about 16 a second.
TEST_F(UnknownNameFloodTest, RefusalsPastTheDenialLimitGoOutLate) {
  StartKeyd({"--denial-limit", "60"});
  keyd_->AddAndEnroll("mx1.example.org");
  const LookupCounts counts = Loop(16, absl::Seconds(3));
  std::cerr << "in 3 s: " << counts.answered << " answered, "
            << counts.refused << " refused (quickest "
            << counts.quickest_refusal << "), " << counts.other << " other\n";
  EXPECT_EQ(counts.other, 0);
  EXPECT_GE(counts.answered, 9) << "the burst should be answered";
  EXPECT_GE(counts.refused, 16);
  // 3 s of 16 calls, each refusal 1 s: about 48, and the burst; at once,
  // thousands.
  EXPECT_LE(counts.refused, 16 * 5) << "refusals went out at once";
  EXPECT_GE(counts.quickest_refusal, absl::Milliseconds(450));  // half, at least
  // Names it knows are answered at once meanwhile (no denial, no delay).
  EXPECT_TRUE(Lookup("mx1.example.org").ok());
}

}  // namespace
}  // namespace mxkey
