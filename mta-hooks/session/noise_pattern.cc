#include "mta-hooks/session/noise_pattern.h"

#include "absl/strings/str_cat.h"

namespace mxkey {
namespace {

using T = NoiseToken;

const std::vector<NoisePattern>& AllPatterns() {
  static const auto* patterns = new std::vector<NoisePattern>{
      {"NN", {}, {}, {{T::kE}, {T::kE, T::kEE}}},
      {"NK", {}, {T::kS}, {{T::kE, T::kES}, {T::kE, T::kEE}}},
      {"KK",
       {T::kS},
       {T::kS},
       {{T::kE, T::kES, T::kSS}, {T::kE, T::kEE, T::kSE}}},
      {"IK",
       {},
       {T::kS},
       {{T::kE, T::kES, T::kS, T::kSS}, {T::kE, T::kEE, T::kSE}}},
      {"XX",
       {},
       {},
       {{T::kE}, {T::kE, T::kEE, T::kS, T::kES}, {T::kS, T::kSE}}},
  };
  return *patterns;
}

}  // namespace

const NoisePattern* FindNoisePattern(absl::string_view name) {
  for (const NoisePattern& p : AllPatterns()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string NoiseProtocolName(const NoisePattern& pattern) {
  return absl::StrCat("Noise_", pattern.name, "_25519_ChaChaPoly_SHA256");
}

}  // namespace mxkey
