// A ReplayStore shared by every process that opens the same directory: an
// LMDB environment, so all smtpd processes of a responder see each other's
// accepted first messages (PROTOCOL.md §10, SECURITY.md).
//
// Two tables in one write transaction per Insert: key -> expiry, and
// expiry || key (for pruning in expiry order). Each Insert first drops up
// to kPruneBatch expired entries, all of them when the store looks full.
// Bounds: at most max_entries entries, and the LMDB map size; either one
// reached gives RESOURCE_EXHAUSTED, never a forgotten live entry.
//
// The directory is created mode 0700 (its files 0600); an existing one that
// group or others can write is refused (FAILED_PRECONDITION), since whoever
// can write it can erase what the guard remembers. LMDB forbids opening one
// environment twice in a process, so stores on the same directory in one
// process share it. Commits skip only the meta-page sync (MDB_NOMETASYNC):
// a system crash may undo the last insert, never corrupt the store. On
// tmpfs (e.g. under /run) the sync costs nothing. Thread-safe.
#ifndef MXKEY_MTA_HOOKS_SESSION_LMDB_REPLAY_STORE_H_
#define MXKEY_MTA_HOOKS_SESSION_LMDB_REPLAY_STORE_H_

#include <memory>
#include <string>

#include "mta-hooks/session/replay_store.h"

namespace mxkey {

struct LmdbReplayStoreOptions {
  size_t max_entries = kDefaultReplayMaxEntries;
  // Bytes; 0 means max_entries x 1 KiB, at least 1 MiB (256 MiB by default,
  // a sparse file that grows with use: 38 MiB when full at the default cap).
  size_t map_size = 0;
};

class LmdbReplayStore : public ReplayStore {
 public:
  static constexpr size_t kPruneBatch = 1024;

  static absl::StatusOr<std::unique_ptr<LmdbReplayStore>> Open(
      const std::string& dir, const LmdbReplayStoreOptions& options = {});
  ~LmdbReplayStore() override;

  absl::StatusOr<bool> Insert(absl::string_view key, int64_t expiry_ms,
                              int64_t now_ms) override;

  // Entries held, expired ones not yet dropped included (for tests).
  absl::StatusOr<size_t> Entries();

  struct Env;

 private:
  LmdbReplayStore(std::shared_ptr<Env> env, std::string dir,
                  size_t max_entries)
      : env_(std::move(env)), dir_(std::move(dir)), max_entries_(max_entries) {}

  std::shared_ptr<Env> env_;
  std::string dir_;
  size_t max_entries_;
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_LMDB_REPLAY_STORE_H_
