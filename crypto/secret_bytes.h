// SecretBytes holds key material: private keys, seeds, tokens, passphrases.
//
// It wipes its buffer on destruction and on reassignment, compares in
// constant time, and has no stream operator, so it cannot end up in a log
// line by accident. It cannot fail.
#ifndef MXKEY_CRYPTO_SECRET_BYTES_H_
#define MXKEY_CRYPTO_SECRET_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace mxkey {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size) : bytes_(size, 0) {}
  explicit SecretBytes(absl::string_view data)
      : bytes_(data.begin(), data.end()) {}
  SecretBytes(const SecretBytes& other) : bytes_(other.bytes_) {}
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(const SecretBytes& other);
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  ~SecretBytes();

  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }

  // A view of the secret; it must not outlive this object.
  absl::string_view view() const {
    return absl::string_view(reinterpret_cast<const char*>(bytes_.data()),
                             bytes_.size());
  }

  // Constant-time in the contents (not in the length, which is public).
  bool Equals(const SecretBytes& other) const;

 private:
  void Wipe();
  std::vector<uint8_t> bytes_;
};

// Overwrites `n` bytes at `p` in a way the compiler may not elide.
void SecureWipe(void* p, size_t n);

// Constant-time equality of two byte strings of public length.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace mxkey

#endif  // MXKEY_CRYPTO_SECRET_BYTES_H_
