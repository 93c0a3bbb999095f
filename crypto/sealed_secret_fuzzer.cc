// Fuzzes the sealed key-file format (MXKEYSK1 header + scrypt parameters +
// ChaCha20-Poly1305). Inputs asking for scrypt costs above 2^10 are cut to
// keep each run fast; the parser's own limits are tested elsewhere.
#include <cstdint>

#include "crypto/sealed_secret.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 8 && data[8] > 10) return 0;
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  mxkey::SecretBytes passphrase(absl::string_view("passphrase"));
  (void)mxkey::OpenSealedSecret(passphrase, input);
  return 0;
}
