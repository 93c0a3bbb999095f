#include "keyd/keyd_metrics.h"

namespace mxkey {

const char* KeydRpcName(KeydRpc rpc) {
  switch (rpc) {
    case KeydRpc::kGetHostKeys: return "GetHostKeys";
    case KeydRpc::kGetDomainPolicy: return "GetDomainPolicy";
    case KeydRpc::kFindByTlsPin: return "FindByTlsPin";
    case KeydRpc::kGetOrgInfo: return "GetOrgInfo";
    case KeydRpc::kGetFederationBundle: return "GetFederationBundle";
    case KeydRpc::kWatchRevocations: return "WatchRevocations";
    case KeydRpc::kEnroll: return "Enroll";
    case KeydRpc::kRotate: return "Rotate";
    case KeydRpc::kFinishRotation: return "FinishRotation";
    case KeydRpc::kAdmin: return "Admin";
    case KeydRpc::kAddHost: return "AddHost";
    case KeydRpc::kRevoke: return "Revoke";
    case KeydRpc::kSetDomainPolicy: return "SetDomainPolicy";
    case KeydRpc::kCount: break;
  }
  return "unknown";
}

const char* GrpcCodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "ok",           "cancelled",          "unknown",
      "invalid_argument", "deadline_exceeded", "not_found",
      "already_exists",   "permission_denied", "resource_exhausted",
      "failed_precondition", "aborted",        "out_of_range",
      "unimplemented",    "internal",          "unavailable",
      "data_loss",        "unauthenticated"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : "unknown";
}

KeydMetrics::KeydMetrics(MetricsRegistry* registry) : registry_(registry) {
  for (size_t i = 0; i < latency_.size(); ++i) {
    latency_[i] = registry->GetHistogram(
        "mxkey_keyd_request_duration_seconds",
        "Time keyd spent on a request, from its arrival to its answer.",
        {{"rpc", KeydRpcName(static_cast<KeydRpc>(i))}});
  }
  watchers_ = registry->GetGauge("mxkey_keyd_watchers",
                                 "Open WatchRevocations streams.");
  watches_refused_ = registry->GetCounter(
      "mxkey_keyd_watches_refused_total",
      "WatchRevocations streams refused at --max-watches or "
      "--max-watches-per-source.");
  watches_dropped_ = registry->GetCounter(
      "mxkey_keyd_watches_dropped_total",
      "WatchRevocations streams cancelled because their client read "
      "nothing for --watch-drain-timeout.");
  cache_hits_ = registry->GetCounter(
      "mxkey_keyd_answer_cache_hits_total",
      "Lookups answered from the signed-answer cache.");
  cache_misses_ = registry->GetCounter(
      "mxkey_keyd_answer_cache_misses_total",
      "Lookups whose answer had to be read and signed.");
  signatures_ = registry->GetCounter(
      "mxkey_keyd_signatures_total",
      "Freshness statements and denials signed for answers.");
  commit_latency_ = registry->GetHistogram(
      "mxkey_keyd_store_commit_duration_seconds",
      "Time of one durable store commit (a group of writes).");
}

void KeydMetrics::Rpc(KeydRpc rpc, grpc::StatusCode code,
                      absl::Duration latency) {
  const size_t r = static_cast<size_t>(rpc);
  const size_t c = static_cast<size_t>(code) < kCodes
                       ? static_cast<size_t>(code)
                       : static_cast<size_t>(grpc::StatusCode::UNKNOWN);
  Counter* counter = requests_[r][c].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // First time for this pair: the registry returns the same counter to
    // every thread that races here.
    counter = registry_->GetCounter(
        "mxkey_keyd_requests_total",
        "Requests keyd answered, by RPC and gRPC status code.",
        {{"rpc", KeydRpcName(rpc)},
         {"code", GrpcCodeName(static_cast<grpc::StatusCode>(c))}});
    requests_[r][c].store(counter, std::memory_order_release);
  }
  counter->Add();
  if (latency > absl::ZeroDuration()) latency_[r]->Observe(latency);
}

void KeydMetrics::PeerFeedPosition(const std::string& peer, uint64_t position,
                                   uint64_t peer_head) {
  registry_
      ->GetGauge("mxkey_keyd_peer_feed_position",
                 "The last event of the peer's feed that keyd has taken.",
                 {{"peer", peer}})
      ->Set(static_cast<int64_t>(position));
  registry_
      ->GetGauge("mxkey_keyd_peer_feed_lag_events",
                 "Events on the peer's feed that keyd has not taken yet.",
                 {{"peer", peer}})
      ->Set(peer_head > position ? static_cast<int64_t>(peer_head - position)
                                 : 0);
}

void KeydMetrics::PeerFeedError(const std::string& peer) {
  registry_
      ->GetCounter("mxkey_keyd_peer_feed_errors_total",
                   "Failures following a peer's feed (unreachable, a batch "
                   "that does not verify, a gap or a reset).",
                   {{"peer", peer}})
      ->Add();
}

void KeydMetrics::RelayError(const std::string& peer) {
  registry_
      ->GetCounter("mxkey_keyd_relay_errors_total",
                   "Relayed lookups to a peer that failed.", {{"peer", peer}})
      ->Add();
}

}  // namespace mxkey
