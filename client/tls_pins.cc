#include "client/tls_pins.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mxkey {

std::vector<HostPins> UsableTlsPins(const VerifiedAnswer& answer) {
  std::vector<HostPins> hosts;
  for (const VerifiedCert& cert : answer.certificates) {
    if (cert.state != VerifiedCertState::kActive &&
        cert.state != VerifiedCertState::kNext) {
      continue;
    }
    auto host = std::find_if(hosts.begin(), hosts.end(), [&](const HostPins& h) {
      return h.hostname == cert.body.hostname();
    });
    if (host == hosts.end()) {
      hosts.push_back({cert.body.hostname(), {}});
      host = hosts.end() - 1;
    }
    for (const std::string& pin : cert.body.tls_spki_sha256()) {
      if (std::find(host->pins.begin(), host->pins.end(), pin) ==
          host->pins.end()) {
        host->pins.push_back(pin);
      }
    }
  }
  hosts.erase(std::remove_if(hosts.begin(), hosts.end(),
                             [](const HostPins& h) { return h.pins.empty(); }),
              hosts.end());
  return hosts;
}

std::string ColonHex(absl::string_view bytes) {
  std::string hex = absl::AsciiStrToUpper(absl::BytesToHexString(bytes));
  std::string out;
  out.reserve(hex.size() * 3 / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (i > 0) out.push_back(':');
    out.append(hex, i, 2);
  }
  return out;
}

absl::StatusOr<std::string> ParseColonHexPin(absl::string_view text) {
  std::vector<absl::string_view> octets = absl::StrSplit(text, ':');
  if (octets.size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a pin is 32 colon-separated hex octets (SHA-256), got ",
        octets.size(), " fields"));
  }
  std::string hex;
  for (absl::string_view o : octets) {
    if (o.size() != 2 || !absl::ascii_isxdigit(o[0]) ||
        !absl::ascii_isxdigit(o[1])) {
      return absl::InvalidArgumentError(
          "a pin octet must be two hex digits, as in \"AB:CD:...\"");
    }
    absl::StrAppend(&hex, o);
  }
  return absl::HexStringToBytes(hex);
}

bool UsableCertificateHasPin(const VerifiedAnswer& answer,
                             absl::string_view pin) {
  for (const auto& c : answer.certificates) {
    if (c.state != VerifiedCertState::kActive &&
        c.state != VerifiedCertState::kNext) {
      continue;
    }
    for (const auto& p : c.body.tls_spki_sha256()) {
      if (p == pin) return true;
    }
  }
  return false;
}

bool AnyCertificateHasPin(const VerifiedAnswer& answer, absl::string_view pin) {
  for (const auto& c : answer.certificates) {
    for (const auto& p : c.body.tls_spki_sha256()) {
      if (p == pin) return true;
    }
  }
  return false;
}

}  // namespace mxkey
