#include "mta-hooks/session/frame_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace mxkey {
namespace {

// Reads exactly `n` bytes. `started` says whether a frame is under way, so
// an end of stream there is a truncated frame, not a clean close.
absl::Status ReadExactly(ByteStream& stream, char* buf, size_t n,
                         bool started) {
  size_t got = 0;
  while (got < n) {
    absl::StatusOr<size_t> r = stream.ReadSome(buf + got, n - got);
    if (!r.ok()) return r.status();
    if (*r == 0) {
      if (!started && got == 0) {
        return absl::UnavailableError("the peer closed the connection");
      }
      return absl::DataLossError(absl::StrCat(
          "truncated frame: the connection closed after ", got, " of ", n,
          " bytes"));
    }
    got += *r;
    started = true;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<size_t> FdStream::ReadSome(char* buf, size_t n) {
  for (;;) {
    ssize_t r = read(fd_, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno == EINTR) continue;
    return absl::UnavailableError(absl::StrCat("read: ", strerror(errno)));
  }
}

absl::Status FdStream::WriteAll(absl::string_view data) {
  while (!data.empty()) {
    ssize_t w = write(fd_, data.data(), data.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("write: ", strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> CallbackStream::ReadSome(char* buf, size_t n) {
  long r = read_(buf, n);
  if (r < 0) return absl::UnavailableError("the read callback reported an error");
  if (static_cast<size_t>(r) > n) {
    return absl::InternalError("the read callback returned more than asked");
  }
  return static_cast<size_t>(r);
}

absl::Status CallbackStream::WriteAll(absl::string_view data) {
  while (!data.empty()) {
    long w = write_(data.data(), data.size());
    if (w <= 0) {
      return absl::UnavailableError("the write callback reported an error");
    }
    if (static_cast<size_t>(w) > data.size()) {
      return absl::InternalError("the write callback wrote more than given");
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return absl::OkStatus();
}

absl::Status WriteFrame(ByteStream& stream, absl::string_view message) {
  if (message.size() > kMaxFrameSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "message of ", message.size(), " bytes exceeds the frame limit of ",
        kMaxFrameSize));
  }
  std::string frame;
  frame.reserve(2 + message.size());
  frame.push_back(static_cast<char>(message.size() >> 8));
  frame.push_back(static_cast<char>(message.size() & 0xff));
  frame.append(message.data(), message.size());
  return stream.WriteAll(frame);
}

absl::StatusOr<std::string> ReadFrame(ByteStream& stream) {
  char header[2];
  absl::Status st = ReadExactly(stream, header, 2, /*started=*/false);
  if (!st.ok()) return st;
  size_t n = (static_cast<size_t>(static_cast<unsigned char>(header[0])) << 8) |
             static_cast<unsigned char>(header[1]);
  std::string message(n, '\0');
  if (n > 0) {
    st = ReadExactly(stream, &message[0], n, /*started=*/true);
    if (!st.ok()) return st;
  }
  return message;
}

}  // namespace mxkey
