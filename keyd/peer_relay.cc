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
    {
      MutexLock lock(&mu_);
      std::shared_ptr<Peer::Health>& health =
          health_[absl::StrCat(r.peer().org(), " ", r.peer().endpoint())];
      if (health == nullptr) health = std::make_shared<Peer::Health>();
      peer->health = health;
    }
    loaded->list.push_back(std::move(peer));
  }
  MutexLock lock(&mu_);
  if (peers_ && peers_->generation > generation) return peers_;
  // A peer change also invalidates what its old trust admitted, and what
  // it did not know.
  cache_.clear();
  pin_misses_.clear();
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

PeerRelay::~PeerRelay() {
  std::unique_lock<std::mutex> lock(calls_->mu);
  calls_->zero.wait(lock, [this] { return calls_->calls == 0; });
}

namespace {

// One call to a peer in flight: what gRPC writes into until it is done.
struct PeerCall {
  grpc::ClientContext rpc;
  v1::GetHostKeysRequest host;
  v1::GetDomainPolicyRequest domain;
  v1::FindByTlsPinRequest pin;
  v1::KeyAnswer answer;
};

absl::Status NoPeerHasPin() {
  return absl::NotFoundError(
      "no host of this organization or of a peer is certified with that TLS "
      "pin");
}

// What an asker gets when the peer cannot be asked now: the answer held
// from before (the client judges its freshness), else `why`.
absl::StatusOr<v1::KeyAnswer> HeldOr(
    const std::shared_ptr<const v1::KeyAnswer>& held, absl::Status why) {
  if (held) return *held;
  return why;
}

// Joins the single flight for `key`: kFirst (the caller starts the call),
// kJoined (the call in flight answers `done` too), or kFull (too many wait;
// `done` was not kept).
enum class Joined { kFirst, kJoined, kFull };
template <typename Done>
Joined JoinFlight(absl::flat_hash_map<std::string, std::vector<Done>>& waiting,
                  const std::string& key, size_t max_waiters, Done& done) {
  auto [it, first] = waiting.try_emplace(key);
  if (!first && it->second.size() >= max_waiters) return Joined::kFull;
  it->second.push_back(std::move(done));
  return first ? Joined::kFirst : Joined::kJoined;
}

bool Unreachable(const grpc::Status& st) {
  return st.error_code() == grpc::StatusCode::UNAVAILABLE ||
         st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

}  // namespace

absl::Status PeerRelay::Call(const std::shared_ptr<const Peer>& peer,
                             CallKind kind, const std::string& arg,
                             CallDone done) {
  // Real time, like the call's deadline: how long a peer stays down is
  // about the network, not the protocol's clock.
  const int64_t now = absl::ToUnixNanos(absl::Now());
  if (peer->health->down_until_ns.load() > now) {
    return absl::UnavailableError(absl::StrCat(
        "peer ", peer->peer.org(), " at ", peer->peer.endpoint(),
        " did not answer a moment ago; not asked again before ",
        absl::FormatDuration(limits_.peer_down_for), " have passed"));
  }
  if (peer->health->in_flight.fetch_add(1) >= limits_.max_calls_per_peer) {
    peer->health->in_flight.fetch_sub(1);
    return absl::UnavailableError(absl::StrCat(
        "peer ", peer->peer.org(), " already has ", limits_.max_calls_per_peer,
        " relayed calls in flight (--relay-max-calls-per-peer); try again"));
  }
  {
    std::lock_guard<std::mutex> lock(calls_->mu);
    ++calls_->calls;
  }
  auto* call = new PeerCall;
  call->rpc.set_deadline(std::chrono::system_clock::now() + kPeerDeadline);
  call->rpc.AddMetadata(kRelayedHeader, "1");
  auto finish = [this, peer, call, count = calls_,
                 done = std::move(done)](grpc::Status st) {
    if (Unreachable(st)) {
      peer->health->down_until_ns.store(
          absl::ToUnixNanos(absl::Now() + limits_.peer_down_for));
    }
    peer->health->in_flight.fetch_sub(1);
    done(st, std::move(call->answer));
    delete call;
    // The last use of this relay; `count` outlives it.
    std::lock_guard<std::mutex> lock(count->mu);
    if (--count->calls == 0) count->zero.notify_all();
  };
  switch (kind) {
    case CallKind::kHost:
      call->host.set_hostname(arg);
      peer->stub->async()->GetHostKeys(&call->rpc, &call->host, &call->answer,
                                       std::move(finish));
      break;
    case CallKind::kDomain:
      call->domain.set_domain(arg);
      peer->stub->async()->GetDomainPolicy(&call->rpc, &call->domain,
                                           &call->answer, std::move(finish));
      break;
    case CallKind::kPin:
      call->pin.set_tls_spki_sha256(arg);
      peer->stub->async()->FindByTlsPin(&call->rpc, &call->pin, &call->answer,
                                        std::move(finish));
      break;
  }
  return absl::OkStatus();
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

void PeerRelay::Lookup(std::shared_ptr<const Peer> peer,
                       const std::string& name, bool is_domain,
                       AnswerDone done) {
  std::string key = absl::StrCat(is_domain ? "d:" : "h:", name);
  const absl::Time now = ctx_->clock->Now();
  std::shared_ptr<const v1::KeyAnswer> held;
  std::optional<absl::StatusOr<v1::KeyAnswer>> at_once;
  bool start = false;
  {
    MutexLock lock(&mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && now < it->second.valid_until) {
      at_once = it->second.answer;
    } else {
      if (it != cache_.end()) {
        held = std::make_shared<const v1::KeyAnswer>(it->second.answer);
      }
      switch (JoinFlight(waiting_, key, limits_.max_waiters_per_name, done)) {
        case Joined::kFull:
          at_once = HeldOr(held, absl::UnavailableError(absl::StrCat(
                                     "too many lookups of ", name,
                                     " wait for peer ", peer->peer.org(),
                                     "; try again")));
          break;
        case Joined::kFirst:
          start = true;
          break;
        case Joined::kJoined:  // the call in flight answers this one too
          break;
      }
    }
  }
  if (at_once) return done(*std::move(at_once));
  if (start) {
    Fetch(std::move(peer), std::move(key), name, is_domain, std::move(held), 0);
  }
}

void PeerRelay::Fetch(std::shared_ptr<const Peer> peer, std::string key,
                      std::string name, bool is_domain,
                      std::shared_ptr<const v1::KeyAnswer> held, int attempt) {
  auto fetched = [this, peer, key, name, is_domain, held, attempt](
                     grpc::Status st, v1::KeyAnswer answer) {
    if (!st.ok()) {
      ctx_->metrics->RelayError(peer->peer.org());
      if (Unreachable(st)) {
        return Complete(key, HeldOr(held, absl::UnavailableError(absl::StrCat(
                                              "peer ", peer->peer.org(), " at ",
                                              peer->peer.endpoint(),
                                              " is unreachable: ",
                                              st.error_message()))));
      }
      return Complete(key, FromGrpcStatus(st));
    }
    absl::StatusOr<VerifiedAnswer> verified = peer->verifier->Verify(
        answer, name, is_domain ? v1::LOOKUP_KIND_DOMAIN : v1::LOOKUP_KIND_HOST,
        ctx_->clock->Now());
    absl::Status checked =
        verified.ok()
            ? CheckPeerScope(*verified, Owns(*peer), peer->peer.org())
            : absl::UnauthenticatedError(absl::StrCat(
                  "answer of peer ", peer->peer.org(), " for ", name,
                  " failed verification: ", verified.status().message()));
    if (!checked.ok()) {
      ctx_->metrics->RelayError(peer->peer.org());
      return Complete(key, checked);
    }
    bool outdated;
    {
      MutexLock lock(&mu_);
      // Checked and cached under one lock with ApplyPeerRevocations.
      outdated = Outdated(peer->peer.org(), *verified);
      if (!outdated) {
        if (cache_.size() >= kMaxCachedAnswers) cache_.clear();
        cache_[key] = {answer, absl::FromUnixSeconds(
                                   verified->freshness.valid_until())};
      }
    }
    if (!outdated) return Complete(key, std::move(answer));
    // The peer may still have served its answer from before the
    // revocation: ask once more.
    if (attempt == 0) return Fetch(peer, key, name, is_domain, held, 1);
    Complete(key, absl::UnavailableError(absl::StrCat(
                      "peer ", peer->peer.org(), " answered for ", name,
                      " with a certificate its own feed has revoked; try "
                      "again")));
  };
  absl::Status started =
      Call(peer, is_domain ? CallKind::kDomain : CallKind::kHost, name,
           std::move(fetched));
  if (!started.ok()) Complete(key, HeldOr(held, started));
}

void PeerRelay::Complete(const std::string& key,
                         const absl::StatusOr<v1::KeyAnswer>& result) {
  std::vector<AnswerDone> waiters;
  {
    MutexLock lock(&mu_);
    auto it = waiting_.find(key);
    if (it == waiting_.end()) return;
    waiters = std::move(it->second);
    waiting_.erase(it);
  }
  for (AnswerDone& done : waiters) done(result);
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
  // A new key may carry a pin a peer did not have a moment ago.
  if (!events.empty()) pin_misses_.clear();
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


PeerRelay::PinAnswer PeerRelay::JudgePinAnswer(const Peer& peer,
                                               const std::string& pin,
                                               const grpc::Status& st,
                                               v1::KeyAnswer answer) {
  PinAnswer judged;
  auto open = [&](absl::string_view why) {
    ctx_->metrics->RelayError(peer.peer.org());
    judged.kind = PinAnswer::kOpen;
    judged.why = absl::StrCat("peer ", peer.peer.org(), ": ", why);
    return judged;
  };
  if (!st.ok()) {
    // A relayed call to a peer without the pin gets FAILED_PRECONDITION:
    // its answer "none of mine".
    if (st.error_code() == grpc::StatusCode::FAILED_PRECONDITION) return judged;
    return open(st.error_message());
  }
  // A peer's signed "no such pin" is about its own hosts only.
  if (answer.name() == TlsPinName(pin)) return judged;
  absl::StatusOr<std::string> name = CanonicalHostname(answer.name());
  if (!name.ok() || *name != answer.name()) {
    return open("an answer with a bad name");
  }
  absl::StatusOr<VerifiedAnswer> verified = peer.verifier->Verify(
      answer, *name, v1::LOOKUP_KIND_HOST, ctx_->clock->Now());
  if (!verified.ok()) return open(verified.status().message());
  if (!CheckPeerScope(*verified, Owns(peer), peer.peer.org()).ok()) {
    return open("an answer outside its suffixes");
  }
  {
    ReaderMutexLock lock(&mu_);
    if (Outdated(peer.peer.org(), *verified)) {
      return open("an answer its own feed has overtaken");
    }
  }
  judged.kind = UsableCertificateHasPin(*verified, pin) ? PinAnswer::kUsable
                                                        : PinAnswer::kUnusable;
  judged.answer = std::move(answer);
  return judged;
}

void PeerRelay::FindByTlsPin(const std::string& tls_pin, PinDone done) {
  std::shared_ptr<const Peers> peers = LoadPeers();
  std::optional<absl::Status> at_once;
  {
    MutexLock lock(&mu_);
    auto miss = pin_misses_.find(tls_pin);
    if (peers->list.empty() ||
        (miss != pin_misses_.end() && absl::Now() < miss->second)) {
      at_once = NoPeerHasPin();
    } else {
      switch (JoinFlight(waiting_pins_, tls_pin, limits_.max_waiters_per_name,
                         done)) {
        case Joined::kFull:
          at_once = absl::UnavailableError(
              "too many lookups of this TLS pin wait for the peers; try again");
          break;
        case Joined::kJoined:  // the search in flight answers this one too
          return;
        case Joined::kFirst:
          break;
      }
    }
  }
  if (at_once) return done(*at_once, false);
  // Every peer at once; the last answer decides.
  struct Search {
    std::vector<PinAnswer> answers;
    std::atomic<size_t> left;
  };
  auto search = std::make_shared<Search>();
  search->answers.resize(peers->list.size());
  search->left.store(peers->list.size());
  for (size_t i = 0; i < peers->list.size(); ++i) {
    const std::shared_ptr<const Peer>& peer = peers->list[i];
    auto settle = [this, search, i, tls_pin](PinAnswer judged) {
      search->answers[i] = std::move(judged);
      if (search->left.fetch_sub(1) == 1) {
        CompletePin(tls_pin, search->answers);
      }
    };
    auto answered = [this, settle, peer, tls_pin](grpc::Status st,
                                                  v1::KeyAnswer answer) {
      settle(JudgePinAnswer(*peer, tls_pin, st, std::move(answer)));
    };
    absl::Status started = Call(peer, CallKind::kPin, tls_pin, answered);
    if (!started.ok()) {
      PinAnswer open;
      open.kind = PinAnswer::kOpen;
      open.why = std::string(started.message());
      settle(std::move(open));
    }
  }
}

void PeerRelay::CompletePin(const std::string& pin,
                            const std::vector<PinAnswer>& answers) {
  absl::StatusOr<v1::KeyAnswer> result = NoPeerHasPin();
  bool usable = false;
  const PinAnswer* unusable = nullptr;
  const PinAnswer* open = nullptr;
  for (const PinAnswer& a : answers) {
    if (a.kind == PinAnswer::kUsable) {
      result = a.answer;
      usable = true;
      break;
    }
    if (a.kind == PinAnswer::kUnusable && unusable == nullptr) unusable = &a;
    if (a.kind == PinAnswer::kOpen && open == nullptr) open = &a;
  }
  if (!usable && unusable != nullptr) {
    result = unusable->answer;
  } else if (!usable && open != nullptr) {
    // A peer that gave no verified answer (unreachable, a relayed-call
    // error, a bad or outdated answer) leaves the question open: then no
    // signed "no such pin" may be made for it.
    result = absl::UnavailableError(absl::StrCat(
        "not every peer could be asked for the TLS pin (", open->why, ")"));
  }
  std::vector<PinDone> waiters;
  {
    MutexLock lock(&mu_);
    if (absl::IsNotFound(result.status())) {
      if (pin_misses_.size() >= limits_.max_pin_misses) pin_misses_.clear();
      // Real time: a cache lifetime, not a protocol date.
      pin_misses_[pin] = absl::Now() + limits_.pin_miss_ttl;
    }
    auto it = waiting_pins_.find(pin);
    if (it != waiting_pins_.end()) {
      waiters = std::move(it->second);
      waiting_pins_.erase(it);
    }
  }
  for (PinDone& done : waiters) done(result, usable);
}

}  // namespace mxkey
