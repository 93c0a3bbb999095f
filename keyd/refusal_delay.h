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
#include <utility>

#include "absl/container/btree_map.h"
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

  // A held refusal, for Cancel. `id` 0: it was sent at once.
  struct Ticket {
    std::chrono::steady_clock::time_point due;
    uint64_t id = 0;
  };

  // Runs `send` (which finishes the refused call) after the delay, on the
  // delay's own thread; or at once, on the caller's thread, when the delay
  // is zero, a bound is reached, or Stop() has run. `send` must not block.
  Ticket Hold(const std::string& source, std::function<void()> send);
  // The same with a delay of its own (a refused watch stream waits longer
  // than a unary call, whose client has a deadline).
  Ticket Hold(const std::string& source, absl::Duration delay,
              std::function<void()> send);

  // Forgets a held refusal whose call ended first (its client gave up): it
  // is never sent and no longer counts against the bounds, so clients that
  // cancel and ask again cannot fill them with calls already gone. Nothing
  // happens if it was sent already.
  void Cancel(const Ticket& ticket);

  // Sends every held refusal now; later ones are sent at once.
  void Stop();

  // Refusals held now, and held ever (for tests and metrics).
  size_t held() const;
  uint64_t delayed_total() const;

 private:
  struct Held {
    std::string source;
    std::function<void()> send;
  };
  using Key = std::pair<std::chrono::steady_clock::time_point, uint64_t>;
  void Run();
  // Removes the held refusal at `it` (lock held) and returns its send.
  std::function<void()> Take(absl::btree_map<Key, Held>::iterator it);

  const RefusalDelayOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  // In the order they are due (then held); erased by Cancel.
  absl::btree_map<Key, Held> queue_;
  uint64_t next_id_ = 1;
  std::mt19937_64 random_{std::random_device{}()};  // the spread only
  absl::flat_hash_map<std::string, size_t> per_source_;
  uint64_t delayed_total_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // started on the first held refusal
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_REFUSAL_DELAY_H_
