#include "keyd/watch_registry.h"

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
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  sweeper_.join();
}

absl::StatusOr<std::shared_ptr<WatchTicket>> WatchRegistry::Admit(
    absl::string_view grpc_peer, grpc::CallbackServerContext* context) {
  std::string source = SourceNetwork(grpc_peer, limits_.prefixes);
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
  auto ticket = std::shared_ptr<WatchTicket>(
      new WatchTicket(context, std::move(source)));
  open_.insert(ticket);
  return ticket;
}

void WatchRegistry::Release(const std::shared_ptr<WatchTicket>& ticket) {
  {
    // Waits for a TryCancel on another thread to return; re-entered, not
    // blocked, when that TryCancel runs this watch's OnDone inline.
    std::lock_guard<std::recursive_mutex> lock(ticket->mu_);
    ticket->context_ = nullptr;
  }
  MutexLock lock(&mu_);
  if (open_.erase(ticket) == 0) return;
  auto it = per_source_.find(ticket->source_);
  if (it != per_source_.end() && --it->second == 0) per_source_.erase(it);
}

size_t WatchRegistry::open() const {
  MutexLock lock(&mu_);
  return open_.size();
}

int WatchRegistry::CancelStalled() {
  const int64_t cutoff =
      absl::ToUnixNanos(clock_->Now() - limits_.drain_timeout);
  std::vector<std::shared_ptr<WatchTicket>> stalled;
  {
    MutexLock lock(&mu_);
    for (const auto& t : open_) {
      const int64_t since = t->write_since_ns_.load();
      if (since != 0 && since <= cutoff) stalled.push_back(t);
    }
  }
  // No registry lock here: the cancel may run the watch's OnDone, which
  // releases its ticket.
  int cancelled = 0;
  for (const auto& t : stalled) {
    std::lock_guard<std::recursive_mutex> lock(t->mu_);
    if (t->context_ == nullptr || t->write_since_ns_.load() == 0) continue;
    LogWarning("watch dropped: source=%s reason=\"no read for %s (the "
               "client does not drain the stream; --watch-drain-timeout)\"",
               absl::CHexEscape(t->source_),
               absl::FormatDuration(limits_.drain_timeout));
    metrics_->watches_dropped()->Add();
    t->write_since_ns_.store(0);  // cancel once
    t->context_->TryCancel();
    ++cancelled;
  }
  return cancelled;
}

void WatchRegistry::Sweep() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(Condition(&stopping_), limits_.sweep_interval);
      if (stopping_) return;
    }
    CancelStalled();
  }
}

}  // namespace mxkey
