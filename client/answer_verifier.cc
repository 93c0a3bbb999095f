#include "client/answer_verifier.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/sha256.h"
#include "protocol/signed_object.h"

namespace mxkey {

namespace {

using mxkey::v1::SignedObject;

// Issuing keys an answer carries that the root certified, by key id, with
// their validity (Unix seconds, already widened by the clock skew).
using IssuerMap = std::map<std::string, VerifierIssuer>;

// When the signer must have been valid: now (for everything a client acts
// on), at a given time (a revocation event, at the time it was made: events
// stay verifiable forever), or at any time (a revoked or expired
// certificate, which is never usable: only its identity matters).
struct SignerValidity {
  enum { kNow, kAt, kAny } when = kNow;
  int64_t t = 0;
};

absl::Status VerifyByIssuer(const IssuerMap& issuers, const SignedObject& o,
                            ObjectType type, absl::string_view what,
                            SignerValidity validity) {
  auto it = issuers.find(o.signer_key_id());
  if (it == issuers.end() ||
      (validity.when != SignerValidity::kAny && !it->second.ValidAt(validity.t))) {
    return absl::UnauthenticatedError(absl::StrCat(
        what, " is signed by a key that no valid issuing certificate of the "
              "trusted root vouches for",
        validity.when == SignerValidity::kAt ? " at the time it was made" : ""));
  }
  absl::Status st = VerifyObject(o, type, it->second.public_key);
  if (!st.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(what, ": ", st.message()));
  }
  return absl::OkStatus();
}

template <typename Body>
absl::StatusOr<Body> VerifiedBody(const IssuerMap& issuers,
                                  const SignedObject& o, ObjectType type,
                                  absl::string_view what,
                                  SignerValidity validity) {
  RETURN_IF_ERROR(VerifyByIssuer(issuers, o, type, what, validity));
  return ParseBody<Body>(o);
}

// A revocation event, verified against an issuing key that was valid when
// the event was made.
absl::StatusOr<mxkey::v1::RevocationEventBody> VerifiedEvent(
    const IssuerMap& issuers, const SignedObject& o) {
  ASSIGN_OR_RETURN(auto body, VerifiedBody<mxkey::v1::RevocationEventBody>(
                                  issuers, o, ObjectType::kRevocation,
                                  "revocation event", {SignerValidity::kAny}));
  RETURN_IF_ERROR(VerifyByIssuer(issuers, o, ObjectType::kRevocation,
                                 "revocation event",
                                 {SignerValidity::kAt, body.revoked_at()}));
  return body;
}

// What a signed certificate body must hold to be used at all (PROTOCOL.md
// §7.2): a signature proves who made it, not that it is well formed, and a
// dishonest peer org signs what it likes. Every key and pin has its exact
// size, so that no caller copies past the end of one (a 17-byte
// agreement_key was copied as 32 bytes by the C ABI).
absl::Status CheckCertificateBody(const mxkey::v1::HostCertificateBody& b,
                                  absl::string_view what) {
  auto bad = [&](absl::string_view why) {
    return absl::UnauthenticatedError(absl::StrCat(
        what, " serial ", b.serial(), " is malformed: ", why));
  };
  if (b.identity_key().size() != kCertifiedKeyBytes) {
    return bad(absl::StrCat("identity_key has ", b.identity_key().size(),
                            " bytes, not ", kCertifiedKeyBytes));
  }
  if (b.agreement_key().size() != kCertifiedKeyBytes) {
    return bad(absl::StrCat("agreement_key has ", b.agreement_key().size(),
                            " bytes, not ", kCertifiedKeyBytes));
  }
  if (b.tls_spki_sha256_size() > kMaxCertifiedTlsPins) {
    return bad(absl::StrCat(b.tls_spki_sha256_size(), " TLS pins, more than ",
                            kMaxCertifiedTlsPins));
  }
  for (const auto& pin : b.tls_spki_sha256()) {
    if (pin.size() != kCertifiedKeyBytes) {
      return bad(absl::StrCat("a TLS pin has ", pin.size(), " bytes, not ",
                              kCertifiedKeyBytes));
    }
  }
  if (b.not_after() <= b.not_before()) return bad("empty validity");
  return absl::OkStatus();
}

absl::Status WrongName(absl::string_view what, absl::string_view got,
                       absl::string_view want) {
  return absl::UnauthenticatedError(absl::StrCat(
      what, " is about \"", got, "\", not the name asked about (\"", want,
      "\")"));
}

// The shape each lookup's answer must have (PROTOCOL.md §7.2), checked on
// the objects present before any of them is parsed:
//   host    certificates (and revocations), or a denial alone; no policy
//   domain  exactly one of a policy (with certificates) or a denial alone;
//           no revocations
//   pin     a denial alone
absl::Status CheckShape(const mxkey::v1::KeyAnswer& a,
                        mxkey::v1::LookupKind kind) {
  const absl::string_view what = mxkey::v1::LookupKind_Name(kind);
  auto bad = [&](absl::string_view why) {
    return absl::UnauthenticatedError(
        absl::StrCat("not a valid ", what, " answer: ", why));
  };
  const bool has_keys = a.certificates_size() + a.revocations_size() > 0;
  if (a.has_denial() && has_keys) {
    return bad("a denial with certificates or revocations");
  }
  switch (kind) {
    case mxkey::v1::LOOKUP_KIND_HOST:
      if (a.has_policy()) return bad("it carries a domain policy");
      if (!a.has_denial() && a.certificates_size() == 0) {
        return bad("no certificate and no denial");
      }
      return absl::OkStatus();
    case mxkey::v1::LOOKUP_KIND_DOMAIN:
      if (a.has_policy() == a.has_denial()) {
        return bad("it must carry exactly one of a policy or a denial");
      }
      if (a.revocations_size() > 0) return bad("it carries revocations");
      return absl::OkStatus();
    case mxkey::v1::LOOKUP_KIND_TLS_PIN:
      if (!a.has_denial() || a.has_policy()) return bad("it must be a denial");
      return absl::OkStatus();
    default:
      return absl::UnauthenticatedError("unknown lookup kind");
  }
}

}  // namespace

mxkey::v1::DenialReason DenialReasonFor(mxkey::v1::LookupKind kind) {
  switch (kind) {
    case mxkey::v1::LOOKUP_KIND_HOST: return mxkey::v1::DENIAL_REASON_NO_SUCH_HOST;
    case mxkey::v1::LOOKUP_KIND_DOMAIN:
      return mxkey::v1::DENIAL_REASON_DOMAIN_UNKEYED;
    case mxkey::v1::LOOKUP_KIND_TLS_PIN:
      return mxkey::v1::DENIAL_REASON_NO_SUCH_PIN;
    default: return mxkey::v1::DENIAL_REASON_UNSPECIFIED;
  }
}

bool VerifiedAnswer::HasValidKey() const {
  for (const auto& c : certificates) {
    if (c.state == VerifiedCertState::kActive ||
        c.state == VerifiedCertState::kNext) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<AnswerVerifier> AnswerVerifier::Create(
    const std::string& root_fingerprint, const std::string& root_public_key,
    absl::Duration max_clock_skew) {
  if (KeyFingerprint(root_public_key) != root_fingerprint) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the org root key served by keyd has fingerprint ",
        KeyFingerprint(root_public_key), ", not the trusted ",
        root_fingerprint));
  }
  return AnswerVerifier(root_public_key, max_clock_skew);
}

absl::StatusOr<mxkey::v1::IssuingKeyBody> AnswerVerifier::VerifyIssuingKey(
    const SignedObject& cert, absl::Time now) const {
  absl::Status st = VerifyObject(cert, ObjectType::kIssuingKey, root_public_key_);
  if (!st.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("issuing-key certificate: ", st.message()));
  }
  ASSIGN_OR_RETURN(auto body, ParseBody<mxkey::v1::IssuingKeyBody>(cert));
  const int64_t t = absl::ToUnixSeconds(now);
  const int64_t skew = absl::ToInt64Seconds(max_clock_skew_);
  if (t + skew < body.not_before() || t - skew >= body.not_after()) {
    return absl::UnauthenticatedError(
        "issuing-key certificate is outside its validity period");
  }
  return body;
}

std::map<std::string, VerifierIssuer> AnswerVerifier::Issuers(
    const google::protobuf::RepeatedPtrField<SignedObject>& certs) const {
  const int64_t skew = absl::ToInt64Seconds(max_clock_skew_);
  IssuerMap issuers;
  for (const auto& cert : certs) {
    if (!VerifyObject(cert, ObjectType::kIssuingKey, root_public_key_).ok()) {
      continue;
    }
    absl::StatusOr<mxkey::v1::IssuingKeyBody> body =
        ParseBody<mxkey::v1::IssuingKeyBody>(cert);
    if (!body.ok() || body->public_key().size() != 32) continue;
    issuers[KeyId(body->public_key())] = {body->public_key(),
                                          body->not_before() - skew,
                                          body->not_after() + skew};
  }
  return issuers;
}

absl::StatusOr<VerifiedAnswer> AnswerVerifier::Verify(
    const mxkey::v1::KeyAnswer& answer, const std::string& expected_name,
    mxkey::v1::LookupKind kind, absl::Time now) const {
  const int64_t t = absl::ToUnixSeconds(now);
  const int64_t skew = absl::ToInt64Seconds(max_clock_skew_);
  const bool is_domain = kind == mxkey::v1::LOOKUP_KIND_DOMAIN;
  const IssuerMap issuers = Issuers(answer.issuing_keys());
  const SignerValidity current{SignerValidity::kNow, t};

  VerifiedAnswer out;
  out.name = expected_name;
  // The freshness statement first: it says which lookup this answers, and
  // nothing else of an answer to another lookup is worth looking at.
  if (!answer.has_freshness()) {
    return absl::UnauthenticatedError("answer has no freshness statement");
  }
  ASSIGN_OR_RETURN(out.freshness,
                   VerifiedBody<mxkey::v1::FreshnessBody>(
                       issuers, answer.freshness(), ObjectType::kFreshness,
                       "freshness statement", current));
  if (out.freshness.kind() != kind) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the answer answers a ",
        mxkey::v1::LookupKind_Name(out.freshness.kind()), " lookup, not the ",
        mxkey::v1::LookupKind_Name(kind), " lookup that was made"));
  }
  if (out.freshness.name() != expected_name) {
    return WrongName("freshness statement", out.freshness.name(),
                     expected_name);
  }
  if (out.freshness.answer_sha256() != AnswerDigest(CoveredObjects(answer))) {
    return absl::UnauthenticatedError(
        "freshness statement does not cover this answer (objects were added, "
        "removed or replaced)");
  }
  RETURN_IF_ERROR(CheckShape(answer, kind));

  for (const auto& r : answer.revocations()) {
    ASSIGN_OR_RETURN(auto body, VerifiedEvent(issuers, r));
    if (body.hostname() != expected_name) {
      return WrongName("revocation event", body.hostname(), expected_name);
    }
    out.revocations.push_back(std::move(body));
  }
  for (const auto& c : answer.certificates()) {
    // Any issuing key the root certified, first: whether the certificate
    // could be usable decides how current its signer must be.
    ASSIGN_OR_RETURN(auto body,
                     VerifiedBody<mxkey::v1::HostCertificateBody>(
                         issuers, c, ObjectType::kHostCertificate,
                         "host certificate", {SignerValidity::kAny}));
    RETURN_IF_ERROR(CheckCertificateBody(body, "host certificate"));
    bool name_ok = false;
    if (is_domain) {
      for (const auto& d : body.mail_domains()) name_ok |= d == expected_name;
    } else {
      name_ok = body.hostname() == expected_name;
    }
    if (!name_ok) {
      return WrongName("host certificate", body.hostname(), expected_name);
    }
    VerifiedCertState state = VerifiedCertState::kActive;
    for (const auto& r : out.revocations) {
      if (r.serial() == body.serial()) state = VerifiedCertState::kRevoked;
    }
    if (state != VerifiedCertState::kRevoked) {
      // The clock skew tolerance widens the validity both ways.
      if (t + skew < body.not_before() || t - skew >= body.not_after()) {
        state = VerifiedCertState::kExpired;
      } else if (t < body.active_from()) {
        state = VerifiedCertState::kNext;
      }
    }
    if (state == VerifiedCertState::kActive || state == VerifiedCertState::kNext) {
      // A usable certificate needs a signer that is valid now.
      RETURN_IF_ERROR(VerifyByIssuer(issuers, c, ObjectType::kHostCertificate,
                                     "host certificate", current));
    }
    out.certificates.push_back(VerifiedCert{std::move(body), state});
  }
  if (answer.has_policy()) {
    ASSIGN_OR_RETURN(auto body, VerifiedBody<mxkey::v1::DomainPolicyBody>(
                                    issuers, answer.policy(),
                                    ObjectType::kDomainPolicy, "domain policy",
                                    current));
    if (body.domain() != expected_name) {
      return WrongName("domain policy", body.domain(), expected_name);
    }
    if (body.mode() == mxkey::v1::POLICY_MODE_UNSPECIFIED ||
        !mxkey::v1::PolicyMode_IsValid(body.mode())) {
      return absl::UnauthenticatedError(
          "domain policy has no valid mode (none, testing or enforce)");
    }
    out.policy = std::move(body);
  }
  if (answer.has_denial()) {
    ASSIGN_OR_RETURN(auto body,
                     VerifiedBody<mxkey::v1::DenialBody>(
                         issuers, answer.denial(), ObjectType::kDenial,
                         "denial", current));
    if (body.name() != expected_name) {
      return WrongName("denial", body.name(), expected_name);
    }
    if (body.reason() != DenialReasonFor(kind)) {
      return absl::UnauthenticatedError(absl::StrCat(
          "a ", mxkey::v1::LookupKind_Name(kind), " answer may deny only with ",
          mxkey::v1::DenialReason_Name(DenialReasonFor(kind)), ", not ",
          mxkey::v1::DenialReason_IsValid(body.reason())
              ? mxkey::v1::DenialReason_Name(body.reason())
              : absl::StrCat("reason ", static_cast<int>(body.reason()))));
    }
    out.denial = std::move(body);
  }
  if (t >= out.freshness.valid_until()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stale: the answer's freshness statement ran out ",
        t - out.freshness.valid_until(), " s ago"));
  }
  return out;
}

absl::StatusOr<std::vector<mxkey::v1::RevocationEventBody>>
AnswerVerifier::VerifyFeedBatch(const mxkey::v1::WatchRevocationsResponse& batch,
                                uint64_t last_seq, absl::Time now) const {
  (void)now;  // events are judged by the time they were made
  const IssuerMap issuers = Issuers(batch.issuing_keys());
  std::vector<mxkey::v1::RevocationEventBody> events;
  for (const auto& e : batch.events()) {
    ASSIGN_OR_RETURN(auto body, VerifiedEvent(issuers, e));
    if (body.seq() != last_seq + 1) {
      return absl::DataLossError(absl::StrCat("feed gap: expected event ",
                                              last_seq + 1, ", got ",
                                              body.seq()));
    }
    last_seq = body.seq();
    events.push_back(std::move(body));
  }
  if (batch.head_seq() < last_seq) {
    return absl::DataLossError(absl::StrCat(
        "feed head ", batch.head_seq(), " is behind event ", last_seq));
  }
  return events;
}

absl::StatusOr<mxkey::v1::HostCertificateBody> AnswerVerifier::VerifyEnrollment(
    const mxkey::v1::EnrollResponse& response, absl::Time now) const {
  ASSIGN_OR_RETURN(auto issuer, VerifyIssuingKey(response.issuing_key(), now));
  const int64_t skew = absl::ToInt64Seconds(max_clock_skew_);
  IssuerMap issuers{{KeyId(issuer.public_key()),
                     {issuer.public_key(), issuer.not_before() - skew,
                      issuer.not_after() + skew}}};
  ASSIGN_OR_RETURN(
      auto body,
      VerifiedBody<mxkey::v1::HostCertificateBody>(
          issuers, response.certificate(), ObjectType::kHostCertificate,
          "issued certificate",
          {SignerValidity::kNow, absl::ToUnixSeconds(now)}));
  RETURN_IF_ERROR(CheckCertificateBody(body, "issued certificate"));
  return body;
}

}  // namespace mxkey
