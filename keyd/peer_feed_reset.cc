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

void SetDeadline(grpc::ClientContext& call, absl::Duration timeout) {
  call.set_deadline(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(timeout));
}

// The peer's feed head by a statement it signed after we asked: the answer
// for a name nobody asked before, so it cannot be a recorded one.
absl::StatusOr<uint64_t> FreshSignedHead(v1::KeyDirectory::Stub& stub,
                                         const AnswerVerifier& verifier,
                                         const std::string& suffix,
                                         absl::Time now,
                                         absl::Duration timeout) {
  absl::StatusOr<std::string> nonce = RandomBytes(16);
  if (!nonce.ok()) return nonce.status();
  v1::GetHostKeysRequest request;
  request.set_hostname(
      absl::StrCat("feed-check-", absl::BytesToHexString(*nonce), ".", suffix));
  grpc::ClientContext call;
  SetDeadline(call, timeout);
  v1::KeyAnswer answer;
  absl::Status st = FromGrpcStatus(stub.GetHostKeys(&call, request, &answer));
  if (!st.ok()) return st;
  absl::StatusOr<VerifiedAnswer> verified = verifier.Verify(
      answer, request.hostname(), v1::LOOKUP_KIND_HOST, now);
  if (!verified.ok()) return verified.status();
  return verified->freshness.feed_head();
}

// The digest of the body of the peer's event `seq`, signed by the peer.
absl::StatusOr<std::string> SignedEventDigest(v1::KeyDirectory::Stub& stub,
                                              const AnswerVerifier& verifier,
                                              uint64_t seq, absl::Time now,
                                              absl::Duration timeout) {
  grpc::ClientContext call;
  SetDeadline(call, timeout);
  v1::WatchRevocationsRequest request;
  request.set_from_seq(seq - 1);
  auto reader = stub.WatchRevocations(&call, request);
  v1::WatchRevocationsResponse batch;
  const bool read = reader->Read(&batch);
  if (read) call.TryCancel();  // one batch is all we need
  grpc::Status finished = reader->Finish();
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
  return Sha256(batch.events(0).body());
}

}  // namespace

absl::StatusOr<PeerFeedVerdict> CheckPeerFeedReset(
    v1::KeyDirectory::Stub& stub, const AnswerVerifier& verifier,
    const std::string& suffix, const keyd::PeerFeedPosition& position,
    absl::Time now, absl::Duration timeout) {
  PeerFeedVerdict verdict;
  if (position.seq() == 0) return verdict;  // nothing to go back from
  absl::StatusOr<uint64_t> head =
      FreshSignedHead(stub, verifier, suffix, now, timeout);
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
  absl::StatusOr<std::string> digest =
      SignedEventDigest(stub, verifier, position.seq(), now, timeout);
  if (!digest.ok()) {
    return absl::Status(digest.status().code(),
                        absl::StrCat("no signed event ", position.seq(), ": ",
                                     digest.status().message()));
  }
  if (position.digest().empty()) {
    verdict.event_digest = *digest;
  } else if (*digest != position.digest()) {
    verdict.reset = true;
  }
  return verdict;
}

}  // namespace mxkey
