#include "mta-hooks/postfix/policy_maps.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "client/tls_pins.h"
#include "mta-hooks/postfix/tls_probe.h"
#include "protocol/hostname.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr size_t kMaxQueuedProbes = 64;

bool IsAddress(const std::string& s) {
  unsigned char buf[16];
  return absl::StartsWithIgnoreCase(s, "ipv6:") ||
         s.find(':') != std::string::npos ||
         inet_pton(AF_INET, s.c_str(), buf) == 1;
}

bool IsPort(absl::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<NextHop> ParseNextHop(absl::string_view key) {
  if (absl::StartsWith(key, ".")) return NextHop{NextHop::Kind::kOutOfScope, ""};
  bool bracketed = false;
  std::string name;
  int port = 25;
  if (absl::StartsWith(key, "[")) {
    const size_t close = key.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          "next-hop \"[\" without \"]\"; expected [host] or [host]:port");
    }
    const absl::string_view rest = key.substr(close + 1);
    if (!rest.empty() && !(rest[0] == ':' && IsPort(rest.substr(1)))) {
      return absl::InvalidArgumentError(
          "after [host] only :port may follow, as in [mx1.example.org]:25");
    }
    bracketed = true;
    name = std::string(key.substr(1, close - 1));
    if (!rest.empty()) port = std::stoi(std::string(rest.substr(1)));
  } else {
    const size_t colon = key.rfind(':');
    if (colon != absl::string_view::npos && IsPort(key.substr(colon + 1))) {
      name = std::string(key.substr(0, colon));
      port = std::stoi(std::string(key.substr(colon + 1)));
    } else {
      name = std::string(key);
    }
  }
  if (port < 1 || port > 65535) {
    return absl::InvalidArgumentError("next-hop port must be 1..65535");
  }
  if (IsAddress(name)) return NextHop{NextHop::Kind::kOutOfScope, ""};
  absl::StatusOr<std::string> canonical = CanonicalHostname(name);
  if (!canonical.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("next-hop: ", canonical.status().message()));
  }
  return NextHop{bracketed ? NextHop::Kind::kHost : NextHop::Kind::kDomain,
                 *std::move(canonical), port};
}

PolicyMaps::PolicyMaps(KeyClient* client, PolicyMapsOptions options)
    : client_(client),
      options_(std::move(options)),
      enforce_(options_.state_dir),
      decide_(client, &enforce_),
      reports_(options_.report_dir, options_.clock),
      own_metrics_(options_.metrics ? nullptr
                                    : std::make_unique<MetricsRegistry>()),
      metrics_(options_.metrics ? options_.metrics : own_metrics_.get()) {
  static const char* const kMaps[] = {"tlspolicy", "ccert", "other"};
  static const char* const kResults[] = {"OK", "NOTFOUND", "TEMP", "PERM"};
  for (int m = 0; m < 3; ++m) {
    for (int r = 0; r < 4; ++r) {
      answers_[m][r] = metrics_->GetCounter(
          "mxkey_policyd_answers_total",
          "Socketmap answers by map and result.",
          {{"map", kMaps[m]}, {"result", kResults[r]}});
    }
    latency_[m] = metrics_->GetHistogram(
        "mxkey_policyd_request_duration_seconds",
        "Time to answer one socketmap request.", {{"map", kMaps[m]}});
  }
  would_refuse_ = metrics_->GetCounter(
      "mxkey_policyd_testing_would_refuse_total",
      "Testing-mode deliveries that enforce mode would have refused.");
  static const char* const kProbes[] = {"matched", "not_pinned", "failed"};
  for (int i = 0; i < 3; ++i) {
    probe_results_[i] = metrics_->GetCounter(
        "mxkey_policyd_testing_probes_total",
        "Testing-mode STARTTLS probes by result: the presented key matched "
        "a pin, was not pinned, or the probe failed.",
        {{"result", kProbes[i]}});
  }
  if (options_.probe_testing) prober_ = std::thread([this] { ProbeLoop(); });
}

PolicyMaps::~PolicyMaps() {
  {
    std::lock_guard<std::mutex> lock(probe_mu_);
    stopping_ = true;
  }
  probe_cv_.notify_all();
  if (prober_.joinable()) prober_.join();
}

void PolicyMaps::QueueProbe(Probe probe) {
  if (!options_.probe_testing) return;
  const std::string where =
      absl::StrCat(probe.destination.host, ":", probe.destination.port);
  const absl::Time now = options_.clock->Now();
  {
    std::lock_guard<std::mutex> lock(probe_mu_);
    auto last = probed_at_.find(where);
    if ((last != probed_at_.end() &&
         now - last->second < options_.probe_interval) ||
        probes_.size() >= kMaxQueuedProbes) {
      return;
    }
    if (probed_at_.size() > 100000) probed_at_.clear();
    probed_at_[where] = now;
    probes_.push_back(std::move(probe));
  }
  probe_cv_.notify_one();
}

void PolicyMaps::ProbeLoop() {
  std::unique_lock<std::mutex> lock(probe_mu_);
  for (;;) {
    probe_cv_.wait(lock, [this] { return stopping_ || !probes_.empty(); });
    if (stopping_) return;
    Probe p = std::move(probes_.front());
    probes_.pop_front();
    lock.unlock();
    const Destination& d = p.destination;
    absl::StatusOr<std::string> presented =
        ProbeSmtpTlsPin(d.host, d.port, options_.probe_timeout);
    if (!presented.ok()) {
      probe_results_[2]->Add();
      would_refuse_->Add();
      reports_.Write({p.memory_key, d.host, "validation-failure",
                      absl::StrCat("STARTTLS probe of ", d.host, ":", d.port,
                                   ": ", presented.status().message())});
    } else if (std::find(p.pins.begin(), p.pins.end(), *presented) ==
               p.pins.end()) {
      probe_results_[1]->Add();
      would_refuse_->Add();
      reports_.Write({p.memory_key, d.host, "certificate-not-trusted",
                      absl::StrCat(d.host, ":", d.port,
                                   " presented TLS key sha256 ",
                                   ColonHex(*presented),
                                   ", which no usable certificate pins")});
    } else {
      // "Clean" must be told apart from "never probed": a success is a
      // record too (RFC 8460 counts successful sessions beside failures).
      probe_results_[0]->Add();
      reports_.Write({p.memory_key, d.host, "success",
                      absl::StrCat(d.host, ":", d.port,
                                   " presented a pinned TLS key")});
    }
    lock.lock();
  }
}

std::string PolicyMaps::Lookup(const std::string& map, const std::string& key) {
  const int m = map == "tlspolicy" ? 0 : map == "ccert" ? 1 : 2;
  ScopedLatency timed(latency_[m]);
  std::string reply =
      m == 0   ? TlsPolicy(key)
      : m == 1 ? Ccert(key)
               : absl::StrCat("PERM unknown map \"", absl::CHexEscape(map),
                              "\"; mxkey-policyd serves tlspolicy and ccert");
  const int r = absl::StartsWith(reply, "OK")         ? 0
                : absl::StartsWith(reply, "NOTFOUND") ? 1
                : absl::StartsWith(reply, "TEMP")     ? 2
                                                      : 3;
  answers_[m][r]->Add();
  return reply;
}

std::string PolicyMaps::Reply(const std::string& memory_key,
                              const SenderDecision& d,
                              const std::vector<Destination>& destinations) {
  switch (d.action) {
    case SenderDecision::Action::kInvalid:
      return absl::StrCat("PERM ", d.why);
    case SenderDecision::Action::kNone:
      return "NOTFOUND ";
    case SenderDecision::Action::kDefer:
      LogWarning("tlspolicy %s: %s", memory_key, d.why);
      return absl::StrCat("TEMP mxkey: ", d.why);
    case SenderDecision::Action::kTesting: {
      if (!d.why.empty()) {
        would_refuse_->Add();
        reports_.Write({memory_key, "", "validation-failure", d.why});
        return "NOTFOUND ";
      }
      std::vector<std::string> pins;
      for (const HostPins& host : d.hosts) {
        pins.insert(pins.end(), host.pins.begin(), host.pins.end());
      }
      for (const Destination& dest : destinations) {
        QueueProbe({memory_key, dest, pins});
      }
      return "NOTFOUND ";
    }
    case SenderDecision::Action::kEnforce: {
      std::string match;
      for (const HostPins& host : d.hosts) {
        for (const std::string& pin : host.pins) {
          absl::StrAppend(&match, match.empty() ? "" : "|", ColonHex(pin));
        }
      }
      return absl::StrCat("OK fingerprint match=", match);
    }
  }
  return "TEMP mxkey: internal error: unknown decision";
}

std::string PolicyMaps::TlsPolicy(const std::string& key) {
  absl::StatusOr<NextHop> hop = ParseNextHop(key);
  if (!hop.ok()) return absl::StrCat("PERM ", hop.status().message());
  if (hop->kind == NextHop::Kind::kOutOfScope) return "NOTFOUND ";
  if (hop->kind == NextHop::Kind::kDomain) {
    SenderDecision d = decide_.ForDomain(hop->name);
    std::vector<Destination> mx;
    for (const HostPins& host : d.hosts) mx.push_back({host.hostname, hop->port});
    return Reply(hop->name, d, mx);
  }
  return Reply(SenderPolicy::MemoryKeyForHost(hop->name),
               decide_.ForHost(hop->name), {{hop->name, hop->port}});
}

std::string PolicyMaps::Ccert(const std::string& key) {
  absl::StatusOr<std::string> pin = ParseColonHexPin(key);
  if (!pin.ok()) return absl::StrCat("PERM ccert key: ", pin.status().message());
  const std::string remembered = absl::StrCat("ccert:", ColonHex(*pin));
  absl::StatusOr<AnswerRef> host = client_->LookupByTlsPin(*pin);
  if (host.ok()) {
    enforce_.Record(remembered, true, std::nullopt);
    return absl::StrCat("OK ", options_.ccert_action);
  }
  switch (LookupFailureOf(host.status())) {
    case LookupFailure::kUnknown:
    case LookupFailure::kRevoked:
    case LookupFailure::kExpired:
      enforce_.Record(remembered, false, std::nullopt);
      return "NOTFOUND ";
    case LookupFailure::kInvalidName:
      return absl::StrCat("PERM ", host.status().message());
    default:
      // keyd unreachable, stale, or an answer that does not verify: only
      // a client mxkey certified before waits; for the rest the map stays
      // out of the way, as it would without mxkey.
      if (enforce_.IsEnforced(remembered)) {
        LogWarning("ccert: %s", host.status().message());
        return absl::StrCat("TEMP mxkey: ", host.status().message());
      }
      return "NOTFOUND ";
  }
}

}  // namespace mxkey
