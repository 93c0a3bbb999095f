// Fuzzes hostname and domain validation: any input either fails cleanly or
// yields a name that is canonical (a fixed point) and under itself.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "protocol/hostname.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> name = mxkey::CanonicalHostname(input);
  if (!name.ok()) return 0;
  absl::StatusOr<std::string> again = mxkey::CanonicalHostname(*name);
  if (!again.ok() || *again != *name) abort();
  if (!mxkey::NameIsUnder(*name, *name)) abort();
  size_t dot = name->find('.');
  if (dot != std::string::npos &&
      !mxkey::NameIsUnder(*name, name->substr(dot + 1))) {
    abort();
  }
  return 0;
}
