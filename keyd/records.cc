#include "keyd/records.h"

#include "base/status_macros.h"
#include "protocol/hostname.h"

namespace mxkey {

std::string U64Key(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(n & 0xff);
    n >>= 8;
  }
  return out;
}

uint64_t DecodeU64Key(absl::string_view key) {
  uint64_t n = 0;
  for (char c : key.substr(0, 8)) n = (n << 8) | static_cast<uint8_t>(c);
  return n;
}

absl::StatusOr<keyd::HostRecord> GetHostRecord(ReadTxn& txn,
                                               absl::string_view hostname) {
  absl::StatusOr<keyd::HostRecord> host =
      GetRecord<keyd::HostRecord>(txn, Table::kHosts, hostname);
  if (absl::IsNotFound(host.status())) {
    return absl::NotFoundError(absl::StrCat(
        "no host named ", hostname, " is registered (keyctl host add)"));
  }
  return host;
}

absl::Status CheckNotPeerName(ReadTxn& txn, absl::string_view name) {
  absl::Status result = absl::OkStatus();
  RETURN_IF_ERROR(txn.Scan(
      Table::kPeers, "", [&](absl::string_view, absl::string_view value) {
        keyd::PeerRecord peer;
        if (!peer.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          return true;
        }
        if (LongestSuffixUnder(name, peer.peer().domain_suffixes()) > 0) {
          result = absl::FailedPreconditionError(absl::StrCat(
              name, " is under a domain suffix of peer ", peer.peer().org(),
              ", which speaks for it; remove the peer (or that suffix) "
              "first"));
          return false;
        }
        return true;
      }));
  return result;
}

absl::StatusOr<uint64_t> GetCounter(ReadTxn& txn, absl::string_view name) {
  absl::StatusOr<absl::string_view> raw = txn.Get(Table::kMeta, name);
  if (absl::IsNotFound(raw.status())) return 0;
  if (!raw.ok()) return raw.status();
  if (raw->size() != 8) return absl::DataLossError("corrupt counter");
  return DecodeU64Key(*raw);
}

absl::Status SetCounter(WriteTxn& txn, absl::string_view name, uint64_t value) {
  return txn.Put(Table::kMeta, name, U64Key(value));
}

}  // namespace mxkey
