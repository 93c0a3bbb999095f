// The one place where Crypto++ exceptions become absl::Status.
//
// Every call into Crypto++ in this directory runs inside GuardCryptoPP, so no
// exception crosses our API. Internal to //crypto.
#ifndef MXKEY_CRYPTO_CRYPTOPP_BOUNDARY_H_
#define MXKEY_CRYPTO_CRYPTOPP_BOUNDARY_H_

#include <exception>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "crypto++/cryptlib.h"

namespace mxkey {
namespace crypto_internal {

// Runs `fn` (returning StatusOr<T> or Status) and converts any exception it
// throws into an INTERNAL error naming `what`.
template <typename Fn>
auto GuardCryptoPP(absl::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const CryptoPP::Exception& e) {
    return absl::InternalError(absl::StrCat(what, ": crypto library error: ",
                                            e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

inline const CryptoPP::byte* Bytes(absl::string_view s) {
  return reinterpret_cast<const CryptoPP::byte*>(s.data());
}

}  // namespace crypto_internal
}  // namespace mxkey

#endif  // MXKEY_CRYPTO_CRYPTOPP_BOUNDARY_H_
