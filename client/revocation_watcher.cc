#include "client/revocation_watcher.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"

#include "base/grpc_status.h"
#include "base/log.h"
#include "crypto/sha256.h"

namespace mxkey {

absl::StatusOr<std::vector<mxkey::v1::RevocationEventBody>> ReadFeedRange(
    const std::shared_ptr<grpc::Channel>& channel,
    const AnswerVerifier& verifier, uint64_t from, uint64_t to,
    size_t max_events, absl::Duration timeout, Clock* clock) {
  if (to - from > max_events) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "feed events ", from + 1, "..", to, " are more than ", max_events));
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(timeout));
  auto stub = mxkey::v1::KeyDirectory::NewStub(channel);
  mxkey::v1::WatchRevocationsRequest request;
  request.set_from_seq(from);
  auto reader = stub->WatchRevocations(&ctx, request);
  std::vector<mxkey::v1::RevocationEventBody> out;
  uint64_t seq = from;
  mxkey::v1::WatchRevocationsResponse batch;
  absl::Status result = absl::DeadlineExceededError(
      "keyd ended the feed before the events were read");
  while (reader->Read(&batch)) {
    absl::StatusOr<std::vector<mxkey::v1::RevocationEventBody>> events =
        verifier.VerifyFeedBatch(batch, seq, clock->Now());
    if (!events.ok()) {
      result = events.status();
      break;
    }
    for (auto& e : *events) {
      seq = e.seq();
      if (seq <= to) out.push_back(std::move(e));
    }
    // Done only once event `to` itself was read and verified: head_seq is
    // unsigned, and a head below `to` proves nothing.
    if (seq >= to) {
      result = absl::OkStatus();
      break;
    }
  }
  ctx.TryCancel();
  grpc::Status st = reader->Finish();
  if (!result.ok() && !st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
    return FromGrpcStatus(st);
  }
  if (!result.ok()) return result;
  return out;
}

RevocationWatcher::RevocationWatcher(RevocationWatcherOptions options)
    : options_(std::move(options)),
      position_(options_.start_after),
      position_digest_(options_.start_digest) {}

RevocationWatcher::~RevocationWatcher() { Stop(); }

void RevocationWatcher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RevocationWatcher::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

std::optional<uint64_t> RevocationWatcher::position() const {
  MutexLock lock(&mu_);
  return position_;
}

bool RevocationWatcher::WaitForPosition(uint64_t seq,
                                        absl::Duration timeout) const {
  MutexLock lock(&mu_);
  auto reached = [this, seq]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return position_.has_value() && *position_ >= seq;
  };
  return mu_.AwaitWithTimeout(Condition(&reached), timeout);
}

int RevocationWatcher::Subscribe(RevocationListener listener) {
  MutexLock lock(&mu_);
  listeners_[next_listener_] = std::move(listener);
  return next_listener_++;
}

void RevocationWatcher::Unsubscribe(int id) {
  {
    MutexLock lock(&mu_);
    listeners_.erase(id);
  }
  // A delivery that copied the listener before the erase ends first.
  MutexLock wait_out(&delivery_mu_);
}

void RevocationWatcher::SetPosition(std::optional<uint64_t> seq,
                                    std::string digest) {
  {
    MutexLock lock(&mu_);
    if (position_ == seq && (digest.empty() || digest == position_digest_)) {
      return;
    }
  }
  // Before any waiter sees the new position: what the client makes of it
  // (KeyClient marks where its watch began, which decides which answers
  // need the events in between) must be in place when WaitForPosition
  // returns, or an old answer admitted in that gap goes unchecked (found
  // by onpath_attack_test). Only this thread sets the position.
  if (options_.on_position) options_.on_position(seq, digest);
  MutexLock lock(&mu_);
  position_ = seq;
  position_digest_ = std::move(digest);
}

void RevocationWatcher::Run() {
  absl::Duration backoff = options_.min_backoff;
  for (size_t attempt = 0;; ++attempt) {
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
    }
    bool progressed = false;
    absl::StatusOr<std::shared_ptr<const AnswerVerifier>> verifier =
        options_.verifier();
    if (verifier.ok()) {
      const auto& channel =
          options_.channels[attempt % options_.channels.size()];
      progressed = WatchOnce(channel, **verifier);
    }
    backoff = progressed ? options_.min_backoff
                         : std::min(backoff * 2, options_.max_backoff);
    MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return stopping_;
    };
    mu_.AwaitWithTimeout(Condition(&stopping), backoff);
  }
}

bool RevocationWatcher::WatchOnce(const std::shared_ptr<grpc::Channel>& channel,
                                  const AnswerVerifier& verifier) {
  grpc::ClientContext ctx;
  std::optional<uint64_t> start;
  std::string digest;
  {
    MutexLock lock(&mu_);
    if (stopping_) return false;
    active_ = &ctx;
    start = position_;
    digest = position_digest_;
  }
  auto stub = mxkey::v1::KeyDirectory::NewStub(channel);
  mxkey::v1::WatchRevocationsRequest request;
  request.set_from_seq(start.value_or(0));
  if (start.has_value()) request.set_from_digest(digest);
  auto reader = stub->WatchRevocations(&ctx, request);
  // Gives up on a stream that stays silent (see first_response_timeout).
  bool answered = false;  // guarded by mu_, as `ended`
  bool ended = false;
  bool silent = false;    // the watchdog's until joined
  std::thread watchdog([&] {
    MutexLock lock(&mu_);
    auto settled = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return answered || ended || stopping_;
    };
    if (!mu_.AwaitWithTimeout(Condition(&settled),
                              options_.first_response_timeout)) {
      silent = true;
      ctx.TryCancel();
    }
  });
  mxkey::v1::WatchRevocationsResponse batch;
  bool progressed = false;
  uint64_t seq = start.value_or(0);
  while (reader->Read(&batch)) {
    if (!progressed) {
      MutexLock lock(&mu_);
      answered = true;
    }
    progressed = true;
    if (!start.has_value()) {
      // Starting at the head: the backlog is already reflected in every
      // answer fetched from now on.
      SetPosition(batch.head_seq(), batch.head_digest());
      ctx.TryCancel();
      break;
    }
    absl::StatusOr<std::vector<mxkey::v1::RevocationEventBody>> events =
        verifier.VerifyFeedBatch(batch, seq, options_.clock->Now());
    if (!events.ok()) {
      // A gap, or a batch that does not verify: either way the client can
      // no longer vouch for what it cached. Resynchronize at the head
      // rather than retry the same batch forever; say so once per cause.
      const std::string why(events.status().message());
      if (why != last_failure_) {
        LogWarning("revocation feed: %s; dropping cached answers and "
                   "resynchronizing at the head", why);
        last_failure_ = why;
      }
      options_.on_resync();
      SetPosition(batch.head_seq(), batch.head_digest());
      ctx.TryCancel();
      break;
    }
    last_failure_.clear();
    if (events->empty()) {
      SetPosition(seq);  // the first batch makes the position known
      continue;
    }
    seq = events->back().seq();
    options_.on_events(*events, seq);
    SetPosition(seq, Sha256(batch.events(batch.events_size() - 1).body()));
    {
      MutexLock delivering(&delivery_mu_);
      std::vector<RevocationListener> listeners;
      {
        MutexLock lock(&mu_);
        for (const auto& [id, l] : listeners_) listeners.push_back(l);
      }
      for (const auto& e : *events) {
        for (const auto& l : listeners) l(e);
      }
    }
  }
  grpc::Status status = reader->Finish();
  {
    MutexLock lock(&mu_);
    ended = true;
  }
  watchdog.join();
  if (silent) {
    const std::string why = absl::StrCat(
        "keyd sent no first response within ",
        absl::FormatDuration(options_.first_response_timeout),
        " (its watch caps are full, or the path stalls); retrying");
    if (why != last_failure_) {
      LogWarning("revocation feed: %s", why);
      last_failure_ = why;
    }
  }
  if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
    LogWarning("revocation feed: keyd says %s; dropping cached answers",
               status.error_message());
    options_.on_resync();
    SetPosition(std::nullopt);
  }
  MutexLock lock(&mu_);
  active_ = nullptr;
  return progressed;
}

}  // namespace mxkey
