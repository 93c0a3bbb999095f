// Sends refusals late (a tarpit). A client refused by a rate limit (the
// denial limit, the enrollment limits) or whose enrollment failed, and
// that asks again at once, would otherwise get as many refusals as keyd's
// CPU can make, and take that CPU from honest clients. Held for `delay`
// first, each call it keeps in flight yields one refusal per delay, and
// costs keyd a place in a queue. An honest client that is refused backs
// off anyway, so the delay costs it nothing.
//
// Each refusal waits the delay times a random factor in [0.5, 1.5): the
// refusals of calls a client sent together go out spread over one delay,
// so its next calls (and the signed denials the limit still allows) come
// spread too, not in one burst that honest lookups would wait behind.
//
// Bounded: at most `max_per_source` refusals are held per source network and
// `max_held` in all (each is one open gRPC call: a few KiB); past either, a
// refusal is sent at once. Stop() (and the destructor) send every held
// refusal at once and make later ones go at once, so that server shutdown
// never waits out a delay. The delay is a duration on the steady clock,
// not a date: no calendar time is involved. Thread-safe; nothing fails.
#ifndef MXKEY_KEYD_REFUSAL_DELAY_H_
#define MXKEY_KEYD_REFUSAL_DELAY_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace mxkey {

struct RefusalDelayOptions {
  absl::Duration delay = absl::Seconds(1);  // zero: every refusal at once
  size_t max_held = 16384;
  size_t max_per_source = 8192;
};

class RefusalDelay {
 public:
  explicit RefusalDelay(RefusalDelayOptions options);
  ~RefusalDelay();
  RefusalDelay(const RefusalDelay&) = delete;
  RefusalDelay& operator=(const RefusalDelay&) = delete;

  // Runs `send` (which finishes the refused call) after the delay, on the
  // delay's own thread; or at once, on the caller's thread, when the delay
  // is zero, a bound is reached, or Stop() has run. `send` must not block.
  void Hold(const std::string& source, std::function<void()> send);

  // Sends every held refusal now; later ones are sent at once.
  void Stop();

  // Refusals held now, and held ever (for tests and metrics).
  size_t held() const;
  uint64_t delayed_total() const;

 private:
  struct Held {
    std::chrono::steady_clock::time_point due;
    std::string source;
    std::function<void()> send;
  };
  struct LaterFirst {
    bool operator()(const Held& a, const Held& b) const { return a.due > b.due; }
  };
  void Run();
  // Removes the refusal due first (lock held) and returns its send.
  std::function<void()> PopFirst();

  const RefusalDelayOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  // A min-heap on `due` (std::push_heap/pop_heap with LaterFirst).
  std::vector<Held> queue_;
  std::mt19937_64 random_{std::random_device{}()};  // the spread only
  absl::flat_hash_map<std::string, size_t> per_source_;
  uint64_t delayed_total_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // started on the first held refusal
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_REFUSAL_DELAY_H_
