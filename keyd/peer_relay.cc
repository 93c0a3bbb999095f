#include "keyd/peer_relay.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/grpc_status.h"
#include "base/status_macros.h"
#include "client/federation_trust.h"
#include "client/tls_pins.h"
#include "crypto/sha256.h"
#include "keyd/records.h"
#include "keyd/revocation.h"
#include "keyd/records.pb.h"
#include "protocol/hostname.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr size_t kMaxCachedAnswers = 100000;
// Peer revocations remembered against answers made before them (a peer
// answer is fresh for one freshness period, so a few minutes' worth).
constexpr size_t kMaxRevokedCerts = 65536;
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
        KeyFingerprint(r.peer().root_public_key()), r.peer().root_public_key(),
        ctx_->options.max_clock_skew);
    if (!verifier.ok()) continue;
    auto peer = std::make_shared<Peer>();
    peer->peer = r.peer();
    peer->stub = v1::KeyDirectory::NewStub(KeydChannel(
        r.peer().endpoint(), ctx_->options.peer_transport,
        KeyFingerprint(r.peer().root_public_key()), ctx_->clock));
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

std::function<bool(const std::string&)> PeerRelay::Owns(const Peer& peer) {
  return [this, &peer](const std::string& name) {
    return For(name).get() == &peer;
  };
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

absl::StatusOr<std::pair<v1::KeyAnswer, VerifiedAnswer>> PeerRelay::Fetch(
    const Peer& peer, const std::string& name, bool is_domain,
    grpc::Status* rpc_status) {
  v1::KeyAnswer answer;
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + kPeerDeadline);
  rpc.AddMetadata(kRelayedHeader, "1");
  if (is_domain) {
    v1::GetDomainPolicyRequest req;
    req.set_domain(name);
    *rpc_status = peer.stub->GetDomainPolicy(&rpc, req, &answer);
  } else {
    v1::GetHostKeysRequest req;
    req.set_hostname(name);
    *rpc_status = peer.stub->GetHostKeys(&rpc, req, &answer);
  }
  if (!rpc_status->ok()) return FromGrpcStatus(*rpc_status);
  absl::StatusOr<VerifiedAnswer> verified = peer.verifier->Verify(
      answer, name, is_domain ? v1::LOOKUP_KIND_DOMAIN : v1::LOOKUP_KIND_HOST,
      ctx_->clock->Now());
  if (!verified.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "answer of peer ", peer.peer.org(), " for ", name,
        " failed verification: ", verified.status().message()));
  }
  absl::Status scope = CheckPeerScope(*verified, Owns(peer), peer.peer.org());
  if (!scope.ok()) return scope;
  return std::make_pair(std::move(answer), *std::move(verified));
}

bool PeerRelay::Outdated(const std::string& org,
                         const VerifiedAnswer& answer) const {
  for (const RevokedCert& r : revoked_) {
    if (r.org != org) continue;
    if (!r.policy_domain.empty()) {
      // Only domain answers carry a policy (a host may be named like its
      // domain).
      if (answer.freshness.kind() == v1::LOOKUP_KIND_DOMAIN &&
          r.policy_domain == answer.name &&
          (!answer.policy || answer.policy->version() < r.policy_version)) {
        return true;
      }
      continue;
    }
    for (const VerifiedCert& c : answer.certificates) {
      if (c.state != VerifiedCertState::kRevoked &&
          c.body.hostname() == r.hostname && c.body.serial() == r.serial) {
        return true;
      }
    }
  }
  return false;
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
  // A second try only for an answer the peer made before a revocation we
  // already applied (it may still have served its cached answer).
  for (int attempt = 0; attempt < 2; ++attempt) {
    grpc::Status rpc_status;
    auto fetched = Fetch(peer, name, is_domain, &rpc_status);
    if (!fetched.ok()) {
      ctx_->metrics->RelayError(peer.peer.org());
      if (rpc_status.error_code() == grpc::StatusCode::UNAVAILABLE ||
          rpc_status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        // The client judges the held answer's freshness itself.
        if (held) return *held;
        return absl::UnavailableError(absl::StrCat(
            "peer ", peer.peer.org(), " at ", peer.peer.endpoint(),
            " is unreachable: ", rpc_status.error_message()));
      }
      return fetched.status();
    }
    MutexLock lock(&mu_);
    // Checked and cached under one lock with ApplyPeerRevocations.
    if (Outdated(peer.peer.org(), fetched->second)) continue;
    if (cache_.size() >= kMaxCachedAnswers) cache_.clear();
    cache_[key] = {fetched->first, absl::FromUnixSeconds(
                                       fetched->second.freshness.valid_until())};
    return std::move(fetched->first);
  }
  return absl::UnavailableError(absl::StrCat(
      "peer ", peer.peer.org(), " answered for ", name,
      " with a certificate its own feed has revoked; try again"));
}

absl::Status PeerRelay::LoadRepublishedEvents() {
  uint64_t head = 0;
  RETURN_IF_ERROR(ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(head, GetCounter(txn, kFeedHeadCounter));
    return absl::OkStatus();
  }));
  const uint64_t from = head > kMaxRevokedCerts ? head - kMaxRevokedCerts : 0;
  ASSIGN_OR_RETURN(FeedSlice slice, ReadFeed(*ctx_->store, from, kMaxRevokedCerts));
  std::map<std::string, std::vector<v1::RevocationEventBody>> by_peer;
  for (const v1::SignedObject& e : slice.events) {
    v1::RevocationEventBody body;
    // Our own events, read from our own store: no signature to check.
    if (body.ParseFromString(e.body()) && !body.peer_org().empty()) {
      by_peer[body.peer_org()].push_back(std::move(body));
    }
  }
  for (const auto& [org, events] : by_peer) ApplyPeerRevocations(org, events);
  return absl::OkStatus();
}

void PeerRelay::DropPeerAnswers(const std::string&) {
  // Relayed answers are kept by name, not by peer: drop them all (a rare
  // event; they are fetched again on demand).
  MutexLock lock(&mu_);
  cache_.clear();
}

void PeerRelay::ApplyPeerRevocations(
    const std::string& peer_org,
    const std::vector<v1::RevocationEventBody>& events) {
  MutexLock lock(&mu_);
  for (const auto& ev : events) {
    if (ev.kind() == v1::FEED_EVENT_KIND_KEY_CHANGE) {
      // A new key: the answers that lack it go; nothing is refused.
      cache_.erase(absl::StrCat("h:", ev.hostname()));
      for (const std::string& d : ev.mail_domains()) {
        cache_.erase(absl::StrCat("d:", d));
      }
      continue;
    }
    revoked_.push_back({peer_org, ev.hostname(), ev.serial(),
                        ev.policy_domain(), ev.policy_version()});
    if (revoked_.size() > kMaxRevokedCerts) revoked_.pop_front();
    if (!ev.policy_domain().empty()) {
      cache_.erase(absl::StrCat("d:", ev.policy_domain()));
      continue;
    }
    cache_.erase(absl::StrCat("h:", ev.hostname()));
  }
  // Domain answers carry their hosts' certificates.
  for (auto it = cache_.begin(); it != cache_.end();) {
    bool names_host = false;
    for (const auto& c : it->second.answer.certificates()) {
      v1::HostCertificateBody body;
      if (!body.ParseFromString(c.body())) {
        names_host = true;
        break;
      }
      for (const auto& ev : events) {
        names_host |= ev.kind() == v1::FEED_EVENT_KIND_REVOCATION &&
                      !ev.hostname().empty() && body.hostname() == ev.hostname();
      }
    }
    if (names_host) {
      cache_.erase(it++);
    } else {
      ++it;
    }
  }
}


absl::StatusOr<v1::KeyAnswer> PeerRelay::FindByTlsPin(
    absl::string_view tls_pin, bool* usable) {
  *usable = false;
  std::shared_ptr<const Peers> peers = LoadPeers();
  std::optional<v1::KeyAnswer> unusable;
  // A peer that gave no verified answer (unreachable, a relayed-call
  // error, a bad or outdated answer) leaves the question open: then no
  // signed "no such pin" may be made for it.
  std::string unanswered;
  for (const auto& peer : peers->list) {
    v1::FindByTlsPinRequest req;
    req.set_tls_spki_sha256(std::string(tls_pin));
    v1::KeyAnswer answer;
    grpc::ClientContext rpc;
    rpc.set_deadline(std::chrono::system_clock::now() + kPeerDeadline);
    rpc.AddMetadata(kRelayedHeader, "1");
    grpc::Status st = peer->stub->FindByTlsPin(&rpc, req, &answer);
    auto open = [&](absl::string_view why) {
      ctx_->metrics->RelayError(peer->peer.org());
      if (unanswered.empty()) {
        unanswered = absl::StrCat("peer ", peer->peer.org(), ": ", why);
      }
    };
    if (!st.ok()) {
      // A relayed call to a peer without the pin gets FAILED_PRECONDITION:
      // its answer "none of mine".
      if (st.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
        open(st.error_message());
      }
      continue;
    }
    // A peer's signed "no such pin" is about its own hosts only.
    if (answer.name() == TlsPinName(tls_pin)) continue;
    absl::StatusOr<std::string> name = CanonicalHostname(answer.name());
    if (!name.ok() || *name != answer.name()) {
      open("an answer with a bad name");
      continue;
    }
    absl::StatusOr<VerifiedAnswer> verified = peer->verifier->Verify(
        answer, *name, v1::LOOKUP_KIND_HOST, ctx_->clock->Now());
    if (!verified.ok()) {
      open(verified.status().message());
      continue;
    }
    if (!CheckPeerScope(*verified, Owns(*peer), peer->peer.org()).ok()) {
      open("an answer outside its suffixes");
      continue;
    }
    {
      ReaderMutexLock lock(&mu_);
      if (Outdated(peer->peer.org(), *verified)) {
        open("an answer its own feed has overtaken");
        continue;
      }
    }
    if (UsableCertificateHasPin(*verified, tls_pin)) {
      *usable = true;
      return answer;
    }
    if (!unusable) unusable = std::move(answer);
  }
  if (unusable) return *std::move(unusable);
  if (!unanswered.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "not every peer could be asked for the TLS pin (", unanswered, ")"));
  }
  return absl::NotFoundError(
      "no host of this organization or of a peer is certified with that TLS "
      "pin");
}

}  // namespace mxkey
