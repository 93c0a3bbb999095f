#include "keyd/peer_feed.h"

#include <chrono>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "client/answer_verifier.h"
#include "crypto/sha256.h"
#include "keyd/records.h"
#include "keyd/peer_feed_reset.h"
#include "keyd/records.pb.h"
#include "keyd/revocation.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "protocol/hostname.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr absl::Duration kReconcileEvery = absl::Seconds(1);
constexpr absl::Duration kMinBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);

constexpr absl::Duration kResetCheckTimeout = absl::Seconds(5);

std::string OldSeqCounter(const std::string& org) {
  return absl::StrCat("peer_feed/", org);
}

std::string PositionKey(const std::string& org) {
  return absl::StrCat("peer_feed_position/", org);
}

}  // namespace

void PeerFeedFollower::Start() {
  reconciler_ = std::thread([this] {
    MutexLock lock(&mu_);
    while (!stopping_) {
      mu_.Unlock();
      Reconcile();
      mu_.Lock();
      mu_.AwaitWithTimeout(Condition(&stopping_), kReconcileEvery);
    }
  });
}

void PeerFeedFollower::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (reconciler_.joinable()) reconciler_.join();
  for (auto& [org, f] : followers_) {
    {
      MutexLock lock(&f->mu);
      f->stop = true;
      if (f->call) f->call->TryCancel();
    }
    f->thread.join();
  }
  followers_.clear();
}

void PeerFeedFollower::Reconcile() {
  const uint64_t generation = ctx_->store->generation();
  if (generation == seen_generation_ && seen_generation_ != 0) return;
  seen_generation_ = generation;
  std::map<std::string, v1::FederationPeer> peers;
  absl::Status st = ctx_->store->Read([&](ReadTxn& txn) {
    return txn.Scan(Table::kPeers, "",
                    [&](absl::string_view key, absl::string_view value) {
                      keyd::PeerRecord r;
                      if (r.ParseFromArray(value.data(),
                                           static_cast<int>(value.size()))) {
                        peers[std::string(key)] = r.peer();
                      }
                      return true;
                    });
  });
  if (!st.ok()) {
    LogWarning("peer feeds: %s", st.message());
    return;
  }
  for (auto it = followers_.begin(); it != followers_.end();) {
    auto wanted = peers.find(it->first);
    if (wanted != peers.end() &&
        wanted->second.SerializeAsString() ==
            it->second->peer.SerializeAsString()) {
      ++it;
      continue;
    }
    Follower* f = it->second.get();
    {
      MutexLock lock(&f->mu);
      f->stop = true;
      if (f->call) f->call->TryCancel();
    }
    f->thread.join();
    it = followers_.erase(it);
  }
  for (const auto& [org, peer] : peers) {
    if (followers_.count(org)) continue;
    auto f = std::make_unique<Follower>();
    f->peer = peer;
    Follower* raw = f.get();
    f->thread = std::thread([this, raw] { Follow(raw); });
    followers_[org] = std::move(f);
  }
}

void PeerFeedFollower::Follow(Follower* f) {
  absl::Status st = ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    absl::StatusOr<keyd::PeerFeedPosition> position =
        LoadPosition(txn, f->peer.org());
    if (position.ok()) f->position = *std::move(position);
    return position.status();
  });
  if (!st.ok()) {
    // Never from 0 on a read error: that would republish the peer's whole
    // feed again.
    LogWarning("peer %s feed: %s; not followed until keyd restarts",
               f->peer.org(), st.message());
    return;
  }
  absl::Duration backoff = kMinBackoff;
  for (;;) {
    const uint64_t before = f->position.seq();
    bool progressed = false;
    if (f->suspect_reset) {
      progressed = CheckReset(f);
    } else {
      FollowOnce(f);
    }
    MutexLock lock(&f->mu);
    if (f->stop) return;
    backoff = progressed || f->position.seq() > before
                  ? kMinBackoff
                  : std::min(backoff * 2, kMaxBackoff);
    f->mu.AwaitWithTimeout(Condition(&f->stop), backoff);
    if (f->stop) return;
  }
}

absl::StatusOr<keyd::PeerFeedPosition> PeerFeedFollower::LoadPosition(
    ReadTxn& txn, const std::string& org) {
  keyd::PeerFeedPosition position;
  absl::StatusOr<absl::string_view> raw = txn.Get(Table::kMeta, PositionKey(org));
  if (raw.ok()) {
    if (!position.ParseFromArray(raw->data(), static_cast<int>(raw->size()))) {
      return absl::DataLossError(
          absl::StrCat("corrupt feed position of peer ", org));
    }
    return position;
  }
  if (!absl::IsNotFound(raw.status())) return raw.status();
  // Written by an older keyd: the sequence number alone.
  absl::StatusOr<uint64_t> seq = GetCounter(txn, OldSeqCounter(org));
  if (!seq.ok()) return seq.status();
  position.set_seq(*seq);
  return position;
}

absl::Status PeerFeedFollower::StorePosition(WriteTxn& txn, const Follower& f,
                                             const keyd::PeerFeedPosition& p) {
  return txn.Put(Table::kMeta, PositionKey(f.peer.org()),
                 p.SerializeAsString());
}

bool PeerFeedFollower::CheckReset(Follower* f) {
  const v1::FederationPeer& peer = f->peer;
  if (peer.domain_suffixes().empty()) {
    LogOnce(f, "a reset is claimed, but the peer has no domain suffix to ask "
               "under; keeping the position");
    return false;
  }
  absl::StatusOr<AnswerVerifier> verifier = PeerVerifier(peer);
  if (!verifier.ok()) {
    LogOnce(f, absl::StrCat("its root does not load (",
                            absl::CHexEscape(verifier.status().message()),
                            "); keeping the position"));
    return false;
  }
  auto stub = PeerStub(peer);
  // The shortest suffix: the check's name must fit under it.
  std::string suffix = peer.domain_suffixes(0);
  for (const auto& s : peer.domain_suffixes()) {
    if (s.size() < suffix.size()) suffix = s;
  }
  absl::StatusOr<PeerFeedVerdict> verdict = CheckPeerFeedReset(
      *stub, *verifier, suffix, f->position, ctx_->clock->Now(),
      kResetCheckTimeout, [f](grpc::ClientContext* call) {
        MutexLock lock(&f->mu);
        if (call != nullptr && f->stop) return false;
        f->call = call;
        return true;
      });
  if (!verdict.ok()) {
    LogOnce(f, absl::StrCat("its feed does not go on from seq ",
                            f->position.seq(),
                            ", and there is no signed proof of a reset yet (",
                            // May quote the peer's own error text.
                            absl::CHexEscape(verdict.status().message()),
                            "); keeping the position, will ask again"));
    return false;
  }
  f->suspect_reset = false;
  keyd::PeerFeedPosition next = f->position;
  if (verdict->reset) {
    // Proven: drop what was relayed of the old feed, and go on from the
    // signed head, never republishing the new feed's history.
    if (relay_ != nullptr) relay_->DropPeerAnswers(peer.org());
    next.set_seq(verdict->signed_head);
    next.clear_digest();
    next.clear_revoked_at();
  }
  absl::Status st = ctx_->store->Write(
      [&](WriteTxn& txn) { return StorePosition(txn, *f, next); });
  if (!st.ok()) {
    LogWarning("peer %s feed: %s", peer.org(), st.message());
    f->suspect_reset = true;
    return false;
  }
  if (verdict->reset) {
    LogWarning(
        "peer %s feed went back (signed proof: its head is now %d, we had "
        "taken seq %d); continuing from its head",
        peer.org(), next.seq(), f->position.seq());
  } else {
    LogWarning(
        "peer %s feed: a reset or gap was claimed, but the peer's signed "
        "feed still holds our seq %d; keeping the position",
        peer.org(), f->position.seq());
  }
  f->position = next;
  f->last_failure.clear();
  return verdict->reset;
}

void PeerFeedFollower::LogOnce(Follower* f, const std::string& why) {
  if (why == f->last_failure) return;
  LogWarning("peer %s feed: %s", f->peer.org(), why);
  f->last_failure = why;
}

absl::StatusOr<AnswerVerifier> PeerFeedFollower::PeerVerifier(
    const v1::FederationPeer& peer) const {
  return AnswerVerifier::Create(KeyFingerprint(peer.root_public_key()),
                                peer.root_public_key(),
                                ctx_->options.max_clock_skew);
}

std::unique_ptr<v1::KeyDirectory::Stub> PeerFeedFollower::PeerStub(
    const v1::FederationPeer& peer) const {
  return v1::KeyDirectory::NewStub(
      KeydChannel(peer.endpoint(), ctx_->options.peer_transport,
                  KeyFingerprint(peer.root_public_key()), ctx_->clock));
}

absl::Status CheckPeerEventNames(
    const v1::RevocationEventBody& e,
    const std::function<bool(const std::string&)>& owns) {
  std::vector<const std::string*> names = {&e.hostname()};
  if (!e.policy_domain().empty()) names = {&e.policy_domain()};
  for (const std::string& d : e.mail_domains()) names.push_back(&d);
  for (const std::string* name : names) {
    absl::StatusOr<std::string> canonical = CanonicalHostname(*name);
    if (!canonical.ok() || *canonical != *name) {
      // Quoted escaped: the name is the peer's text, and must not forge a
      // log line or enter our feed in another spelling.
      return absl::InvalidArgumentError(
          absl::StrCat("a non-canonical name \"", absl::CHexEscape(*name),
                       "\""));
    }
  }
  const std::string& name =
      e.policy_domain().empty() ? e.hostname() : e.policy_domain();
  if (!owns(name)) {
    return absl::PermissionDeniedError(
        absl::StrCat("a name it does not own: ", name));
  }
  return absl::OkStatus();
}

void PeerFeedFollower::FollowOnce(Follower* f) {
  const v1::FederationPeer& peer = f->peer;
  absl::StatusOr<AnswerVerifier> verifier = PeerVerifier(peer);
  if (!verifier.ok()) return;
  auto stub = PeerStub(peer);
  grpc::ClientContext call;
  {
    MutexLock lock(&f->mu);
    if (f->stop) return;
    f->call = &call;
  }
  v1::WatchRevocationsRequest request;
  request.set_from_seq(f->position.seq());
  request.set_from_digest(f->position.digest());
  auto reader = stub->WatchRevocations(&call, request);
  v1::WatchRevocationsResponse batch;
  while (reader->Read(&batch)) {
    const uint64_t last = f->position.seq();
    absl::StatusOr<std::vector<v1::RevocationEventBody>> events =
        verifier->VerifyFeedBatch(batch, last, ctx_->clock->Now());
    ctx_->metrics->PeerFeedPosition(peer.org(), last, batch.head_seq());
    if (!events.ok()) {
      ctx_->metrics->PeerFeedError(peer.org());
      // A gap is unsigned (anyone on the path can send an old batch or a
      // low head): before anything is skipped, the peer must prove that
      // its feed went back (CheckReset). A batch that does not verify:
      // retry from the same place later (backoff).
      const bool gap = absl::IsDataLoss(events.status());
      LogOnce(f, absl::StrCat(absl::CHexEscape(events.status().message()),
                              gap ? "; asking the peer for signed proof of a "
                                    "reset before going on"
                                  : "; will retry"));
      if (gap) f->suspect_reset = true;
      call.TryCancel();
      break;
    }
    f->last_failure.clear();
    if (events->empty()) continue;
    std::vector<v1::RevocationEventBody> in_scope;
    for (const auto& e : *events) {
      // The peer republishing another org's event (ours echoed back under
      // mutual peering, or a third org's): that org speaks for itself on
      // its own feed, so it is skipped without a warning. The peer's own
      // events carry no peer_org.
      if (!e.peer_org().empty()) continue;
      // Only canonical names the peer owns: inside its suffixes and under
      // no other peer's longer one (it may not revoke a nested peer's
      // hosts).
      absl::Status usable = CheckPeerEventNames(
          e, [&](const std::string& name) {
            if (relay_ == nullptr) {
              return LongestSuffixUnder(name, peer.domain_suffixes()) > 0;
            }
            auto owner = relay_->For(name);
            return owner != nullptr && owner->peer.org() == peer.org();
          });
      if (usable.ok()) {
        in_scope.push_back(e);
      } else {
        LogWarning("peer %s sent an event seq=%d: %s; ignored", peer.org(),
                   e.seq(), usable.message());
      }
    }
    // Before the events are on our feed: no relayed answer may outlive
    // them there.
    if (relay_ != nullptr && !in_scope.empty()) {
      relay_->ApplyPeerRevocations(peer.org(), in_scope);
    }
    uint64_t head = 0;
    keyd::PeerFeedPosition taken;
    taken.set_seq(events->back().seq());
    taken.set_digest(Sha256(batch.events(batch.events_size() - 1).body()));
    taken.set_revoked_at(events->back().revoked_at());
    absl::Status st = ctx_->store->Write([&](WriteTxn& txn) -> absl::Status {
      if (!in_scope.empty()) {
        absl::StatusOr<uint64_t> h =
            AppendPeerRevocations(txn, *ctx_, peer.org(), in_scope);
        if (!h.ok()) return h.status();
        head = *h;
      }
      // In the same transaction as the events: a crash never takes an
      // event twice, and the position only goes back on a proven reset,
      // so each (peer, peer seq) of one feed is republished at most once.
      return StorePosition(txn, *f, taken);
    });
    if (!st.ok()) {
      LogWarning("peer %s feed: %s", peer.org(), st.message());
      call.TryCancel();
      break;
    }
    f->position = taken;
    ctx_->metrics->PeerFeedPosition(peer.org(), taken.seq(), batch.head_seq());
    if (head != 0) ctx_->feed->Publish(head);
    for (const auto& e : in_scope) {
      if (!e.policy_domain().empty()) {
        LogInfo("peer %s changed the policy of %s (version %d): republished",
                peer.org(), e.policy_domain(), e.policy_version());
      } else if (e.kind() == v1::FEED_EVENT_KIND_KEY_CHANGE) {
        LogInfo("peer %s certified a new key of %s serial %d: republished",
                peer.org(), e.hostname(), e.serial());
      } else {
        LogInfo("peer %s revoked %s serial %d: republished", peer.org(),
                e.hostname(), e.serial());
      }
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
    ctx_->metrics->PeerFeedError(peer.org());
  }
  if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED &&
      st.error_code() != grpc::StatusCode::OUT_OF_RANGE) {
    LogOnce(f, absl::StrCat("the stream ended: \"",
                            absl::CHexEscape(st.error_message()),
                            "\"; will retry"));
  }
  if (st.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
    // Unsigned, like a gap: the peer's message is its own text (escaped).
    LogOnce(f, absl::StrCat("the peer says its feed went back (\"",
                            absl::CHexEscape(st.error_message()),
                            "\"); asking for signed proof before going on"));
    f->suspect_reset = true;
  }
  MutexLock lock(&f->mu);
  f->call = nullptr;
}

}  // namespace mxkey
