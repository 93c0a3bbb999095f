#include "base/metrics.h"

#include "base/metrics_http.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, CountersAndGaugesRenderInTheTextFormat) {
  MetricsRegistry registry;
  Counter* ok = registry.GetCounter("mxkey_requests_total", "Requests.",
                                    {{"rpc", "GetHostKeys"}, {"code", "ok"}});
  ok->Add();
  ok->Add(2);
  EXPECT_EQ(registry.GetCounter("mxkey_requests_total", "Requests.",
                                {{"rpc", "GetHostKeys"}, {"code", "ok"}}),
            ok);
  registry.GetGauge("mxkey_watchers", "Watchers.")->Set(-4);
  registry.SetGaugeFunction("mxkey_feed_head", "Head.", {}, [] { return 9.0; });
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# HELP mxkey_requests_total Requests.\n"
                              "# TYPE mxkey_requests_total counter\n"
                              "mxkey_requests_total{rpc=\"GetHostKeys\","
                              "code=\"ok\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE mxkey_watchers gauge\n"
                              "mxkey_watchers -4\n"));
  EXPECT_THAT(text, HasSubstr("mxkey_feed_head 9\n"));
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  MetricsRegistry registry;
  Histogram* h = registry.GetHistogram("mxkey_seconds", "Latency.",
                                       {{"rpc", "x"}}, {0.001, 0.01});
  h->Observe(absl::Microseconds(500));
  h->Observe(absl::Milliseconds(5));
  h->Observe(absl::Seconds(2));
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("mxkey_seconds_bucket{rpc=\"x\",le=\"0.001\"} 1\n"
                              "mxkey_seconds_bucket{rpc=\"x\",le=\"0.01\"} 2\n"
                              "mxkey_seconds_bucket{rpc=\"x\",le=\"+Inf\"} 3\n"
                              "mxkey_seconds_sum{rpc=\"x\"} 2.0055\n"
                              "mxkey_seconds_count{rpc=\"x\"} 3\n"));
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  MetricsRegistry registry;
  registry.GetCounter("mxkey_peer_errors_total", "Errors.",
                      {{"peer", "a\"b\\c\nd"}})
      ->Add();
  EXPECT_THAT(registry.Render(),
              HasSubstr("mxkey_peer_errors_total{peer=\"a\\\"b\\\\c\\nd\"} 1"));
}

TEST(MetricsServerTest, ServesMetricsOverHttpAndNothingElse) {
  MetricsRegistry registry;
  registry.GetCounter("mxkey_test_total", "Test.")->Add(7);
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("mxkey_test_total 7\n"));
  EXPECT_THAT(metrics->get_header_value("Content-Type"),
              HasSubstr("text/plain; version=0.0.4"));
  httplib::Result other = client.Get("/");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  EXPECT_THAT(other->body, Not(HasSubstr("mxkey_test_total")));
}

TEST(MetricsServerTest, BadAddressesAreRefused) {
  MetricsRegistry registry;
  EXPECT_EQ(MetricsServer::Start("no-port", &registry).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Start("127.0.0.1:99999", &registry).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mxkey
