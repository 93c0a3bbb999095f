// Signing and verifying mxkey signed objects.
//
// A signature covers a context string unique to the object type, then the
// exact body bytes; bodies are never re-serialized before verification. The
// signer key id is SHA-256 of the signer's 32-byte Ed25519 public key.
// Verification fails with UNAUTHENTICATED (wrong signer, bad signature) or
// INVALID_ARGUMENT (malformed object).
#ifndef MXKEY_PROTOCOL_SIGNED_OBJECT_H_
#define MXKEY_PROTOCOL_SIGNED_OBJECT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/ed25519.h"
#include "proto/mxkey/v1/mxkey.pb.h"
#include "proto/mxkey/v1/objects.pb.h"

namespace mxkey {

enum class ObjectType {
  kIssuingKey,
  kHostCertificate,
  kDomainPolicy,
  kDenial,
  kFreshness,
  kRevocation,
  kFederationBundle,
  kEnrollToken,
  kEnrollProofOfPossession,
  kRotateCurrent,
  kRotateProofOfPossession,
  kKeydTlsKey,
  kRotateFinish,
  // Not Ed25519: a host's TLS key signs this context || the enrollment or
  // rotation body, proving that it holds the key it asks keyd to pin.
  kTlsKeyProof,
};

// The context string, including its trailing NUL byte.
absl::string_view SignatureContext(ObjectType type);

// SHA-256 of a 32-byte public key.
std::string KeyId(absl::string_view public_key);

// Raw signature over context || body.
absl::StatusOr<std::string> SignBytes(const Ed25519PrivateKey& key,
                                      ObjectType type, absl::string_view body);
absl::Status VerifyBytes(absl::string_view public_key, ObjectType type,
                         absl::string_view body, absl::string_view signature);

absl::StatusOr<mxkey::v1::SignedObject> SignObject(
    const Ed25519PrivateKey& key, ObjectType type, std::string body);

// Checks the key id and the signature of `object` against `public_key`.
absl::Status VerifyObject(const mxkey::v1::SignedObject& object,
                          ObjectType type, absl::string_view public_key);

// Parses the body of an already verified object into `Body`.
template <typename Body>
absl::StatusOr<Body> ParseBody(const mxkey::v1::SignedObject& object) {
  Body body;
  if (!body.ParseFromString(object.body())) {
    return absl::InvalidArgumentError(
        "signed object body is not a valid " + body.GetTypeName());
  }
  return body;
}

// The digest a freshness statement binds: SHA-256 over each object as
// u32be(len(body)) || body || u32be(len(signature)) || signature.
std::string AnswerDigest(
    const std::vector<const mxkey::v1::SignedObject*>& objects);

// What an answer's freshness statement covers, in digest order: every
// certificate, every revocation, then the policy and the denial if present.
std::vector<const mxkey::v1::SignedObject*> CoveredObjects(
    const mxkey::v1::KeyAnswer& answer);

// The name a FindByTlsPin denial is about: the 32-byte pin in lower-case
// hex (64 digits), so it can never equal a hostname (labels are at most 63).
std::string TlsPinName(absl::string_view pin);

}  // namespace mxkey

#endif  // MXKEY_PROTOCOL_SIGNED_OBJECT_H_
