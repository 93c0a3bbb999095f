// One WatchRevocations stream on the gRPC callback API. While it waits for
// new events it holds no thread and no storage transaction: the
// FeedNotifier wakes it when the head moves. It sends the backlog from
// `from_seq` in batches, then each new batch; every response carries the
// head and the issuing certificate. Ends with OUT_OF_RANGE when `from_seq`
// is beyond the head, with the storage error if a read fails, with OK when
// keyd stops or the client goes away.
#ifndef MXKEY_KEYD_FEED_WATCH_H_
#define MXKEY_KEYD_FEED_WATCH_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>

#include "base/mutex.h"
#include "keyd/feed_notifier.h"
#include "keyd/keyd_context.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

class FeedWatch : public grpc::ServerWriteReactor<mxkey::v1::WatchRevocationsResponse> {
 public:
  // The reactor deletes itself once gRPC is done with it.
  // `from_digest`: SHA-256 of the body of event `from_seq` as the client
  // holds it (empty: unchecked).
  FeedWatch(const KeydContext* ctx, uint64_t from_seq,
            std::string from_digest, const std::atomic<bool>* stopping);

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
    Mutex mu;
    FeedWatch* watch_ ABSL_GUARDED_BY(mu);
  };

  Action Next() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waker_->mu);
  Action FinishWith(grpc::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(waker_->mu);
  void Run(const Action& action);

  const KeydContext* ctx_;
  const std::atomic<bool>* stopping_;
  std::shared_ptr<Waker> waker_;
  int subscription_ = 0;
  uint64_t seen_;
  std::string from_digest_;
  bool first_ = true;
  bool writing_ = false;
  bool finished_ = false;
  std::optional<grpc::Status> finish_after_write_;
  mxkey::v1::WatchRevocationsResponse response_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_FEED_WATCH_H_
