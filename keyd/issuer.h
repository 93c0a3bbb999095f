// Certificate issuance: enrollment with a one-time token, and rotation
// authorized by the host's current key.
//
// Enrollment checks, in order: a well-formed body; both signatures (token
// key and the new identity key, the proof of possession); the host's clock
// within the allowed skew; then, in one write transaction, the token
// (known, for this host, unexpired, unused) and that no key or pin is
// certified for another host. The token is consumed in the same
// transaction as the certificate is stored.
//
// Rotation pre-publishes the next key beside the current one for an
// overlap (the host's, or keyd's default), during which both are usable;
// the host ends it early with FinishRotation once it uses the next keys
// (keyctl rotate --finish), and the old key leaves answers at once.
//
// Errors: INVALID_ARGUMENT (malformed request, overlap out of range),
// PERMISSION_DENIED (token or signature problems), ALREADY_EXISTS (key or
// pin of another host), FAILED_PRECONDITION (rotation without an active
// certificate, or with a next one pending; finishing a rotation that is not
// pending), NOT_FOUND (host not registered).
//
// The *Async forms check the request on the calling thread, then hand the
// transaction to the store's group commit and return: `done` runs once it
// is durable (or at once, for a request refused before it), so a handler
// holds no thread through the fsync. The plain forms wait for `done`.
#ifndef MXKEY_KEYD_ISSUER_H_
#define MXKEY_KEYD_ISSUER_H_

#include <functional>

#include "absl/status/statusor.h"
#include "keyd/keyd_context.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

// OK if `overlap` is a rotation overlap keyd allows: 2 x freshness to
// KeydOptions::kMaxRotationOverlap. INVALID_ARGUMENT says the range.
absl::Status CheckRotationOverlap(const KeydOptions& options,
                                  absl::Duration overlap);

class Issuer {
 public:
  explicit Issuer(const KeydContext* ctx) : ctx_(ctx) {}

  using Done = std::function<void(absl::StatusOr<mxkey::v1::EnrollResponse>)>;

  void EnrollAsync(const mxkey::v1::EnrollRequest& request, Done done);
  void RotateAsync(const mxkey::v1::RotateRequest& request, Done done);
  // Ends a rotation's overlap (RotationFinishBody); see the proto.
  void FinishRotationAsync(const mxkey::v1::FinishRotationRequest& request,
                           Done done);

  absl::StatusOr<mxkey::v1::EnrollResponse> Enroll(
      const mxkey::v1::EnrollRequest& request);
  absl::StatusOr<mxkey::v1::EnrollResponse> Rotate(
      const mxkey::v1::RotateRequest& request);
  absl::StatusOr<mxkey::v1::EnrollResponse> FinishRotation(
      const mxkey::v1::FinishRotationRequest& request);

 private:
  const KeydContext* ctx_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_ISSUER_H_
