// Validation and canonical form of hostnames and mail domains.
//
// Names are accepted only as ASCII LDH (letters, digits, hyphen) in A-label
// form, at least two labels, each 1..63 bytes, not starting or ending with a
// hyphen, 253 bytes at most without a trailing dot. The canonical form is
// lower case without a trailing dot. Every rejection is INVALID_ARGUMENT with
// a message naming the rule that failed.
#ifndef MXKEY_PROTOCOL_HOSTNAME_H_
#define MXKEY_PROTOCOL_HOSTNAME_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxkey {

absl::StatusOr<std::string> CanonicalHostname(absl::string_view name);

// True if `name` equals `suffix` or ends with "." + `suffix` (label boundary).
// Both must be canonical.
bool NameIsUnder(absl::string_view name, absl::string_view suffix);

// The length of the longest of `suffixes` that `name` is under (label
// boundary), or 0 if none: federation picks the peer with the longest match.
template <typename Suffixes>
size_t LongestSuffixUnder(absl::string_view name, const Suffixes& suffixes) {
  size_t longest = 0;
  for (const auto& suffix : suffixes) {
    if (suffix.size() > longest && NameIsUnder(name, suffix)) {
      longest = suffix.size();
    }
  }
  return longest;
}

}  // namespace mxkey

#endif  // MXKEY_PROTOCOL_HOSTNAME_H_
