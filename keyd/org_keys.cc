#include "keyd/org_keys.h"

#include "protocol/certificate_times.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/files.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/sha256.h"

namespace mxkey {

namespace {

std::string PathIn(const std::string& dir, absl::string_view name) {
  return absl::StrCat(dir, "/", name);
}

absl::StatusOr<Ed25519PrivateKey> OpenKeyFile(const std::string& path,
                                              const SecretBytes& passphrase) {
  ASSIGN_OR_RETURN(std::string sealed, ReadFile(path));
  absl::StatusOr<SecretBytes> seed = OpenSealedSecret(passphrase, sealed);
  if (!seed.ok()) {
    return absl::Status(seed.status().code(),
                        absl::StrCat(path, ": ", seed.status().message()));
  }
  return Ed25519PrivateKey::FromSeed(*seed);
}

absl::Status SealKeyFile(const std::string& path, const Ed25519PrivateKey& key,
                         const SecretBytes& passphrase,
                         const OrgKeysOptions& options) {
  ASSIGN_OR_RETURN(std::string sealed,
                   SealSecret(passphrase, key.seed(), options.scrypt));
  return WriteFileAtomically(path, sealed, 0600);
}

// Makes a new issuing key, certified by `root`, sealed into issuing.key, and
// appends its certificate to `state`.
absl::StatusOr<Ed25519PrivateKey> NewIssuingKey(
    const std::string& dir, const Ed25519PrivateKey& root,
    keyd::OrgState& state, const SecretBytes& passphrase,
    const OrgKeysOptions& options, Clock* clock) {
  ASSIGN_OR_RETURN(Ed25519PrivateKey issuing, Ed25519PrivateKey::Generate());
  mxkey::v1::IssuingKeyBody body;
  body.set_org(state.org());
  body.set_public_key(issuing.public_key());
  int64_t now = absl::ToUnixSeconds(clock->Now());
  body.set_not_before(now - kBackdateSeconds);
  body.set_not_after(now + absl::ToInt64Seconds(options.issuing_validity));
  ASSIGN_OR_RETURN(mxkey::v1::SignedObject cert,
                   SignObject(root, ObjectType::kIssuingKey,
                              body.SerializeAsString()));
  // Every certificate is kept, expired ones too: the revocation events of
  // the feed they signed stay verifiable forever (about 18 a year).
  keyd::OrgState kept = state;
  *kept.add_issuing_certs() = cert;
  // Key first: a crash in between leaves a key whose certificate is missing,
  // which Load reports, rather than a certificate without its key.
  RETURN_IF_ERROR(SealKeyFile(PathIn(dir, "issuing.key.new"), issuing,
                              passphrase, options));
  RETURN_IF_ERROR(WriteFileAtomically(PathIn(dir, "org.pb"),
                                      kept.SerializeAsString(), 0600));
  if (rename(PathIn(dir, "issuing.key.new").c_str(),
             PathIn(dir, "issuing.key").c_str()) != 0) {
    return absl::InternalError("cannot install the new issuing.key");
  }
  state = std::move(kept);
  return issuing;
}

// A renewal writes issuing.key.new, then org.pb, then renames the key into
// place. After a crash between the last two steps, org.pb already names the
// new key: finish the rename. A leftover key that org.pb does not name is
// dropped (the renewal never took effect).
absl::Status FinishInterruptedRenewal(const std::string& dir,
                                      const keyd::OrgState& state,
                                      const SecretBytes& passphrase) {
  std::string pending = PathIn(dir, "issuing.key.new");
  if (access(pending.c_str(), F_OK) != 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(Ed25519PrivateKey key, OpenKeyFile(pending, passphrase));
  mxkey::v1::IssuingKeyBody last;
  last.ParseFromString(
      state.issuing_certs(state.issuing_certs_size() - 1).body());
  if (last.public_key() == key.public_key()) {
    if (rename(pending.c_str(), PathIn(dir, "issuing.key").c_str()) != 0) {
      return absl::InternalError("cannot install issuing.key.new");
    }
    LogWarning("completed an interrupted issuing-key renewal");
  } else {
    unlink(pending.c_str());
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status OrgKeys::Init(const std::string& dir, const std::string& org,
                           const SecretBytes& passphrase,
                           const OrgKeysOptions& options, Clock* clock) {
  if (org.empty() || org.size() > 128) {
    return absl::InvalidArgumentError(
        "organization name must be 1 to 128 bytes");
  }
  if (access(PathIn(dir, "root.key").c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(
        dir, " already holds an org root (root.key); refusing to overwrite"));
  }
  ASSIGN_OR_RETURN(Ed25519PrivateKey root, Ed25519PrivateKey::Generate());
  keyd::OrgState state;
  state.set_org(org);
  state.set_root_public_key(root.public_key());
  RETURN_IF_ERROR(
      SealKeyFile(PathIn(dir, "root.key"), root, passphrase, options));
  absl::StatusOr<Ed25519PrivateKey> issuing =
      NewIssuingKey(dir, root, state, passphrase, options, clock);
  return issuing.status();
}

absl::StatusOr<std::shared_ptr<const OrgKeys::Issuer>> OrgKeys::MakeIssuer(
    keyd::OrgState state, Ed25519PrivateKey key,
    const std::string& root_public_key) {
  auto issuer = std::make_shared<Issuer>();
  const auto& cert = state.issuing_certs(state.issuing_certs_size() - 1);
  RETURN_IF_ERROR(VerifyObject(cert, ObjectType::kIssuingKey, root_public_key));
  ASSIGN_OR_RETURN(issuer->body, ParseBody<mxkey::v1::IssuingKeyBody>(cert));
  if (issuer->body.public_key() != key.public_key()) {
    return absl::DataLossError("issuing.key does not match org.pb");
  }
  for (const auto& c : state.issuing_certs()) {
    mxkey::v1::IssuingKeyBody b;
    b.ParseFromString(c.body());
    issuer->ids.push_back(KeyId(b.public_key()));
  }
  issuer->state = std::move(state);
  issuer->key = std::make_shared<const Ed25519PrivateKey>(std::move(key));
  return std::shared_ptr<const Issuer>(std::move(issuer));
}

absl::StatusOr<std::unique_ptr<OrgKeys>> OrgKeys::Load(
    const std::string& dir, const SecretBytes& passphrase,
    const OrgKeysOptions& options, Clock* clock) {
  absl::StatusOr<std::string> raw = ReadFile(PathIn(dir, "org.pb"));
  if (absl::IsNotFound(raw.status())) {
    return absl::NotFoundError(absl::StrCat(
        dir, " is not initialized: run `keyd init --data-dir ", dir,
        " --org NAME` first"));
  }
  if (!raw.ok()) return raw.status();
  keyd::OrgState state;
  if (!state.ParseFromString(*raw) || state.issuing_certs_size() == 0) {
    return absl::DataLossError(absl::StrCat(dir, "/org.pb is corrupt"));
  }
  ASSIGN_OR_RETURN(Ed25519PrivateKey root,
                   OpenKeyFile(PathIn(dir, "root.key"), passphrase));
  if (root.public_key() != state.root_public_key()) {
    return absl::DataLossError("root.key does not match org.pb");
  }
  RETURN_IF_ERROR(FinishInterruptedRenewal(dir, state, passphrase));
  ASSIGN_OR_RETURN(Ed25519PrivateKey issuing,
                   OpenKeyFile(PathIn(dir, "issuing.key"), passphrase));
  std::string org = state.org();
  ASSIGN_OR_RETURN(std::shared_ptr<const Issuer> issuer,
                   MakeIssuer(std::move(state), std::move(issuing),
                              root.public_key()));
  std::unique_ptr<OrgKeys> keys(
      new OrgKeys(dir, std::move(root), passphrase, options, clock));
  keys->org_ = std::move(org);
  {
    MutexLock lock(&keys->mu_);
    keys->issuer_ = std::move(issuer);
  }
  RETURN_IF_ERROR(keys->RenewIfDue());
  return keys;
}

absl::Status OrgKeys::RenewIfDue() {
  MutexLock renewing(&renew_mu_);
  std::shared_ptr<const Issuer> current = issuer();
  int64_t now = absl::ToUnixSeconds(clock_->Now());
  const auto& body = current->body;
  int64_t renew_at =
      body.not_after() - (body.not_after() - body.not_before()) / 3;
  if (now < renew_at) return absl::OkStatus();
  keyd::OrgState state = current->state;
  ASSIGN_OR_RETURN(Ed25519PrivateKey issuing,
                   NewIssuingKey(dir_, root_, state, passphrase_, options_,
                                 clock_));
  std::string fingerprint = KeyFingerprint(issuing.public_key());
  ASSIGN_OR_RETURN(std::shared_ptr<const Issuer> next,
                   MakeIssuer(std::move(state), std::move(issuing),
                              root_.public_key()));
  {
    MutexLock lock(&mu_);
    issuer_ = std::move(next);
  }
  LogInfo("issuing key renewed: %s", fingerprint);
  return absl::OkStatus();
}

std::shared_ptr<const OrgKeys::Issuer> OrgKeys::issuer() const {
  MutexLock lock(&mu_);
  return issuer_;
}

std::string OrgKeys::root_fingerprint() const {
  return KeyFingerprint(root_public_key());
}

mxkey::v1::SignedObject OrgKeys::issuing_cert() const {
  auto current = issuer();
  return current->state.issuing_certs(current->state.issuing_certs_size() - 1);
}

mxkey::v1::IssuingKeyBody OrgKeys::issuing_body() const {
  return issuer()->body;
}

std::optional<mxkey::v1::SignedObject> OrgKeys::IssuingCertById(
    absl::string_view key_id) const {
  auto current = issuer();
  for (size_t i = 0; i < current->ids.size(); ++i) {
    if (current->ids[i] == key_id) return current->state.issuing_certs(i);
  }
  return std::nullopt;
}

absl::StatusOr<mxkey::v1::SignedObject> OrgKeys::SignFederationBundle(
    std::string body) const {
  return SignObject(root_, ObjectType::kFederationBundle, std::move(body));
}

absl::StatusOr<mxkey::v1::SignedObject> OrgKeys::SignKeydTlsKey(
    std::string body) const {
  return SignObject(root_, ObjectType::kKeydTlsKey, std::move(body));
}

absl::StatusOr<mxkey::v1::SignedObject> OrgKeys::Sign(ObjectType type,
                                                      std::string body) const {
  std::shared_ptr<const Ed25519PrivateKey> key = issuer()->key;
  return SignObject(*key, type, std::move(body));
}

}  // namespace mxkey
