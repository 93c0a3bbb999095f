#include "keyd/recertifier.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/sha256.h"
#include "keyd/cert_states.h"
#include "keyd/records.h"
#include "protocol/certificate_times.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

// The serials of `host`'s certificates that are its current or next key.
std::vector<const StoredCert*> CurrentKeys(const std::vector<StoredCert>& certs,
                                           int64_t now) {
  std::vector<const StoredCert*> out;
  const StoredCert* current = nullptr;
  for (const StoredCert& c : certs) {  // oldest first
    if (c.record.revoked()) continue;
    if (c.body.active_from() > now) {
      out.push_back(&c);  // next
    } else {
      current = &c;  // the newest that has become active wins
    }
  }
  if (current != nullptr) out.push_back(current);
  return out;
}

}  // namespace

absl::StatusOr<RecertifyProgress> Recertifier::Run() {
  const std::string issuer = KeyId(ctx_->keys->issuing_body().public_key());
  {
    MutexLock lock(&mu_);
    if (issuer == scanned_issuer_ && ctx_->now() < next_due_) {
      return RecertifyProgress{};
    }
  }
  RecertifyProgress total;
  int64_t next_due = std::numeric_limits<int64_t>::max();
  {
    MutexLock lock(&mu_);
    status_.in_progress = true;
    status_.pass = total;
  }
  // Bounded: each batch re-signs up to kBatch objects, and a pass can only
  // find as many as exist.
  for (int i = 0; i < 1 << 20; ++i) {
    next_due = std::numeric_limits<int64_t>::max();
    absl::StatusOr<RecertifyProgress> batch = Batch(&next_due);
    if (!batch.ok()) {
      MutexLock lock(&mu_);
      status_.in_progress = false;
      return batch.status();
    }
    total.certificates += batch->certificates;
    total.policies += batch->policies;
    total.pending = batch->pending;
    {
      MutexLock lock(&mu_);
      status_.pass = total;
    }
    if (batch->pending == 0) break;
    // A long pass (many hosts after an outage) shows how far it got.
    LogInfo("re-certification in progress: %d host certificates and %d "
            "policies re-signed, %d still due",
            total.certificates, total.policies, total.pending);
  }
  if (total.certificates + total.policies > 0) {
    LogInfo("re-certified %d host certificates and %d policies under issuing "
            "key %s",
            total.certificates, total.policies, KeyFingerprint(
                ctx_->keys->issuing_body().public_key()));
  }
  MutexLock lock(&mu_);
  scanned_issuer_ = issuer;
  next_due_ = next_due;
  status_.in_progress = false;
  status_.last_pass_at = ctx_->now();
  status_.next_due_at =
      next_due == std::numeric_limits<int64_t>::max() ? 0 : next_due;
  return total;
}

RecertifyStatus Recertifier::Status() const {
  MutexLock lock(&mu_);
  return status_;
}

absl::StatusOr<RecertifyProgress> Recertifier::Batch(int64_t* next_due) {
  const int64_t now = ctx_->now();
  const v1::IssuingKeyBody issuer = ctx_->keys->issuing_body();
  const std::string issuer_id = KeyId(issuer.public_key());
  const int64_t validity = absl::ToInt64Seconds(ctx_->options.cert_validity);
  std::vector<uint64_t> serials;
  std::vector<std::string> domains;
  RecertifyProgress progress;
  RETURN_IF_ERROR(ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    std::vector<keyd::HostRecord> hosts;
    RETURN_IF_ERROR(txn.Scan(Table::kHosts, "",
                             [&](absl::string_view, absl::string_view value) {
                               keyd::HostRecord h;
                               if (h.ParseFromArray(value.data(),
                                                    static_cast<int>(value.size()))) {
                                 hosts.push_back(std::move(h));
                               }
                               return true;
                             }));
    for (const keyd::HostRecord& h : hosts) {
      ASSIGN_OR_RETURN(std::vector<StoredCert> certs, LoadHostCerts(txn, h, now));
      for (const StoredCert* c : CurrentKeys(certs, now)) {
        const int64_t due_at = c->body.not_after() - validity / 3;
        if (c->record.certificate().signer_key_id() != issuer_id ||
            now >= due_at) {
          if (serials.size() < kBatch) {
            serials.push_back(c->body.serial());
          } else {
            ++progress.pending;
          }
        } else {
          *next_due = std::min(*next_due, due_at);
        }
      }
    }
    return txn.Scan(Table::kPolicies, "",
                    [&](absl::string_view key, absl::string_view value) {
                      v1::SignedObject policy;
                      if (policy.ParseFromArray(value.data(),
                                                static_cast<int>(value.size())) &&
                          policy.signer_key_id() != issuer_id) {
                        if (domains.size() < kBatch) {
                          domains.emplace_back(key);
                        } else {
                          ++progress.pending;
                        }
                      }
                      return true;
                    });
  }));
  if (serials.empty() && domains.empty()) return progress;
  const int64_t not_before = now - kBackdateSeconds;
  const int64_t not_after = std::min<int64_t>(now + validity, issuer.not_after());
  RETURN_IF_ERROR(ctx_->store->Write([&](WriteTxn& txn) -> absl::Status {
    progress.certificates = progress.policies = 0;
    for (uint64_t serial : serials) {
      ASSIGN_OR_RETURN(keyd::CertRecord record,
                       GetRecord<keyd::CertRecord>(txn, Table::kCerts,
                                                   U64Key(serial)));
      if (record.revoked()) continue;  // revoked since the read
      v1::HostCertificateBody body;
      if (!body.ParseFromString(record.certificate().body())) {
        return absl::DataLossError(
            absl::StrCat("certificate ", serial, " is corrupt"));
      }
      // The same key, serial, names, pins and active_from; a new validity.
      body.set_not_before(std::min(body.not_before(), not_before));
      body.set_not_after(not_after);
      ASSIGN_OR_RETURN(*record.mutable_certificate(),
                       ctx_->keys->Sign(ObjectType::kHostCertificate,
                                        body.SerializeAsString()));
      RETURN_IF_ERROR(PutRecord(txn, Table::kCerts, U64Key(serial), record));
      ++progress.certificates;
    }
    for (const std::string& domain : domains) {
      ASSIGN_OR_RETURN(v1::SignedObject policy,
                       GetRecord<v1::SignedObject>(txn, Table::kPolicies, domain));
      if (policy.signer_key_id() == issuer_id) continue;
      // The same body (mode, version, set_at): only the signature is new.
      ASSIGN_OR_RETURN(policy, ctx_->keys->Sign(ObjectType::kDomainPolicy,
                                                policy.body()));
      RETURN_IF_ERROR(PutRecord(txn, Table::kPolicies, domain, policy));
      ++progress.policies;
    }
    return absl::OkStatus();
  }));
  return progress;
}

}  // namespace mxkey
