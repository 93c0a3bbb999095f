#include "keyd/cert_states.h"

#include "absl/strings/str_cat.h"
#include "keyd/records.h"

namespace mxkey {

absl::StatusOr<std::vector<StoredCert>> LoadHostCerts(
    ReadTxn& txn, const keyd::HostRecord& host, int64_t now) {
  std::vector<StoredCert> certs;
  for (uint64_t serial : host.serials()) {
    absl::StatusOr<keyd::CertRecord> record =
        GetRecord<keyd::CertRecord>(txn, Table::kCerts, U64Key(serial));
    if (!record.ok()) {
      return absl::DataLossError(absl::StrCat(
          "certificate ", serial, " of ", host.hostname(), " is missing: ",
          record.status().message()));
    }
    StoredCert cert;
    cert.record = *std::move(record);
    if (!cert.body.ParseFromString(cert.record.certificate().body())) {
      return absl::DataLossError(
          absl::StrCat("certificate ", serial, " is corrupt"));
    }
    certs.push_back(std::move(cert));
  }
  bool active_seen = false;
  for (auto it = certs.rbegin(); it != certs.rend(); ++it) {
    if (it->record.revoked()) {
      it->state = CertState::kRevoked;
    } else if (now >= it->body.not_after() || now < it->body.not_before()) {
      it->state = CertState::kExpired;
    } else if (now < it->body.active_from()) {
      it->state = CertState::kNext;
    } else if (!active_seen) {
      it->state = CertState::kActive;
      active_seen = true;
    } else {
      it->state = CertState::kSuperseded;
    }
  }
  return certs;
}

const StoredCert* FindCert(const std::vector<StoredCert>& certs,
                           CertState state) {
  for (const auto& c : certs) {
    if (c.state == state) return &c;
  }
  return nullptr;
}

}  // namespace mxkey
