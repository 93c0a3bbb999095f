// Test-only access to NoiseHandshake: fixes the next ephemeral key so the
// published vectors can be reproduced. Not part of any production target or
// of the C ABI (PROTOCOL.md §10).
#ifndef MXKEY_MTA_HOOKS_SESSION_NOISE_HANDSHAKE_TEST_ACCESS_H_
#define MXKEY_MTA_HOOKS_SESSION_NOISE_HANDSHAKE_TEST_ACCESS_H_

#include "mta-hooks/session/noise_handshake.h"

namespace mxkey {

class NoiseHandshakeTestAccess {
 public:
  static void FixNextEphemeral(NoiseHandshake& hs, X25519PrivateKey e) {
    hs.fixed_ephemeral_ = std::move(e);
  }
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_SESSION_NOISE_HANDSHAKE_TEST_ACCESS_H_
