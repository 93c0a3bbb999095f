// Keeps every host's current and next certificate, and every domain policy,
// signed by the current issuing key and within its validity, with no action
// on the hosts: their keys do not change, only the signature and the
// validity (the serial stays, so a certificate and its renewal are one key;
// docs/PROTOCOL.md §9.1). keyd runs it at start (after a long outage too)
// and from its renewal loop.
//
// A certificate is due when it is unrevoked, is its host's current key (the
// newest whose active_from has passed, expired or not: an outage must not
// orphan a host) or its next one, and is signed by an older issuing key or
// has less than a third of `cert_validity` left. A policy is due when an
// older issuing key signed it. Work is done in batches of one transaction
// each, so a crash loses at most the batch in flight and the next run
// redoes it. Errors: what the store returns.
#ifndef MXKEY_KEYD_RECERTIFIER_H_
#define MXKEY_KEYD_RECERTIFIER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "keyd/keyd_context.h"

namespace mxkey {

struct RecertifyProgress {
  size_t certificates = 0;  // re-signed by this run
  size_t policies = 0;
  size_t pending = 0;       // still due (more batches needed)
};

// What keyctl org show reports (Admin.GetRenewalStatus).
struct RecertifyStatus {
  bool in_progress = false;
  // The running pass, or the last finished one.
  RecertifyProgress pass;
  int64_t last_pass_at = 0;  // when the last pass finished (0: none yet)
  int64_t next_due_at = 0;   // earliest time anything is due (0: unknown)
};

class Recertifier {
 public:
  static constexpr size_t kBatch = 256;

  explicit Recertifier(const KeydContext* ctx) : ctx_(ctx) {}

  // One pass: every due object, in batches. Skips the scan while nothing
  // can be due (no new issuing key, and before the earliest due time the
  // last pass saw).
  absl::StatusOr<RecertifyProgress> Run();

  RecertifyStatus Status() const;

 private:
  absl::StatusOr<RecertifyProgress> Batch(int64_t* next_due);

  const KeydContext* ctx_;
  mutable Mutex mu_;
  std::string scanned_issuer_ ABSL_GUARDED_BY(mu_);
  int64_t next_due_ ABSL_GUARDED_BY(mu_) = 0;
  RecertifyStatus status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_RECERTIFIER_H_
