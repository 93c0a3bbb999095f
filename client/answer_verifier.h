// Verifies keyd answers against the one trust anchor a client has: its
// org root public key (checked against the configured fingerprint first).
//
// Every object an answer carries is verified: issuing-key certificates
// against the root, everything else against a valid issuing key, and the
// freshness statement against the digest of the rest. The freshness
// statement must name the lookup that was made (kind and name), and the
// answer must have the shape of that lookup's answer (docs/PROTOCOL.md
// §7.2): a signed answer to one question is never accepted for another.
// Errors:
//   UNAUTHENTICATED      the chain does not reach the root, a signature is
//                        bad, an object is about another name, or the
//                        answer answers another lookup or has the wrong
//                        shape for this one
//   FAILED_PRECONDITION  "stale: ..." when the freshness statement ran out
//   INVALID_ARGUMENT     malformed objects
#ifndef MXKEY_CLIENT_ANSWER_VERIFIER_H_
#define MXKEY_CLIENT_ANSWER_VERIFIER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

// Sizes every verified host certificate has (else it is refused as
// malformed): Ed25519 and X25519 keys and SHA-256 TLS pins are 32 bytes,
// and a certificate carries at most 8 pins (keyd's limit).
inline constexpr size_t kCertifiedKeyBytes = 32;
inline constexpr int kMaxCertifiedTlsPins = 8;


enum class VerifiedCertState { kActive, kNext, kRevoked, kExpired };

struct VerifiedCert {
  mxkey::v1::HostCertificateBody body;
  VerifiedCertState state;
};

struct VerifiedAnswer {
  std::string name;
  std::vector<VerifiedCert> certificates;  // includes revoked ones
  std::vector<mxkey::v1::RevocationEventBody> revocations;
  std::optional<mxkey::v1::DomainPolicyBody> policy;
  std::optional<mxkey::v1::DenialBody> denial;
  mxkey::v1::FreshnessBody freshness;

  // True if some certificate is active (or next and none is active).
  bool HasValidKey() const;
};

// The only denial reason an answer to `kind` may carry.
mxkey::v1::DenialReason DenialReasonFor(mxkey::v1::LookupKind kind);

// An issuing key the root certified, with its validity (Unix seconds,
// widened by the verifier's clock skew).
struct VerifierIssuer {
  std::string public_key;
  int64_t not_before = 0;
  int64_t not_after = 0;
  bool ValidAt(int64_t t) const { return t >= not_before && t < not_after; }
};

class AnswerVerifier {
 public:
  // UNAUTHENTICATED if `root_public_key` does not have `root_fingerprint`.
  // `max_clock_skew` widens every validity period (issuing keys, host
  // certificates) both ways, for a clock that is off by up to that much;
  // freshness statements stay strict.
  static absl::StatusOr<AnswerVerifier> Create(
      const std::string& root_fingerprint, const std::string& root_public_key,
      absl::Duration max_clock_skew = absl::ZeroDuration());

  // `expected_name` is the canonical host or domain asked about (for
  // LOOKUP_KIND_TLS_PIN: the pin in lower-case hex); a domain answer may
  // carry certificates of hosts serving the domain.
  absl::StatusOr<VerifiedAnswer> Verify(const mxkey::v1::KeyAnswer& answer,
                                        const std::string& expected_name,
                                        mxkey::v1::LookupKind kind,
                                        absl::Time now) const;

  // Verifies one issuing-key certificate against the root, valid at `now`.
  absl::StatusOr<mxkey::v1::IssuingKeyBody> VerifyIssuingKey(
      const mxkey::v1::SignedObject& cert, absl::Time now) const;

  // Verifies a batch of the revocation feed: every event against an issuing
  // key the batch carries that was valid when the event was made (events
  // stay verifiable after their issuing key expired), and that the events
  // follow `last_seq` without a gap (DATA_LOSS "feed gap: ..." otherwise;
  // the caller resynchronizes).
  absl::StatusOr<std::vector<mxkey::v1::RevocationEventBody>> VerifyFeedBatch(
      const mxkey::v1::WatchRevocationsResponse& batch, uint64_t last_seq,
      absl::Time now) const;

  // Verifies a certificate returned by Enroll/Rotate.
  absl::StatusOr<mxkey::v1::HostCertificateBody> VerifyEnrollment(
      const mxkey::v1::EnrollResponse& response, absl::Time now) const;

  const std::string& root_public_key() const { return root_public_key_; }

 private:
  AnswerVerifier(std::string root, absl::Duration max_clock_skew)
      : root_public_key_(std::move(root)), max_clock_skew_(max_clock_skew) {}
  // The issuing certificates among `certs` that the root signed, with their
  // validity widened by the skew (by key id).
  std::map<std::string, struct VerifierIssuer> Issuers(
      const google::protobuf::RepeatedPtrField<mxkey::v1::SignedObject>& certs)
      const;
  std::string root_public_key_;
  absl::Duration max_clock_skew_;
};

}  // namespace mxkey

#endif  // MXKEY_CLIENT_ANSWER_VERIFIER_H_
