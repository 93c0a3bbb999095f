#include "mta-hooks/session/peer_verifier.h"

#include "absl/strings/str_cat.h"
#include "crypto/secret_bytes.h"

namespace mxkey {
namespace {

// The same failure kind, with the peer named.
absl::Status AboutPeer(const std::string& hostname, const absl::Status& st) {
  return LookupError(LookupFailureOf(st),
                     absl::StrCat("peer ", hostname, ": ", st.message()));
}

}  // namespace

absl::Status KeyClientPeerVerifier::VerifyPeer(const std::string& hostname,
                                               uint64_t serial,
                                               absl::string_view static_key) {
  absl::StatusOr<AnswerRef> answer = client_->LookupHostAnswer(hostname);
  if (!answer.ok()) return AboutPeer(hostname, answer.status());
  for (const VerifiedCert& c : (*answer)->certificates) {
    if (c.body.serial() != serial) continue;
    if (!ConstantTimeEquals(c.body.agreement_key(), static_key)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "peer ", hostname, ": its static key is not the X25519 key of its "
          "certificate serial ", serial));
    }
    switch (c.state) {
      case VerifiedCertState::kActive:
      case VerifiedCertState::kNext:
        return absl::OkStatus();
      case VerifiedCertState::kRevoked:
        return LookupError(LookupFailure::kRevoked,
                           absl::StrCat("peer ", hostname,
                                        ": certificate serial ", serial,
                                        " is revoked"));
      case VerifiedCertState::kExpired:
        return LookupError(LookupFailure::kExpired,
                           absl::StrCat("peer ", hostname,
                                        ": certificate serial ", serial,
                                        " has expired"));
    }
  }
  // Serial not in the answer: unknown to keyd, or not valid any more.
  absl::Status usable = client_->LookupHost(hostname).status();
  if (!usable.ok()) return AboutPeer(hostname, usable);
  return absl::PermissionDeniedError(absl::StrCat(
      "peer ", hostname, ": no valid certificate with serial ", serial));
}

absl::StatusOr<std::string> ResponderKey(const VerifiedAnswer& answer) {
  const VerifiedCert* next = nullptr;
  for (const VerifiedCert& c : answer.certificates) {
    if (c.state == VerifiedCertState::kActive) return c.body.agreement_key();
    if (c.state == VerifiedCertState::kNext) next = &c;
  }
  if (next != nullptr) return next->body.agreement_key();
  return absl::NotFoundError(
      absl::StrCat(answer.name, " has no active or next certificate"));
}

}  // namespace mxkey
