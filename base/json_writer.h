// A minimal JSON writer for --json output and report records. Keys are
// fixed ASCII; string values are escaped per RFC 8259. Cannot fail.
#ifndef MXKEY_BASE_JSON_WRITER_H_
#define MXKEY_BASE_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace mxkey {

inline std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

// Builds one JSON object from already-encoded member values.
class JsonObject {
 public:
  JsonObject& Raw(absl::string_view key, absl::string_view json) {
    members_.push_back(absl::StrCat(JsonString(key), ":", json));
    return *this;
  }
  JsonObject& Str(absl::string_view key, absl::string_view value) {
    return Raw(key, JsonString(value));
  }
  JsonObject& Int(absl::string_view key, int64_t value) {
    return Raw(key, absl::StrCat(value));
  }
  std::string Build() const {
    return absl::StrCat("{", absl::StrJoin(members_, ","), "}");
  }

 private:
  std::vector<std::string> members_;
};

inline std::string JsonArray(const std::vector<std::string>& encoded) {
  return absl::StrCat("[", absl::StrJoin(encoded, ","), "]");
}

inline std::string JsonStringArray(const std::vector<std::string>& values) {
  std::vector<std::string> encoded;
  for (const auto& v : values) encoded.push_back(JsonString(v));
  return JsonArray(encoded);
}

}  // namespace mxkey

#endif  // MXKEY_BASE_JSON_WRITER_H_
