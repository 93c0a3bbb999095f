#include "keyd/peer_feed_reset.h"

#include <chrono>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/grpc_status.h"
#include "crypto/random.h"
#include "crypto/sha256.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

using Track = std::function<bool(grpc::ClientContext*)>;

// Sets the deadline and registers the call; false if the caller stops.
bool Begin(grpc::ClientContext& call, absl::Duration timeout,
           const Track& track) {
  call.set_deadline(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(timeout));
  return track(&call);
}

absl::Status Stopping() { return absl::CancelledError("keyd is stopping"); }

// The event the peer signed at our position, as far as it matters here.
struct SignedEvent {
  std::string digest;
  int64_t revoked_at = 0;
};

// A name under `suffix` nobody asked for before (fits any suffix a peer
// can have: 34 characters and a dot).
absl::StatusOr<std::string> FreshName(const std::string& suffix) {
  absl::StatusOr<std::string> nonce = RandomBytes(16);
  if (!nonce.ok()) return nonce.status();
  return absl::StrCat("fc", absl::BytesToHexString(*nonce), ".", suffix);
}

// The peer's feed head by a statement it signed after we asked: the answer
// for a name nobody asked before, so it cannot be a recorded one.
absl::StatusOr<uint64_t> FreshSignedHead(v1::KeyDirectory::Stub& stub,
                                         const AnswerVerifier& verifier,
                                         const std::string& suffix,
                                         absl::Time now,
                                         absl::Duration timeout,
                                         const Track& track) {
  v1::GetHostKeysRequest request;
  absl::StatusOr<std::string> name = FreshName(suffix);
  if (!name.ok()) return name.status();
  request.set_hostname(*name);
  grpc::ClientContext call;
  if (!Begin(call, timeout, track)) return Stopping();
  v1::KeyAnswer answer;
  absl::Status st = FromGrpcStatus(stub.GetHostKeys(&call, request, &answer));
  track(nullptr);
  if (!st.ok()) return st;
  absl::StatusOr<VerifiedAnswer> verified = verifier.Verify(
      answer, request.hostname(), v1::LOOKUP_KIND_HOST, now);
  if (!verified.ok()) return verified.status();
  return verified->freshness.feed_head();
}

// The peer's event `seq`, signed by the peer.
absl::StatusOr<SignedEvent> SignedEventAt(v1::KeyDirectory::Stub& stub,
                                          const AnswerVerifier& verifier,
                                          uint64_t seq, absl::Time now,
                                          absl::Duration timeout,
                                          const Track& track) {
  grpc::ClientContext call;
  if (!Begin(call, timeout, track)) return Stopping();
  v1::WatchRevocationsRequest request;
  request.set_from_seq(seq - 1);
  auto reader = stub.WatchRevocations(&call, request);
  v1::WatchRevocationsResponse batch;
  const bool read = reader->Read(&batch);
  if (read) call.TryCancel();  // one batch is all we need
  grpc::Status finished = reader->Finish();
  track(nullptr);
  if (!read) {
    return absl::UnavailableError(absl::StrCat(
        "no batch from seq ", seq - 1, ": ",
        finished.ok() ? "the stream ended" : finished.error_message()));
  }
  absl::StatusOr<std::vector<v1::RevocationEventBody>> events =
      verifier.VerifyFeedBatch(batch, seq - 1, now);
  if (!events.ok()) return events.status();
  if (events->empty()) {
    // Unsigned: proves nothing either way.
    return absl::UnavailableError(
        absl::StrCat("the peer sent no event ", seq));
  }
  return SignedEvent{Sha256(batch.events(0).body()),
                     events->front().revoked_at()};
}

}  // namespace

absl::StatusOr<PeerFeedVerdict> CheckPeerFeedReset(
    v1::KeyDirectory::Stub& stub, const AnswerVerifier& verifier,
    const std::string& suffix, const keyd::PeerFeedPosition& position,
    absl::Time now, absl::Duration timeout, const Track& track) {
  PeerFeedVerdict verdict;
  if (position.seq() == 0) return verdict;  // nothing to go back from
  absl::StatusOr<uint64_t> head =
      FreshSignedHead(stub, verifier, suffix, now, timeout, track);
  if (!head.ok()) {
    return absl::Status(head.status().code(),
                        absl::StrCat("no fresh signed statement: ",
                                     head.status().message()));
  }
  verdict.signed_head = *head;
  if (*head < position.seq()) {
    verdict.reset = true;
    return verdict;
  }
  if (position.digest().empty() || position.revoked_at() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the peer's head is at or past our seq ", position.seq(),
        ", and without the event we took there a divergence cannot be told "
        "from a replay"));
  }
  absl::StatusOr<SignedEvent> event = SignedEventAt(
      stub, verifier, position.seq(), now, timeout, track);
  if (!event.ok()) {
    return absl::Status(event.status().code(),
                        absl::StrCat("no signed event ", position.seq(), ": ",
                                     event.status().message()));
  }
  if (event->digest == position.digest()) return verdict;
  if (event->revoked_at <= position.revoked_at()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the peer's signed event ", position.seq(),
        " is another one, but not newer than ours: an event of a feed it "
        "abandoned, replayed"));
  }
  verdict.reset = true;
  return verdict;
}

}  // namespace mxkey
