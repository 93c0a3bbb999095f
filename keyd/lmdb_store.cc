#include "keyd/lmdb_store.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mxkey {

absl::Status LmdbStatus(int rc, absl::string_view what) {
  if (rc == MDB_SUCCESS) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", mdb_strerror(rc));
  switch (rc) {
    case MDB_NOTFOUND:
      return absl::NotFoundError(msg);
    case MDB_MAP_FULL:
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(
          absl::StrCat(msg, " (storage is full)"));
    case EACCES:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

namespace {

MDB_val Val(absl::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

absl::string_view View(const MDB_val& v) {
  return absl::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

class LmdbTxn : public WriteTxn {
 public:
  LmdbTxn(MDB_txn* txn, const std::array<MDB_dbi, kTableCount>& dbis)
      : txn_(txn), dbis_(dbis) {}

  absl::StatusOr<absl::string_view> Get(Table table,
                                        absl::string_view key) override {
    MDB_val k = Val(key), v;
    int rc = mdb_get(txn_, dbi(table), &k, &v);
    if (rc != MDB_SUCCESS) return LmdbStatus(rc, "get");
    return View(v);
  }

  absl::Status Scan(Table table, absl::string_view start,
                    const std::function<bool(absl::string_view,
                                             absl::string_view)>& fn) override {
    MDB_cursor* cursor;
    int rc = mdb_cursor_open(txn_, dbi(table), &cursor);
    if (rc != MDB_SUCCESS) return LmdbStatus(rc, "cursor");
    MDB_val k = Val(start), v;
    rc = start.empty() ? mdb_cursor_get(cursor, &k, &v, MDB_FIRST)
                       : mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS) {
      if (!fn(View(k), View(v))) break;
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return LmdbStatus(rc, "scan");
    return absl::OkStatus();
  }

  absl::Status Put(Table table, absl::string_view key,
                   absl::string_view value) override {
    if (key.empty() || key.size() > 511) {
      return absl::InvalidArgumentError("storage key must be 1..511 bytes");
    }
    MDB_val k = Val(key), v = Val(value);
    return LmdbStatus(mdb_put(txn_, dbi(table), &k, &v, 0), "put");
  }

  absl::Status Delete(Table table, absl::string_view key) override {
    MDB_val k = Val(key);
    return LmdbStatus(mdb_del(txn_, dbi(table), &k, nullptr), "delete");
  }

 private:
  MDB_dbi dbi(Table t) const { return dbis_[static_cast<int>(t)]; }
  MDB_txn* txn_;
  const std::array<MDB_dbi, kTableCount>& dbis_;
};

}  // namespace

struct LmdbStore::PendingWrite {
  std::function<absl::Status(WriteTxn&)> fn;
  absl::Status result;
  // A Write waits on its own CondVar, so a commit wakes only the writes it
  // made; a WriteAsync has `on_done` instead (and is owned by the queue).
  bool done = false;
  CondVar done_cv;
  std::function<void(absl::Status)> on_done;
};

absl::StatusOr<std::unique_ptr<LmdbStore>> LmdbStore::Open(
    const std::string& dir, const LmdbOptions& options) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("cannot create database directory ", dir, ": ",
                     strerror(errno)));
  }
  MDB_env* env;
  int rc = mdb_env_create(&env);
  if (rc != MDB_SUCCESS) return LmdbStatus(rc, "mdb_env_create");
  auto fail = [&](int code, absl::string_view what) {
    mdb_env_close(env);
    return LmdbStatus(code, absl::StrCat(what, " (", dir, ")"));
  };
  if ((rc = mdb_env_set_maxdbs(env, kTableCount)) != MDB_SUCCESS) {
    return fail(rc, "set max dbs");
  }
  if ((rc = mdb_env_set_mapsize(env, options.map_size)) != MDB_SUCCESS) {
    return fail(rc, "set map size");
  }
  if ((rc = mdb_env_set_maxreaders(env, options.max_readers)) != MDB_SUCCESS) {
    return fail(rc, "set max readers");
  }
  if ((rc = mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0600)) != MDB_SUCCESS) {
    return fail(rc, "open database");
  }
  std::array<MDB_dbi, kTableCount> dbis;
  MDB_txn* txn;
  if ((rc = mdb_txn_begin(env, nullptr, 0, &txn)) != MDB_SUCCESS) {
    return fail(rc, "begin");
  }
  for (int i = 0; i < kTableCount; ++i) {
    std::string name(TableName(static_cast<Table>(i)));
    if ((rc = mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &dbis[i])) !=
        MDB_SUCCESS) {
      mdb_txn_abort(txn);
      return fail(rc, absl::StrCat("open table ", name));
    }
  }
  if ((rc = mdb_txn_commit(txn)) != MDB_SUCCESS) return fail(rc, "commit");
  return std::unique_ptr<LmdbStore>(new LmdbStore(env, dbis, options));
}

LmdbStore::LmdbStore(MDB_env* env, std::array<MDB_dbi, kTableCount> dbis,
                     const LmdbOptions& options)
    : env_(env), dbis_(dbis), options_(options) {
  writer_ = std::thread([this] { WriterLoop(); });
}

LmdbStore::~LmdbStore() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    work_cv_.Signal();
  }
  writer_.join();
  mdb_env_close(env_);
}

absl::Status LmdbStore::Read(const std::function<absl::Status(ReadTxn&)>& fn) {
  MDB_txn* txn;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != MDB_SUCCESS) return LmdbStatus(rc, "begin read");
  LmdbTxn view(txn, dbis_);
  absl::Status st = fn(view);
  mdb_txn_abort(txn);
  return st;
}

absl::Status LmdbStore::Write(std::function<absl::Status(WriteTxn&)> fn) {
  PendingWrite write;
  write.fn = std::move(fn);
  MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("store is shutting down");
  queue_.push_back(&write);
  if (queue_.size() == 1) work_cv_.Signal();
  while (!write.done) write.done_cv.Wait(&mu_);
  return write.result;
}

void LmdbStore::WriteAsync(std::function<absl::Status(WriteTxn&)> fn,
                           std::function<void(absl::Status)> done) {
  auto write = std::make_unique<PendingWrite>();
  write->fn = std::move(fn);
  write->on_done = std::move(done);
  {
    MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(write.release());
      if (queue_.size() == 1) work_cv_.Signal();
      return;
    }
  }
  write->on_done(absl::UnavailableError("store is shutting down"));
}

void LmdbStore::WriterLoop() {
  for (;;) {
    std::deque<PendingWrite*> batch;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) work_cv_.Wait(&mu_);
      if (queue_.empty() && stopping_) return;
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    CommitBatch(batch);
    std::vector<std::unique_ptr<PendingWrite>> async;
    {
      MutexLock lock(&mu_);
      for (PendingWrite* w : batch) {
        if (w->on_done) {
          async.emplace_back(w);
        } else {
          w->done = true;
          w->done_cv.Signal();
        }
      }
    }
    for (auto& w : async) w->on_done(std::move(w->result));
  }
}

void LmdbStore::CommitBatch(std::deque<PendingWrite*>& batch) {
  MDB_txn* parent;
  int rc = mdb_txn_begin(env_, nullptr, 0, &parent);
  if (rc != MDB_SUCCESS) {
    for (PendingWrite* w : batch) w->result = LmdbStatus(rc, "begin write");
    return;
  }
  bool any_ok = false;
  for (PendingWrite* w : batch) {
    MDB_txn* child;
    rc = mdb_txn_begin(env_, parent, 0, &child);
    if (rc != MDB_SUCCESS) {
      w->result = LmdbStatus(rc, "begin nested write");
      continue;
    }
    LmdbTxn txn(child, dbis_);
    w->result = w->fn(txn);
    if (w->result.ok()) {
      rc = mdb_txn_commit(child);
      if (rc != MDB_SUCCESS) {
        w->result = LmdbStatus(rc, "commit nested write");
      } else {
        any_ok = true;
      }
    } else {
      mdb_txn_abort(child);
    }
  }
  if (!any_ok) {
    mdb_txn_abort(parent);
    return;
  }
  {
    ScopedLatency timed(options_.commit_latency);
    rc = mdb_txn_commit(parent);  // fsyncs data, then meta page
  }
  if (rc != MDB_SUCCESS) {
    absl::Status st = LmdbStatus(rc, "commit");
    // LMDB reports a short write as EIO, and that is how a full file
    // system usually shows (the last page half fits): say so.
    if (rc == EIO && FileSystemFull()) {
      st = absl::ResourceExhaustedError(absl::StrCat(
          st.message(), " (storage is full: the file system holding the "
                        "database has no space left)"));
    }
    for (PendingWrite* w : batch) {
      if (w->result.ok()) w->result = st;
    }
    return;
  }
  commits_.fetch_add(1);
}

bool LmdbStore::FileSystemFull() const {
  const char* path = nullptr;
  struct statvfs fs;
  if (mdb_env_get_path(env_, &path) != MDB_SUCCESS || path == nullptr ||
      statvfs(path, &fs) != 0) {
    return false;
  }
  // Less than one MiB left is full for a database that grows by pages.
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < (uint64_t{1} << 20);
}

}  // namespace mxkey
