#include "client/enforce_memory.h"

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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
    // "name version"; a line of an older file has the name only.
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    uint64_t version = 0;
    if (parts.size() > 1 && !absl::SimpleAtoi(parts[1], &version)) version = 0;
    names_[std::string(parts[0])] = version;
  }
}

bool EnforceMemory::Record(const std::string& name, bool enforce,
                           std::optional<uint64_t> version) {
  {
    // Every lookup lands here, and the mode almost never changes: readers
    // share the lock.
    ReaderMutexLock read(&mu_);
    auto it = names_.find(name);
    if (enforce && it != names_.end() && it->second >= version.value_or(0)) {
      return true;
    }
    if (!enforce && it == names_.end()) return true;
    if (!enforce && version && *version <= it->second) return false;
  }
  MutexLock lock(&mu_);
  auto it = names_.find(name);
  if (enforce) {
    uint64_t& v = names_[name];
    v = std::max(v, version.value_or(0));
  } else {
    if (it == names_.end()) return true;
    if (version && *version <= it->second) return false;
    names_.erase(it);
  }
  Save();
  return true;
}

void EnforceMemory::Save() {
  if (path_.empty()) return;
  // Mode changes are rare (an operator's act), so a rewrite is cheap enough
  // and keeps the file whole.
  std::string text;
  for (const auto& [name, version] : names_) {
    absl::StrAppend(&text, name, " ", version, "\n");
  }
  absl::Status st = WriteFileAtomically(path_, text, 0600);
  if (!st.ok()) LogWarning("enforce memory: %s", st.message());
}

bool EnforceMemory::IsEnforced(const std::string& name) const {
  ReaderMutexLock lock(&mu_);
  return names_.contains(name);
}

std::optional<uint64_t> EnforceMemory::EnforcedAt(const std::string& name) const {
  ReaderMutexLock lock(&mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

}  // namespace mxkey
