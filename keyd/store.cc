#include "keyd/store.h"

namespace mxkey {

absl::string_view TableName(Table table) {
  switch (table) {
    case Table::kHosts: return "hosts";
    case Table::kCerts: return "certs";
    case Table::kPins: return "pins";
    case Table::kKeys: return "keys";
    case Table::kRevocations: return "revocations";
    case Table::kFeed: return "feed";
    case Table::kTokens: return "tokens";
    case Table::kPolicies: return "policies";
    case Table::kPeers: return "peers";
    case Table::kMeta: return "meta";
    case Table::kDomainHosts: return "domain_hosts";
  }
  return "unknown";
}

}  // namespace mxkey
