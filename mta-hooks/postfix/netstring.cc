#include "mta-hooks/postfix/netstring.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace mxkey {

std::string EncodeNetstring(absl::string_view payload) {
  return absl::StrCat(payload.size(), ":", payload, ",");
}

void NetstringDecoder::Append(absl::string_view bytes) {
  if (broken_) return;
  // Drop consumed bytes before growing, so a long-lived connection's buffer
  // stays as small as its largest request.
  if (start_ > 0 && start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > 4096) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

NetstringDecoder::Result NetstringDecoder::Next() {
  if (broken_) return {Kind::kBroken, broken_reason_};
  const absl::string_view rest = absl::string_view(buffer_).substr(start_);
  const size_t max_digits = absl::StrCat(max_payload_).size();
  size_t length = 0;
  size_t i = 0;
  for (; i < rest.size() && absl::ascii_isdigit(rest[i]); ++i) {
    if (i >= max_digits) break;
    length = length * 10 + static_cast<size_t>(rest[i] - '0');
  }
  auto broken = [&](std::string why) {
    broken_ = true;
    broken_reason_ = std::move(why);
    return Result{Kind::kBroken, broken_reason_};
  };
  if (i > max_digits || (i == max_digits && i < rest.size() &&
                         absl::ascii_isdigit(rest[i])) ||
      length > max_payload_) {
    return broken(absl::StrCat("netstring length exceeds the limit of ",
                               max_payload_, " bytes"));
  }
  if (i == rest.size()) return {Kind::kNeedMore, ""};
  if (i == 0) {
    return broken("a netstring must start with a decimal length, as in "
                  "\"12:hello world!,\"");
  }
  if (rest[i] != ':') {
    return broken("a netstring length must be followed by ':'");
  }
  const size_t total = i + 1 + length + 1;
  if (rest.size() < total) return {Kind::kNeedMore, ""};
  if (rest[total - 1] != ',') {
    return broken("a netstring payload must be followed by ','");
  }
  Result result{Kind::kPayload, std::string(rest.substr(i + 1, length))};
  start_ += total;
  return result;
}

}  // namespace mxkey
