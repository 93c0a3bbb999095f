// The storage interface of keyd: named tables of byte keys and values, read
// in snapshot transactions and written in atomic, durable transactions.
//
// Every backend (LMDB today, a distributed one later) implements Store and
// passes the shared contract suite in store_contract_test.cc.
//
// Failure: NOT_FOUND for a missing key, RESOURCE_EXHAUSTED when the backend
// is full, INTERNAL/UNAVAILABLE for backend faults. A write whose function
// fails changes nothing, and does not disturb other writes that share its
// commit.
#ifndef MXKEY_KEYD_STORE_H_
#define MXKEY_KEYD_STORE_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxkey {

enum class Table {
  kHosts,        // hostname -> HostRecord
  kCerts,        // u64be serial -> CertRecord
  kPins,         // TLS pin -> hostname
  kKeys,         // "id:" / "x:" + public key -> hostname
  kRevocations,  // u64be serial -> signed revocation event
  kFeed,         // u64be seq -> signed revocation event
  kTokens,       // token public key -> TokenRecord
  kPolicies,     // mail domain -> signed DomainPolicyBody
  kPeers,        // org name -> peer record (federation)
  kMeta,         // counters and settings
  kDomainHosts,  // mail domain + "\0" + hostname -> "" (hosts of a domain)
};
inline constexpr int kTableCount = 11;

// The name of a table, as stored (LMDB named database).
absl::string_view TableName(Table table);

class ReadTxn {
 public:
  virtual ~ReadTxn() = default;
  // The value, valid until the transaction ends (zero-copy where the backend
  // allows): copy it before the transaction closes. NOT_FOUND if absent.
  virtual absl::StatusOr<absl::string_view> Get(Table table,
                                                absl::string_view key) = 0;
  // Calls `fn(key, value)` in key order for keys >= `start`, until `fn`
  // returns false or the table ends.
  virtual absl::Status Scan(
      Table table, absl::string_view start,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) = 0;
};

class WriteTxn : public ReadTxn {
 public:
  virtual absl::Status Put(Table table, absl::string_view key,
                           absl::string_view value) = 0;
  // NOT_FOUND if absent.
  virtual absl::Status Delete(Table table, absl::string_view key) = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Runs `fn` in a consistent snapshot. Never hold a Read open across a wait.
  virtual absl::Status Read(const std::function<absl::Status(ReadTxn&)>& fn) = 0;

  // Runs `fn` in a write transaction and returns once its effect is durable.
  // Concurrent writes may share one commit (group commit); a failing `fn`
  // is rolled back alone. Returns `fn`'s error, or the commit's.
  virtual absl::Status Write(std::function<absl::Status(WriteTxn&)> fn) = 0;

  // As Write, but returns at once: `done` gets Write's result once the
  // write is durable or has failed, on the store's writer thread or on the
  // caller's, with no store lock held. For callers that must not hold a
  // thread through a commit (keyd's enrollment handlers). `done` must not
  // call Write. The default runs Write on the caller's thread.
  virtual void WriteAsync(std::function<absl::Status(WriteTxn&)> fn,
                          std::function<void(absl::Status)> done) {
    done(Write(std::move(fn)));
  }

  // Changes after every committed write, once its effect is visible to
  // Read. Caches of derived data read it before reading the store and stay
  // valid only while it is unchanged.
  virtual uint64_t generation() const = 0;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_STORE_H_
