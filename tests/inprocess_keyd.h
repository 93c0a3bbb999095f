// A real keyd (KeydServer with LMDB) inside the test process, or, with
// StartProcess, a `keyd serve` process of its own, on 127.0.0.1:0, with
// helpers that do what an admin and a host would do over gRPC. Test-only;
// failures are reported as gtest failures.
#ifndef MXKEY_TESTS_INPROCESS_KEYD_H_
#define MXKEY_TESTS_INPROCESS_KEYD_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/clock.h"
#include "client/host_keys.h"
#include "client/key_client.h"
#include "keyd/server.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/keyd_process.h"
#include "tests/subprocess.h"

namespace mxkey {

struct EnrolledTestHost {
  std::string hostname;
  HostKeys keys;
  mxkey::v1::HostCertificateBody cert;
  mxkey::v1::EnrollResponse response;
};

class InProcessKeyd {
 public:
  // A fresh org named `org` in `data_dir` (default: a new temp dir); the
  // directory is removed on destruction.
  static std::unique_ptr<InProcessKeyd> Start(
      Clock* clock, const std::string& org = "example",
      const KeydOptions& keyd = KeydOptions(),
      const std::string& data_dir = "");
  // The same, as a separate `keyd serve` process (a real clock: `clock`
  // serves only the helpers and ClientOptions; keep it near real time).
  // Only the freshness and peer_transport of `keyd` are passed on, then
  // `serve_args` (more keyd serve flags). With
  // keyd.peer_transport = kTls, the public endpoint (and calls to peers)
  // are TLS even on loopback, and helpers and ClientOptions use TLS too.
  static std::unique_ptr<InProcessKeyd> StartProcess(
      Clock* clock, const std::string& org = "example",
      const KeydOptions& keyd = KeydOptions(),
      const std::vector<std::string>& serve_args = {});
  ~InProcessKeyd();

  std::string endpoint() const;
  // The data directory (in process: the one KeydServer serves).
  const std::string& data_dir() const { return dir_; }
  // StartProcess only: keyd's PID and its log so far.
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  std::string process_log() const { return process_ ? process_->log() : ""; }
  const std::string& root_fingerprint() const { return fingerprint_; }
  const std::string& root_public_key() const { return root_; }

  std::string AddHost(const std::string& host,
                      const std::string& domain = "example.org");
  EnrolledTestHost AddAndEnroll(const std::string& host,
                                const std::string& domain = "example.org",
                                const std::vector<std::string>& pins = {});
  // Pre-publishes a next certificate for `current`'s host, authorized by
  // its current key (what `keyctl rotate` does).
  EnrolledTestHost Rotate(const EnrolledTestHost& current);
  // keyctl rotate --finish for a host `Rotate` returned; expects success.
  void FinishRotation(const EnrolledTestHost& next);
  // Enrolls an already registered host again, with a new token.
  EnrolledTestHost ReEnroll(const std::string& host);
  // Admin AddPeer on this keyd: trust `org` for `suffixes` at `endpoint`,
  // whose root has `fingerprint`.
  grpc::Status AddPeer(const std::string& org,
                       const std::vector<std::string>& suffixes,
                       const std::string& endpoint,
                       const std::string& fingerprint);
  // Runs keyctl (a process of its own) against this keyd's public
  // endpoint, trusting its root.
  CommandResult Keyctl(const std::vector<std::string>& args) const;
  // Returns the feed sequence number of the revocation.
  uint64_t Revoke(const std::string& host, const std::string& reason);
  void SetPolicy(const std::string& domain, mxkey::v1::PolicyMode mode);
  // Writes the host's keys and certificate as `keyctl enroll` would.
  static void SaveKeyDir(const EnrolledTestHost& host, const std::string& dir);

  std::string admin_endpoint() const;
  KeydTransport transport() const { return transport_; }
  // KeyClient options that trust this keyd's root, on this keyd's clock.
  KeyClientOptions ClientOptions() const;
  // Every stored key and value (see keyd/store_snapshot.h); in-process only.
  std::string Snapshot();

  // Stops serving (the data stays until destruction).
  void Stop();
  // In process only: starts serving again from the same data directory,
  // on the same port (after Stop, or with keyd still running: a restart).
  bool Restart();
  // In process only: what keyd's renewal loop does, now (KeydServer::Maintain).
  absl::Status Maintain();

 private:
  InProcessKeyd() = default;
  void ConnectStubs();
  bool Serve(const std::string& listen);
  KeydTransport transport_ = KeydTransport::kAuto;
  KeydOptions keyd_options_;
  std::unique_ptr<grpc::ClientContext> Ctx() const;
  EnrolledTestHost EnrollWithToken(const std::string& host,
                                   const std::string& token,
                                   const std::vector<std::string>& pins);

  Clock* clock_ = nullptr;
  std::string dir_;
  std::string fingerprint_, root_;
  int port_ = 0;
  std::string admin_socket_;
  std::unique_ptr<KeydServer> server_;    // in process
  std::unique_ptr<KeydProcess> process_;  // or as a process
  std::unique_ptr<mxkey::v1::Enrollment::Stub> enrollment_;
  std::unique_ptr<mxkey::v1::Admin::Stub> admin_;
};

}  // namespace mxkey

#endif  // MXKEY_TESTS_INPROCESS_KEYD_H_
