// One WatchRevocations stream on the gRPC callback API. While it waits for
// new events it holds no thread and no storage transaction: the
// FeedNotifier wakes it when the head moves. It sends the backlog from
// `from_seq` in batches, then each new batch; every response carries the
// head and the issuing certificate. Ends with OUT_OF_RANGE when `from_seq`
// is beyond the head, with the storage error if a read fails, with OK when
// keyd stops or the client goes away.
//
// Bounded (see WatchRegistry and FeedBatchCache): the watch is admitted
// against the caps on open watches first (else RESOURCE_EXHAUSTED, held
// back first: see the constructor); its
// batches are serialized once and shared with every watch sending the same
// one; a write its client does not read within the drain timeout cancels
// the stream. The stream is raw (grpc::ByteBuffer) so that a shared batch is
// sent by reference instead of being serialized again per stream.
#ifndef MXKEY_KEYD_FEED_WATCH_H_
#define MXKEY_KEYD_FEED_WATCH_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>

#include "base/mutex.h"
#include "keyd/feed_batch_cache.h"
#include "keyd/feed_notifier.h"
#include "keyd/keyd_context.h"
#include "keyd/refusal_delay.h"
#include "keyd/watch_registry.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

// What every watch shares: the caps and the batch buffer.
struct WatchResources {
  WatchRegistry* registry;
  FeedBatchCache* batches;
  // Where a watch refused by a cap waits the registry's refusal_delay.
  RefusalDelay* refusals;
};

class FeedWatch : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  // The reactor deletes itself once gRPC is done with it. `request`: the
  // serialized WatchRevocationsRequest (from_digest: SHA-256 of the body of
  // event from_seq as the client holds it; empty: unchecked).
  //
  // A watch refused by a cap gets its RESOURCE_EXHAUSTED only after the
  // watch refusal delay (60 s by default), silent until then. A client
  // that reopens what was refused would otherwise make keyd set up and
  // refuse thousands of streams a second (about 40 us each, all in gRPC),
  // and honest lookups queue behind those bursts; held, each such stream
  // costs its memory (about 17 KiB) and no CPU. Past the RefusalDelay's
  // bounds it is refused at once; a client that cancels first frees its
  // place there.
  FeedWatch(const KeydContext* ctx, WatchResources resources,
            grpc::CallbackServerContext* context,
            const grpc::ByteBuffer* request,
            const std::atomic<bool>* stopping);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What to do once the lock is released (gRPC may run reactions inline).
  struct Action {
    bool write = false;
    std::optional<grpc::Status> finish;
  };
  class Waker : public FeedListener {
   public:
    explicit Waker(FeedWatch* watch) : watch_(watch) {}
    void Wake() override;
    // Finishes a refused watch, unless gRPC is done with it already.
    void Refuse(const grpc::Status& status);
    Mutex mu;
    FeedWatch* watch_ ABSL_GUARDED_BY(mu);
  };

  Action Next() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waker_->mu);
  // The batch from seen_, from the shared buffer or read now; null when
  // there is nothing to send yet.
  absl::StatusOr<FeedBatchCache::Batch> NextBatch()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(waker_->mu);
  Action FinishWith(grpc::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(waker_->mu);
  void Run(const Action& action);

  const KeydContext* ctx_;
  const WatchResources resources_;
  const std::atomic<bool>* stopping_;
  std::shared_ptr<Waker> waker_;
  // Null when the watch was refused (then nothing else is set up).
  std::shared_ptr<WatchTicket> ticket_;
  // A refused watch's place among the held refusals (id 0: none).
  RefusalDelay::Ticket held_refusal_;
  int subscription_ = 0;
  uint64_t seen_ = 0;
  std::string from_digest_;
  bool first_ = true;
  bool writing_ = false;
  bool finished_ = false;
  std::optional<grpc::Status> finish_after_write_;
  // The batch being written (shared; held until the write is done).
  FeedBatchCache::Batch batch_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_FEED_WATCH_H_
