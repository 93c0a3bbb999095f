// A Store that tells listeners which public answers each write changes, so
// caches of answers can drop exactly those (keyd/directory) instead of
// everything on every write.
//
// The names are derived from what a write puts and deletes, not declared by
// the writer, so a new write path cannot forget to invalidate: a table whose
// effect on answers is not known here reports `everything`. Listeners run
// on the writing thread inside the write, after its function succeeded and
// before its commit makes it visible, with the generation the commit will
// have: so by the time any reader can see a write, every write of the same
// (group) commit has been reported, and no cache can keep an answer the
// commit changed. A write that then fails to commit was reported for
// nothing (a cache drops more than it had to). Listeners must be quick,
// must not read or write the store, and run under the store's write lock.
// Errors of the wrapped store pass through unchanged; a function that fails
// reports nothing.
#ifndef MXKEY_KEYD_CHANGE_TRACKING_STORE_H_
#define MXKEY_KEYD_CHANGE_TRACKING_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "keyd/store.h"

namespace mxkey {

// What one write changed, as far as answers go.
struct StoreChange {
  // The Store::generation() at which the write becomes visible.
  uint64_t generation = 0;
  // Nothing finer is known: every answer may have changed.
  bool everything = false;
  // Hosts whose GetHostKeys answer may have changed.
  absl::btree_set<std::string> hosts;
  // Mail domains whose GetDomainPolicy answer may have changed.
  absl::btree_set<std::string> domains;
  // The federation peers changed.
  bool peers = false;
};

class ChangeTrackingStore : public Store {
 public:
  using Listener = std::function<void(const StoreChange&)>;

  // `inner` must outlive this object.
  explicit ChangeTrackingStore(Store* inner) : inner_(inner) {}

  // Call before the store is shared between threads.
  void AddListener(Listener listener) {
    listeners_.push_back(std::move(listener));
  }

  absl::Status Read(const std::function<absl::Status(ReadTxn&)>& fn) override {
    return inner_->Read(fn);
  }
  absl::Status Write(std::function<absl::Status(WriteTxn&)> fn) override;
  void WriteAsync(std::function<absl::Status(WriteTxn&)> fn,
                  std::function<void(absl::Status)> done) override;
  uint64_t generation() const override { return inner_->generation(); }

 private:
  // `fn`, recording what it touches and reporting it before the commit.
  std::function<absl::Status(WriteTxn&)> Tracked(
      std::function<absl::Status(WriteTxn&)> fn);
  // Tells every listener about `change`, about to be committed.
  void Report(StoreChange& change);

  Store* inner_;
  std::vector<Listener> listeners_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_CHANGE_TRACKING_STORE_H_
