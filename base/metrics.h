// Prometheus metrics: counters, gauges and histograms kept in a Registry
// and rendered in the text exposition format (version 0.0.4) for /metrics.
//
// A metric is registered once, with its labels fixed, and the pointer kept
// by the code that updates it; updates are relaxed atomics, so recording on
// the lookup path costs a few nanoseconds and never takes a lock. Label
// values must come from small fixed sets (an RPC name, a status code, a
// configured peer): never a hostname, key or token.
//
// Registration cannot fail: the same name and labels return the same
// metric. A name registered with two kinds is a programming error (abort).
#ifndef MXKEY_BASE_METRICS_H_
#define MXKEY_BASE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/mutex.h"

namespace mxkey {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Cumulative buckets with upper bounds in seconds; the sum is kept in
// microseconds so that it stays an integer atomic.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(absl::Duration d);
  const std::vector<double>& bounds() const { return bounds_; }
  // Count per bucket (not cumulative), the +Inf bucket last.
  std::vector<uint64_t> counts() const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum_seconds() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

// Latency buckets from 100 us to 10 s.
std::vector<double> LatencyBuckets();

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter* GetCounter(const std::string& name, const std::string& help,
                      const MetricLabels& labels = {});
  Gauge* GetGauge(const std::string& name, const std::string& help,
                  const MetricLabels& labels = {});
  Histogram* GetHistogram(const std::string& name, const std::string& help,
                          const MetricLabels& labels = {},
                          std::vector<double> bounds = LatencyBuckets());
  // A gauge read when scraped (a feed head, a queue length). `read` must be
  // cheap, thread-safe and outlive the registry's use; registering the same
  // name and labels again replaces it.
  void SetGaugeFunction(const std::string& name, const std::string& help,
                        const MetricLabels& labels,
                        std::function<double()> read);

  // Every metric in the text format, families sorted by name.
  std::string Render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind;
    std::string help;
    // Rendered label set ("{a=\"b\"}") -> metric.
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::function<double()>> gauge_functions;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(const std::string& name, const std::string& help,
                    Kind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

// Observes the time from construction to destruction into `histogram`
// (null: nothing).
class ScopedLatency {
 public:
  explicit ScopedLatency(Histogram* histogram)
      : histogram_(histogram), start_(absl::Now()) {}
  ~ScopedLatency() {
    if (histogram_ != nullptr) histogram_->Observe(absl::Now() - start_);
  }
  ScopedLatency(const ScopedLatency&) = delete;
  ScopedLatency& operator=(const ScopedLatency&) = delete;

 private:
  Histogram* histogram_;
  absl::Time start_;
};

}  // namespace mxkey

#endif  // MXKEY_BASE_METRICS_H_
