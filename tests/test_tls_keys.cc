#include "tests/test_tls_keys.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

namespace mxkey {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, std::string> pin_by_label;
  std::map<std::string, std::unique_ptr<TlsKeySigner>> key_by_pin;
};

Registry& TheRegistry() {
  static Registry* r = new Registry();
  return *r;
}

}  // namespace

std::string TestTlsPin(const std::string& label) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.pin_by_label.find(label);
  if (it != r.pin_by_label.end()) return it->second;
  absl::StatusOr<TlsKeySigner> key = TlsKeySigner::GenerateP256();
  if (!key.ok()) std::abort();  // no test can run without keys
  const std::string pin = key->pin();
  r.key_by_pin[pin] = std::make_unique<TlsKeySigner>(*std::move(key));
  r.pin_by_label[label] = pin;
  return pin;
}

const TlsKeySigner* TestTlsKeyForPin(const std::string& pin) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.key_by_pin.find(pin);
  return it == r.key_by_pin.end() ? nullptr : it->second.get();
}

SplitPins SplitTestPins(const std::vector<std::string>& pins) {
  SplitPins out;
  for (const std::string& pin : pins) {
    if (const TlsKeySigner* key = TestTlsKeyForPin(pin)) {
      out.proven.push_back(key);
    } else {
      out.plain.push_back(pin);
    }
  }
  return out;
}

}  // namespace mxkey
