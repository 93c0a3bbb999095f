// Fuzzes the DER walker and the PEM reader that take TLS key pins from
// certificates (outside input: any MTA certificate an operator points at).
#include <cstdint>
#include <cstdlib>

#include "crypto/spki.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<absl::string_view> spki = mxkey::SpkiFromCertificateDer(input);
  if (spki.ok()) {
    // The SPKI is a slice of the input, never beyond it.
    if (spki->data() < input.data() ||
        spki->data() + spki->size() > input.data() + input.size()) {
      abort();
    }
  }
  (void)mxkey::TlsPinFromPem(input);
  return 0;
}
