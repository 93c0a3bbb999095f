#include "keyd/feed_watch.h"

#include "crypto/sha256.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/grpc_status.h"
#include "keyd/revocation.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

constexpr size_t kFeedBatch = 256;

}  // namespace

FeedWatch::FeedWatch(const KeydContext* ctx, uint64_t from_seq,
                     std::string from_digest,
                     const std::atomic<bool>* stopping)
    : ctx_(ctx),
      stopping_(stopping),
      waker_(std::make_shared<Waker>(this)),
      seen_(from_seq),
      from_digest_(std::move(from_digest)) {
  ctx_->metrics->watchers()->Add(1);
  ctx_->metrics->Rpc(KeydRpc::kWatchRevocations, grpc::StatusCode::OK,
                     absl::ZeroDuration());
  // Subscribe before the first read, so no head move can be missed.
  subscription_ = ctx_->feed->Subscribe(waker_);
  Action action;
  {
    MutexLock lock(&waker_->mu);
    action = Next();
  }
  Run(action);
}

void FeedWatch::Waker::Wake() {
  Action action;
  FeedWatch* watch;
  {
    MutexLock lock(&mu);
    watch = watch_;
    if (watch == nullptr) return;
    action = watch->Next();
  }
  // The watch stays alive: it is deleted only after Finish, which no other
  // thread calls while this action is pending (writing_ or finished_ is set).
  watch->Run(action);
}

FeedWatch::Action FeedWatch::FinishWith(grpc::Status status) {
  Action action;
  if (finished_) return action;
  if (writing_) {
    finish_after_write_ = std::move(status);
    return action;
  }
  finished_ = true;
  action.finish = std::move(status);
  return action;
}

FeedWatch::Action FeedWatch::Next() {
  if (finished_ || writing_) return Action();
  if (finish_after_write_) return FinishWith(*finish_after_write_);
  if (stopping_->load()) return FinishWith(grpc::Status::OK);
  absl::StatusOr<FeedSlice> slice = ReadFeed(*ctx_->store, seen_, kFeedBatch);
  if (!slice.ok()) return FinishWith(ToGrpcStatus(slice.status()));
  if (seen_ > slice->head) {
    return FinishWith(grpc::Status(
        grpc::StatusCode::OUT_OF_RANGE,
        absl::StrCat("from_seq ", seen_, " is beyond the feed head ",
                     slice->head, "; drop cached answers and resynchronize at the "
                     "head (open the feed again with from_seq 0 to learn it)")));
  }
  if (first_ && !from_digest_.empty() && seen_ > 0) {
    // The client's event from_seq must be ours: after a restore of an older
    // copy, keyd writes new events under numbers a client already holds,
    // and a client resuming there would never see them.
    absl::StatusOr<FeedSlice> at = ReadFeed(*ctx_->store, seen_ - 1, 1);
    if (!at.ok()) return FinishWith(ToGrpcStatus(at.status()));
    if (at->events.empty() || Sha256(at->events[0].body()) != from_digest_) {
      return FinishWith(grpc::Status(
          grpc::StatusCode::OUT_OF_RANGE,
          absl::StrCat("the feed diverged at seq ", seen_,
                       " (this keyd's event there is another one: its data "
                       "was restored from an older copy); drop cached "
                       "answers and resynchronize at the head")));
    }
  }
  if (!first_ && slice->events.empty()) return Action();  // wait for Wake
  response_.Clear();
  response_.set_head_seq(slice->head);
  if (slice->head > 0) {
    // The head event is in this batch, or read once more.
    if (!slice->events.empty() && seen_ + slice->events.size() == slice->head) {
      response_.set_head_digest(Sha256(slice->events.back().body()));
    } else if (first_) {
      absl::StatusOr<FeedSlice> at = ReadFeed(*ctx_->store, slice->head - 1, 1);
      if (at.ok() && !at->events.empty()) {
        response_.set_head_digest(Sha256(at->events[0].body()));
      }
    }
  }
  // The current issuing certificate, and those of older issuing keys that
  // signed events of this batch (before a renewal).
  *response_.add_issuing_keys() = ctx_->keys->issuing_cert();
  absl::flat_hash_set<std::string> signers = {
      KeyId(ctx_->keys->issuing_body().public_key())};
  for (auto& e : slice->events) {
    if (signers.insert(e.signer_key_id()).second) {
      if (auto cert = ctx_->keys->IssuingCertById(e.signer_key_id())) {
        *response_.add_issuing_keys() = *std::move(cert);
      }
    }
    *response_.add_events() = std::move(e);
  }
  seen_ += response_.events_size();
  first_ = false;
  writing_ = true;
  Action action;
  action.write = true;
  return action;
}

void FeedWatch::Run(const Action& action) {
  if (action.write) {
    StartWrite(&response_);
  } else if (action.finish) {
    Finish(*action.finish);  // may delete this (OnDone)
  }
}

void FeedWatch::OnWriteDone(bool ok) {
  Action action;
  {
    MutexLock lock(&waker_->mu);
    writing_ = false;
    // A failed write means the client is gone.
    action = ok ? Next() : FinishWith(grpc::Status::OK);
  }
  Run(action);
}

void FeedWatch::OnCancel() {
  Action action;
  {
    MutexLock lock(&waker_->mu);
    action = FinishWith(grpc::Status(grpc::StatusCode::CANCELLED,
                                     "the watch was cancelled"));
  }
  Run(action);
}

void FeedWatch::OnDone() {
  {
    MutexLock lock(&waker_->mu);
    waker_->watch_ = nullptr;
  }
  ctx_->feed->Unsubscribe(subscription_);
  ctx_->metrics->watchers()->Add(-1);
  delete this;
}

}  // namespace mxkey
