#include "client/lookup_error.h"

#include <optional>

#include "absl/strings/cord.h"

namespace mxkey {
namespace {

constexpr absl::string_view kPayloadUrl = "type.mxkey.dev/lookup-failure";

absl::StatusCode CodeOf(LookupFailure kind) {
  switch (kind) {
    case LookupFailure::kNone: return absl::StatusCode::kOk;
    case LookupFailure::kInvalidName: return absl::StatusCode::kInvalidArgument;
    case LookupFailure::kUnknown:
    case LookupFailure::kRevoked:
    case LookupFailure::kExpired: return absl::StatusCode::kNotFound;
    case LookupFailure::kVerification:
      return absl::StatusCode::kUnauthenticated;
    case LookupFailure::kStale: return absl::StatusCode::kFailedPrecondition;
    case LookupFailure::kUnavailable: return absl::StatusCode::kUnavailable;
  }
  return absl::StatusCode::kUnknown;
}

constexpr LookupFailure kAll[] = {
    LookupFailure::kInvalidName, LookupFailure::kUnknown,
    LookupFailure::kRevoked,     LookupFailure::kExpired,
    LookupFailure::kVerification, LookupFailure::kStale,
    LookupFailure::kUnavailable};

}  // namespace

absl::string_view LookupFailureName(LookupFailure kind) {
  switch (kind) {
    case LookupFailure::kNone: return "ok";
    case LookupFailure::kInvalidName: return "invalid-name";
    case LookupFailure::kUnknown: return "unknown";
    case LookupFailure::kRevoked: return "revoked";
    case LookupFailure::kExpired: return "expired";
    case LookupFailure::kVerification: return "verification-failed";
    case LookupFailure::kStale: return "stale";
    case LookupFailure::kUnavailable: return "unavailable";
  }
  return "unknown";
}

absl::Status LookupError(LookupFailure kind, absl::string_view message) {
  absl::Status status(CodeOf(kind), message);
  status.SetPayload(kPayloadUrl, absl::Cord(LookupFailureName(kind)));
  return status;
}

bool IsLookupError(const absl::Status& status) {
  return status.GetPayload(kPayloadUrl).has_value();
}

LookupFailure LookupFailureOf(const absl::Status& status) {
  if (status.ok()) return LookupFailure::kNone;
  auto tag = status.GetPayload(kPayloadUrl);
  if (tag) {
    for (LookupFailure k : kAll) {
      if (*tag == LookupFailureName(k)) return k;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: return LookupFailure::kInvalidName;
    // Unsigned NOT_FOUND proves nothing: only a verified denial is kUnknown.
    case absl::StatusCode::kNotFound: return LookupFailure::kUnavailable;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return LookupFailure::kVerification;
    case absl::StatusCode::kFailedPrecondition: return LookupFailure::kStale;
    default: return LookupFailure::kUnavailable;
  }
}

}  // namespace mxkey
