#include "keyd/feed_watch.h"

#include "crypto/sha256.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/grpc_status.h"
#include "base/status_macros.h"
#include "keyd/revocation.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

constexpr size_t kFeedBatch = 256;

absl::Status ParseRequest(const grpc::ByteBuffer* request,
                          mxkey::v1::WatchRevocationsRequest* parsed) {
  std::vector<grpc::Slice> slices;
  if (request != nullptr && request->Dump(&slices).ok()) {
    std::string bytes;
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    if (parsed->ParseFromString(bytes)) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      "the WatchRevocations request is not a WatchRevocationsRequest");
}

}  // namespace

FeedWatch::FeedWatch(const KeydContext* ctx, WatchResources resources,
                     grpc::CallbackServerContext* context,
                     const grpc::ByteBuffer* request,
                     const std::atomic<bool>* stopping)
    : ctx_(ctx),
      resources_(resources),
      stopping_(stopping),
      waker_(std::make_shared<Waker>(this)) {
  mxkey::v1::WatchRevocationsRequest parsed;
  absl::Status admitted = ParseRequest(request, &parsed);
  if (admitted.ok()) {
    absl::StatusOr<std::shared_ptr<WatchTicket>> ticket =
        resources_.registry->Admit(context->peer(), context, waker_);
    if (ticket.ok()) {
      ticket_ = *std::move(ticket);
    } else {
      admitted = ticket.status();
    }
  }
  if (!admitted.ok()) {
    grpc::Status status = ToGrpcStatus(admitted);
    ctx_->metrics->Rpc(KeydRpc::kWatchRevocations, status.error_code(),
                       absl::ZeroDuration());
    if (!absl::IsResourceExhausted(admitted)) {
      finished_ = true;
      Finish(status);  // OnDone deletes this
      return;
    }
    // Held back (see the header). The send may run at once, here.
    held_refusal_ = resources_.refusals->Hold(
        resources_.registry->SourceOf(context->peer()),
        resources_.registry->limits().refusal_delay,
        [waker = waker_, status] { waker->Refuse(status); });
    return;
  }
  seen_ = parsed.from_seq();
  from_digest_ = parsed.from_digest();
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

void FeedWatch::Waker::Refuse(const grpc::Status& status) {
  Action action;
  FeedWatch* watch;
  {
    MutexLock lock(&mu);
    watch = watch_;
    if (watch == nullptr) return;  // cancelled, and done
    action = watch->FinishWith(status);
  }
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
  absl::StatusOr<FeedBatchCache::Batch> batch = NextBatch();
  if (absl::IsResourceExhausted(batch.status())) {
    // The shared buffer is full (of batches that clients do not read):
    // wait, and try again at the next sweep.
    resources_.registry->Starve(*ticket_);
    return Action();
  }
  if (!batch.ok()) return FinishWith(ToGrpcStatus(batch.status()));
  if (*batch == nullptr) return Action();  // wait for Wake
  // Woken again at the next sweep when the source holds its share.
  if (!resources_.registry->StartWrite(*ticket_, (*batch)->bytes.Length())) {
    return Action();
  }
  batch_ = *std::move(batch);
  seen_ += batch_->events;
  first_ = false;
  writing_ = true;
  Action action;
  action.write = true;
  return action;
}

absl::StatusOr<FeedBatchCache::Batch> FeedWatch::NextBatch() {
  const std::string issuer = KeyId(ctx_->keys->issuing_body().public_key());
  // Without a read when another watch already made the batch from here to
  // the head keyd last published.
  const uint64_t published = ctx_->feed->head();
  if (seen_ < published) {
    if (FeedBatchCache::Batch b = resources_.batches->Find(
            {seen_, published, first_, issuer})) {
      return b;
    }
  }
  ASSIGN_OR_RETURN(FeedSlice slice, ReadFeed(*ctx_->store, seen_, kFeedBatch));
  if (seen_ > slice.head) {
    return absl::OutOfRangeError(absl::StrCat(
        "from_seq ", seen_, " is beyond the feed head ", slice.head,
        "; drop cached answers and resynchronize at the head (open the feed "
        "again with from_seq 0 to learn it)"));
  }
  if (!first_ && slice.events.empty()) return nullptr;
  const FeedBatchKey key{seen_, slice.head, first_, issuer};
  if (FeedBatchCache::Batch b = resources_.batches->Find(key)) return b;

  mxkey::v1::WatchRevocationsResponse response;
  response.set_head_seq(slice.head);
  if (slice.head > 0) {
    // The head event is in this batch, or read once more.
    if (!slice.events.empty() && seen_ + slice.events.size() == slice.head) {
      response.set_head_digest(Sha256(slice.events.back().body()));
    } else if (first_) {
      // Shared with every first batch here: never without the digest.
      ASSIGN_OR_RETURN(FeedSlice at, ReadFeed(*ctx_->store, slice.head - 1, 1));
      if (at.events.empty()) {
        return absl::InternalError(absl::StrCat(
            "the feed has no event at its head ", slice.head));
      }
      response.set_head_digest(Sha256(at.events[0].body()));
    }
  }
  // The current issuing certificate, and those of older issuing keys that
  // signed events of this batch (before a renewal).
  *response.add_issuing_keys() = ctx_->keys->issuing_cert();
  absl::flat_hash_set<std::string> signers = {issuer};
  for (auto& e : slice.events) {
    if (signers.insert(e.signer_key_id()).second) {
      if (auto cert = ctx_->keys->IssuingCertById(e.signer_key_id())) {
        *response.add_issuing_keys() = *std::move(cert);
      }
    }
    *response.add_events() = std::move(e);
  }
  // A batch that reaches the head is what every reading client gets next:
  // it may use the buffer's reserve.
  const bool live = !first_ && seen_ + slice.events.size() == slice.head;
  return resources_.batches->Insert(key, response, live);
}

void FeedWatch::Run(const Action& action) {
  if (action.write) {
    StartWrite(&batch_->bytes);
  } else if (action.finish) {
    Finish(*action.finish);  // may delete this (OnDone)
  }
}

void FeedWatch::OnWriteDone(bool ok) {
  Action action;
  std::vector<std::shared_ptr<FeedListener>> waiting;
  {
    MutexLock lock(&waker_->mu);
    writing_ = false;
    batch_.reset();
    waiting = resources_.registry->WriteDone(*ticket_);
    // A failed write means the client is gone.
    action = ok ? Next() : FinishWith(grpc::Status::OK);
  }
  // Other watches of this source that waited for these bytes; woken with
  // no lock held (each takes its own).
  for (auto& w : waiting) {
    if (w != waker_) w->Wake();
  }
  Run(action);  // may delete this
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
  // A refused watch whose client went first: its refusal is not sent.
  resources_.refusals->Cancel(held_refusal_);
  if (ticket_ != nullptr) {
    // First: a sweeper cancelling this watch is done with its context.
    resources_.registry->Release(ticket_);
    ctx_->feed->Unsubscribe(subscription_);
    ctx_->metrics->watchers()->Add(-1);
  }
  delete this;
}

}  // namespace mxkey
