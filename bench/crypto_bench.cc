// The enroll_rate baseline: one core's Ed25519 sign+verify rate (the
// crypto keyd must do per enrollment is of this order).
#include "benchmark/benchmark.h"
#include "crypto/ed25519.h"

namespace mxkey {
namespace {

void BM_Ed25519SignVerify(benchmark::State& state) {
  Ed25519PrivateKey key = *Ed25519PrivateKey::Generate();
  std::string message(200, 'm');
  for (auto _ : state) {
    std::string sig = *key.Sign(message);
    benchmark::DoNotOptimize(Ed25519Verify(key.public_key(), message, sig));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ed25519SignVerify);

}  // namespace
}  // namespace mxkey

BENCHMARK_MAIN();
