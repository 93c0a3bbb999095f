#include "client/enforce_memory.h"

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/files.h"
#include "base/log.h"

namespace mxkey {

EnforceMemory::EnforceMemory(std::string state_dir)
    : path_(state_dir.empty() ? "" : state_dir + "/enforce-names") {
  if (path_.empty()) return;
  absl::StatusOr<std::string> text = ReadFile(path_, 64 << 20);
  if (!text.ok()) {
    if (!absl::IsNotFound(text.status())) {
      LogWarning("enforce memory: %s", text.status().message());
    }
    return;
  }
  MutexLock lock(&mu_);
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    names_.insert(std::string(line));
  }
}

void EnforceMemory::Set(const std::string& name, bool enforce) {
  {
    // Every lookup lands here, and the mode almost never changes: readers
    // share the lock.
    ReaderMutexLock read(&mu_);
    if (names_.contains(name) == enforce) return;
  }
  MutexLock lock(&mu_);
  const bool changed =
      enforce ? names_.insert(name).second : names_.erase(name) > 0;
  if (!changed || path_.empty()) return;
  // Mode changes are rare (an operator's act), so a rewrite is cheap enough
  // and keeps the file whole.
  absl::Status st = WriteFileAtomically(
      path_, absl::StrCat(absl::StrJoin(names_, "\n"), "\n"), 0600);
  if (!st.ok()) LogWarning("enforce memory: %s", st.message());
}

bool EnforceMemory::IsEnforced(const std::string& name) const {
  ReaderMutexLock lock(&mu_);
  return names_.contains(name);
}

}  // namespace mxkey
