// Finding 2 of trust core III: open WatchRevocations streams whose clients
// never read. Each used to pin its own copy of a batch (about 175 KB) for
// as long as it stayed open, with no cap on how many: 6,000 took keyd to
// 1 GB. These run a real keyd process and measure its RSS.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/clock.h"
#include "client/key_client.h"
#include "gtest/gtest.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/inprocess_keyd.h"
#include "tests/process_rss.h"

namespace mxkey {
namespace {

using v1::WatchRevocationsResponse;

// A watch whose client reads only when told to.
struct Watch {
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReader<WatchRevocationsResponse>> reader;

  // Cancels the call and returns its status.
  grpc::Status Close() {
    ctx->TryCancel();
    WatchRevocationsResponse ignored;
    while (reader->Read(&ignored)) {
    }
    return reader->Finish();
  }
};

class WatchExhaustionTest : public ::testing::Test {
 public:
  void StartKeyd(const std::vector<std::string>& args) {
    keyd_ = InProcessKeyd::StartProcess(Clock::Real(), "example",
                                        KeydOptions(), args);
    ASSERT_NE(keyd_, nullptr);
    // An attacker's client: small HTTP/2 windows that never grow (no BDP
    // probing), so what keyd sends beyond them waits in keyd.
    grpc::ChannelArguments window;
    window.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    window.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
    directory_ = v1::KeyDirectory::NewStub(grpc::CreateCustomChannel(
        keyd_->endpoint(), grpc::InsecureChannelCredentials(), window));
  }

  // `n` policy changes: a backlog of `n` feed events.
  void GrowFeed(int n) {
    for (int i = 0; i < n; ++i) {
      keyd_->SetPolicy(absl::StrCat("d", i % 50, ".example.org"),
                       i % 2 ? v1::POLICY_MODE_TESTING
                             : v1::POLICY_MODE_ENFORCE);
    }
  }

  Watch Open(uint64_t from_seq = 0) {
    Watch w;
    w.ctx = std::make_unique<grpc::ClientContext>();
    // Bounds every Read of the test.
    w.ctx->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(60));
    v1::WatchRevocationsRequest req;
    req.set_from_seq(from_seq);
    w.reader = directory_->WatchRevocations(w.ctx.get(), req);
    return w;
  }

  std::unique_ptr<InProcessKeyd> keyd_;
  std::unique_ptr<v1::KeyDirectory::Stub> directory_;
};

TEST_F(WatchExhaustionTest, UnreadWatchesShareOneCopyOfTheirBatch) {
  StartKeyd({});
  GrowFeed(600);
  // Warm up gRPC's own per-connection state with one watch read to its end.
  {
    Watch w = Open();
    WatchRevocationsResponse batch;
    ASSERT_TRUE(w.reader->Read(&batch));
    w.Close();
  }
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t before = RssKib(keyd_->pid());
  ASSERT_GT(before, 0);
  constexpr int kWatches = 200;  // under the default 256 per source
  std::vector<Watch> unread;
  for (int i = 0; i < kWatches; ++i) unread.push_back(Open());
  absl::SleepFor(absl::Seconds(2));  // every batch written, none read
  const int64_t after = RssKib(keyd_->pid());
  const int64_t per_watch = (after - before) / kWatches;
  std::cerr << "keyd RSS " << before << " KiB -> " << after << " KiB with "
            << kWatches << " unread watches: " << per_watch
            << " KiB per watch\n";
  // One batch of 256 events is over 100 KB; a watch must not hold its own.
  EXPECT_LT(per_watch, 40) << "each unread watch holds its own batch";
  for (Watch& w : unread) w.Close();
}

// Opens `admitted` watches (each reads its first batch), then one more,
// which must be refused naming `flag`. Returns the open ones.
std::vector<Watch> FillAndExpectRefusal(WatchExhaustionTest* test,
                                        int admitted, const std::string& flag);

TEST_F(WatchExhaustionTest, WatchesPastTheCapsAreRefused) {
  StartKeyd({"--max-watches-per-source", "3", "--watch-refusal-delay", "1s"});
  std::vector<Watch> open = FillAndExpectRefusal(this, 3, "--max-watches-per-source");
  WatchRevocationsResponse batch;
  // A closed watch frees its slot (keyd learns of the cancel shortly).
  open.back().Close();
  open.pop_back();
  bool admitted = false;
  for (int attempt = 0; attempt < 50 && !admitted; ++attempt) {
    Watch again = Open();
    if (again.reader->Read(&batch)) {
      admitted = true;
      open.push_back(std::move(again));
    } else {
      again.reader->Finish();
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  EXPECT_TRUE(admitted) << "the slot of a closed watch was not freed";
  for (Watch& w : open) w.Close();
}

TEST_F(WatchExhaustionTest, AllWatchesPastTheGlobalCapAreRefused) {
  StartKeyd({"--max-watches", "2", "--watch-refusal-delay", "0s"});
  for (Watch& w : FillAndExpectRefusal(this, 2, "--max-watches")) w.Close();
}

std::vector<Watch> FillAndExpectRefusal(WatchExhaustionTest* test,
                                        int admitted, const std::string& flag) {
  std::vector<Watch> open;
  WatchRevocationsResponse batch;
  for (int i = 0; i < admitted; ++i) {
    open.push_back(test->Open());
    EXPECT_TRUE(open.back().reader->Read(&batch)) << i;
  }
  Watch refused = test->Open();
  EXPECT_FALSE(refused.reader->Read(&batch));
  grpc::Status st = refused.reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << st.error_message();
  EXPECT_NE(st.error_message().find(flag), std::string::npos)
      << st.error_message();
  return open;
}

// A client reopening refused watches used to get thousands of refusals a
// second, each a stream keyd set up and tore down (6,000 unread watches
// from one source: honest lookups' p99 87x in bench/run). The refusal now
// waits --watch-refusal-delay (times 0.5 to 1.5), the stream silent.
TEST_F(WatchExhaustionTest, ARefusedWatchGetsItsRefusalLate) {
  StartKeyd({"--max-watches-per-source", "1", "--watch-refusal-delay", "4s"});
  Watch admitted = Open();
  WatchRevocationsResponse batch;
  ASSERT_TRUE(admitted.reader->Read(&batch));
  const absl::Time start = absl::Now();
  Watch refused = Open();
  EXPECT_FALSE(refused.reader->Read(&batch));
  grpc::Status st = refused.reader->Finish();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << st.error_message();
  EXPECT_NE(st.error_message().find("--max-watches-per-source"),
            std::string::npos) << st.error_message();
  EXPECT_GE(took, absl::Seconds(2)) << "refused at once";
  EXPECT_LT(took, absl::Seconds(30));
  admitted.Close();
}

// A held refusal counts against --max-delayed-refusals (half per source:
// 1 here) only while its call is open: a client that cancels and asks
// again must not fill the bound with calls already gone.
TEST_F(WatchExhaustionTest, AWatchThatGivesUpFreesItsHeldPlace) {
  StartKeyd({"--max-watches-per-source", "1", "--watch-refusal-delay", "10m",
             "--max-delayed-refusals", "2"});
  Watch admitted = Open();
  WatchRevocationsResponse batch;
  ASSERT_TRUE(admitted.reader->Read(&batch));
  auto open_for = [this](absl::Duration deadline) {
    Watch w;
    w.ctx = std::make_unique<grpc::ClientContext>();
    w.ctx->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    w.reader = directory_->WatchRevocations(w.ctx.get(), {});
    return w;
  };
  for (int i = 0; i < 3; ++i) {
    Watch held = open_for(absl::Seconds(2));
    absl::SleepFor(absl::Milliseconds(300));  // keyd holds it by now
    // The source's one held place is taken: refused at once.
    Watch extra = open_for(absl::Seconds(20));
    const absl::Time start = absl::Now();
    EXPECT_FALSE(extra.reader->Read(&batch));
    grpc::Status st = extra.reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << i;
    EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << i;
    // The held one hears nothing: its deadline ends it.
    EXPECT_FALSE(held.reader->Read(&batch));
    st = held.reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << i << ": " << st.error_message();
    absl::SleepFor(absl::Milliseconds(300));  // keyd learns of the cancel
  }
  admitted.Close();
}

// A client whose watch keyd holds back gives up on the silent stream and
// retries, so it gets in once there is room, not after the refusal delay.
TEST_F(WatchExhaustionTest, AClientRetriesASilentWatchAndGetsIn) {
  StartKeyd({"--max-watches-per-source", "1", "--watch-refusal-delay", "10m"});
  Watch squatter = Open();
  WatchRevocationsResponse batch;
  ASSERT_TRUE(squatter.reader->Read(&batch));
  KeyClientOptions options = keyd_->ClientOptions();
  options.watch_first_response_timeout = absl::Milliseconds(500);
  options.watch_max_backoff = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<KeyClient>> client =
      KeyClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::SleepFor(absl::Seconds(2));  // held back, given up, retried
  EXPECT_FALSE((*client)->FeedPosition().has_value());
  squatter.Close();
  EXPECT_TRUE((*client)->WaitForFeedPosition(0, absl::Seconds(10)))
      << "the client still waits on a held watch";
}

// Shutdown sends the held refusals: keyd does not wait out their delay.
TEST_F(WatchExhaustionTest, KeydStopsAtOnceWithRefusalsHeld) {
  StartKeyd({"--max-watches-per-source", "1", "--watch-refusal-delay", "10m"});
  Watch admitted = Open();
  WatchRevocationsResponse batch;
  ASSERT_TRUE(admitted.reader->Read(&batch));
  std::vector<Watch> held;
  for (int i = 0; i < 20; ++i) held.push_back(Open());
  absl::SleepFor(absl::Milliseconds(500));
  const absl::Time start = absl::Now();
  keyd_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  for (Watch& w : held) {
    EXPECT_FALSE(w.reader->Read(&batch));
    EXPECT_EQ(w.reader->Finish().error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
}

TEST_F(WatchExhaustionTest, AWatchThatDoesNotReadIsDropped) {
  StartKeyd({"--watch-drain-timeout", "2s"});
  GrowFeed(600);  // more than the client's window: the write waits
  Watch stalled = Open();
  Watch honest = Open();
  WatchRevocationsResponse batch;
  uint64_t events = 0;
  while (events < 600 && honest.reader->Read(&batch)) {
    events += batch.events_size();
  }
  EXPECT_EQ(events, 600u);
  absl::SleepFor(absl::Seconds(5));
  // keyd cancelled the stalled stream: reading now ends it with an error.
  int read = 0;
  while (read < 10 && stalled.reader->Read(&batch)) ++read;
  grpc::Status st = stalled.reader->Finish();
  EXPECT_FALSE(st.ok()) << "the watch that read nothing for 5 s is still open";
  EXPECT_NE(keyd_->process_log().find("watch dropped"), std::string::npos)
      << keyd_->process_log();
  // The reading client is still served: a new event reaches it.
  keyd_->SetPolicy("new.example.org", v1::POLICY_MODE_ENFORCE);
  ASSERT_TRUE(honest.reader->Read(&batch));
  EXPECT_EQ(batch.events_size(), 1);
  honest.Close();
}

}  // namespace
}  // namespace mxkey
