// Early-return helpers for absl::Status / absl::StatusOr.
//
// Debian's absl (20220623) ships no status macros, so these two stand in.
// They only propagate errors; they never throw or log.
#ifndef MXKEY_BASE_STATUS_MACROS_H_
#define MXKEY_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MXKEY_CONCAT_INNER_(a, b) a##b
#define MXKEY_CONCAT_(a, b) MXKEY_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status mxkey_status_ = (expr);       \
    if (!mxkey_status_.ok()) return mxkey_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(T x, StatusOrExpr)` declares/assigns `x` from the value,
// or returns the error status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(MXKEY_CONCAT_(mxkey_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#endif  // MXKEY_BASE_STATUS_MACROS_H_
