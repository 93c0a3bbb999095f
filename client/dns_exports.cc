#include "client/dns_exports.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "client/tls_pins.h"

namespace mxkey {

std::string TlsaRecords(const VerifiedAnswer& domain_answer) {
  std::string out;
  for (const HostPins& host : UsableTlsPins(domain_answer)) {
    for (const std::string& pin : host.pins) {
      absl::StrAppend(&out, "_25._tcp.", host.hostname, ". IN TLSA 3 1 1 ",
                      absl::BytesToHexString(pin), "\n");
    }
  }
  return out;
}

std::string MtaStsPolicy(const VerifiedAnswer& domain_answer,
                         int64_t max_age_seconds) {
  absl::string_view mode = "none";
  if (domain_answer.policy) {
    switch (domain_answer.policy->mode()) {
      case mxkey::v1::POLICY_MODE_ENFORCE: mode = "enforce"; break;
      case mxkey::v1::POLICY_MODE_TESTING: mode = "testing"; break;
      default: break;
    }
  }
  std::string out = absl::StrCat("version: STSv1\r\nmode: ", mode, "\r\n");
  for (const HostPins& host : UsableTlsPins(domain_answer)) {
    absl::StrAppend(&out, "mx: ", host.hostname, "\r\n");
  }
  absl::StrAppend(&out, "max_age: ", max_age_seconds, "\r\n");
  return out;
}

}  // namespace mxkey
