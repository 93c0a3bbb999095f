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
  return FromMode(domain, mode, **answer);
}

SenderDecision SenderPolicy::ForHost(const std::string& hostname) {
  const std::string key = MemoryKeyForHost(hostname);
  absl::StatusOr<AnswerRef> answer = client_->LookupHostAnswer(hostname);
  if (!answer.ok()) return WithoutAnswer(key, answer.status());
  if ((*answer)->denial) return FromMode(key, v1::POLICY_MODE_NONE, **answer);
  absl::StatusOr<v1::PolicyMode> mode = HostMode(**answer);
  if (!mode.ok()) return WithoutAnswer(key, mode.status());
  return FromMode(key, *mode, **answer);
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
    if ((*answer)->policy &&
        Strictness((*answer)->policy->mode()) > Strictness(mode)) {
      mode = (*answer)->policy->mode();
    }
  }
  return mode;
}

SenderDecision SenderPolicy::FromMode(const std::string& memory_key,
                                      v1::PolicyMode mode,
                                      const VerifiedAnswer& answer) {
  // Only here, from a verified answer, does the memory change.
  memory_->Set(memory_key, mode == v1::POLICY_MODE_ENFORCE);
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
