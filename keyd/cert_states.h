// Which of a host's certificates is active, next, superseded, revoked or
// expired at a given time. One rule for answers, rotation and listings.
#ifndef MXKEY_KEYD_CERT_STATES_H_
#define MXKEY_KEYD_CERT_STATES_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "keyd/records.pb.h"
#include "keyd/store.h"
#include "proto/mxkey/v1/objects.pb.h"

namespace mxkey {

enum class CertState { kActive, kNext, kSuperseded, kRevoked, kExpired };

struct StoredCert {
  keyd::CertRecord record;
  mxkey::v1::HostCertificateBody body;
  CertState state = CertState::kExpired;
};

// Loads every certificate of `host` (oldest first) and classifies it at
// `now`: the newest unrevoked, unexpired certificate whose active_from has
// passed is active; older such ones are superseded; ones not yet active are
// next. DATA_LOSS if a record is missing or corrupt.
absl::StatusOr<std::vector<StoredCert>> LoadHostCerts(
    ReadTxn& txn, const keyd::HostRecord& host, int64_t now);

// The active certificate, or nullptr.
const StoredCert* FindCert(const std::vector<StoredCert>& certs,
                           CertState state);

}  // namespace mxkey

#endif  // MXKEY_KEYD_CERT_STATES_H_
