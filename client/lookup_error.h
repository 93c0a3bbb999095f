// Why a KeyClient lookup gave no usable key, as a machine-readable kind
// carried in the absl::Status (as a payload), so callers can branch on it
// without parsing messages: keyctl maps kinds to exit codes, the Postfix map
// to NOTFOUND / TEMP.
#ifndef MXKEY_CLIENT_LOOKUP_ERROR_H_
#define MXKEY_CLIENT_LOOKUP_ERROR_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mxkey {

enum class LookupFailure {
  kNone,          // OK
  kInvalidName,   // INVALID_ARGUMENT: not a valid hostname / domain
  kUnknown,       // NOT_FOUND: signed denial, no such host
  kRevoked,       // NOT_FOUND: every certificate of the host is revoked
  kExpired,       // NOT_FOUND: no certificate of the host is in validity
  kVerification,  // UNAUTHENTICATED: chain does not reach the root, bad
                  // signature, an answer about another name
  kStale,         // FAILED_PRECONDITION: keyd unreachable and the cached
                  // answer's freshness ran out
  kUnavailable,   // UNAVAILABLE: keyd unreachable and nothing cached
};

// A status of the code that belongs to `kind`, tagged with the kind.
absl::Status LookupError(LookupFailure kind, absl::string_view message);

// The kind of a status from KeyClient; untagged errors are classified by code.
LookupFailure LookupFailureOf(const absl::Status& status);

// True if `status` came from LookupError (not merely a code that looks alike).
bool IsLookupError(const absl::Status& status);

absl::string_view LookupFailureName(LookupFailure kind);

}  // namespace mxkey

#endif  // MXKEY_CLIENT_LOOKUP_ERROR_H_
