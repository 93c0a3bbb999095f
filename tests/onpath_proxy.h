// An on-path attacker between a KeyDirectory client and keyd, for tests.
//
// keyd's public port is plaintext, so anyone on the path can answer a
// lookup with any genuine signed answer keyd (or another org's keyd) ever
// gave, or with an unsigned error. OnPathProxy is a KeyDirectory server on
// 127.0.0.1 (kernel-chosen port) that forwards every RPC to a real keyd
// and, per test, can:
//   - answer one RPC + request (e.g. GetDomainPolicy "enforce.example.org")
//     with any recorded response: another name's, another lookup kind's, an
//     older one, another org's, or an error (Substitute);
//   - drop an RPC (UNAVAILABLE; for GetFederationBundle and
//     WatchRevocations, or any other);
//   - add the `mxkey-relayed: 1` metadata header to every call it forwards,
//     as if it were a peer keyd relaying.
// RecordedResponse holds what came back for one call (answer or error), so
// tests can collect a pool of genuine responses (Record) and replay them.
// Knobs may be changed between calls at any time; every call sees one
// consistent set. Forwarded calls inherit the caller's deadline and
// cancellation, so a client that goes away ends its forwarded stream too.
#ifndef MXKEY_TESTS_ONPATH_PROXY_H_
#define MXKEY_TESTS_ONPATH_PROXY_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace mxkey {

// The header a relaying keyd adds to its calls to a peer (keyd/peer_relay.h
// kRelayedHeader); an attacker needs no code of keyd to add it.
inline constexpr char kOnPathRelayedHeader[] = "mxkey-relayed";

enum class ProxyRpc {
  kGetHostKeys,
  kGetDomainPolicy,
  kFindByTlsPin,
  kGetOrgInfo,
  kGetFederationBundle,
  kWatchRevocations,
};
const char* ProxyRpcName(ProxyRpc rpc);

// One lookup's response as it came over the wire: a KeyAnswer, or an error.
struct RecordedResponse {
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;          // for errors
  mxkey::v1::KeyAnswer answer;  // for OK

  bool ok() const { return code == grpc::StatusCode::OK; }
  grpc::Status status() const {
    return ok() ? grpc::Status::OK : grpc::Status(code, message);
  }
  // An unsigned error, as an attacker would make one up.
  static RecordedResponse Unsigned(grpc::StatusCode code,
                                   const std::string& message);
  // Same code and, for OK, the same bytes.
  bool SameAs(const RecordedResponse& other) const;
};

// Makes one lookup (kGetHostKeys, kGetDomainPolicy or kFindByTlsPin, `arg`
// being the hostname, domain or raw 32-byte pin) at `endpoint` and returns
// whatever came back. `relayed` adds the mxkey-relayed header.
RecordedResponse RecordLookup(const std::string& endpoint, ProxyRpc rpc,
                              const std::string& arg, bool relayed = false);

class OnPathProxy final : public mxkey::v1::KeyDirectory::Service {
 public:
  explicit OnPathProxy(const std::string& backend);
  ~OnPathProxy() override;

  // Listens on 127.0.0.1:0; returns "127.0.0.1:PORT" ("" on failure).
  std::string Start();
  const std::string& endpoint() const { return endpoint_; }
  // Stops listening; open streams are cancelled. Idempotent.
  void Stop();

  // Answers `rpc` for request `arg` (the name as the client sends it, or
  // the raw pin) with `response` until cleared.
  void Substitute(ProxyRpc rpc, const std::string& arg,
                  RecordedResponse response);
  // An unsigned NOT_FOUND for `rpc` + `arg`.
  void ReturnUnsignedNotFound(ProxyRpc rpc, const std::string& arg);
  // UNAVAILABLE for every call of `rpc`.
  void Drop(ProxyRpc rpc, bool drop = true);
  // Adds "mxkey-relayed: 1" to every forwarded call.
  void AddRelayedHeader(bool add = true);
  // Every knob off (pure forwarding); counters kept.
  void Reset();

  // How many calls of `rpc` + `arg` were answered with a substitution, and
  // calls of `rpc` seen at all (forwarded, substituted or dropped).
  int substituted(ProxyRpc rpc, const std::string& arg) const;
  int calls(ProxyRpc rpc) const;
  // WatchRevocations streams being forwarded right now.
  int open_streams() const;

  grpc::Status GetHostKeys(grpc::ServerContext* context,
                           const mxkey::v1::GetHostKeysRequest* request,
                           mxkey::v1::KeyAnswer* response) override;
  grpc::Status GetDomainPolicy(grpc::ServerContext* context,
                               const mxkey::v1::GetDomainPolicyRequest* request,
                               mxkey::v1::KeyAnswer* response) override;
  grpc::Status FindByTlsPin(grpc::ServerContext* context,
                            const mxkey::v1::FindByTlsPinRequest* request,
                            mxkey::v1::KeyAnswer* response) override;
  grpc::Status GetOrgInfo(grpc::ServerContext* context,
                          const mxkey::v1::GetOrgInfoRequest* request,
                          mxkey::v1::OrgInfo* response) override;
  grpc::Status GetFederationBundle(
      grpc::ServerContext* context,
      const mxkey::v1::GetFederationBundleRequest* request,
      mxkey::v1::FederationBundle* response) override;
  grpc::Status WatchRevocations(
      grpc::ServerContext* context,
      const mxkey::v1::WatchRevocationsRequest* request,
      grpc::ServerWriter<mxkey::v1::WatchRevocationsResponse>* writer) override;

 private:
  // The upstream context for a forwarded call: the caller's deadline and
  // cancellation, plus the relayed header if asked for.
  std::unique_ptr<grpc::ClientContext> Upstream(grpc::ServerContext* context);
  // Counts the call; true (and sets *status) if it is dropped.
  bool Dropped(ProxyRpc rpc, grpc::Status* status);
  // A lookup: substituted, dropped, or forwarded by `forward`.
  template <typename Forward>
  grpc::Status Lookup(ProxyRpc rpc, const std::string& arg,
                      grpc::ServerContext* context,
                      mxkey::v1::KeyAnswer* response, Forward forward);

  std::unique_ptr<mxkey::v1::KeyDirectory::Stub> backend_;
  std::string endpoint_;
  std::unique_ptr<grpc::Server> server_;

  mutable std::mutex mu_;
  std::map<std::pair<ProxyRpc, std::string>, RecordedResponse> substitutions_;
  std::set<ProxyRpc> dropped_;
  bool relayed_header_ = false;
  bool stopping_ = false;
  std::map<std::pair<ProxyRpc, std::string>, int> substituted_;
  std::map<ProxyRpc, int> calls_;
  std::set<grpc::ClientContext*> streams_;  // open upstream streams
};

}  // namespace mxkey

#endif  // MXKEY_TESTS_ONPATH_PROXY_H_
