// An in-memory Store for unit tests of the layers above storage.
//
// Writes are serialized and applied copy-on-write, so a failing write
// function leaves no trace. Nothing is durable. It never fails by itself.
#ifndef MXKEY_KEYD_MEMORY_STORE_H_
#define MXKEY_KEYD_MEMORY_STORE_H_

#include <array>
#include <atomic>
#include <map>
#include <string>

#include "base/mutex.h"
#include "keyd/store.h"

namespace mxkey {

class MemoryStore : public Store {
 public:
  absl::Status Read(const std::function<absl::Status(ReadTxn&)>& fn) override;
  absl::Status Write(std::function<absl::Status(WriteTxn&)> fn) override;
  uint64_t generation() const override { return generation_.load(); }

  using Tables = std::array<std::map<std::string, std::string, std::less<>>,
                            kTableCount>;

 private:
  Mutex mu_;
  Tables tables_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{0};
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_MEMORY_STORE_H_
