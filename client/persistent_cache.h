// The on-disk cache of signed keyd answers (LMDB in the client's cache
// directory), so a restarted hook, or one whose keyd is down, still has
// answers to verify and serve until their freshness runs out.
//
// It holds only public, signed data, verified again on every read. Each call
// is its own transaction. Errors: INTERNAL for LMDB failures (a damaged
// cache is the caller's to drop), RESOURCE_EXHAUSTED when the map is full.
#ifndef MXKEY_CLIENT_PERSISTENT_CACHE_H_
#define MXKEY_CLIENT_PERSISTENT_CACHE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct MDB_env;

namespace mxkey {

class PersistentCache {
 public:
  // Creates `dir` (0700) if needed. `map_size` bounds the file.
  static absl::StatusOr<std::unique_ptr<PersistentCache>> Open(
      const std::string& dir, size_t map_size = size_t{1} << 30);
  ~PersistentCache();

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);
  absl::Status Put(absl::string_view key, absl::string_view value);
  absl::Status Delete(absl::string_view key);
  // Deletes the keys starting with `prefix` whose (key, value) match `pred`.
  absl::Status DeleteIf(
      absl::string_view prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& pred);

 private:
  explicit PersistentCache(MDB_env* env, unsigned dbi) : env_(env), dbi_(dbi) {}
  MDB_env* env_;
  unsigned dbi_;
};

}  // namespace mxkey

#endif  // MXKEY_CLIENT_PERSISTENT_CACHE_H_
