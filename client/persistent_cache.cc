#include "client/persistent_cache.h"

#include <lmdb.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mxkey {
namespace {

absl::Status LmdbError(int rc, absl::string_view what) {
  std::string msg = absl::StrCat("key cache ", what, ": ", mdb_strerror(rc));
  if (rc == MDB_MAP_FULL) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

MDB_val Val(absl::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

absl::string_view View(const MDB_val& v) {
  return absl::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// Runs `body` in a write transaction and commits it if `body` succeeds.
template <typename Body>
absl::Status InWriteTxn(MDB_env* env, absl::string_view what, Body body) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env, nullptr, 0, &txn);
  if (rc != MDB_SUCCESS) return LmdbError(rc, what);
  rc = body(txn);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return LmdbError(rc, what);
  }
  rc = mdb_txn_commit(txn);
  return rc == MDB_SUCCESS ? absl::OkStatus() : LmdbError(rc, what);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PersistentCache>> PersistentCache::Open(
    const std::string& dir, size_t map_size) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create cache directory ",
                                            dir, ": ", strerror(errno)));
  }
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != MDB_SUCCESS) return LmdbError(rc, "create");
  auto fail = [&](int code, absl::string_view what) {
    mdb_env_close(env);
    return LmdbError(code, what);
  };
  if ((rc = mdb_env_set_mapsize(env, map_size)) != MDB_SUCCESS) {
    return fail(rc, "set map size");
  }
  // NOMETASYNC: a crash may lose the last cache writes, never the file's
  // integrity; the cache is refilled from keyd anyway.
  if ((rc = mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_NOMETASYNC,
                         0600)) != MDB_SUCCESS) {
    return fail(rc, absl::StrCat("open ", dir));
  }
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  if ((rc = mdb_txn_begin(env, nullptr, 0, &txn)) != MDB_SUCCESS) {
    return fail(rc, "begin");
  }
  if ((rc = mdb_dbi_open(txn, nullptr, 0, &dbi)) != MDB_SUCCESS) {
    mdb_txn_abort(txn);
    return fail(rc, "open database");
  }
  if ((rc = mdb_txn_commit(txn)) != MDB_SUCCESS) return fail(rc, "commit");
  return std::unique_ptr<PersistentCache>(new PersistentCache(env, dbi));
}

PersistentCache::~PersistentCache() { mdb_env_close(env_); }

absl::StatusOr<std::optional<std::string>> PersistentCache::Get(
    absl::string_view key) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != MDB_SUCCESS) return LmdbError(rc, "read");
  MDB_val k = Val(key), v;
  rc = mdb_get(txn, dbi_, &k, &v);
  std::optional<std::string> out;
  if (rc == MDB_SUCCESS) out = std::string(View(v));
  mdb_txn_abort(txn);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return LmdbError(rc, "get");
  return out;
}

absl::Status PersistentCache::Put(absl::string_view key,
                                  absl::string_view value) {
  return InWriteTxn(env_, "put", [&](MDB_txn* txn) {
    MDB_val k = Val(key), v = Val(value);
    return mdb_put(txn, dbi_, &k, &v, 0);
  });
}

absl::Status PersistentCache::Delete(absl::string_view key) {
  return InWriteTxn(env_, "delete", [&](MDB_txn* txn) {
    MDB_val k = Val(key);
    return mdb_del(txn, dbi_, &k, nullptr);
  });
}

absl::Status PersistentCache::DeleteIf(
    absl::string_view prefix,
    const std::function<bool(absl::string_view, absl::string_view)>& pred) {
  return InWriteTxn(env_, "delete", [&](MDB_txn* txn) {
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn, dbi_, &cursor);
    if (rc != MDB_SUCCESS) return rc;
    MDB_val k = Val(prefix), v;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && absl::StartsWith(View(k), prefix)) {
      if (pred(View(k), View(v))) {
        // LMDB keeps the cursor valid across a delete; MDB_NEXT then yields
        // the item after the deleted one.
        rc = mdb_cursor_del(cursor, 0);
        if (rc != MDB_SUCCESS) break;
      }
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    return rc;
  });
}

}  // namespace mxkey
