// Runs a body over an index range on a few threads, for the benchmarks'
// setup and load tools.
#ifndef MXKEY_BENCH_PARALLEL_H_
#define MXKEY_BENCH_PARALLEL_H_

#include <atomic>
#include <thread>
#include <vector>

namespace mxkey {

// Runs body(i) for i in [0, n) on `threads` threads; the number of calls
// that returned false.
template <typename Body>
int Parallel(int n, int threads, Body body) {
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < n;) {
        if (!body(i)) ++failures;
      }
    });
  }
  for (auto& t : pool) t.join();
  return failures.load();
}

}  // namespace mxkey

#endif  // MXKEY_BENCH_PARALLEL_H_
