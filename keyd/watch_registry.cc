#include "keyd/watch_registry.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace mxkey {

WatchRegistry::WatchRegistry(WatchLimits limits, Clock* clock,
                             KeydMetrics* metrics)
    : limits_(std::move(limits)), clock_(clock), metrics_(metrics) {
  sweeper_ = std::thread([this] { Sweep(); });
}

WatchRegistry::~WatchRegistry() {
  {
    std::lock_guard<std::mutex> lock(sweep_mu_);
    stopping_ = true;
  }
  sweep_wake_.notify_all();
  sweeper_.join();
}

std::string WatchRegistry::SourceOf(absl::string_view grpc_peer) const {
  return SourceNetwork(grpc_peer, limits_.prefixes);
}

absl::StatusOr<std::shared_ptr<WatchTicket>> WatchRegistry::Admit(
    absl::string_view grpc_peer, grpc::CallbackServerContext* context,
    std::weak_ptr<FeedListener> waker) {
  std::string source = SourceOf(grpc_peer);
  MutexLock lock(&mu_);
  if (open_.size() >= limits_.max_watches) {
    metrics_->watches_refused()->Add();
    return absl::ResourceExhaustedError(absl::StrCat(
        "keyd holds its maximum of ", limits_.max_watches,
        " revocation watches (--max-watches); retry later"));
  }
  size_t& from_source = per_source_[source];
  if (from_source >= limits_.max_watches_per_source) {
    metrics_->watches_refused()->Add();
    return absl::ResourceExhaustedError(absl::StrCat(
        "source ", source, " holds its maximum of ",
        limits_.max_watches_per_source,
        " revocation watches (--max-watches-per-source); retry later"));
  }
  ++from_source;
  const int64_t spread = absl::ToInt64Nanoseconds(limits_.drain_timeout / 4);
  // splitmix64: an even spread is all this needs, not secrecy.
  slack_state_ += 0x9e3779b97f4a7c15ULL;
  uint64_t z = slack_state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const int64_t slack =
      spread > 0 ? static_cast<int64_t>(z % static_cast<uint64_t>(spread)) : 0;
  auto ticket = std::shared_ptr<WatchTicket>(new WatchTicket(
      context, std::move(source), std::move(waker), slack));
  open_.insert(ticket);
  return ticket;
}

void WatchRegistry::Release(const std::shared_ptr<WatchTicket>& ticket) {
  {
    // Waits for a TryCancel on another thread to return (re-entered, not
    // blocked, if a TryCancel ever ran this watch's OnDone inline).
    std::lock_guard<std::recursive_mutex> lock(ticket->mu_);
    ticket->context_ = nullptr;
  }
  MutexLock lock(&mu_);
  if (open_.erase(ticket) == 0) return;
  auto it = per_source_.find(ticket->source_);
  if (it != per_source_.end() && --it->second == 0) {
    per_source_.erase(it);
    waiting_for_source_.erase(ticket->source_);
  }
  if (ticket->pending_bytes_ > 0) {
    auto p = pending_per_source_.find(ticket->source_);
    if (p != pending_per_source_.end() &&
        (p->second -= ticket->pending_bytes_) == 0) {
      pending_per_source_.erase(p);
    }
    ticket->pending_bytes_ = 0;
  }
}

bool WatchRegistry::StartWrite(WatchTicket& ticket, size_t bytes) {
  MutexLock lock(&mu_);
  size_t& pending = pending_per_source_[ticket.source_];
  if (pending > 0 && pending + bytes > limits_.max_pending_bytes_per_source) {
    ticket.starved_ = true;  // and woken by the sweep, should this be lost
    waiting_for_source_[ticket.source_].push_back(ticket.waker_);
    return false;
  }
  pending += bytes;
  ticket.pending_bytes_ = bytes;
  ticket.starved_ = false;
  ticket.write_since_ns_.store(absl::ToUnixNanos(clock_->Now()));
  return true;
}

std::vector<std::shared_ptr<FeedListener>> WatchRegistry::WriteDone(
    WatchTicket& ticket) {
  std::vector<std::shared_ptr<FeedListener>> wake;
  MutexLock lock(&mu_);
  ticket.write_since_ns_.store(0);
  auto p = pending_per_source_.find(ticket.source_);
  if (p != pending_per_source_.end()) {
    p->second -= std::min(p->second, ticket.pending_bytes_);
    if (p->second == 0) pending_per_source_.erase(p);
  }
  ticket.pending_bytes_ = 0;
  auto w = waiting_for_source_.find(ticket.source_);
  if (w != waiting_for_source_.end()) {
    for (auto& weak : w->second) {
      if (auto l = weak.lock()) wake.push_back(std::move(l));
    }
    waiting_for_source_.erase(w);
  }
  return wake;
}

void WatchRegistry::Starve(WatchTicket& ticket) {
  MutexLock lock(&mu_);
  ticket.starved_ = true;
}

void WatchRegistry::WakeStarved() {
  std::vector<std::shared_ptr<FeedListener>> wakers;
  {
    MutexLock lock(&mu_);
    for (const auto& t : open_) {
      if (!t->starved_) continue;
      t->starved_ = false;
      if (auto w = t->waker_.lock()) wakers.push_back(std::move(w));
    }
  }
  for (auto& w : wakers) w->Wake();
}

size_t WatchRegistry::open() const {
  MutexLock lock(&mu_);
  return open_.size();
}

int WatchRegistry::CancelStalled() {
  const int64_t cutoff =
      absl::ToUnixNanos(clock_->Now() - limits_.drain_timeout);
  std::vector<std::pair<std::shared_ptr<WatchTicket>, int64_t>> stalled;
  {
    MutexLock lock(&mu_);
    for (const auto& t : open_) {
      const int64_t since = t->write_since_ns_.load();
      if (since != 0 && since + t->drain_slack_ns_ <= cutoff) {
        stalled.emplace_back(t, since);
      }
    }
  }
  // No registry lock here: the cancel may end the watch, whose OnDone
  // releases its ticket.
  std::map<std::string, int> dropped_by_source;
  for (auto& [t, since] : stalled) {
    std::lock_guard<std::recursive_mutex> lock(t->mu_);
    // Still the same write (it may have ended, and another begun, since):
    // cancel once.
    if (t->context_ == nullptr ||
        !t->write_since_ns_.compare_exchange_strong(since, 0)) {
      continue;
    }
    metrics_->watches_dropped()->Add();
    t->context_->TryCancel();
    ++dropped_by_source[t->source_];
  }
  int cancelled = 0;
  for (const auto& [source, n] : dropped_by_source) {
    LogWarning("watch dropped: source=%s count=%d reason=\"no read for %s "
               "(the client does not drain the stream; "
               "--watch-drain-timeout)\"",
               absl::CHexEscape(source), n,
               absl::FormatDuration(limits_.drain_timeout));
    cancelled += n;
  }
  return cancelled;
}

void WatchRegistry::Sweep() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(sweep_mu_);
      sweep_wake_.wait_for(lock,
                           absl::ToChronoNanoseconds(limits_.sweep_interval),
                           [this] { return stopping_; });
      if (stopping_) return;
    }
    CancelStalled();
    WakeStarved();
  }
}

}  // namespace mxkey
