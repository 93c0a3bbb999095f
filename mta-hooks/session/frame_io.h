// Byte streams for the keyed session and its framing: each Noise message on
// the wire is preceded by its length as 2 bytes, big-endian (PROTOCOL.md §10).
//
// Errors: INVALID_ARGUMENT for a message longer than 65,535 bytes (nothing
// is written), UNAVAILABLE when the stream fails or closes (DATA_LOSS if it
// closes in the middle of a frame).
#ifndef MXKEY_MTA_HOOKS_SESSION_FRAME_IO_H_
#define MXKEY_MTA_HOOKS_SESSION_FRAME_IO_H_

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxkey {

// A blocking, reliable byte stream (a TCP socket, or an MTA's own I/O).
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads up to `n` bytes; 0 means the peer closed the stream.
  virtual absl::StatusOr<size_t> ReadSome(char* buf, size_t n) = 0;
  // Writes all of `data`.
  virtual absl::Status WriteAll(absl::string_view data) = 0;
};

// A file descriptor (not owned); retries EINTR and short writes.
class FdStream : public ByteStream {
 public:
  explicit FdStream(int fd) : fd_(fd) {}
  absl::StatusOr<size_t> ReadSome(char* buf, size_t n) override;
  absl::Status WriteAll(absl::string_view data) override;

 private:
  int fd_;
};

// Caller-supplied callbacks, as the C ABI offers them. Each returns the
// number of bytes moved (> 0), 0 for end of stream (read only), or < 0 for
// an error.
class CallbackStream : public ByteStream {
 public:
  using ReadFn = std::function<long(char* buf, size_t n)>;
  using WriteFn = std::function<long(const char* buf, size_t n)>;
  CallbackStream(ReadFn read, WriteFn write)
      : read_(std::move(read)), write_(std::move(write)) {}
  absl::StatusOr<size_t> ReadSome(char* buf, size_t n) override;
  absl::Status WriteAll(absl::string_view data) override;

 private:
  ReadFn read_;
  WriteFn write_;
};

inline constexpr size_t kMaxFrameSize = 65535;

absl::Status WriteFrame(ByteStream& stream, absl::string_view message);
absl::StatusOr<std::string> ReadFrame(ByteStream& stream);

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_FRAME_IO_H_
