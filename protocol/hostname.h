// Validation and canonical form of hostnames and mail domains.
//
// Names are accepted only as ASCII LDH (letters, digits, hyphen) in A-label
// form, at least two labels, each 1..63 bytes, not starting or ending with a
// hyphen, 253 bytes at most without a trailing dot. The canonical form is
// lower case without a trailing dot. Every rejection is INVALID_ARGUMENT with
// a message naming the rule that failed.
#ifndef MXKEY_PROTOCOL_HOSTNAME_H_
#define MXKEY_PROTOCOL_HOSTNAME_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxkey {

absl::StatusOr<std::string> CanonicalHostname(absl::string_view name);

// True if `name` equals `suffix` or ends with "." + `suffix` (label boundary).
// Both must be canonical.
bool NameIsUnder(absl::string_view name, absl::string_view suffix);

}  // namespace mxkey

#endif  // MXKEY_PROTOCOL_HOSTNAME_H_
