#include "keyd/host_admin.h"

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/ed25519.h"
#include "crypto/random.h"
#include "keyd/cert_states.h"
#include "keyd/records.h"
#include "keyd/revocation.h"
#include "protocol/hostname.h"

namespace mxkey {

namespace {

struct NewToken {
  std::string public_key;
  mxkey::v1::TokenResponse response;
};

absl::StatusOr<NewToken> MakeToken(const KeydContext& ctx,
                                   const std::string& hostname) {
  ASSIGN_OR_RETURN(SecretBytes seed, RandomSecret(kEd25519SeedSize));
  ASSIGN_OR_RETURN(Ed25519PrivateKey key, Ed25519PrivateKey::FromSeed(seed));
  NewToken token;
  token.public_key = key.public_key();
  token.response.set_hostname(hostname);
  token.response.set_token(absl::BytesToHexString(seed.view()));
  token.response.set_expires_at(ctx.now() +
                                absl::ToInt64Seconds(ctx.options.token_ttl));
  return token;
}

// Stores `token` for `host`, replacing the host's previous token.
absl::Status PutToken(WriteTxn& txn, const KeydContext& ctx,
                      keyd::HostRecord& host, const NewToken& token) {
  if (!host.token_public_key().empty()) {
    absl::Status del = txn.Delete(Table::kTokens, host.token_public_key());
    if (!del.ok() && !absl::IsNotFound(del)) return del;
  }
  keyd::TokenRecord record;
  record.set_hostname(host.hostname());
  record.set_created_at(ctx.now());
  record.set_expires_at(token.response.expires_at());
  RETURN_IF_ERROR(PutRecord(txn, Table::kTokens, token.public_key, record));
  host.set_token_public_key(token.public_key);
  return PutRecord(txn, Table::kHosts, host.hostname(), host);
}

}  // namespace

absl::StatusOr<mxkey::v1::TokenResponse> HostAdmin::AddHost(
    const mxkey::v1::AddHostRequest& request) {
  ASSIGN_OR_RETURN(std::string hostname, CanonicalHostname(request.hostname()));
  if (request.mail_domains_size() == 0 ||
      request.mail_domains_size() > ctx_->options.max_mail_domains) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a host needs 1 to ", ctx_->options.max_mail_domains,
        " mail domains (--domain)"));
  }
  std::set<std::string> domains;
  for (const auto& d : request.mail_domains()) {
    absl::StatusOr<std::string> domain = CanonicalHostname(d);
    if (!domain.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("mail domain: ", domain.status().message()));
    }
    domains.insert(*domain);
  }
  ASSIGN_OR_RETURN(NewToken token, MakeToken(*ctx_, hostname));
  RETURN_IF_ERROR(ctx_->store->Write([&](WriteTxn& txn) -> absl::Status {
    if (txn.Get(Table::kHosts, hostname).ok()) {
      return absl::AlreadyExistsError(
          absl::StrCat("host ", hostname, " is already registered"));
    }
    RETURN_IF_ERROR(CheckNotPeerName(txn, hostname));
    for (const auto& d : domains) RETURN_IF_ERROR(CheckNotPeerName(txn, d));
    keyd::HostRecord host;
    host.set_hostname(hostname);
    host.set_created_at(ctx_->now());
    for (const auto& d : domains) {
      host.add_mail_domains(d);
      RETURN_IF_ERROR(txn.Put(Table::kDomainHosts, DomainHostKey(d, hostname),
                              ""));
    }
    return PutToken(txn, *ctx_, host, token);
  }));
  LogInfo("host added: %s domains=%s", hostname, absl::StrJoin(domains, ","));
  return token.response;
}

absl::StatusOr<mxkey::v1::TokenResponse> HostAdmin::CreateToken(
    const mxkey::v1::CreateEnrollmentTokenRequest& request) {
  ASSIGN_OR_RETURN(std::string hostname, CanonicalHostname(request.hostname()));
  ASSIGN_OR_RETURN(NewToken token, MakeToken(*ctx_, hostname));
  RETURN_IF_ERROR(ctx_->store->Write([&](WriteTxn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(keyd::HostRecord host, GetHostRecord(txn, hostname));
    return PutToken(txn, *ctx_, host, token);
  }));
  LogInfo("enrollment token created for %s", hostname);
  return token.response;
}

absl::StatusOr<mxkey::v1::RemoveHostResponse> HostAdmin::RemoveHost(
    const mxkey::v1::RemoveHostRequest& request) {
  ASSIGN_OR_RETURN(std::string hostname, CanonicalHostname(request.hostname()));
  mxkey::v1::RemoveHostResponse response;
  uint64_t head = 0;
  RETURN_IF_ERROR(ctx_->store->Write([&](WriteTxn& txn) -> absl::Status {
    response.Clear();
    ASSIGN_OR_RETURN(keyd::HostRecord host, GetHostRecord(txn, hostname));
    ASSIGN_OR_RETURN(std::vector<StoredCert> certs,
                     LoadHostCerts(txn, host, ctx_->now()));
    std::vector<uint64_t> serials;
    for (const auto& c : certs) {
      if (c.state != CertState::kRevoked) serials.push_back(c.body.serial());
    }
    if (!serials.empty()) {
      ASSIGN_OR_RETURN(head, AppendRevocations(txn, *ctx_, serials,
                                               "host removed"));
    }
    for (uint64_t s : serials) response.add_revoked_serials(s);
    for (const auto& d : host.mail_domains()) {
      RETURN_IF_ERROR(txn.Delete(Table::kDomainHosts,
                                 DomainHostKey(d, hostname)));
    }
    if (!host.token_public_key().empty()) {
      absl::Status del = txn.Delete(Table::kTokens, host.token_public_key());
      if (!del.ok() && !absl::IsNotFound(del)) return del;
    }
    // Certificates and key claims stay: a revoked mxkey key is never
    // certified again, for this host or another. TLS pin claims go: the
    // TLS key belongs to whoever proves they hold it, and a host that
    // claimed another's key must not keep it from its owner once removed.
    for (const auto& c : certs) {
      for (const auto& pin : c.body.tls_spki_sha256()) {
        absl::StatusOr<absl::string_view> owner = txn.Get(Table::kPins, pin);
        if (owner.ok() && *owner == hostname) {
          RETURN_IF_ERROR(txn.Delete(Table::kPins, pin));
        } else if (!owner.ok() && !absl::IsNotFound(owner.status())) {
          return owner.status();
        }
      }
    }
    return txn.Delete(Table::kHosts, hostname);
  }));
  if (head != 0) ctx_->feed->Publish(head);
  LogInfo("host removed: %s revoked=%s", hostname,
          absl::StrJoin(response.revoked_serials(), ","));
  return response;
}

absl::StatusOr<mxkey::v1::ListHostsResponse> HostAdmin::ListHosts() {
  mxkey::v1::ListHostsResponse response;
  RETURN_IF_ERROR(ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    std::vector<keyd::HostRecord> hosts;
    absl::Status parse = absl::OkStatus();
    RETURN_IF_ERROR(txn.Scan(Table::kHosts, "",
                             [&](absl::string_view, absl::string_view value) {
                               keyd::HostRecord h;
                               if (!h.ParseFromArray(
                                       value.data(),
                                       static_cast<int>(value.size()))) {
                                 parse = absl::DataLossError("corrupt host");
                                 return false;
                               }
                               hosts.push_back(std::move(h));
                               return true;
                             }));
    RETURN_IF_ERROR(parse);
    for (const auto& h : hosts) {
      ASSIGN_OR_RETURN(std::vector<StoredCert> certs,
                       LoadHostCerts(txn, h, ctx_->now()));
      auto* summary = response.add_hosts();
      summary->set_hostname(h.hostname());
      *summary->mutable_mail_domains() = h.mail_domains();
      const StoredCert* active = FindCert(certs, CertState::kActive);
      const StoredCert* next = FindCert(certs, CertState::kNext);
      if (active) summary->set_active_serial(active->body.serial());
      if (next) {
        summary->set_next_serial(next->body.serial());
        summary->set_next_active_from(next->body.active_from());
      }
      summary->set_state(certs.empty()          ? "pending"
                         : (active || next)     ? "enrolled"
                         : FindCert(certs, CertState::kRevoked) ? "revoked"
                                                                : "expired");
    }
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<mxkey::v1::SetDomainPolicyResponse> HostAdmin::SetDomainPolicy(
    const mxkey::v1::SetDomainPolicyRequest& request) {
  absl::StatusOr<std::string> domain = CanonicalHostname(request.domain());
  if (!domain.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mail domain: ", domain.status().message()));
  }
  if (request.mode() != mxkey::v1::POLICY_MODE_NONE &&
      request.mode() != mxkey::v1::POLICY_MODE_TESTING &&
      request.mode() != mxkey::v1::POLICY_MODE_ENFORCE) {
    return absl::InvalidArgumentError(
        "policy mode must be none, testing or enforce");
  }
  mxkey::v1::SetDomainPolicyResponse response;
  uint64_t head = 0;
  RETURN_IF_ERROR(ctx_->store->Write([&](WriteTxn& txn) -> absl::Status {
    RETURN_IF_ERROR(CheckNotPeerName(txn, *domain));
    uint64_t version = 1;
    absl::StatusOr<mxkey::v1::SignedObject> old =
        GetRecord<mxkey::v1::SignedObject>(txn, Table::kPolicies, *domain);
    if (old.ok()) {
      ASSIGN_OR_RETURN(auto body, ParseBody<mxkey::v1::DomainPolicyBody>(*old));
      version = body.version() + 1;
    } else if (!absl::IsNotFound(old.status())) {
      return old.status();
    }
    mxkey::v1::DomainPolicyBody body;
    body.set_domain(*domain);
    body.set_mode(request.mode());
    body.set_version(version);
    body.set_set_at(ctx_->now());
    ASSIGN_OR_RETURN(*response.mutable_policy(),
                     ctx_->keys->Sign(ObjectType::kDomainPolicy,
                                      body.SerializeAsString()));
    RETURN_IF_ERROR(PutRecord(txn, Table::kPolicies, *domain, response.policy()));
    // On the feed too: a watching client drops what it holds for the
    // domain, and refuses an answer made before the change.
    ASSIGN_OR_RETURN(head, AppendPolicyChange(
                               txn, *ctx_, *domain, version,
                               absl::StrCat("policy set to ",
                                            mxkey::v1::PolicyMode_Name(
                                                request.mode()))));
    return absl::OkStatus();
  }));
  ctx_->feed->Publish(head);
  const char* mode = request.mode() == mxkey::v1::POLICY_MODE_ENFORCE ? "enforce"
                     : request.mode() == mxkey::v1::POLICY_MODE_TESTING
                         ? "testing"
                         : "none";
  LogInfo("policy set: domain=%s mode=%s", *domain, mode);
  return response;
}

}  // namespace mxkey
