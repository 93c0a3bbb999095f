#include "mta-hooks/session/lmdb_replay_store.h"

#include <errno.h>
#include <lmdb.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/mutex.h"

namespace mxkey {

struct LmdbReplayStore::Env {
  MDB_env* env = nullptr;
  MDB_dbi seen = 0;       // key -> expiry (8 bytes big-endian)
  MDB_dbi by_expiry = 0;  // expiry (8 bytes big-endian) || key -> ""
  ~Env() {
    if (env != nullptr) mdb_env_close(env);
  }
};

namespace {

constexpr size_t kExpirySize = 8;

// Open environments of this process by directory (device, inode) and the
// pid that opened them: a forked child must open its own.
struct OpenEnvs {
  Mutex mu;
  std::map<std::pair<dev_t, ino_t>, std::pair<pid_t, std::weak_ptr<LmdbReplayStore::Env>>>
      by_dir ABSL_GUARDED_BY(mu);
};

OpenEnvs& Registry() {
  static OpenEnvs* envs = new OpenEnvs;
  return *envs;
}

absl::Status LmdbError(int rc, absl::string_view what, const std::string& dir) {
  std::string msg = absl::StrCat("replay store ", absl::CHexEscape(dir), ": ",
                                 what, ": ", mdb_strerror(rc));
  switch (rc) {
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(absl::StrCat(
          msg, " (the store is full; raise its map size or max_entries)"));
    case EACCES:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

std::string EncodeExpiry(int64_t ms) {
  const uint64_t u = static_cast<uint64_t>(std::max<int64_t>(ms, 0));
  std::string out(kExpirySize, '\0');
  for (size_t i = 0; i < kExpirySize; ++i) {
    out[i] = static_cast<char>(u >> (8 * (kExpirySize - 1 - i)));
  }
  return out;
}

int64_t DecodeExpiry(absl::string_view b) {
  uint64_t u = 0;
  for (size_t i = 0; i < kExpirySize && i < b.size(); ++i) {
    u = (u << 8) | static_cast<uint8_t>(b[i]);
  }
  return static_cast<int64_t>(u);
}

MDB_val Val(absl::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

absl::string_view View(const MDB_val& v) {
  return absl::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// Aborts the transaction unless it was committed.
class Txn {
 public:
  explicit Txn(MDB_txn* txn) : txn_(txn) {}
  ~Txn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  MDB_txn* get() const { return txn_; }
  int Commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;  // freed by commit, also when it fails
    return rc;
  }

 private:
  MDB_txn* txn_;
};

absl::Status CheckDirectory(const std::string& dir, struct stat* st) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create the replay directory ",
                     absl::CHexEscape(dir), ": ", strerror(errno)));
  }
  if (stat(dir.c_str(), st) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "replay directory ", absl::CHexEscape(dir), ": ", strerror(errno)));
  }
  if (!S_ISDIR(st->st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "replay directory ", absl::CHexEscape(dir), " is not a directory"));
  }
  if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "replay directory ", absl::CHexEscape(dir),
        " is writable by group or others (whoever can write it can erase "
        "what the replay guard remembers); chmod 700 it"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<LmdbReplayStore::Env>> OpenEnv(
    const std::string& dir, size_t map_size) {
  auto env = std::make_shared<LmdbReplayStore::Env>();
  int rc = mdb_env_create(&env->env);
  if (rc != MDB_SUCCESS) {
    env->env = nullptr;
    return LmdbError(rc, "mdb_env_create", dir);
  }
  if ((rc = mdb_env_set_maxdbs(env->env, 2)) != MDB_SUCCESS) {
    return LmdbError(rc, "set max dbs", dir);
  }
  if ((rc = mdb_env_set_mapsize(env->env, map_size)) != MDB_SUCCESS) {
    return LmdbError(rc, "set map size", dir);
  }
  rc = mdb_env_open(env->env, dir.c_str(), MDB_NOTLS | MDB_NOMETASYNC, 0600);
  if (rc != MDB_SUCCESS) return LmdbError(rc, "open", dir);
  MDB_txn* raw;
  if ((rc = mdb_txn_begin(env->env, nullptr, 0, &raw)) != MDB_SUCCESS) {
    return LmdbError(rc, "begin", dir);
  }
  Txn txn(raw);
  if ((rc = mdb_dbi_open(raw, "seen", MDB_CREATE, &env->seen)) != MDB_SUCCESS ||
      (rc = mdb_dbi_open(raw, "by_expiry", MDB_CREATE, &env->by_expiry)) !=
          MDB_SUCCESS) {
    return LmdbError(rc, "open tables", dir);
  }
  if ((rc = txn.Commit()) != MDB_SUCCESS) return LmdbError(rc, "commit", dir);
  return env;
}

// Drops expired entries (expiry < now), soonest first, at most `limit`.
int Prune(MDB_txn* txn, const LmdbReplayStore::Env& env, int64_t now_ms,
          size_t limit) {
  MDB_cursor* cursor;
  int rc = mdb_cursor_open(txn, env.by_expiry, &cursor);
  if (rc != MDB_SUCCESS) return rc;
  MDB_val k, v;
  size_t dropped = 0;
  while (dropped < limit &&
         (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST)) == MDB_SUCCESS) {
    absl::string_view entry = View(k);
    if (entry.size() != kExpirySize + kReplayKeySize ||
        DecodeExpiry(entry) >= now_ms) {
      break;
    }
    MDB_val seen_key = Val(entry.substr(kExpirySize));
    rc = mdb_del(txn, env.seen, &seen_key, nullptr);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) break;
    if ((rc = mdb_cursor_del(cursor, 0)) != MDB_SUCCESS) break;
    ++dropped;
  }
  mdb_cursor_close(cursor);
  return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

absl::StatusOr<size_t> Count(MDB_txn* txn, MDB_dbi dbi) {
  MDB_stat stat;
  int rc = mdb_stat(txn, dbi, &stat);
  if (rc != MDB_SUCCESS) return absl::InternalError(mdb_strerror(rc));
  return stat.ms_entries;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LmdbReplayStore>> LmdbReplayStore::Open(
    const std::string& dir, const LmdbReplayStoreOptions& options) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("the replay directory name is empty");
  }
  if (options.max_entries == 0) {
    return absl::InvalidArgumentError("a replay store needs max_entries > 0");
  }
  struct stat st;
  absl::Status checked = CheckDirectory(dir, &st);
  if (!checked.ok()) return checked;
  size_t map_size = options.map_size;
  if (map_size == 0) {
    map_size = std::max<size_t>(size_t{1} << 20, options.max_entries * 1024);
  }
  OpenEnvs& envs = Registry();
  MutexLock lock(&envs.mu);
  auto& slot = envs.by_dir[{st.st_dev, st.st_ino}];
  std::shared_ptr<Env> env =
      slot.first == getpid() ? slot.second.lock() : nullptr;
  if (env == nullptr) {
    absl::StatusOr<std::shared_ptr<Env>> opened = OpenEnv(dir, map_size);
    if (!opened.ok()) return opened.status();
    env = *std::move(opened);
    slot = {getpid(), env};
  }
  return std::unique_ptr<LmdbReplayStore>(
      new LmdbReplayStore(std::move(env), dir, options.max_entries));
}

LmdbReplayStore::~LmdbReplayStore() {
  // The registry must not see the environment closing half-way.
  OpenEnvs& envs = Registry();
  MutexLock lock(&envs.mu);
  env_.reset();
}

absl::StatusOr<bool> LmdbReplayStore::Insert(absl::string_view key,
                                             int64_t expiry_ms,
                                             int64_t now_ms) {
  if (key.size() != kReplayKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "replay key of ", key.size(), " bytes, not ", kReplayKeySize));
  }
  MDB_txn* raw;
  int rc = mdb_txn_begin(env_->env, nullptr, 0, &raw);
  if (rc == MDB_MAP_RESIZED) {
    // Another process grew the map; adopt its size.
    mdb_env_set_mapsize(env_->env, 0);
    rc = mdb_txn_begin(env_->env, nullptr, 0, &raw);
  }
  if (rc != MDB_SUCCESS) return LmdbError(rc, "begin", dir_);
  Txn txn(raw);
  if ((rc = Prune(raw, *env_, now_ms, kPruneBatch)) != MDB_SUCCESS) {
    return LmdbError(rc, "prune", dir_);
  }
  MDB_val k = Val(key), v;
  rc = mdb_get(raw, env_->seen, &k, &v);
  if (rc == MDB_SUCCESS) {
    const int64_t old = DecodeExpiry(View(v));
    if (old >= now_ms) return false;
    // Expired but not pruned yet (Prune stops at its batch): replace it.
    const std::string old_index = absl::StrCat(EncodeExpiry(old), key);
    MDB_val ik = Val(old_index);
    rc = mdb_del(raw, env_->by_expiry, &ik, nullptr);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
      return LmdbError(rc, "delete", dir_);
    }
    if ((rc = mdb_del(raw, env_->seen, &k, nullptr)) != MDB_SUCCESS) {
      return LmdbError(rc, "delete", dir_);
    }
  } else if (rc != MDB_NOTFOUND) {
    return LmdbError(rc, "get", dir_);
  }
  absl::StatusOr<size_t> n = Count(raw, env_->seen);
  if (!n.ok()) return n.status();
  if (*n >= max_entries_) {
    // Full, maybe of expired entries beyond one batch: drop them all.
    if ((rc = Prune(raw, *env_, now_ms, SIZE_MAX)) != MDB_SUCCESS) {
      return LmdbError(rc, "prune", dir_);
    }
    n = Count(raw, env_->seen);
    if (!n.ok()) return n.status();
  }
  if (*n >= max_entries_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "replay guard full: the shared store ", absl::CHexEscape(dir_),
        " remembers ", max_entries_,
        " first messages accepted within the window and forgets none early; "
        "refusing the handshake (raise the guard's max_entries)"));
  }
  const std::string expiry = EncodeExpiry(expiry_ms);
  const std::string index = absl::StrCat(expiry, key);
  MDB_val ev = Val(expiry), ik = Val(index), empty = Val("");
  if ((rc = mdb_put(raw, env_->seen, &k, &ev, 0)) != MDB_SUCCESS ||
      (rc = mdb_put(raw, env_->by_expiry, &ik, &empty, 0)) != MDB_SUCCESS) {
    return LmdbError(rc, "put", dir_);
  }
  if ((rc = txn.Commit()) != MDB_SUCCESS) return LmdbError(rc, "commit", dir_);
  return true;
}

absl::StatusOr<size_t> LmdbReplayStore::Entries() {
  MDB_txn* raw;
  int rc = mdb_txn_begin(env_->env, nullptr, MDB_RDONLY, &raw);
  if (rc != MDB_SUCCESS) return LmdbError(rc, "begin", dir_);
  Txn txn(raw);
  return Count(raw, env_->seen);
}

}  // namespace mxkey
