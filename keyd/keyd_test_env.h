// An in-process keyd for unit tests: a fresh org (cheap scrypt), a
// MemoryStore, a FakeClock, and helpers that enroll hosts the way keyctl
// does. Test-only.
#ifndef MXKEY_KEYD_KEYD_TEST_ENV_H_
#define MXKEY_KEYD_KEYD_TEST_ENV_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_tls_keys.h"

#include "client/answer_verifier.h"
#include "client/host_keys.h"
#include "keyd/change_tracking_store.h"
#include "keyd/directory.h"
#include "keyd/host_admin.h"
#include "keyd/issuer.h"
#include "keyd/keyd_context.h"
#include "keyd/memory_store.h"

namespace mxkey {

// Counts reads and can act right after one, so tests can tell a reused
// answer from a rebuilt one and race a write against a lookup.
class ReadCountingStore : public Store {
 public:
  explicit ReadCountingStore(Store* inner) : inner_(inner) {}
  absl::Status Read(const std::function<absl::Status(ReadTxn&)>& fn) override {
    ++reads;
    absl::Status st = inner_->Read(fn);
    if (after_next_read) std::exchange(after_next_read, nullptr)();
    return st;
  }
  absl::Status Write(std::function<absl::Status(WriteTxn&)> fn) override {
    return inner_->Write(std::move(fn));
  }
  void WriteAsync(std::function<absl::Status(WriteTxn&)> fn,
                  std::function<void(absl::Status)> done) override {
    inner_->WriteAsync(std::move(fn), std::move(done));
  }
  uint64_t generation() const override { return inner_->generation(); }

  int reads = 0;
  std::function<void()> after_next_read;

 private:
  Store* inner_;
};

struct EnrolledHost {
  HostKeys keys;
  mxkey::v1::EnrollResponse response;
  mxkey::v1::HostCertificateBody body;
};

class KeydTestEnv {
 public:
  KeydTestEnv();

  // Registers `host` for `domain` and returns its one-time token.
  std::string AddHost(const std::string& host,
                      const std::string& domain = "example.org");
  absl::StatusOr<EnrolledHost> Enroll(const std::string& host,
                                      const std::string& token,
                                      const std::vector<std::string>& pins = {});
  // AddHost + Enroll, asserting success.
  EnrolledHost AddAndEnroll(const std::string& host,
                            const std::vector<std::string>& pins = {},
                            const std::string& domain = "example.org");
  absl::StatusOr<EnrolledHost> Rotate(
      const EnrolledHost& current, const std::vector<std::string>& pins = {},
      absl::Duration overlap = absl::ZeroDuration());
  // keyctl rotate --finish for `next`, signed by `signer` (next's identity
  // key unless given).
  absl::StatusOr<mxkey::v1::EnrollResponse> FinishRotation(
      const EnrolledHost& next, const Ed25519PrivateKey* signer = nullptr);

  AnswerVerifier Verifier() const;
  // A full read of everything in the store, to prove "no state change".
  std::string Snapshot();

  std::string dir;
  FakeClock clock;
  MemoryStore store;
  // What the components use: counted, and tracked as keyd's server does.
  ReadCountingStore counted{&store};
  ChangeTrackingStore tracked{&counted};
  FeedNotifier feed;
  MetricsRegistry metrics_registry;
  KeydMetrics metrics{&metrics_registry};
  std::unique_ptr<OrgKeys> keys;
  KeydContext ctx;
  std::unique_ptr<HostAdmin> admin;
  std::unique_ptr<Issuer> issuer;
  std::unique_ptr<Directory> directory;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_KEYD_TEST_ENV_H_
