// A Store that tells listeners which public answers each committed write
// changed, so caches of answers can drop exactly those (keyd/directory)
// instead of everything on every write.
//
// The names are derived from what a write puts and deletes, not declared by
// the writer, so a new write path cannot forget to invalidate: a table whose
// effect on answers is not known here reports `everything`. Listeners run
// on the writing thread after every successful write (even one that changed
// no answer) once it is durable and visible, before Write returns; they
// must be quick and must not write. Errors of the wrapped store pass through
// unchanged, and a failed write reports nothing.
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
  // Store::generation() read after the write became visible.
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
  // `fn`, recording what it touches in `*change`.
  static std::function<absl::Status(WriteTxn&)> Tracked(
      std::function<absl::Status(WriteTxn&)> fn,
      std::shared_ptr<StoreChange> change);
  // Tells every listener about a committed `change`.
  void Report(StoreChange& change);

  Store* inner_;
  std::vector<Listener> listeners_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_CHANGE_TRACKING_STORE_H_
