// An in-process keyd for unit tests: a fresh org (cheap scrypt), a
// MemoryStore, a FakeClock, and helpers that enroll hosts the way keyctl
// does. Test-only.
#ifndef MXKEY_KEYD_KEYD_TEST_ENV_H_
#define MXKEY_KEYD_KEYD_TEST_ENV_H_

#include <memory>
#include <string>
#include <vector>

#include "client/answer_verifier.h"
#include "client/host_keys.h"
#include "keyd/directory.h"
#include "keyd/host_admin.h"
#include "keyd/issuer.h"
#include "keyd/keyd_context.h"
#include "keyd/memory_store.h"

namespace mxkey {

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
                            const std::vector<std::string>& pins = {});
  absl::StatusOr<EnrolledHost> Rotate(const EnrolledHost& current,
                                      const std::vector<std::string>& pins = {});

  AnswerVerifier Verifier() const;
  // A full read of everything in the store, to prove "no state change".
  std::string Snapshot();

  std::string dir;
  FakeClock clock;
  MemoryStore store;
  FeedNotifier feed;
  std::unique_ptr<OrgKeys> keys;
  KeydContext ctx;
  std::unique_ptr<HostAdmin> admin;
  std::unique_ptr<Issuer> issuer;
  std::unique_ptr<Directory> directory;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_KEYD_TEST_ENV_H_
