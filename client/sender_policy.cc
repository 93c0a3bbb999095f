#include "client/sender_policy.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr size_t kMaxHostDomains = 32;

int Strictness(v1::PolicyMode mode) {
  switch (mode) {
    case v1::POLICY_MODE_ENFORCE: return 2;
    case v1::POLICY_MODE_TESTING: return 1;
    default: return 0;
  }
}

SenderDecision Decision(SenderDecision::Action action, std::string why,
                        bool verified) {
  SenderDecision d;
  d.action = action;
  d.why = std::move(why);
  d.verified = verified;
  return d;
}

}  // namespace

absl::string_view SenderActionName(SenderDecision::Action action) {
  switch (action) {
    case SenderDecision::Action::kEnforce: return "enforce";
    case SenderDecision::Action::kTesting: return "testing";
    case SenderDecision::Action::kNone: return "none";
    case SenderDecision::Action::kDefer: return "defer";
    case SenderDecision::Action::kInvalid: return "invalid";
  }
  return "?";
}

SenderDecision SenderPolicy::ForDomain(const std::string& domain) {
  absl::StatusOr<AnswerRef> answer = client_->LookupDomain(domain);
  if (!answer.ok()) return WithoutAnswer(domain, answer.status());
  // A verified domain answer carries exactly one of a policy or a
  // DOMAIN_UNKEYED denial (the verifier enforces it).
  const v1::PolicyMode mode =
      (*answer)->policy ? (*answer)->policy->mode() : v1::POLICY_MODE_NONE;
  const uint64_t version = (*answer)->policy ? (*answer)->policy->version() : 0;
  if (!memory_->Record(domain, mode == v1::POLICY_MODE_ENFORCE, version)) {
    return Outdated(domain, version);
  }
  return FromMode(domain, mode, **answer);
}

SenderDecision SenderPolicy::Outdated(const std::string& domain,
                                      uint64_t version) {
  return Decision(
      SenderDecision::Action::kDefer,
      absl::StrCat("the answer for ", domain, " (policy version ", version,
                   version == 0 ? ", unkeyed" : "",
                   ") is not newer than its enforce policy (version ",
                   memory_->EnforcedAt(domain).value_or(0),
                   ") already seen: replayed or outdated"),
      false);
}

SenderDecision SenderPolicy::ForHost(const std::string& hostname) {
  const std::string key = MemoryKeyForHost(hostname);
  absl::StatusOr<AnswerRef> answer = client_->LookupHostAnswer(hostname);
  if (!answer.ok()) return WithoutAnswer(key, answer.status());
  v1::PolicyMode mode = v1::POLICY_MODE_NONE;
  if ((*answer)->denial) {
    // A host remembered in enforce mode that is now unknown: defer rather
    // than send unauthenticated (a replayed denial, or an operator who
    // removed a host that mail is still routed to).
    if (memory_->IsEnforced(key)) {
      return Decision(SenderDecision::Action::kDefer,
                      absl::StrCat(key, " is in enforce mode and its org says "
                                        "it has no such host"),
                      true);
    }
  } else {
    absl::StatusOr<v1::PolicyMode> host_mode = HostMode(**answer);
    if (!host_mode.ok()) {
      // Its domains could not be had: enforce remembered for any of them
      // (or for the host) defers.
      for (const VerifiedCert& c : (*answer)->certificates) {
        for (const std::string& d : c.body.mail_domains()) {
          if (memory_->IsEnforced(d)) {
            return Decision(SenderDecision::Action::kDefer,
                            absl::StrCat(key, " serves ", d, ", which is in "
                                         "enforce mode, and its policy cannot "
                                         "be had: ", host_mode.status().message()),
                            false);
          }
        }
      }
      return WithoutAnswer(key, host_mode.status());
    }
    mode = *host_mode;
  }
  // Unversioned: the domains' entries guard against replays (HostMode).
  memory_->Record(key, mode == v1::POLICY_MODE_ENFORCE, std::nullopt);
  return FromMode(key, mode, **answer);
}

absl::StatusOr<v1::PolicyMode> SenderPolicy::HostMode(
    const VerifiedAnswer& host) {
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
    v1::PolicyMode domain_mode =
        (*answer)->policy ? (*answer)->policy->mode() : v1::POLICY_MODE_NONE;
    const uint64_t version =
        (*answer)->policy ? (*answer)->policy->version() : 0;
    // A domain remembered in enforce stays enforce against an answer that
    // is not newer (the host's own, fresh answer then gives the pins).
    if (!memory_->Record(d, domain_mode == v1::POLICY_MODE_ENFORCE, version)) {
      domain_mode = v1::POLICY_MODE_ENFORCE;
    }
    if (Strictness(domain_mode) > Strictness(mode)) mode = domain_mode;
  }
  return mode;
}

SenderDecision SenderPolicy::FromMode(const std::string& memory_key,
                                      v1::PolicyMode mode,
                                      const VerifiedAnswer& answer) {
  if (mode != v1::POLICY_MODE_ENFORCE && mode != v1::POLICY_MODE_TESTING) {
    return Decision(SenderDecision::Action::kNone, "", true);
  }
  SenderDecision d;
  d.verified = true;
  d.hosts = UsableTlsPins(answer);
  bool any_pin = false;
  for (const HostPins& h : d.hosts) any_pin |= !h.pins.empty();
  if (mode == v1::POLICY_MODE_TESTING) {
    d.action = SenderDecision::Action::kTesting;
    if (!any_pin) {
      d.why = absl::StrCat(memory_key, " has no usable certified TLS key "
                                       "(revoked, expired, or none pinned)");
    }
    return d;
  }
  if (!any_pin) {
    return Decision(SenderDecision::Action::kDefer,
                    absl::StrCat("enforce: ", memory_key,
                                 " has no usable certified TLS key (revoked, "
                                 "expired, or none pinned)"),
                    true);
  }
  d.action = SenderDecision::Action::kEnforce;
  return d;
}

SenderDecision SenderPolicy::WithoutAnswer(const std::string& memory_key,
                                           const absl::Status& why) {
  switch (LookupFailureOf(why)) {
    case LookupFailure::kInvalidName:
      return Decision(SenderDecision::Action::kInvalid,
                      std::string(why.message()), false);
    case LookupFailure::kVerification:
      return Decision(SenderDecision::Action::kDefer,
                      std::string(why.message()), false);
    default:
      break;
  }
  if (!memory_->IsEnforced(memory_key)) {
    return Decision(SenderDecision::Action::kNone, std::string(why.message()),
                    false);
  }
  return Decision(SenderDecision::Action::kDefer,
                  absl::StrCat(memory_key,
                               " is in enforce mode and no fresh key is at "
                               "hand: ", why.message()),
                  false);
}

}  // namespace mxkey
