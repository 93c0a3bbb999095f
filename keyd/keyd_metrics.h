// keyd's Prometheus metrics, registered once in the server's registry and
// updated by the services and components (names and meaning: the metric
// table in docs/OPERATIONS.md). Labels come only from fixed sets: the RPC,
// a gRPC status code, a configured peer's org name. Never a hostname.
//
// Recording is lock-free after the first use of each (rpc, code) pair.
#ifndef MXKEY_KEYD_KEYD_METRICS_H_
#define MXKEY_KEYD_KEYD_METRICS_H_

#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <string>

#include "absl/time/time.h"
#include "base/metrics.h"

namespace mxkey {

enum class KeydRpc {
  kGetHostKeys,
  kGetDomainPolicy,
  kFindByTlsPin,
  kGetOrgInfo,
  kGetFederationBundle,
  kWatchRevocations,
  kEnroll,
  kRotate,
  kFinishRotation,
  kAdmin,  // every Admin RPC except the three below
  kAddHost,
  kRevoke,
  kSetDomainPolicy,
  kCount,
};

class KeydMetrics {
 public:
  explicit KeydMetrics(MetricsRegistry* registry);

  // One finished RPC: requests_total{rpc,code} and its latency.
  void Rpc(KeydRpc rpc, grpc::StatusCode code, absl::Duration latency);
  // A request refused by a rate limit before it was looked at.
  void Limited(KeydRpc rpc) {
    Rpc(rpc, grpc::StatusCode::RESOURCE_EXHAUSTED, absl::ZeroDuration());
  }

  Gauge* watchers() { return watchers_; }
  // Watches refused at a cap, and dropped for not reading (WatchRegistry).
  Counter* watches_refused() { return watches_refused_; }
  Counter* watches_dropped() { return watches_dropped_; }
  Counter* answer_cache_hits() { return cache_hits_; }
  Counter* answer_cache_misses() { return cache_misses_; }
  Counter* signatures() { return signatures_; }
  Histogram* store_commit_latency() { return commit_latency_; }

  // Per configured peer (the org name is a bounded, admin-set label).
  void PeerFeedPosition(const std::string& peer, uint64_t position,
                        uint64_t peer_head);
  void PeerFeedError(const std::string& peer);
  void RelayError(const std::string& peer);

  MetricsRegistry* registry() { return registry_; }

 private:
  static constexpr size_t kCodes = 17;
  MetricsRegistry* registry_;
  std::array<std::array<std::atomic<Counter*>, kCodes>,
             static_cast<size_t>(KeydRpc::kCount)>
      requests_{};
  std::array<Histogram*, static_cast<size_t>(KeydRpc::kCount)> latency_{};
  Gauge* watchers_;
  Counter* watches_refused_;
  Counter* watches_dropped_;
  Counter* cache_hits_;
  Counter* cache_misses_;
  Counter* signatures_;
  Histogram* commit_latency_;
};

// The RPC's name as a label value ("GetHostKeys").
const char* KeydRpcName(KeydRpc rpc);
// A gRPC status code as a label value ("ok", "not_found").
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace mxkey

#endif  // MXKEY_KEYD_KEYD_METRICS_H_
