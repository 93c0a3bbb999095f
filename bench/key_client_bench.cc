// KeyClient cache hits (issue 3 / issue 6 figure "cache_hit"): LookupHost of
// names already verified and cached, one thread, against a real in-process
// keyd that is not consulted on a hit. Goal: >= 2 M lookups/s on one core.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "client/key_client.h"
#include "tests/inprocess_keyd.h"

namespace mxkey {
namespace {

constexpr int kHosts = 64;

struct Fixture {
  std::unique_ptr<InProcessKeyd> keyd;
  std::unique_ptr<KeyClient> client;
  std::vector<std::string> names;
};

// Made on first use; main() tears it down, which removes keyd's data dir.
Fixture* shared_fixture = nullptr;

Fixture& Shared() {
  static Fixture* f = [] {
    auto* f = shared_fixture = new Fixture;
    f->keyd = InProcessKeyd::Start(Clock::Real());
    for (int i = 0; i < kHosts; ++i) {
      f->names.push_back(absl::StrCat("mx", i, ".example.org"));
      f->keyd->AddAndEnroll(f->names.back());
    }
    KeyClientOptions o;
    o.endpoints = {f->keyd->endpoint()};
    o.root_fingerprint = f->keyd->root_fingerprint();
    f->client = *KeyClient::Create(o);
    f->client->WaitForFeedPosition(0, absl::Seconds(10));
    for (const auto& n : f->names) {
      if (!f->client->LookupHost(n).ok()) abort();
    }
    return f;
  }();
  return *f;
}

void BM_CacheHitLookupHost(benchmark::State& state) {
  Fixture& f = Shared();
  size_t i = 0;
  for (auto _ : state) {
    auto a = f.client->LookupHost(f.names[i++ % kHosts]);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheHitLookupHost);

}  // namespace
}  // namespace mxkey

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (mxkey::shared_fixture != nullptr) {
    mxkey::shared_fixture->client.reset();
    mxkey::shared_fixture->keyd.reset();
  }
  return 0;
}
