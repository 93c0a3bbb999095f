#include "keyd/refusal_delay.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace mxkey {

RefusalDelay::RefusalDelay(RefusalDelayOptions options)
    : options_(std::move(options)) {}

RefusalDelay::~RefusalDelay() {
  Stop();
  if (thread_.joinable()) thread_.join();
}

void RefusalDelay::Hold(const std::string& source, std::function<void()> send) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto held = per_source_.find(source);
    const size_t of_source = held == per_source_.end() ? 0 : held->second;
    const bool room = !stopping_ && options_.delay > absl::ZeroDuration() &&
                      queue_.size() < options_.max_held &&
                      of_source < options_.max_per_source;
    if (room) {
      ++per_source_[source];
      ++delayed_total_;
      const double spread =
          std::uniform_real_distribution<double>(0.5, 1.5)(random_);
      const auto due = std::chrono::steady_clock::now() +
                       absl::ToChronoNanoseconds(options_.delay * spread);
      const bool first = queue_.empty() || due < queue_.front().due;
      queue_.push_back({due, source, std::move(send)});
      std::push_heap(queue_.begin(), queue_.end(), LaterFirst());
      if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
      if (first) wake_.notify_one();
      return;
    }
  }
  send();  // at once, outside the lock
}

std::function<void()> RefusalDelay::PopFirst() {
  std::pop_heap(queue_.begin(), queue_.end(), LaterFirst());
  Held& first = queue_.back();
  std::function<void()> send = std::move(first.send);
  auto it = per_source_.find(first.source);
  if (it != per_source_.end() && --it->second == 0) per_source_.erase(it);
  queue_.pop_back();
  return send;
}

void RefusalDelay::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) return;
      wake_.wait(lock);
      continue;
    }
    const auto due = queue_.front().due;
    if (!stopping_ && std::chrono::steady_clock::now() < due) {
      wake_.wait_until(lock, due);
      continue;
    }
    // Everything due (or everything, when stopping), sent outside the lock.
    std::vector<std::function<void()>> sends;
    const auto now = std::chrono::steady_clock::now();
    while (!queue_.empty() && (stopping_ || queue_.front().due <= now)) {
      sends.push_back(PopFirst());
    }
    lock.unlock();
    for (auto& send : sends) send();
    lock.lock();
  }
}

void RefusalDelay::Stop() {
  std::vector<std::function<void()>> sends;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    while (!queue_.empty()) sends.push_back(PopFirst());
    wake_.notify_all();
  }
  for (auto& send : sends) send();
}

size_t RefusalDelay::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

uint64_t RefusalDelay::delayed_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delayed_total_;
}

}  // namespace mxkey
