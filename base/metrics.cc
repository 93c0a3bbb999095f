#include "base/metrics.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mxkey {
namespace {

// Label values escaped as the text format asks: backslash, quote, newline.
std::string LabelText(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, labels[i].first, "=\"");
    for (char c : labels[i].second) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out.push_back(c);
      }
    }
    out += "\"";
  }
  return out + "}";
}

// `labels` ("{a=\"b\"}" or "") with one more label appended.
std::string WithLabel(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return absl::StrCat("{", extra, "}");
  return absl::StrCat(labels.substr(0, labels.size() - 1), ",", extra, "}");
}

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  return absl::StrFormat("%.15g", v);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(absl::Duration d) {
  const double seconds = absl::ToDoubleSeconds(d);
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  const int64_t micros = absl::ToInt64Microseconds(d);
  sum_micros_.fetch_add(micros > 0 ? static_cast<uint64_t>(micros) : 0,
                        std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = buckets_[i].load(std::memory_order_relaxed);
  }
  return out;
}

double Histogram::sum_seconds() const {
  return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) /
         1e6;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 5, 10};
}

MetricsRegistry::Family& MetricsRegistry::FamilyFor(const std::string& name,
                                                    const std::string& help,
                                                    Kind kind) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.kind = kind;
    it->second.help = help;
  } else if (it->second.kind != kind) {
    std::abort();  // one name, two kinds: a bug at a call site
  }
  return it->second;
}

Counter* MetricsRegistry::GetCounter(const std::string& name,
                                     const std::string& help,
                                     const MetricLabels& labels) {
  MutexLock lock(&mu_);
  auto& slot = FamilyFor(name, help, Kind::kCounter).counters[LabelText(labels)];
  if (slot == nullptr) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(const std::string& name,
                                 const std::string& help,
                                 const MetricLabels& labels) {
  MutexLock lock(&mu_);
  auto& slot = FamilyFor(name, help, Kind::kGauge).gauges[LabelText(labels)];
  if (slot == nullptr) slot = std::make_unique<Gauge>();
  return slot.get();
}

void MetricsRegistry::SetGaugeFunction(const std::string& name,
                                       const std::string& help,
                                       const MetricLabels& labels,
                                       std::function<double()> read) {
  MutexLock lock(&mu_);
  FamilyFor(name, help, Kind::kGauge).gauge_functions[LabelText(labels)] =
      std::move(read);
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name,
                                         const std::string& help,
                                         const MetricLabels& labels,
                                         std::vector<double> bounds) {
  MutexLock lock(&mu_);
  auto& slot =
      FamilyFor(name, help, Kind::kHistogram).histograms[LabelText(labels)];
  if (slot == nullptr) slot = std::make_unique<Histogram>(std::move(bounds));
  return slot.get();
}

std::string MetricsRegistry::Render() const {
  MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    const char* type = family.kind == Kind::kCounter   ? "counter"
                       : family.kind == Kind::kGauge   ? "gauge"
                                                       : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", family.help, "\n# TYPE ", name,
                    " ", type, "\n");
    for (const auto& [labels, counter] : family.counters) {
      absl::StrAppend(&out, name, labels, " ", counter->value(), "\n");
    }
    for (const auto& [labels, gauge] : family.gauges) {
      absl::StrAppend(&out, name, labels, " ", gauge->value(), "\n");
    }
    for (const auto& [labels, read] : family.gauge_functions) {
      absl::StrAppend(&out, name, labels, " ", Number(read()), "\n");
    }
    for (const auto& [labels, histogram] : family.histograms) {
      const std::vector<uint64_t> counts = histogram->counts();
      uint64_t cumulative = 0;
      for (size_t i = 0; i < counts.size(); ++i) {
        cumulative += counts[i];
        const std::string le =
            i < histogram->bounds().size() ? Number(histogram->bounds()[i])
                                           : "+Inf";
        absl::StrAppend(&out, name, "_bucket",
                        WithLabel(labels, absl::StrCat("le=\"", le, "\"")),
                        " ", cumulative, "\n");
      }
      absl::StrAppend(&out, name, "_sum", labels, " ",
                      Number(histogram->sum_seconds()), "\n", name, "_count",
                      labels, " ", cumulative, "\n");
    }
  }
  return out;
}

}  // namespace mxkey
