// Remembers which destinations were last seen in enforce mode, so that when
// keyd is unreachable and no fresh answer is held, SenderPolicy still fails
// closed for them (defer: the mail waits in the queue) and says "none" only
// for the rest. Only SenderPolicy changes it, and only from a verified
// answer. Kept in memory and, with a state directory, in
// <dir>/enforce-names ("name version" per line), so a restart remembers
// too. A domain remembered in enforce at policy version V is lowered only
// by an answer with a newer policy (version > V): a replayed older answer
// (testing, none, or an "unkeyed" denial) cannot undo it.
//
// A failed save is logged; the memory copy stays authoritative.
#ifndef MXKEY_CLIENT_ENFORCE_MEMORY_H_
#define MXKEY_CLIENT_ENFORCE_MEMORY_H_

#include <string>

#include <cstdint>
#include <optional>

#include "absl/container/btree_map.h"
#include "base/mutex.h"

namespace mxkey {

class EnforceMemory {
 public:
  // Loads <state_dir>/enforce-names if present; empty dir: memory only.
  explicit EnforceMemory(std::string state_dir);

  // Records what a verified answer said for `name` (a domain or "[host]"):
  // enforce or not, at policy `version` (nullopt: unversioned, as for a
  // host, whose mode comes from its domains' answers; 0: an "unkeyed"
  // denial). Returns false, changing nothing, for an answer that would
  // lower an enforce entry but is not newer than it.
  bool Record(const std::string& name, bool enforce,
              std::optional<uint64_t> version);
  bool IsEnforced(const std::string& name) const;
  // The policy version `name` was remembered in enforce at.
  std::optional<uint64_t> EnforcedAt(const std::string& name) const;

 private:
  const std::string path_;
  mutable Mutex mu_;
  // Names in enforce mode, with the policy version that said so.
  absl::btree_map<std::string, uint64_t> names_ ABSL_GUARDED_BY(mu_);
  void Save() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace mxkey

#endif  // MXKEY_CLIENT_ENFORCE_MEMORY_H_
