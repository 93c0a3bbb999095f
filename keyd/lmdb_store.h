// The LMDB backend of Store: one environment, one named database per Table.
//
// Writes go through a single writer thread that batches every pending write
// into one transaction (group commit). Each write runs in a nested
// transaction, so a failing one is rolled back alone; the batch is then
// committed with LMDB's default fsync, and only then is any caller answered.
// Reads use MDB_NOTLS snapshots that never wait on the writer.
//
// Never used: MDB_WRITEMAP (SIGBUS on a full disk, no nested transactions),
// MDB_NOSYNC / MDB_NOMETASYNC (acknowledged writes must be durable).
// Errors from LMDB map to Status in LmdbStatus(): a full map or disk is
// RESOURCE_EXHAUSTED.
#ifndef MXKEY_KEYD_LMDB_STORE_H_
#define MXKEY_KEYD_LMDB_STORE_H_

#include <lmdb.h>

#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "base/mutex.h"
#include "base/metrics.h"
#include "keyd/store.h"

namespace mxkey {

struct LmdbOptions {
  // Upper bound of the database size. The file grows only as data is
  // written; the map is address space, not disk.
  size_t map_size = size_t{64} << 30;
  unsigned max_readers = 1024;
  // How many writes one commit takes at most.
  size_t max_batch = 1024;
  // Observes each durable commit's time when set (keyd's metrics).
  Histogram* commit_latency = nullptr;
};

// Maps an LMDB return code to a Status naming `what` failed.
absl::Status LmdbStatus(int rc, absl::string_view what);

class LmdbStore : public Store {
 public:
  // Opens (creating if needed) the environment in directory `dir`.
  static absl::StatusOr<std::unique_ptr<LmdbStore>> Open(
      const std::string& dir, const LmdbOptions& options = {});
  ~LmdbStore() override;

  absl::Status Read(const std::function<absl::Status(ReadTxn&)>& fn) override;
  absl::Status Write(std::function<absl::Status(WriteTxn&)> fn) override;
  void WriteAsync(std::function<absl::Status(WriteTxn&)> fn,
                  std::function<void(absl::Status)> done) override;

  // Durable commits made so far (for group-commit tests and benchmarks).
  uint64_t commit_count() const { return commits_.load(); }
  uint64_t generation() const override { return commits_.load(); }

 private:
  struct PendingWrite;
  LmdbStore(MDB_env* env, std::array<MDB_dbi, kTableCount> dbis,
            const LmdbOptions& options);
  void WriterLoop();
  void CommitBatch(std::deque<PendingWrite*>& batch);
  // Whether the file system holding the database is (nearly) out of space.
  bool FileSystemFull() const;

  MDB_env* env_;
  std::array<MDB_dbi, kTableCount> dbis_;
  LmdbOptions options_;
  std::atomic<uint64_t> commits_{0};

  Mutex mu_;
  std::deque<PendingWrite*> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  CondVar work_cv_;  // the writer waits on it for queued writes
  std::thread writer_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_LMDB_STORE_H_
