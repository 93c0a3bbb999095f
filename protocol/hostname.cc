#include "protocol/hostname.h"

#include <idn2.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mxkey {

namespace {

absl::Status Invalid(absl::string_view name, absl::string_view why) {
  // Quote at most 64 bytes of the input, escaped, so a hostile name cannot
  // flood or forge log lines.
  std::string shown = absl::CEscape(name.substr(0, 64));
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid hostname \"", shown, name.size() > 64 ? "..." : "", "\": ", why));
}

// IDNA2008 (RFC 5891 4.2.3.1, 5.4): "--" in the 3rd and 4th position is
// reserved for A-labels, and an A-label ("xn--...") must be the encoding of
// a valid U-label: it decodes, and the U-label encodes back to it. A name
// that is neither is one no registry hands out, and, displayed, one that
// may not be what it seems.
absl::Status CheckIdnaLabel(absl::string_view name, absl::string_view label) {
  if (label.size() < 4 || label[2] != '-' || label[3] != '-') {
    return absl::OkStatus();
  }
  if (!absl::StartsWith(label, "xn--")) {
    return Invalid(name, "a label has \"--\" in its 3rd and 4th position, "
                         "which only A-labels (xn--) may have");
  }
  const std::string a_label(label);
  char* u_label = nullptr;
  int rc = idn2_to_unicode_8z8z(a_label.c_str(), &u_label, 0);
  std::string back;
  if (rc == IDN2_OK) {
    uint8_t* encoded = nullptr;
    rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(u_label), &encoded,
                        IDN2_NFC_INPUT);
    if (rc == IDN2_OK) back = reinterpret_cast<const char*>(encoded);
    idn2_free(encoded);
  }
  idn2_free(u_label);
  if (rc != IDN2_OK) {
    return Invalid(name, absl::StrCat("an A-label is not valid IDNA2008: ",
                                      idn2_strerror(rc)));
  }
  if (back != a_label) {
    return Invalid(name, "an A-label is not the IDNA2008 encoding of its "
                         "U-label");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> CanonicalHostname(absl::string_view name) {
  if (name.empty()) return Invalid(name, "it is empty");
  if (absl::EndsWith(name, ".")) name.remove_suffix(1);
  if (name.size() > 253) {
    return Invalid(name, "longer than 253 bytes");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return Invalid(name,
                     "non-ASCII characters; use the A-label (xn--) form of "
                     "an internationalized name");
    }
  }
  std::string lower = absl::AsciiStrToLower(name);
  std::vector<absl::string_view> labels = absl::StrSplit(lower, '.');
  if (labels.size() < 2) {
    return Invalid(name, "expected a fully qualified name with at least two "
                         "labels, like mx1.example.org");
  }
  for (absl::string_view label : labels) {
    if (label.empty()) return Invalid(name, "it has an empty label");
    if (label.size() > 63) return Invalid(name, "a label is longer than 63 bytes");
    if (label.front() == '-' || label.back() == '-') {
      return Invalid(name, "a label starts or ends with a hyphen");
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return Invalid(name,
                       "only letters, digits, hyphens and dots are allowed");
      }
    }
    if (absl::Status idna = CheckIdnaLabel(name, label); !idna.ok()) {
      return idna;
    }
  }
  if (absl::ascii_isdigit(static_cast<unsigned char>(labels.back().front()))) {
    return Invalid(name, "the top-level label must not be numeric");
  }
  return lower;
}

bool NameIsUnder(absl::string_view name, absl::string_view suffix) {
  if (name == suffix) return true;
  return name.size() > suffix.size() && absl::EndsWith(name, suffix) &&
         name[name.size() - suffix.size() - 1] == '.';
}

}  // namespace mxkey
