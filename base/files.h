// Whole-file reads and durable, atomic whole-file writes.
//
// Errors: NOT_FOUND if the file is missing, PERMISSION_DENIED, or INTERNAL
// with the errno text and the path.
#ifndef MXKEY_BASE_FILES_H_
#define MXKEY_BASE_FILES_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxkey {

// Reads at most `max_size` bytes; a larger file is INVALID_ARGUMENT.
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     size_t max_size = 1 << 20);

// Writes `data` to a temporary file with `mode`, fsyncs it, renames it over
// `path` and fsyncs the directory: readers see the old or the new file,
// never a torn one.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data, mode_t mode);

}  // namespace mxkey

#endif  // MXKEY_BASE_FILES_H_
