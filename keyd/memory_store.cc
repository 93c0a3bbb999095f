#include "keyd/memory_store.h"

namespace mxkey {

namespace {

class MemoryTxn : public WriteTxn {
 public:
  explicit MemoryTxn(MemoryStore::Tables* tables) : tables_(tables) {}

  absl::StatusOr<absl::string_view> Get(Table table,
                                        absl::string_view key) override {
    auto& t = (*tables_)[static_cast<int>(table)];
    auto it = t.find(key);
    if (it == t.end()) return absl::NotFoundError("key not found");
    return absl::string_view(it->second);
  }

  absl::Status Scan(Table table, absl::string_view start,
                    const std::function<bool(absl::string_view,
                                             absl::string_view)>& fn) override {
    auto& t = (*tables_)[static_cast<int>(table)];
    for (auto it = t.lower_bound(start); it != t.end(); ++it) {
      if (!fn(it->first, it->second)) break;
    }
    return absl::OkStatus();
  }

  absl::Status Put(Table table, absl::string_view key,
                   absl::string_view value) override {
    (*tables_)[static_cast<int>(table)][std::string(key)] = std::string(value);
    return absl::OkStatus();
  }

  absl::Status Delete(Table table, absl::string_view key) override {
    auto& t = (*tables_)[static_cast<int>(table)];
    auto it = t.find(key);
    if (it == t.end()) return absl::NotFoundError("key not found");
    t.erase(it);
    return absl::OkStatus();
  }

 private:
  MemoryStore::Tables* tables_;
};

}  // namespace

absl::Status MemoryStore::Read(
    const std::function<absl::Status(ReadTxn&)>& fn) {
  ReaderMutexLock lock(&mu_);
  MemoryTxn txn(&tables_);
  return fn(txn);
}

absl::Status MemoryStore::Write(std::function<absl::Status(WriteTxn&)> fn) {
  MutexLock lock(&mu_);
  Tables copy = tables_;
  MemoryTxn txn(&copy);
  absl::Status st = fn(txn);
  if (st.ok()) {
    tables_ = std::move(copy);
    generation_.fetch_add(1);
  }
  return st;
}

}  // namespace mxkey
