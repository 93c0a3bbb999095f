#include "keyd/peer_feed.h"

#include <chrono>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "client/answer_verifier.h"
#include "crypto/sha256.h"
#include "keyd/records.h"
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

std::string SeqCounter(const std::string& org) {
  return absl::StrCat("peer_feed/", org);
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
  uint64_t last = 0;
  absl::Status st = ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    absl::StatusOr<uint64_t> seq = GetCounter(txn, SeqCounter(f->peer.org()));
    if (seq.ok()) last = *seq;
    return absl::OkStatus();
  });
  absl::Duration backoff = kMinBackoff;
  for (;;) {
    const uint64_t before = last;
    FollowOnce(f, &last);
    MutexLock lock(&f->mu);
    if (f->stop) return;
    backoff = last > before ? kMinBackoff : std::min(backoff * 2, kMaxBackoff);
    f->mu.AwaitWithTimeout(Condition(&f->stop), backoff);
    if (f->stop) return;
  }
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

void PeerFeedFollower::FollowOnce(Follower* f, uint64_t* last) {
  const v1::FederationPeer& peer = f->peer;
  absl::StatusOr<AnswerVerifier> verifier = AnswerVerifier::Create(
      KeyFingerprint(peer.root_public_key()), peer.root_public_key(),
      ctx_->options.max_clock_skew);
  if (!verifier.ok()) return;
  auto stub = v1::KeyDirectory::NewStub(
      KeydChannel(peer.endpoint(), ctx_->options.peer_transport,
                  KeyFingerprint(peer.root_public_key()), ctx_->clock));
  grpc::ClientContext call;
  {
    MutexLock lock(&f->mu);
    if (f->stop) return;
    f->call = &call;
  }
  v1::WatchRevocationsRequest request;
  request.set_from_seq(*last);
  request.set_from_digest(f->last_digest);
  auto reader = stub->WatchRevocations(&call, request);
  v1::WatchRevocationsResponse batch;
  while (reader->Read(&batch)) {
    if (f->skip_to_head) {
      // After a gap or a reset: continue from the peer's head, having
      // dropped every relayed answer of it, rather than republish its whole
      // history again.
      if (relay_ != nullptr) relay_->DropPeerAnswers(peer.org());
      *last = batch.head_seq();
      f->last_digest = batch.head_digest();
      absl::Status st = ctx_->store->Write([&](WriteTxn& txn) {
        return SetCounter(txn, SeqCounter(peer.org()), *last);
      });
      if (!st.ok()) LogWarning("peer %s feed: %s", peer.org(), st.message());
      f->skip_to_head = false;
      call.TryCancel();
      break;
    }
    absl::StatusOr<std::vector<v1::RevocationEventBody>> events =
        verifier->VerifyFeedBatch(batch, *last, ctx_->clock->Now());
    ctx_->metrics->PeerFeedPosition(peer.org(), *last, batch.head_seq());
    if (!events.ok()) {
      ctx_->metrics->PeerFeedError(peer.org());
      // A gap: resynchronize at the head. A batch that does not verify:
      // retry from the same place later (backoff), never from 0.
      const std::string why(events.status().message());
      const bool gap = absl::IsDataLoss(events.status());
      if (why != f->last_failure) {
        LogWarning("peer %s feed: %s; %s", peer.org(), why,
                   gap ? "continuing from its head" : "will retry");
        f->last_failure = why;
      }
      if (gap) f->skip_to_head = true;
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
    const uint64_t taken = events->back().seq();
    absl::Status st = ctx_->store->Write([&](WriteTxn& txn) -> absl::Status {
      if (!in_scope.empty()) {
        absl::StatusOr<uint64_t> h =
            AppendPeerRevocations(txn, *ctx_, peer.org(), in_scope);
        if (!h.ok()) return h.status();
        head = *h;
      }
      return SetCounter(txn, SeqCounter(peer.org()), taken);
    });
    if (!st.ok()) {
      LogWarning("peer %s feed: %s", peer.org(), st.message());
      call.TryCancel();
      break;
    }
    *last = taken;
    f->last_digest = Sha256(batch.events(batch.events_size() - 1).body());
    ctx_->metrics->PeerFeedPosition(peer.org(), *last, batch.head_seq());
    if (head != 0) ctx_->feed->Publish(head);
    for (const auto& e : in_scope) {
      if (!e.policy_domain().empty()) {
        LogInfo("peer %s changed the policy of %s (version %d): republished",
                peer.org(), e.policy_domain(), e.policy_version());
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
  if (st.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
    LogWarning("peer %s feed was reset (%s); continuing from its head",
               peer.org(), st.error_message());
    *last = 0;
    f->skip_to_head = true;
  }
  MutexLock lock(&f->mu);
  f->call = nullptr;
}

}  // namespace mxkey
