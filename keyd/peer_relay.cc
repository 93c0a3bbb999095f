#include "keyd/peer_relay.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "base/grpc_status.h"
#include "client/federation_trust.h"
#include "crypto/sha256.h"
#include "keyd/records.h"
#include "keyd/records.pb.h"
#include "protocol/hostname.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr size_t kMaxCachedAnswers = 100000;
constexpr auto kPeerDeadline = std::chrono::seconds(3);

}  // namespace

std::shared_ptr<const PeerRelay::Peers> PeerRelay::LoadPeers() {
  const uint64_t generation = ctx_->store->generation();
  {
    // Every lookup passes here: readers share the lock.
    ReaderMutexLock lock(&mu_);
    if (peers_ && peers_->generation == generation) return peers_;
  }
  auto loaded = std::make_shared<Peers>();
  loaded->generation = generation;
  absl::Status st = ctx_->store->Read([&](ReadTxn& txn) {
    return txn.Scan(Table::kPeers, "",
                    [&](absl::string_view, absl::string_view value) {
                      loaded->records.emplace_back(value);
                      return true;
                    });
  });
  if (!st.ok()) loaded->records.clear();
  {
    MutexLock lock(&mu_);
    // A concurrent reload that read a later store wins.
    if (peers_ && peers_->generation > generation) return peers_;
    if (peers_ && peers_->records == loaded->records) {
      loaded->list = peers_->list;
      peers_ = loaded;
      return loaded;
    }
  }
  for (const std::string& raw : loaded->records) {
    keyd::PeerRecord r;
    if (!r.ParseFromString(raw)) continue;
    auto verifier = AnswerVerifier::Create(
        KeyFingerprint(r.peer().root_public_key()), r.peer().root_public_key());
    if (!verifier.ok()) continue;
    auto peer = std::make_shared<Peer>();
    peer->peer = r.peer();
    peer->stub = v1::KeyDirectory::NewStub(grpc::CreateChannel(
        r.peer().endpoint(), grpc::InsecureChannelCredentials()));
    peer->verifier = std::make_unique<AnswerVerifier>(*std::move(verifier));
    loaded->list.push_back(std::move(peer));
  }
  MutexLock lock(&mu_);
  if (peers_ && peers_->generation > generation) return peers_;
  // A peer change also invalidates what its old trust admitted.
  cache_.clear();
  peers_ = loaded;
  return loaded;
}

std::shared_ptr<const PeerRelay::Peer> PeerRelay::For(const std::string& name) {
  std::shared_ptr<const Peers> peers = LoadPeers();
  std::shared_ptr<const Peer> best;
  size_t best_length = 0;
  for (const auto& p : peers->list) {
    const size_t length = LongestSuffixUnder(name, p->peer.domain_suffixes());
    if (length > best_length) {
      best = p;
      best_length = length;
    }
  }
  return best;
}

absl::StatusOr<v1::KeyAnswer> PeerRelay::Lookup(const Peer& peer,
                                                const std::string& name,
                                                bool is_domain) {
  const std::string key = absl::StrCat(is_domain ? "d:" : "h:", name);
  const absl::Time now = ctx_->clock->Now();
  std::optional<v1::KeyAnswer> held;
  {
    MutexLock lock(&mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      if (now < it->second.valid_until) return it->second.answer;
      held = it->second.answer;
    }
  }
  v1::KeyAnswer answer;
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + kPeerDeadline);
  rpc.AddMetadata(kRelayedHeader, "1");
  grpc::Status st;
  if (is_domain) {
    v1::GetDomainPolicyRequest req;
    req.set_domain(name);
    st = peer.stub->GetDomainPolicy(&rpc, req, &answer);
  } else {
    v1::GetHostKeysRequest req;
    req.set_hostname(name);
    st = peer.stub->GetHostKeys(&rpc, req, &answer);
  }
  if (!st.ok()) {
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
        st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      // The client judges the held answer's freshness itself.
      if (held) return *held;
      return absl::UnavailableError(absl::StrCat(
          "peer ", peer.peer.org(), " at ", peer.peer.endpoint(),
          " is unreachable: ", st.error_message()));
    }
    return FromGrpcStatus(st);
  }
  absl::StatusOr<VerifiedAnswer> verified =
      peer.verifier->Verify(answer, name, is_domain, now);
  if (!verified.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "answer of peer ", peer.peer.org(), " for ", name,
        " failed verification: ", verified.status().message()));
  }
  const std::vector<std::string> suffixes(peer.peer.domain_suffixes().begin(),
                                          peer.peer.domain_suffixes().end());
  absl::Status scope = CheckPeerScope(*verified, suffixes, peer.peer.org());
  if (!scope.ok()) return scope;
  MutexLock lock(&mu_);
  if (cache_.size() >= kMaxCachedAnswers) cache_.clear();
  cache_[key] = {answer, absl::FromUnixSeconds(verified->freshness.valid_until())};
  return answer;
}

absl::StatusOr<v1::KeyAnswer> PeerRelay::FindByTlsPin(
    absl::string_view tls_pin) {
  std::shared_ptr<const Peers> peers = LoadPeers();
  for (const auto& peer : peers->list) {
    v1::FindByTlsPinRequest req;
    req.set_tls_spki_sha256(std::string(tls_pin));
    v1::KeyAnswer answer;
    grpc::ClientContext rpc;
    rpc.set_deadline(std::chrono::system_clock::now() + kPeerDeadline);
    rpc.AddMetadata(kRelayedHeader, "1");
    if (!peer->stub->FindByTlsPin(&rpc, req, &answer).ok()) continue;
    absl::StatusOr<VerifiedAnswer> verified = peer->verifier->Verify(
        answer, answer.name(), /*is_domain=*/false, ctx_->clock->Now());
    if (!verified.ok()) continue;
    const std::vector<std::string> suffixes(
        peer->peer.domain_suffixes().begin(), peer->peer.domain_suffixes().end());
    if (!CheckPeerScope(*verified, suffixes, peer->peer.org()).ok()) continue;
    return answer;
  }
  return absl::NotFoundError(
      "no host of this organization or of a peer is certified with that TLS "
      "pin");
}

}  // namespace mxkey
