// Encoding helpers for keyd's tables: fixed-width keys and protobuf records.
//
// Get fails with NOT_FOUND for a missing key and DATA_LOSS for a record that
// does not parse (a corrupt store must never be read as empty).
#ifndef MXKEY_KEYD_RECORDS_H_
#define MXKEY_KEYD_RECORDS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "keyd/records.pb.h"
#include "keyd/store.h"

namespace mxkey {

// Big-endian, so that key order is numeric order.
std::string U64Key(uint64_t n);
uint64_t DecodeU64Key(absl::string_view key);

template <typename Message>
absl::StatusOr<Message> GetRecord(ReadTxn& txn, Table table,
                                  absl::string_view key) {
  absl::StatusOr<absl::string_view> raw = txn.Get(table, key);
  if (!raw.ok()) return raw.status();
  Message m;
  if (!m.ParseFromArray(raw->data(), static_cast<int>(raw->size()))) {
    return absl::DataLossError(
        absl::StrCat("corrupt record in table ", TableName(table)));
  }
  return m;
}

template <typename Message>
absl::Status PutRecord(WriteTxn& txn, Table table, absl::string_view key,
                       const Message& m) {
  return txn.Put(table, key, m.SerializeAsString());
}

// Key of the kDomainHosts index: domain, NUL, hostname. Scanning from
// domain + NUL lists a domain's hosts.
inline std::string DomainHostKey(absl::string_view domain,
                                 absl::string_view host) {
  return absl::StrCat(domain, absl::string_view("\0", 1), host);
}

// The record of a registered host; NOT_FOUND names the host and the fix.
absl::StatusOr<keyd::HostRecord> GetHostRecord(ReadTxn& txn,
                                               absl::string_view hostname);

// A counter in the meta table; 0 if never set.
// FAILED_PRECONDITION if `name` (canonical) is under a domain suffix of a
// stored peer: the own org never certifies, or sets policy for, a name a
// peer speaks for (a denial or certificate of ours would shadow the peer's).
absl::Status CheckNotPeerName(ReadTxn& txn, absl::string_view name);

absl::StatusOr<uint64_t> GetCounter(ReadTxn& txn, absl::string_view name);
absl::Status SetCounter(WriteTxn& txn, absl::string_view name, uint64_t value);

inline constexpr absl::string_view kFeedHeadCounter = "feed_head";
inline constexpr absl::string_view kNextSerialCounter = "next_serial";
// The version of the newest signed federation bundle (0: none yet).
inline constexpr absl::string_view kBundleVersionCounter = "federation_version";

}  // namespace mxkey

#endif  // MXKEY_KEYD_RECORDS_H_
