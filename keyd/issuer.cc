#include "keyd/issuer.h"

#include "protocol/certificate_times.h"

#include <future>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/time_format.h"
#include "base/status_macros.h"
#include "crypto/ed25519.h"
#include "crypto/sha256.h"
#include "crypto/x25519.h"
#include "keyd/cert_states.h"
#include "keyd/records.h"
#include "keyd/revocation.h"
#include "protocol/hostname.h"
#include "protocol/signed_object.h"
#include "absl/strings/escaping.h"
#include "crypto/tls_key_proof.h"

namespace mxkey {

namespace {

// The parts of an enrollment or rotation body that become a certificate.
struct KeyRequest {
  std::string hostname;
  std::string identity_key;
  std::string agreement_key;
  std::vector<std::string> pins;
  // The pins whose TLS key signed the request (TlsKeyProof).
  std::set<std::string> proven_pins;
  int64_t timestamp;
};

// A host's request carries its clock; keyd allows max_clock_skew either way.
absl::Status CheckTimestamp(const KeydContext& ctx, int64_t timestamp) {
  int64_t skew = absl::ToInt64Seconds(ctx.options.max_clock_skew);
  if (timestamp < ctx.now() - skew || timestamp > ctx.now() + skew) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request timestamp is more than ", skew,
        " s away from keyd's clock; check the host's time"));
  }
  return absl::OkStatus();
}

template <typename Body>
absl::StatusOr<KeyRequest> CheckKeyRequest(const KeydContext& ctx,
                                           const Body& body) {
  KeyRequest kr;
  ASSIGN_OR_RETURN(kr.hostname, CanonicalHostname(body.hostname()));
  if (body.identity_key().size() != kEd25519PublicKeySize) {
    return absl::InvalidArgumentError("identity_key must be 32 bytes (Ed25519)");
  }
  if (body.agreement_key().size() != kX25519KeySize) {
    return absl::InvalidArgumentError("agreement_key must be 32 bytes (X25519)");
  }
  if (body.tls_spki_sha256_size() > ctx.options.max_tls_pins) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", ctx.options.max_tls_pins, " TLS pins"));
  }
  std::set<std::string> pins;
  for (const auto& pin : body.tls_spki_sha256()) {
    if (pin.size() != kSha256Size) {
      return absl::InvalidArgumentError(
          "each TLS pin must be a 32-byte SHA-256 of a DER SubjectPublicKeyInfo");
    }
    if (!pins.insert(pin).second) {
      return absl::InvalidArgumentError("duplicate TLS pin");
    }
  }
  kr.identity_key = body.identity_key();
  kr.agreement_key = body.agreement_key();
  kr.pins.assign(pins.begin(), pins.end());
  kr.timestamp = body.timestamp();
  RETURN_IF_ERROR(CheckTimestamp(ctx, kr.timestamp));
  return kr;
}

absl::Status CheckSignature(absl::string_view key, ObjectType type,
                            absl::string_view body, absl::string_view sig,
                            absl::string_view what) {
  absl::Status st = VerifyBytes(key, type, body, sig);
  if (!st.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " does not verify: ", st.message()));
  }
  return absl::OkStatus();
}

// Verifies the request's proofs of possession of TLS keys and notes which
// pins they prove. A proof of a key the body does not pin is malformed.
template <typename Request>
absl::Status CheckTlsKeyProofs(const KeydContext& ctx, const Request& request,
                               KeyRequest& kr) {
  if (request.tls_key_proofs_size() > ctx.options.max_tls_pins) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", ctx.options.max_tls_pins, " TLS key proofs"));
  }
  for (const auto& proof : request.tls_key_proofs()) {
    const std::string pin = Sha256(proof.spki());
    if (std::find(kr.pins.begin(), kr.pins.end(), pin) == kr.pins.end()) {
      return absl::InvalidArgumentError(
          "a TLS key proof is for a key whose pin the request does not ask "
          "for");
    }
    RETURN_IF_ERROR(
        VerifyTlsKeyProof(proof.spki(), request.body(), proof.signature()));
    kr.proven_pins.insert(pin);
  }
  return absl::OkStatus();
}

std::string KeyClaim(absl::string_view kind, absl::string_view key) {
  return absl::StrCat(kind, ":", key);
}

// Whether one of `hostname`'s certificates pins `pin`: a claim in the pins
// table alone is not enough (one left by a removed host of the same name,
// or made before claims needed proof and never certified since, is not).
absl::StatusOr<bool> HostCertifiedPin(ReadTxn& txn, const std::string& hostname,
                                      absl::string_view pin) {
  absl::StatusOr<keyd::HostRecord> host =
      GetRecord<keyd::HostRecord>(txn, Table::kHosts, hostname);
  if (absl::IsNotFound(host.status())) return false;
  if (!host.ok()) return host.status();
  for (uint64_t serial : host->serials()) {
    ASSIGN_OR_RETURN(keyd::CertRecord record,
                     GetRecord<keyd::CertRecord>(txn, Table::kCerts,
                                                 U64Key(serial)));
    mxkey::v1::HostCertificateBody body;
    if (!body.ParseFromString(record.certificate().body())) continue;
    for (const auto& p : body.tls_spki_sha256()) {
      if (p == pin) return true;
    }
  }
  return false;
}

// Refuses reused keys and pins of other hosts, then claims them.
absl::Status ClaimKeys(WriteTxn& txn, const KeyRequest& kr) {
  std::vector<std::pair<Table, std::string>> claims = {
      {Table::kKeys, KeyClaim("id", kr.identity_key)},
      {Table::kKeys, KeyClaim("x", kr.agreement_key)}};
  for (const auto& pin : kr.pins) claims.push_back({Table::kPins, pin});
  for (const auto& [table, key] : claims) {
    absl::StatusOr<absl::string_view> claim = txn.Get(table, key);
    if (!claim.ok() && !absl::IsNotFound(claim.status())) return claim.status();
    // Copied: the view may not outlive the reads below.
    const std::optional<std::string> owner =
        claim.ok() ? std::optional<std::string>(*claim) : std::nullopt;
    // A host may keep its TLS key across certificates; mxkey keys are fresh
    // for every certificate, so a revoked one never comes back.
    if (owner && table == Table::kKeys) {
      return absl::AlreadyExistsError(
          "a public key in this request was certified before; generate new "
          "keys for every enrollment and rotation");
    }
    if (table != Table::kPins) continue;
    // A pin claim counts only if a certificate of its holder pins it: one
    // left by a removed host (by an older keyd, or a host of the same name
    // added again) is free for whoever proves the key.
    bool held = false;
    if (owner) {
      ASSIGN_OR_RETURN(held, HostCertifiedPin(txn, *owner, key));
    }
    if (held && *owner == kr.hostname) continue;  // the host's already
    if (held) {
      return absl::AlreadyExistsError(
          "a TLS pin in this request is already certified for another host "
          "(which proved it holds that TLS key); the admin releases it with "
          "keyctl host remove of that host, see OPERATIONS.md");
    }
    // A pin no host holds: only with proof that the requester holds the
    // TLS key (a pin is public: anyone can read it off a handshake).
    if (!kr.proven_pins.count(key)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "TLS pin ", absl::BytesToHexString(key),
          " is new for this host and needs proof of possession: sign the "
          "request with that TLS private key (keyctl enroll/rotate "
          "--tls-key FILE)"));
    }
  }
  for (const auto& [table, key] : claims) {
    RETURN_IF_ERROR(txn.Put(table, key, kr.hostname));
  }
  return absl::OkStatus();
}

// A stored certificate: the answer for the host and the body it signs.
struct IssuedCertificate {
  mxkey::v1::EnrollResponse response;
  mxkey::v1::HostCertificateBody body;
};

// Signs and stores a certificate for `kr` and appends it to `host`.
absl::StatusOr<IssuedCertificate> StoreCertificate(
    WriteTxn& txn, const KeydContext& ctx, keyd::HostRecord& host,
    const KeyRequest& kr, int64_t active_from) {
  ASSIGN_OR_RETURN(uint64_t serial, GetCounter(txn, kNextSerialCounter));
  serial = std::max<uint64_t>(serial, 1);
  RETURN_IF_ERROR(SetCounter(txn, kNextSerialCounter, serial + 1));
  const auto& issuer = ctx.keys->issuing_body();
  mxkey::v1::HostCertificateBody body;
  body.set_hostname(kr.hostname);
  *body.mutable_mail_domains() = host.mail_domains();
  body.set_identity_key(kr.identity_key);
  body.set_agreement_key(kr.agreement_key);
  for (const auto& pin : kr.pins) body.add_tls_spki_sha256(pin);
  body.set_serial(serial);
  body.set_not_before(ctx.now() - kBackdateSeconds);
  body.set_not_after(std::min<int64_t>(
      ctx.now() + absl::ToInt64Seconds(ctx.options.cert_validity),
      issuer.not_after()));
  body.set_active_from(active_from);
  body.set_org(ctx.keys->org());
  keyd::CertRecord record;
  record.set_hostname(kr.hostname);
  ASSIGN_OR_RETURN(*record.mutable_certificate(),
                   ctx.keys->Sign(ObjectType::kHostCertificate,
                                  body.SerializeAsString()));
  RETURN_IF_ERROR(PutRecord(txn, Table::kCerts, U64Key(serial), record));
  host.add_serials(serial);
  RETURN_IF_ERROR(PutRecord(txn, Table::kHosts, host.hostname(), host));
  IssuedCertificate issued;
  *issued.response.mutable_certificate() = record.certificate();
  *issued.response.mutable_issuing_key() = ctx.keys->issuing_cert();
  issued.body = std::move(body);
  return issued;
}

// The overlap a rotation asks for (0: keyd's default), in seconds.
absl::StatusOr<int64_t> RotationOverlap(const KeydOptions& options,
                                        int64_t requested) {
  if (requested == 0) return absl::ToInt64Seconds(options.rotation_overlap);
  absl::Status allowed = CheckRotationOverlap(options, absl::Seconds(requested));
  if (!allowed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("overlap_seconds: ", allowed.message()));
  }
  return requested;
}

// Runs an *Async call and waits for its result.
absl::StatusOr<mxkey::v1::EnrollResponse> AwaitResult(
    const std::function<void(Issuer::Done)>& start) {
  std::promise<absl::StatusOr<mxkey::v1::EnrollResponse>> result;
  start([&result](absl::StatusOr<mxkey::v1::EnrollResponse> r) {
    result.set_value(std::move(r));
  });
  return result.get_future().get();
}

}  // namespace

absl::Status CheckRotationOverlap(const KeydOptions& options,
                                  absl::Duration overlap) {
  const int64_t least = absl::ToInt64Seconds(options.prepublish());
  const int64_t most = absl::ToInt64Seconds(KeydOptions::kMaxRotationOverlap);
  const int64_t given = absl::ToInt64Seconds(overlap);
  if (given < least || given > most) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the overlap must be between ", least,
        " s (twice the freshness period) and ", most, " s (90 days), got ",
        given, " s"));
  }
  return absl::OkStatus();
}

absl::StatusOr<mxkey::v1::EnrollResponse> Issuer::Enroll(
    const mxkey::v1::EnrollRequest& request) {
  return AwaitResult([&](Done done) { EnrollAsync(request, std::move(done)); });
}

absl::StatusOr<mxkey::v1::EnrollResponse> Issuer::Rotate(
    const mxkey::v1::RotateRequest& request) {
  return AwaitResult([&](Done done) { RotateAsync(request, std::move(done)); });
}

absl::StatusOr<mxkey::v1::EnrollResponse> Issuer::FinishRotation(
    const mxkey::v1::FinishRotationRequest& request) {
  return AwaitResult(
      [&](Done done) { FinishRotationAsync(request, std::move(done)); });
}

void Issuer::EnrollAsync(const mxkey::v1::EnrollRequest& request, Done done) {
  // What the request says and what its transaction decided, kept until
  // the commit is durable.
  struct Enrollment {
    mxkey::v1::EnrollmentBody body;
    KeyRequest kr;
    IssuedCertificate issued;
    uint64_t head = 0;
    std::vector<uint64_t> superseded;
  };
  auto e = std::make_shared<Enrollment>();
  absl::Status checked = [&]() -> absl::Status {
    if (!e->body.ParseFromString(request.body())) {
      return absl::InvalidArgumentError("body is not a valid EnrollmentBody");
    }
    if (e->body.token_public_key().size() != kEd25519PublicKeySize) {
      return absl::InvalidArgumentError("token_public_key must be 32 bytes");
    }
    ASSIGN_OR_RETURN(e->kr, CheckKeyRequest(*ctx_, e->body));
    RETURN_IF_ERROR(CheckSignature(e->body.token_public_key(),
                                   ObjectType::kEnrollToken, request.body(),
                                   request.token_signature(),
                                   "token signature"));
    RETURN_IF_ERROR(CheckSignature(e->kr.identity_key,
                                   ObjectType::kEnrollProofOfPossession,
                                   request.body(), request.identity_signature(),
                                   "proof of possession (identity signature)"));
    // Last: the costliest checks (RSA), once the cheap ones passed.
    return CheckTlsKeyProofs(*ctx_, request, e->kr);
  }();
  if (!checked.ok()) return done(checked);
  const KeydContext* ctx = ctx_;
  ctx->store->WriteAsync(
      [e, ctx](WriteTxn& txn) -> absl::Status {
        const KeyRequest& kr = e->kr;
        e->superseded.clear();
        e->head = 0;
        absl::StatusOr<keyd::TokenRecord> token = GetRecord<keyd::TokenRecord>(
            txn, Table::kTokens, e->body.token_public_key());
        if (absl::IsNotFound(token.status())) {
          return absl::PermissionDeniedError(
              "unknown enrollment token: it was never issued, was already "
              "used, or was replaced by a newer one");
        }
        if (!token.ok()) return token.status();
        if (token->hostname() != kr.hostname) {
          return absl::PermissionDeniedError(
              "this enrollment token was issued for another host");
        }
        if (ctx->now() >= token->expires_at()) {
          return absl::PermissionDeniedError(
              "enrollment token expired; create a new one (keyctl token "
              "create)");
        }
        ASSIGN_OR_RETURN(keyd::HostRecord host,
                         GetHostRecord(txn, kr.hostname));
        RETURN_IF_ERROR(txn.Delete(Table::kTokens, e->body.token_public_key()));
        host.clear_token_public_key();
        RETURN_IF_ERROR(ClaimKeys(txn, kr));
        // Re-enrollment replaces the host's keys: the old ones are revoked.
        ASSIGN_OR_RETURN(std::vector<StoredCert> certs,
                         LoadHostCerts(txn, host, ctx->now()));
        for (const auto& c : certs) {
          if (c.state != CertState::kRevoked) {
            e->superseded.push_back(c.body.serial());
          }
        }
        if (!e->superseded.empty()) {
          ASSIGN_OR_RETURN(e->head,
                           AppendRevocations(txn, *ctx, e->superseded,
                                             "superseded by re-enrollment"));
        }
        ASSIGN_OR_RETURN(e->issued,
                         StoreCertificate(txn, *ctx, host, kr, ctx->now()));
        // Announced, so watching clients and peers use the new key at once.
        ASSIGN_OR_RETURN(
            e->head, AppendKeyChange(txn, *ctx, kr.hostname,
                                     e->issued.body.serial(),
                                     {host.mail_domains().begin(),
                                      host.mail_domains().end()},
                                     e->superseded.empty() ? "enrolled"
                                                           : "re-enrolled"));
        return absl::OkStatus();
      },
      [e, ctx, done = std::move(done)](absl::Status st) {
        if (!st.ok()) return done(st);
        if (e->head != 0) ctx->feed->Publish(e->head);
        LogInfo("enrolled %s serial=%d identity=%s pins=%d%s", e->kr.hostname,
                e->issued.body.serial(), KeyFingerprint(e->kr.identity_key),
                e->kr.pins.size(),
                e->superseded.empty() ? "" : " (previous keys revoked)");
        done(std::move(e->issued.response));
      });
}

void Issuer::RotateAsync(const mxkey::v1::RotateRequest& request, Done done) {
  struct Rotation {
    mxkey::v1::RotationBody body;
    KeyRequest kr;
    IssuedCertificate issued;
    std::string body_bytes, current_signature;
    int64_t overlap_seconds = 0;
    uint64_t head = 0;
  };
  auto r = std::make_shared<Rotation>();
  absl::Status checked = [&]() -> absl::Status {
    if (!r->body.ParseFromString(request.body())) {
      return absl::InvalidArgumentError("body is not a valid RotationBody");
    }
    ASSIGN_OR_RETURN(r->kr, CheckKeyRequest(*ctx_, r->body));
    ASSIGN_OR_RETURN(r->overlap_seconds,
                     RotationOverlap(ctx_->options, r->body.overlap_seconds()));
    RETURN_IF_ERROR(CheckSignature(r->kr.identity_key,
                                   ObjectType::kRotateProofOfPossession,
                                   request.body(), request.identity_signature(),
                                   "proof of possession (identity signature)"));
    return CheckTlsKeyProofs(*ctx_, request, r->kr);
  }();
  if (!checked.ok()) return done(checked);
  // The current key is known only inside the transaction.
  r->body_bytes = request.body();
  r->current_signature = request.current_signature();
  const KeydContext* ctx = ctx_;
  ctx->store->WriteAsync(
      [r, ctx](WriteTxn& txn) -> absl::Status {
        const KeyRequest& kr = r->kr;
        ASSIGN_OR_RETURN(keyd::HostRecord host,
                         GetHostRecord(txn, kr.hostname));
        ASSIGN_OR_RETURN(std::vector<StoredCert> certs,
                         LoadHostCerts(txn, host, ctx->now()));
        const StoredCert* active = FindCert(certs, CertState::kActive);
        if (active == nullptr) {
          return absl::FailedPreconditionError(absl::StrCat(
              kr.hostname,
              " has no active, unrevoked certificate to rotate from; enroll "
              "it again with a new token"));
        }
        if (active->body.serial() != r->body.current_serial()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "current_serial ", r->body.current_serial(),
              " is not the active certificate of ", kr.hostname,
              " (active is ", active->body.serial(), ")"));
        }
        RETURN_IF_ERROR(CheckSignature(active->body.identity_key(),
                                       ObjectType::kRotateCurrent,
                                       r->body_bytes, r->current_signature,
                                       "signature by the current identity key"));
        if (const StoredCert* next = FindCert(certs, CertState::kNext)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "a next certificate (serial ", next->body.serial(),
              ") is already pre-published; it becomes active at ",
              FormatUnixTime(next->body.active_from()),
              " unless the host runs keyctl rotate --finish first"));
        }
        RETURN_IF_ERROR(ClaimKeys(txn, kr));
        int64_t active_from = ctx->now() + r->overlap_seconds;
        ASSIGN_OR_RETURN(r->issued,
                         StoreCertificate(txn, *ctx, host, kr, active_from));
        ASSIGN_OR_RETURN(
            r->head, AppendKeyChange(txn, *ctx, kr.hostname,
                                     r->issued.body.serial(),
                                     {host.mail_domains().begin(),
                                      host.mail_domains().end()},
                                     "next key pre-published"));
        return absl::OkStatus();
      },
      [r, ctx, done = std::move(done)](absl::Status st) {
        if (!st.ok()) return done(st);
        if (r->head != 0) ctx->feed->Publish(r->head);
        LogInfo("rotation of %s: next serial=%d identity=%s active_from=%s",
                r->kr.hostname, r->issued.body.serial(),
                KeyFingerprint(r->kr.identity_key),
                FormatUnixTime(r->issued.body.active_from()));
        done(std::move(r->issued.response));
      });
}

void Issuer::FinishRotationAsync(
    const mxkey::v1::FinishRotationRequest& request, Done done) {
  struct Finish {
    mxkey::v1::RotationFinishBody body;
    std::string hostname, body_bytes, signature;
    mxkey::v1::EnrollResponse response;
    uint64_t head = 0;
    uint64_t old_serial = 0;
  };
  auto f = std::make_shared<Finish>();
  absl::Status checked = [&]() -> absl::Status {
    if (!f->body.ParseFromString(request.body())) {
      return absl::InvalidArgumentError("body is not a valid RotationFinishBody");
    }
    ASSIGN_OR_RETURN(f->hostname, CanonicalHostname(f->body.hostname()));
    return CheckTimestamp(*ctx_, f->body.timestamp());
  }();
  if (!checked.ok()) return done(checked);
  f->body_bytes = request.body();
  f->signature = request.identity_signature();
  const KeydContext* ctx = ctx_;
  ctx->store->WriteAsync(
      [f, ctx](WriteTxn& txn) -> absl::Status {
        f->head = 0;
        f->old_serial = 0;
        ASSIGN_OR_RETURN(keyd::HostRecord host, GetHostRecord(txn, f->hostname));
        const int64_t now = ctx->now();
        ASSIGN_OR_RETURN(std::vector<StoredCert> certs,
                         LoadHostCerts(txn, host, now));
        const StoredCert* target = nullptr;
        for (const StoredCert& c : certs) {
          if (c.body.serial() == f->body.next_serial()) target = &c;
        }
        if (target == nullptr || (target->state != CertState::kNext &&
                                  target->state != CertState::kActive)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "serial ", f->body.next_serial(), " is not a pending next "
              "certificate of ", f->hostname));
        }
        RETURN_IF_ERROR(CheckSignature(target->body.identity_key(),
                                       ObjectType::kRotateFinish, f->body_bytes,
                                       f->signature,
                                       "signature by the next identity key"));
        *f->response.mutable_issuing_key() = ctx->keys->issuing_cert();
        if (target->state == CertState::kActive) {
          // Finished already (a replay, or the overlap ran out): no change.
          *f->response.mutable_certificate() = target->record.certificate();
          return absl::OkStatus();
        }
        if (const StoredCert* active = FindCert(certs, CertState::kActive)) {
          f->old_serial = active->body.serial();
        }
        // The same key, serial and validity; active from now. The old
        // certificate becomes superseded and leaves answers.
        mxkey::v1::HostCertificateBody body = target->body;
        body.set_active_from(now);
        keyd::CertRecord record = target->record;
        ASSIGN_OR_RETURN(*record.mutable_certificate(),
                         ctx->keys->Sign(ObjectType::kHostCertificate,
                                         body.SerializeAsString()));
        RETURN_IF_ERROR(
            PutRecord(txn, Table::kCerts, U64Key(body.serial()), record));
        *f->response.mutable_certificate() = record.certificate();
        ASSIGN_OR_RETURN(
            f->head, AppendKeyChange(txn, *ctx, f->hostname, body.serial(),
                                     {host.mail_domains().begin(),
                                      host.mail_domains().end()},
                                     "rotation finished"));
        return absl::OkStatus();
      },
      [f, ctx, done = std::move(done)](absl::Status st) {
        if (!st.ok()) return done(st);
        if (f->head != 0) {
          ctx->feed->Publish(f->head);
          LogInfo("rotation of %s finished: serial %d active, serial %d "
                  "superseded",
                  f->hostname, f->body.next_serial(), f->old_serial);
        }
        done(std::move(f->response));
      });
}

}  // namespace mxkey
