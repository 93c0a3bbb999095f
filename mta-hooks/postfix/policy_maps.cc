#include "mta-hooks/postfix/policy_maps.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "client/tls_pins.h"
#include "mta-hooks/postfix/tls_probe.h"
#include "protocol/hostname.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr size_t kMaxHostDomains = 32;
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

int Strictness(v1::PolicyMode mode) {
  switch (mode) {
    case v1::POLICY_MODE_ENFORCE: return 2;
    case v1::POLICY_MODE_TESTING: return 1;
    default: return 0;
  }
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
      reports_(options_.report_dir, options_.clock) {
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
      reports_.Write({p.memory_key, d.host, "validation-failure",
                      absl::StrCat("STARTTLS probe of ", d.host, ":", d.port,
                                   ": ", presented.status().message())});
    } else if (std::find(p.pins.begin(), p.pins.end(), *presented) ==
               p.pins.end()) {
      reports_.Write({p.memory_key, d.host, "certificate-not-trusted",
                      absl::StrCat(d.host, ":", d.port,
                                   " presented TLS key sha256 ",
                                   ColonHex(*presented),
                                   ", which no usable certificate pins")});
    }
    lock.lock();
  }
}

std::string PolicyMaps::Lookup(const std::string& map, const std::string& key) {
  if (map == "tlspolicy") return TlsPolicy(key);
  if (map == "ccert") return Ccert(key);
  return absl::StrCat("PERM unknown map \"", map,
                      "\"; mxkey-policyd serves tlspolicy and ccert");
}

std::string PolicyMaps::Unavailable(const std::string& memory_key,
                                    const absl::Status& why) {
  switch (LookupFailureOf(why)) {
    case LookupFailure::kInvalidName:
      return absl::StrCat("PERM ", why.message());
    case LookupFailure::kVerification:
      LogWarning("tlspolicy %s: %s", memory_key, why.message());
      return absl::StrCat("TEMP mxkey: ", why.message());
    default:
      break;
  }
  if (!enforce_.IsEnforced(memory_key)) return "NOTFOUND ";
  LogWarning("tlspolicy %s (enforce): %s", memory_key, why.message());
  return absl::StrCat("TEMP mxkey: ", memory_key,
                      " is in enforce mode and no fresh key is at hand: ",
                      why.message());
}

absl::StatusOr<v1::PolicyMode> PolicyMaps::HostMode(const VerifiedAnswer& host) {
  std::set<std::string> domains;
  for (const VerifiedCert& c : host.certificates) {
    for (const std::string& d : c.body.mail_domains()) {
      if (domains.size() < kMaxHostDomains) domains.insert(d);
    }
  }
  v1::PolicyMode mode = v1::POLICY_MODE_NONE;
  for (const std::string& d : domains) {
    absl::StatusOr<AnswerRef> answer = client_->LookupDomain(d);
    if (!answer.ok()) return answer.status();
    if ((*answer)->policy &&
        Strictness((*answer)->policy->mode()) > Strictness(mode)) {
      mode = (*answer)->policy->mode();
    }
  }
  return mode;
}

std::string PolicyMaps::Decide(const std::string& memory_key,
                               v1::PolicyMode mode,
                               const VerifiedAnswer& answer,
                               const std::vector<Destination>& destinations) {
  enforce_.Set(memory_key, mode == v1::POLICY_MODE_ENFORCE);
  if (mode != v1::POLICY_MODE_ENFORCE && mode != v1::POLICY_MODE_TESTING) {
    return "NOTFOUND ";
  }
  std::string match;
  std::vector<std::string> pins;
  for (const HostPins& host : UsableTlsPins(answer)) {
    for (const std::string& pin : host.pins) {
      absl::StrAppend(&match, match.empty() ? "" : "|", ColonHex(pin));
      pins.push_back(pin);
    }
  }
  if (!match.empty()) {
    if (mode == v1::POLICY_MODE_ENFORCE) {
      return absl::StrCat("OK fingerprint match=", match);
    }
    for (const Destination& d : destinations) {
      QueueProbe({memory_key, d, pins});
    }
    return "NOTFOUND ";
  }
  const std::string why = absl::StrCat(
      memory_key, " has no usable certified TLS key (revoked, expired, or "
      "none pinned)");
  if (mode == v1::POLICY_MODE_TESTING) {
    reports_.Write({memory_key, "", "validation-failure", why});
    return "NOTFOUND ";
  }
  LogWarning("tlspolicy: enforce: %s", why);
  return absl::StrCat("TEMP mxkey: enforce: ", why);
}

std::string PolicyMaps::TlsPolicy(const std::string& key) {
  absl::StatusOr<NextHop> hop = ParseNextHop(key);
  if (!hop.ok()) return absl::StrCat("PERM ", hop.status().message());
  if (hop->kind == NextHop::Kind::kOutOfScope) return "NOTFOUND ";
  if (hop->kind == NextHop::Kind::kDomain) {
    absl::StatusOr<AnswerRef> answer = client_->LookupDomain(hop->name);
    if (!answer.ok()) return Unavailable(hop->name, answer.status());
    const VerifiedAnswer& a = **answer;
    std::vector<Destination> mx;
    for (const HostPins& host : UsableTlsPins(a)) {
      mx.push_back({host.hostname, hop->port});
    }
    return Decide(hop->name,
                  a.policy ? a.policy->mode() : v1::POLICY_MODE_NONE, a, mx);
  }
  const std::string memory_key = absl::StrCat("[", hop->name, "]");
  absl::StatusOr<AnswerRef> answer = client_->LookupHostAnswer(hop->name);
  if (!answer.ok()) return Unavailable(memory_key, answer.status());
  if ((*answer)->denial) {
    return Decide(memory_key, v1::POLICY_MODE_NONE, **answer, {});
  }
  absl::StatusOr<v1::PolicyMode> mode = HostMode(**answer);
  if (!mode.ok()) return Unavailable(memory_key, mode.status());
  return Decide(memory_key, *mode, **answer, {{hop->name, hop->port}});
}

std::string PolicyMaps::Ccert(const std::string& key) {
  absl::StatusOr<std::string> pin = ParseColonHexPin(key);
  if (!pin.ok()) return absl::StrCat("PERM ccert key: ", pin.status().message());
  absl::StatusOr<AnswerRef> host = client_->LookupByTlsPin(*pin);
  if (host.ok()) return absl::StrCat("OK ", options_.ccert_action);
  switch (LookupFailureOf(host.status())) {
    case LookupFailure::kUnknown:
    case LookupFailure::kRevoked:
    case LookupFailure::kExpired:
      return "NOTFOUND ";
    case LookupFailure::kInvalidName:
      return absl::StrCat("PERM ", host.status().message());
    default:
      LogWarning("ccert: %s", host.status().message());
      return absl::StrCat("TEMP mxkey: ", host.status().message());
  }
}

}  // namespace mxkey
