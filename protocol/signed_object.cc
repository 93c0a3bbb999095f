#include "protocol/signed_object.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/secret_bytes.h"
#include "crypto/sha256.h"

namespace mxkey {

absl::string_view SignatureContext(ObjectType type) {
  switch (type) {
    case ObjectType::kIssuingKey:
      return absl::string_view("mxkey/v1 issuing-key\0", 21);
    case ObjectType::kHostCertificate:
      return absl::string_view("mxkey/v1 host-cert\0", 19);
    case ObjectType::kDomainPolicy:
      return absl::string_view("mxkey/v1 domain-policy\0", 23);
    case ObjectType::kDenial:
      return absl::string_view("mxkey/v1 denial\0", 16);
    case ObjectType::kFreshness:
      return absl::string_view("mxkey/v1 freshness\0", 19);
    case ObjectType::kRevocation:
      return absl::string_view("mxkey/v1 revocation\0", 20);
    case ObjectType::kFederationBundle:
      return absl::string_view("mxkey/v1 federation-bundle\0", 27);
    case ObjectType::kKeydTlsKey:
      return absl::string_view("mxkey/v1 keyd-tls-key\0", 22);
    case ObjectType::kEnrollToken:
      return absl::string_view("mxkey/v1 enroll-token\0", 22);
    case ObjectType::kEnrollProofOfPossession:
      return absl::string_view("mxkey/v1 enroll-pop\0", 20);
    case ObjectType::kRotateCurrent:
      return absl::string_view("mxkey/v1 rotate-current\0", 24);
    case ObjectType::kRotateProofOfPossession:
      return absl::string_view("mxkey/v1 rotate-pop\0", 20);
    case ObjectType::kRotateFinish:
      return absl::string_view("mxkey/v1 rotate-finish\0", 23);
    case ObjectType::kTlsKeyProof:
      return absl::string_view("mxkey/v1 tls-key-proof\0", 23);
  }
  return "";
}

std::string KeyId(absl::string_view public_key) { return Sha256(public_key); }

absl::StatusOr<std::string> SignBytes(const Ed25519PrivateKey& key,
                                      ObjectType type, absl::string_view body) {
  return key.Sign(absl::StrCat(SignatureContext(type), body));
}

absl::Status VerifyBytes(absl::string_view public_key, ObjectType type,
                         absl::string_view body, absl::string_view signature) {
  return Ed25519Verify(public_key, absl::StrCat(SignatureContext(type), body),
                       signature);
}

absl::StatusOr<mxkey::v1::SignedObject> SignObject(
    const Ed25519PrivateKey& key, ObjectType type, std::string body) {
  absl::StatusOr<std::string> sig = SignBytes(key, type, body);
  if (!sig.ok()) return sig.status();
  mxkey::v1::SignedObject object;
  object.set_body(std::move(body));
  object.set_signature(*std::move(sig));
  object.set_signer_key_id(KeyId(key.public_key()));
  return object;
}

absl::Status VerifyObject(const mxkey::v1::SignedObject& object,
                          ObjectType type, absl::string_view public_key) {
  if (!ConstantTimeEquals(object.signer_key_id(), KeyId(public_key))) {
    return absl::UnauthenticatedError(
        "signed object names a signer other than the expected key");
  }
  absl::Status st =
      VerifyBytes(public_key, type, object.body(), object.signature());
  if (!st.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("signature check failed: ", st.message()));
  }
  return absl::OkStatus();
}

namespace {

void AppendLengthPrefixed(Sha256Hasher* h, absl::string_view data) {
  const uint32_t n = static_cast<uint32_t>(data.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  h->Update(absl::string_view(len, 4));
  h->Update(data);
}

}  // namespace

std::vector<const mxkey::v1::SignedObject*> CoveredObjects(
    const mxkey::v1::KeyAnswer& answer) {
  std::vector<const mxkey::v1::SignedObject*> covered;
  for (const auto& c : answer.certificates()) covered.push_back(&c);
  for (const auto& r : answer.revocations()) covered.push_back(&r);
  if (answer.has_policy()) covered.push_back(&answer.policy());
  if (answer.has_denial()) covered.push_back(&answer.denial());
  return covered;
}

std::string AnswerDigest(
    const std::vector<const mxkey::v1::SignedObject*>& objects) {
  Sha256Hasher h;
  for (const auto* object : objects) {
    AppendLengthPrefixed(&h, object->body());
    AppendLengthPrefixed(&h, object->signature());
  }
  return h.Finish();
}

}  // namespace mxkey

namespace mxkey {

std::string TlsPinName(absl::string_view pin) {
  return absl::BytesToHexString(pin);
}

}  // namespace mxkey
