// Netstrings ("len:payload,"), the framing of Postfix's socketmap protocol
// (socketmap_table(5)).
//
// NetstringDecoder takes bytes as they arrive and yields whole payloads. A
// length that is not decimal, exceeds the limit, or a payload not followed
// by ',' breaks the framing for good: the decoder reports it once and the
// connection cannot be resynchronized (the caller answers PERM and closes).
#ifndef MXKEY_MTA_HOOKS_POSTFIX_NETSTRING_H_
#define MXKEY_MTA_HOOKS_POSTFIX_NETSTRING_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace mxkey {

std::string EncodeNetstring(absl::string_view payload);

class NetstringDecoder {
 public:
  enum class Kind { kNeedMore, kPayload, kBroken };
  struct Result {
    Kind kind;
    std::string payload;  // kPayload: the payload; kBroken: what was wrong
  };

  explicit NetstringDecoder(size_t max_payload) : max_payload_(max_payload) {}

  void Append(absl::string_view bytes);
  // The next complete payload, kNeedMore, or kBroken (sticky).
  Result Next();
  // Bytes held for an incomplete netstring.
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  size_t max_payload_;
  std::string buffer_;
  size_t start_ = 0;
  bool broken_ = false;
  std::string broken_reason_;
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_POSTFIX_NETSTRING_H_
