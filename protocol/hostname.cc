#include "protocol/hostname.h"

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
