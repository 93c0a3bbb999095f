#include "client/host_keys.h"

#include "crypto/secret_bytes.h"

#include <algorithm>

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/files.h"
#include "base/status_macros.h"
#include "crypto/spki.h"
#include "protocol/signed_object.h"

namespace mxkey {

namespace {

std::string KeyPath(const std::string& dir, const std::string& subdir,
                    absl::string_view name) {
  return subdir.empty() ? absl::StrCat(dir, "/", name)
                        : absl::StrCat(dir, "/", subdir, "/", name);
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("cannot create ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<SecretBytes> ReadSecret(const std::string& path) {
  ASSIGN_OR_RETURN(std::string raw, ReadFile(path, 64));
  SecretBytes secret(raw);
  SecureWipe(&raw[0], raw.size());
  return secret;
}

}  // namespace

absl::StatusOr<HostKeys> HostKeys::Generate() {
  ASSIGN_OR_RETURN(Ed25519PrivateKey identity, Ed25519PrivateKey::Generate());
  ASSIGN_OR_RETURN(X25519PrivateKey agreement, X25519PrivateKey::Generate());
  return HostKeys{std::move(identity), std::move(agreement)};
}

absl::StatusOr<Ed25519PrivateKey> TokenKey(absl::string_view token_hex) {
  std::string hex(absl::StripAsciiWhitespace(token_hex));
  bool all_hex = hex.size() == 2 * kEd25519SeedSize;
  for (char c : hex) all_hex &= absl::ascii_isxdigit(static_cast<unsigned char>(c));
  if (!all_hex) {
    return absl::InvalidArgumentError(
        "the enrollment token must be 64 hex digits, as printed by "
        "`keyctl host add` or `keyctl token create`");
  }
  SecretBytes seed(absl::HexStringToBytes(hex));
  SecureWipe(&hex[0], hex.size());
  return Ed25519PrivateKey::FromSeed(seed);
}

absl::StatusOr<std::vector<std::string>> PinsFromPemFile(
    const std::string& pem_path) {
  if (pem_path.empty()) return std::vector<std::string>{};
  ASSIGN_OR_RETURN(std::string pem, ReadFile(pem_path));
  absl::StatusOr<std::string> pin = TlsPinFromPem(pem);
  if (!pin.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(pem_path, ": ", pin.status().message()));
  }
  return std::vector<std::string>{*pin};
}

absl::StatusOr<TlsKeySigner> TlsKeyFromPemFile(const std::string& key_path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFile(key_path));
  absl::StatusOr<TlsKeySigner> key = TlsKeySigner::FromPem(pem);
  SecureWipe(pem.data(), pem.size());
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, ": ", key.status().message()));
  }
  return key;
}

namespace {

// Every pin once: `pins` first, then those of `tls_keys`.
template <typename Body>
void AddPins(Body& body, const std::vector<std::string>& pins,
             const std::vector<const TlsKeySigner*>& tls_keys) {
  std::vector<std::string> all = pins;
  for (const TlsKeySigner* k : tls_keys) all.push_back(k->pin());
  for (const auto& p : all) {
    if (std::find(body.tls_spki_sha256().begin(), body.tls_spki_sha256().end(),
                  p) == body.tls_spki_sha256().end()) {
      body.add_tls_spki_sha256(p);
    }
  }
}

template <typename Request>
absl::Status AddTlsKeyProofs(Request& request,
                             const std::vector<const TlsKeySigner*>& tls_keys) {
  for (const TlsKeySigner* k : tls_keys) {
    mxkey::v1::TlsKeyProof* proof = request.add_tls_key_proofs();
    proof->set_spki(k->spki_der());
    ASSIGN_OR_RETURN(*proof->mutable_signature(), k->SignProof(request.body()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<mxkey::v1::EnrollRequest> MakeEnrollRequest(
    const std::string& hostname, const Ed25519PrivateKey& token,
    const HostKeys& keys, const std::vector<std::string>& pins,
    absl::Time now, const std::vector<const TlsKeySigner*>& tls_keys) {
  mxkey::v1::EnrollmentBody body;
  body.set_hostname(hostname);
  body.set_token_public_key(token.public_key());
  body.set_identity_key(keys.identity.public_key());
  body.set_agreement_key(keys.agreement.public_key());
  AddPins(body, pins, tls_keys);
  body.set_timestamp(absl::ToUnixSeconds(now));
  mxkey::v1::EnrollRequest request;
  request.set_body(body.SerializeAsString());
  RETURN_IF_ERROR(AddTlsKeyProofs(request, tls_keys));
  ASSIGN_OR_RETURN(*request.mutable_token_signature(),
                   SignBytes(token, ObjectType::kEnrollToken, request.body()));
  ASSIGN_OR_RETURN(*request.mutable_identity_signature(),
                   SignBytes(keys.identity,
                             ObjectType::kEnrollProofOfPossession,
                             request.body()));
  return request;
}

absl::StatusOr<mxkey::v1::RotateRequest> MakeRotateRequest(
    const std::string& hostname, uint64_t current_serial,
    const Ed25519PrivateKey& current_identity, const HostKeys& next,
    const std::vector<std::string>& pins, absl::Time now,
    absl::Duration overlap, const std::vector<const TlsKeySigner*>& tls_keys) {
  mxkey::v1::RotationBody body;
  body.set_hostname(hostname);
  body.set_current_serial(current_serial);
  body.set_identity_key(next.identity.public_key());
  body.set_agreement_key(next.agreement.public_key());
  AddPins(body, pins, tls_keys);
  body.set_timestamp(absl::ToUnixSeconds(now));
  body.set_overlap_seconds(absl::ToInt64Seconds(overlap));
  mxkey::v1::RotateRequest request;
  request.set_body(body.SerializeAsString());
  RETURN_IF_ERROR(AddTlsKeyProofs(request, tls_keys));
  ASSIGN_OR_RETURN(*request.mutable_current_signature(),
                   SignBytes(current_identity, ObjectType::kRotateCurrent,
                             request.body()));
  ASSIGN_OR_RETURN(*request.mutable_identity_signature(),
                   SignBytes(next.identity,
                             ObjectType::kRotateProofOfPossession,
                             request.body()));
  return request;
}

absl::StatusOr<mxkey::v1::FinishRotationRequest> MakeFinishRotationRequest(
    const std::string& hostname, uint64_t next_serial,
    const Ed25519PrivateKey& next_identity, absl::Time now) {
  mxkey::v1::RotationFinishBody body;
  body.set_hostname(hostname);
  body.set_next_serial(next_serial);
  body.set_timestamp(absl::ToUnixSeconds(now));
  mxkey::v1::FinishRotationRequest request;
  request.set_body(body.SerializeAsString());
  ASSIGN_OR_RETURN(*request.mutable_identity_signature(),
                   SignBytes(next_identity, ObjectType::kRotateFinish,
                             request.body()));
  return request;
}

absl::Status SaveHostKeys(const std::string& dir, const std::string& subdir,
                          const HostKeys& keys,
                          const mxkey::v1::EnrollResponse* certificate) {
  RETURN_IF_ERROR(MakeDir(dir));
  if (!subdir.empty()) RETURN_IF_ERROR(MakeDir(absl::StrCat(dir, "/", subdir)));
  RETURN_IF_ERROR(WriteFileAtomically(KeyPath(dir, subdir, "identity.key"),
                                      keys.identity.seed().view(), 0600));
  RETURN_IF_ERROR(WriteFileAtomically(KeyPath(dir, subdir, "agreement.key"),
                                      keys.agreement.private_key().view(),
                                      0600));
  if (certificate == nullptr) return absl::OkStatus();
  return WriteFileAtomically(KeyPath(dir, subdir, "certificate.pb"),
                             certificate->SerializeAsString(), 0600);
}

void RemoveHostKeys(const std::string& dir, const std::string& subdir) {
  if (subdir.empty()) return;
  for (absl::string_view name : {"identity.key", "agreement.key",
                                 "certificate.pb"}) {
    unlink(KeyPath(dir, subdir, name).c_str());
  }
  rmdir(absl::StrCat(dir, "/", subdir).c_str());
}

absl::StatusOr<HostKeys> LoadHostKeys(const std::string& dir,
                                      const std::string& subdir) {
  ASSIGN_OR_RETURN(SecretBytes id,
                   ReadSecret(KeyPath(dir, subdir, "identity.key")));
  ASSIGN_OR_RETURN(SecretBytes x,
                   ReadSecret(KeyPath(dir, subdir, "agreement.key")));
  ASSIGN_OR_RETURN(Ed25519PrivateKey identity, Ed25519PrivateKey::FromSeed(id));
  ASSIGN_OR_RETURN(X25519PrivateKey agreement, X25519PrivateKey::FromBytes(x));
  return HostKeys{std::move(identity), std::move(agreement)};
}

absl::StatusOr<mxkey::v1::EnrollResponse> LoadCertificate(
    const std::string& dir, const std::string& subdir) {
  std::string path = KeyPath(dir, subdir, "certificate.pb");
  ASSIGN_OR_RETURN(std::string raw, ReadFile(path));
  mxkey::v1::EnrollResponse response;
  if (!response.ParseFromString(raw)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is corrupt"));
  }
  return response;
}

absl::StatusOr<bool> PromoteNextKeysIfActive(const std::string& dir,
                                             absl::Time now) {
  absl::StatusOr<mxkey::v1::EnrollResponse> next = LoadCertificate(dir, "next");
  if (absl::IsNotFound(next.status())) return false;
  if (!next.ok()) return next.status();
  ASSIGN_OR_RETURN(auto body, ParseBody<mxkey::v1::HostCertificateBody>(
                                  next->certificate()));
  if (absl::ToUnixSeconds(now) < body.active_from()) return false;
  ASSIGN_OR_RETURN(HostKeys keys, LoadHostKeys(dir, "next"));
  RETURN_IF_ERROR(SaveHostKeys(dir, "", keys, &*next));
  RemoveHostKeys(dir, "next");
  return true;
}

}  // namespace mxkey
