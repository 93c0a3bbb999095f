// Noise handshake patterns as data (Noise spec rev. 34, §7): the five
// interactive patterns this project uses or tests against. The handshake
// code interprets them; no pattern has code of its own.
#ifndef MXKEY_MTA_HOOKS_SESSION_NOISE_PATTERN_H_
#define MXKEY_MTA_HOOKS_SESSION_NOISE_PATTERN_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace mxkey {

enum class NoiseToken { kE, kS, kEE, kES, kSE, kSS };

struct NoisePattern {
  std::string name;  // "IK"
  std::vector<NoiseToken> initiator_pre_messages;
  std::vector<NoiseToken> responder_pre_messages;
  // Message i is sent by the initiator when i is even.
  std::vector<std::vector<NoiseToken>> messages;
};

// NN, NK, KK, IK or XX; nullptr for any other name.
const NoisePattern* FindNoisePattern(absl::string_view name);

// "Noise_<pattern>_25519_ChaChaPoly_SHA256".
std::string NoiseProtocolName(const NoisePattern& pattern);

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_NOISE_PATTERN_H_
