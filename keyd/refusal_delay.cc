#include "keyd/refusal_delay.h"

#include <utility>
#include <vector>

namespace mxkey {

RefusalDelay::RefusalDelay(RefusalDelayOptions options)
    : options_(std::move(options)) {}

RefusalDelay::~RefusalDelay() {
  Stop();
  if (thread_.joinable()) thread_.join();
}

RefusalDelay::Ticket RefusalDelay::Hold(const std::string& source,
                                        std::function<void()> send) {
  return Hold(source, options_.delay, std::move(send));
}

RefusalDelay::Ticket RefusalDelay::Hold(const std::string& source,
                                        absl::Duration delay,
                                        std::function<void()> send) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto held = per_source_.find(source);
    const size_t of_source = held == per_source_.end() ? 0 : held->second;
    const bool room = !stopping_ && delay > absl::ZeroDuration() &&
                      queue_.size() < options_.max_held &&
                      of_source < options_.max_per_source;
    if (room) {
      ++per_source_[source];
      ++delayed_total_;
      const double spread =
          std::uniform_real_distribution<double>(0.5, 1.5)(random_);
      const Ticket ticket{std::chrono::steady_clock::now() +
                              absl::ToChronoNanoseconds(delay * spread),
                          next_id_++};
      const bool first =
          queue_.empty() || ticket.due < queue_.begin()->first.first;
      queue_.emplace(Key(ticket.due, ticket.id), Held{source, std::move(send)});
      if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
      if (first) wake_.notify_one();
      return ticket;
    }
  }
  send();  // at once, outside the lock
  return Ticket();
}

void RefusalDelay::Cancel(const Ticket& ticket) {
  if (ticket.id == 0) return;
  std::function<void()> forgotten;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = queue_.find(Key(ticket.due, ticket.id));
    if (it == queue_.end()) return;  // sent already
    forgotten = Take(it);
  }
  // Destroyed outside the lock: what it captured may take locks of its own.
  forgotten = nullptr;
}

std::function<void()> RefusalDelay::Take(
    absl::btree_map<Key, Held>::iterator it) {
  std::function<void()> send = std::move(it->second.send);
  auto source = per_source_.find(it->second.source);
  if (source != per_source_.end() && --source->second == 0) {
    per_source_.erase(source);
  }
  queue_.erase(it);
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
    const auto due = queue_.begin()->first.first;
    if (!stopping_ && std::chrono::steady_clock::now() < due) {
      wake_.wait_until(lock, due);
      continue;
    }
    // Everything due (or everything, when stopping), sent outside the lock.
    std::vector<std::function<void()>> sends;
    const auto now = std::chrono::steady_clock::now();
    while (!queue_.empty() &&
           (stopping_ || queue_.begin()->first.first <= now)) {
      sends.push_back(Take(queue_.begin()));
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
    while (!queue_.empty()) sends.push_back(Take(queue_.begin()));
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
