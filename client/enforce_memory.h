// Remembers which destinations were last seen in enforce mode, so that when
// keyd is unreachable and no fresh answer is held, SenderPolicy still fails
// closed for them (defer: the mail waits in the queue) and says "none" only
// for the rest. Only SenderPolicy changes it, and only from a verified
// answer. Kept in memory and, with a state directory, in
// <dir>/enforce-names, so a restart remembers too.
//
// A failed save is logged; the memory copy stays authoritative.
#ifndef MXKEY_CLIENT_ENFORCE_MEMORY_H_
#define MXKEY_CLIENT_ENFORCE_MEMORY_H_

#include <string>

#include "absl/container/btree_set.h"
#include "base/mutex.h"

namespace mxkey {

class EnforceMemory {
 public:
  // Loads <state_dir>/enforce-names if present; empty dir: memory only.
  explicit EnforceMemory(std::string state_dir);

  // Records the mode last seen for `name` (a domain or "[host]").
  void Set(const std::string& name, bool enforce);
  bool IsEnforced(const std::string& name) const;

 private:
  const std::string path_;
  mutable Mutex mu_;
  absl::btree_set<std::string> names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxkey

#endif  // MXKEY_CLIENT_ENFORCE_MEMORY_H_
