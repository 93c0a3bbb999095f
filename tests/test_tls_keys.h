// TLS keys for tests, by label: keyd certifies a pin only with proof that
// the host holds its key (crypto/tls_key_proof.h), so a test's pins come
// from real keys. TestTlsPin("mx1") is the pin of an ECDSA P-256 key made
// once per process for that label; TestTlsKeyForPin finds the key again
// (InProcessKeyd signs each enrollment's proofs with it). Thread-safe.
#ifndef MXKEY_TESTS_TEST_TLS_KEYS_H_
#define MXKEY_TESTS_TEST_TLS_KEYS_H_

#include <string>
#include <vector>

#include "crypto/tls_key_proof.h"

namespace mxkey {

std::string TestTlsPin(const std::string& label);
// The key of a pin TestTlsPin made; null for any other pin.
const TlsKeySigner* TestTlsKeyForPin(const std::string& pin);

// A test's pins split: those of test keys, sent with their proof of
// possession, and any other, sent as is (as a host that already holds it,
// or a forger, sends it).
struct SplitPins {
  std::vector<std::string> plain;
  std::vector<const TlsKeySigner*> proven;
};
SplitPins SplitTestPins(const std::vector<std::string>& pins);

}  // namespace mxkey

#endif  // MXKEY_TESTS_TEST_TLS_KEYS_H_
