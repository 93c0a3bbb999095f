#include "keyd/directory.h"

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keyd/cert_states.h"
#include "keyd/records.h"
#include "protocol/certificate_times.h"
#include "protocol/hostname.h"
#include "protocol/signed_object.h"

namespace mxkey {

namespace {

// Adds the answer-worthy certificates of `host` to `answer`: active and
// next ones, and, if `with_revocations`, revoked ones with their events.
absl::Status AddHostCerts(ReadTxn& txn, const keyd::HostRecord& host,
                          int64_t now, bool with_revocations,
                          mxkey::v1::KeyAnswer& answer) {
  ASSIGN_OR_RETURN(std::vector<StoredCert> certs,
                   LoadHostCerts(txn, host, now));
  bool usable = false;
  const StoredCert* newest_expired = nullptr;
  for (const auto& c : certs) {
    if (c.state == CertState::kActive || c.state == CertState::kNext) {
      *answer.add_certificates() = c.record.certificate();
      usable = true;
    } else if (c.state == CertState::kExpired) {
      newest_expired = &c;  // certs are oldest first
    } else if (c.state == CertState::kRevoked && with_revocations) {
      *answer.add_certificates() = c.record.certificate();
      ASSIGN_OR_RETURN(*answer.add_revocations(),
                       GetRecord<mxkey::v1::SignedObject>(
                           txn, Table::kRevocations, U64Key(c.body.serial())));
    }
  }
  // A host whose keys all ran out is "expired", not "unknown": its answer
  // carries the newest expired certificate so clients can say so.
  if (with_revocations && !usable && newest_expired != nullptr) {
    *answer.add_certificates() = newest_expired->record.certificate();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ValidName(absl::string_view name,
                                      absl::string_view what) {
  absl::StatusOr<std::string> canonical = CanonicalHostname(name);
  if (!canonical.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", canonical.status().message()));
  }
  return canonical;
}

}  // namespace

Directory::Directory(const KeydContext* ctx)
    : ctx_(ctx),
      cache_(ctx->options.answer_cache_bytes),
      denial_limit_(ctx->clock,
                    RateLimit{ctx->options.denial_limit_per_minute,
                              std::max(1.0, ctx->options.denial_limit_per_minute / 6)}) {}

absl::StatusOr<mxkey::v1::KeyAnswer> Directory::GetHostKeys(
    absl::string_view hostname, absl::string_view source) {
  ASSIGN_OR_RETURN(std::string name, ValidName(hostname, "hostname"));
  // Read before the store: a write after this point invalidates the answer.
  const uint64_t generation = ctx_->store->generation();
  const std::string key = absl::StrCat("h:", name);
  if (auto reused = ReuseAnswer(key, generation)) {
    ctx_->metrics->answer_cache_hits()->Add();
    return *std::move(reused);
  }
  ctx_->metrics->answer_cache_misses()->Add();
  mxkey::v1::KeyAnswer answer;
  answer.set_name(name);
  Position at;
  bool known = false;
  RETURN_IF_ERROR(ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(at, ReadPosition(txn));
    absl::StatusOr<keyd::HostRecord> host =
        GetRecord<keyd::HostRecord>(txn, Table::kHosts, name);
    if (absl::IsNotFound(host.status())) return absl::OkStatus();
    if (!host.ok()) return host.status();
    RETURN_IF_ERROR(AddHostCerts(txn, *host, ctx_->now(), true, answer));
    known = answer.certificates_size() + answer.revocations_size() > 0;
    return absl::OkStatus();
  }));
  if (!known) {
    RETURN_IF_ERROR(
        AddDenial(name, mxkey::v1::DENIAL_REASON_NO_SUCH_HOST, source, answer));
  }
  RETURN_IF_ERROR(Finish(mxkey::v1::LOOKUP_KIND_HOST, at, answer));
  KeepAnswer(key, generation, answer);
  return answer;
}

absl::StatusOr<mxkey::v1::KeyAnswer> Directory::FindByTlsPin(
    absl::string_view tls_pin) {
  if (tls_pin.size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a TLS pin is the 32-byte SHA-256 of a DER SubjectPublicKeyInfo, got ",
        tls_pin.size(), " bytes"));
  }
  std::string hostname;
  RETURN_IF_ERROR(ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    absl::StatusOr<absl::string_view> owner = txn.Get(Table::kPins, tls_pin);
    if (absl::IsNotFound(owner.status())) return absl::OkStatus();
    if (!owner.ok()) return owner.status();
    hostname = std::string(*owner);
    return absl::OkStatus();
  }));
  absl::StatusOr<mxkey::v1::KeyAnswer> answer =
      hostname.empty() ? absl::NotFoundError("") : GetHostKeys(hostname);
  if (!answer.ok() && !absl::IsNotFound(answer.status())) return answer;
  // The claim outlives the certificate: once the one with the pin is gone
  // from the host's answer (expired long ago, host removed) the host no
  // longer answers for the pin.
  if (answer.ok()) {
    for (const auto& c : answer->certificates()) {
      mxkey::v1::HostCertificateBody body;
      if (!body.ParseFromString(c.body())) continue;
      for (const auto& p : body.tls_spki_sha256()) {
        if (p == tls_pin) return answer;
      }
    }
  }
  return absl::NotFoundError("no host of this organization is certified "
                             "with that TLS pin");
}

absl::StatusOr<mxkey::v1::KeyAnswer> Directory::PinDenial(
    absl::string_view tls_pin, absl::string_view source) {
  if (tls_pin.size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a TLS pin is the 32-byte SHA-256 of a DER SubjectPublicKeyInfo, got ",
        tls_pin.size(), " bytes"));
  }
  mxkey::v1::KeyAnswer answer;
  answer.set_name(TlsPinName(tls_pin));
  Position at;
  RETURN_IF_ERROR(ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(at, ReadPosition(txn));
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(AddDenial(answer.name(), mxkey::v1::DENIAL_REASON_NO_SUCH_PIN,
                            source, answer));
  RETURN_IF_ERROR(Finish(mxkey::v1::LOOKUP_KIND_TLS_PIN, at, answer));
  return answer;
}

absl::StatusOr<mxkey::v1::KeyAnswer> Directory::GetDomainPolicy(
    absl::string_view domain, absl::string_view source) {
  ASSIGN_OR_RETURN(std::string name, ValidName(domain, "mail domain"));
  const uint64_t generation = ctx_->store->generation();
  const std::string key = absl::StrCat("d:", name);
  if (auto reused = ReuseAnswer(key, generation)) {
    ctx_->metrics->answer_cache_hits()->Add();
    return *std::move(reused);
  }
  ctx_->metrics->answer_cache_misses()->Add();
  mxkey::v1::KeyAnswer answer;
  answer.set_name(name);
  Position at;
  RETURN_IF_ERROR(ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(at, ReadPosition(txn));
    absl::StatusOr<mxkey::v1::SignedObject> policy =
        GetRecord<mxkey::v1::SignedObject>(txn, Table::kPolicies, name);
    if (absl::IsNotFound(policy.status())) return absl::OkStatus();
    if (!policy.ok()) return policy.status();
    *answer.mutable_policy() = *std::move(policy);
    std::vector<std::string> hosts;
    std::string prefix = DomainHostKey(name, "");
    RETURN_IF_ERROR(txn.Scan(Table::kDomainHosts, prefix,
                             [&](absl::string_view key, absl::string_view) {
                               if (key.substr(0, prefix.size()) != prefix) {
                                 return false;
                               }
                               hosts.emplace_back(key.substr(prefix.size()));
                               return true;
                             }));
    for (const auto& h : hosts) {
      ASSIGN_OR_RETURN(keyd::HostRecord host,
                       GetRecord<keyd::HostRecord>(txn, Table::kHosts, h));
      RETURN_IF_ERROR(AddHostCerts(txn, host, ctx_->now(), false, answer));
    }
    return absl::OkStatus();
  }));
  if (!answer.has_policy()) {
    RETURN_IF_ERROR(
        AddDenial(name, mxkey::v1::DENIAL_REASON_DOMAIN_UNKEYED, source,
                  answer));
  }
  RETURN_IF_ERROR(Finish(mxkey::v1::LOOKUP_KIND_DOMAIN, at, answer));
  KeepAnswer(key, generation, answer);
  return answer;
}

std::optional<mxkey::v1::KeyAnswer> Directory::ReuseAnswer(
    const std::string& key, uint64_t generation) {
  return cache_.FindAnswer(key, generation, generation == reported_.load(),
                           ctx_->now());
}

void Directory::KeepAnswer(const std::string& key, uint64_t generation,
                           const mxkey::v1::KeyAnswer& answer) {
  mxkey::v1::FreshnessBody freshness;
  if (!freshness.ParseFromString(answer.freshness().body())) return;
  const int64_t now = ctx_->now();
  // Never later than the freshness statement may be reused...
  int64_t expires = freshness.as_of() + ReuseSeconds(answer.name());
  // ...nor past a certificate's next state change.
  for (const auto& c : answer.certificates()) {
    mxkey::v1::HostCertificateBody body;
    if (!body.ParseFromString(c.body())) return;
    expires = NextCertificateChange(body, now, expires);
  }
  if (expires <= now) return;
  cache_.KeepAnswer(key, generation, expires, answer);
}

void Directory::Invalidate(const StoreChange& change) {
  // A new bundle (peers) changes what every freshness statement binds.
  if (change.everything || change.peers) cache_.DropAnswers(change.generation);
  for (const std::string& host : change.hosts) {
    cache_.Tombstone(absl::StrCat("h:", host), change.generation);
  }
  for (const std::string& domain : change.domains) {
    cache_.Tombstone(absl::StrCat("d:", domain), change.generation);
  }
  // Only after the tombstones: a reader that sees this generation as fully
  // reported must also see them.
  uint64_t seen = reported_.load();
  while (seen < change.generation &&
         !reported_.compare_exchange_weak(seen, change.generation)) {
  }
}

mxkey::v1::OrgInfo Directory::GetOrgInfo() const {
  mxkey::v1::OrgInfo info;
  info.set_org(ctx_->keys->org());
  info.set_root_public_key(ctx_->keys->root_public_key());
  info.set_root_fingerprint(ctx_->keys->root_fingerprint());
  *info.mutable_issuing_key() = ctx_->keys->issuing_cert();
  return info;
}

int64_t Directory::ReuseSeconds(absl::string_view name) const {
  const int64_t period = absl::ToInt64Seconds(ctx_->options.freshness);
  const int64_t spread = period / 4;
  if (spread == 0) return period / 2;
  return period / 2 -
         static_cast<int64_t>(absl::Hash<absl::string_view>()(name) %
                              static_cast<uint64_t>(spread));
}

absl::StatusOr<mxkey::v1::SignedObject> Directory::CachedSign(
    const std::string& key, const std::string& name, const std::string& digest,
    ObjectType type, absl::string_view source,
    const std::function<std::string(int64_t now)>& make_body) {
  const int64_t now = ctx_->now();
  if (auto kept = cache_.FindSignature(key, digest, now, ReuseSeconds(name))) {
    return *std::move(kept);
  }
  if (!source.empty()) {
    RETURN_IF_ERROR(denial_limit_.Take(
        source, "new signed denials (lookups of names nobody registered)"));
  }
  ASSIGN_OR_RETURN(mxkey::v1::SignedObject object,
                   ctx_->keys->Sign(type, make_body(now)));
  ctx_->metrics->signatures()->Add();
  cache_.KeepSignature(key, digest, now, object);
  return object;
}

absl::Status Directory::AddDenial(const std::string& name,
                                  mxkey::v1::DenialReason reason,
                                  absl::string_view source,
                                  mxkey::v1::KeyAnswer& answer) {
  ASSIGN_OR_RETURN(
      *answer.mutable_denial(),
      CachedSign(absl::StrCat("sd:", reason, ":", name), name, "",
                 ObjectType::kDenial, source, [&](int64_t now) {
                   mxkey::v1::DenialBody body;
                   body.set_name(name);
                   body.set_reason(reason);
                   body.set_as_of(now);
                   return body.SerializeAsString();
                 }));
  return absl::OkStatus();
}

absl::StatusOr<Directory::Position> Directory::ReadPosition(ReadTxn& txn) {
  Position at;
  ASSIGN_OR_RETURN(at.feed_head, GetCounter(txn, kFeedHeadCounter));
  ASSIGN_OR_RETURN(at.bundle_version, GetCounter(txn, kBundleVersionCounter));
  return at;
}

absl::Status Directory::Finish(mxkey::v1::LookupKind kind, const Position& at,
                               mxkey::v1::KeyAnswer& answer) {
  const std::vector<const mxkey::v1::SignedObject*> covered =
      CoveredObjects(answer);
  // Issuers of every covered object; the current one is always included.
  std::vector<std::string> ids = {KeyId(ctx_->keys->issuing_body().public_key())};
  *answer.add_issuing_keys() = ctx_->keys->issuing_cert();
  for (const auto* o : covered) {
    if (std::find(ids.begin(), ids.end(), o->signer_key_id()) != ids.end()) {
      continue;
    }
    std::optional<mxkey::v1::SignedObject> cert =
        ctx_->keys->IssuingCertById(o->signer_key_id());
    if (!cert) continue;  // the client will report the gap
    ids.push_back(o->signer_key_id());
    *answer.add_issuing_keys() = *cert;
  }
  std::string digest = AnswerDigest(covered);
  const std::string& name = answer.name();
  const int64_t validity = absl::ToInt64Seconds(ctx_->options.freshness);
  // What the statement binds beyond the objects: the lookup and the
  // federation bundle it was made under (a new bundle re-signs it).
  const std::string bound = absl::StrCat(digest, ":", at.bundle_version);
  ASSIGN_OR_RETURN(
      *answer.mutable_freshness(),
      CachedSign(absl::StrCat("sf:", kind, ":", name), name, bound,
                 ObjectType::kFreshness, "", [&](int64_t now) {
                   mxkey::v1::FreshnessBody body;
                   body.set_name(name);
                   body.set_answer_sha256(digest);
                   body.set_feed_head(at.feed_head);
                   body.set_as_of(now);
                   body.set_valid_until(now + validity);
                   body.set_kind(kind);
                   body.set_bundle_version(at.bundle_version);
                   return body.SerializeAsString();
                 }));
  return absl::OkStatus();
}

}  // namespace mxkey
