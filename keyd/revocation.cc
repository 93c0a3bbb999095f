#include "keyd/revocation.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "keyd/cert_states.h"
#include "keyd/records.h"
#include "protocol/hostname.h"

namespace mxkey {

absl::StatusOr<uint64_t> AppendRevocations(WriteTxn& txn,
                                           const KeydContext& ctx,
                                           const std::vector<uint64_t>& serials,
                                           absl::string_view reason) {
  ASSIGN_OR_RETURN(uint64_t head, GetCounter(txn, kFeedHeadCounter));
  for (uint64_t serial : serials) {
    ASSIGN_OR_RETURN(keyd::CertRecord record,
                     GetRecord<keyd::CertRecord>(txn, Table::kCerts,
                                                 U64Key(serial)));
    if (record.revoked()) {
      return absl::FailedPreconditionError(
          absl::StrCat("certificate ", serial, " is already revoked"));
    }
    mxkey::v1::RevocationEventBody event;
    event.set_seq(++head);
    event.set_hostname(record.hostname());
    event.set_serial(serial);
    event.set_reason(std::string(reason));
    event.set_revoked_at(ctx.now());
    ASSIGN_OR_RETURN(
        mxkey::v1::SignedObject signed_event,
        ctx.keys->Sign(ObjectType::kRevocation, event.SerializeAsString()));
    std::string bytes = signed_event.SerializeAsString();
    RETURN_IF_ERROR(txn.Put(Table::kFeed, U64Key(head), bytes));
    RETURN_IF_ERROR(txn.Put(Table::kRevocations, U64Key(serial), bytes));
    record.set_revoked(true);
    record.set_revocation_seq(head);
    RETURN_IF_ERROR(PutRecord(txn, Table::kCerts, U64Key(serial), record));
  }
  RETURN_IF_ERROR(SetCounter(txn, kFeedHeadCounter, head));
  return head;
}

namespace {

// Signs `event` (whose seq is the next one) and appends it to the feed.
absl::StatusOr<uint64_t> AppendEvent(WriteTxn& txn, const KeydContext& ctx,
                                     const mxkey::v1::RevocationEventBody& event) {
  ASSIGN_OR_RETURN(
      mxkey::v1::SignedObject signed_event,
      ctx.keys->Sign(ObjectType::kRevocation, event.SerializeAsString()));
  RETURN_IF_ERROR(txn.Put(Table::kFeed, U64Key(event.seq()),
                          signed_event.SerializeAsString()));
  RETURN_IF_ERROR(SetCounter(txn, kFeedHeadCounter, event.seq()));
  return event.seq();
}

}  // namespace

absl::StatusOr<uint64_t> AppendPolicyChange(WriteTxn& txn,
                                            const KeydContext& ctx,
                                            absl::string_view domain,
                                            uint64_t version,
                                            absl::string_view reason) {
  ASSIGN_OR_RETURN(uint64_t head, GetCounter(txn, kFeedHeadCounter));
  mxkey::v1::RevocationEventBody event;
  event.set_seq(++head);
  event.set_kind(mxkey::v1::FEED_EVENT_KIND_POLICY_CHANGE);
  event.set_policy_domain(std::string(domain));
  event.set_policy_version(version);
  event.set_reason(std::string(reason));
  event.set_revoked_at(ctx.now());
  return AppendEvent(txn, ctx, event);
}

absl::StatusOr<uint64_t> AppendKeyChange(
    WriteTxn& txn, const KeydContext& ctx, absl::string_view host,
    uint64_t serial, const std::vector<std::string>& domains,
    absl::string_view reason) {
  ASSIGN_OR_RETURN(uint64_t head, GetCounter(txn, kFeedHeadCounter));
  mxkey::v1::RevocationEventBody event;
  event.set_seq(head + 1);
  event.set_kind(mxkey::v1::FEED_EVENT_KIND_KEY_CHANGE);
  event.set_hostname(std::string(host));
  event.set_serial(serial);
  for (const std::string& d : domains) event.add_mail_domains(d);
  event.set_reason(std::string(reason));
  event.set_revoked_at(ctx.now());
  return AppendEvent(txn, ctx, event);
}

// At most `max` bytes of `text`, cut before a UTF-8 continuation byte so
// the result stays valid UTF-8 (a proto string field must be).
std::string TruncateUtf8(std::string text, size_t max) {
  if (text.size() <= max) return text;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) {
    --end;
  }
  text.resize(end);
  return text;
}

absl::StatusOr<uint64_t> AppendPeerRevocations(
    WriteTxn& txn, const KeydContext& ctx, absl::string_view peer_org,
    const std::vector<mxkey::v1::RevocationEventBody>& events) {
  ASSIGN_OR_RETURN(uint64_t head, GetCounter(txn, kFeedHeadCounter));
  for (const mxkey::v1::RevocationEventBody& peer_event : events) {
    mxkey::v1::RevocationEventBody event;
    event.set_seq(++head);
    event.set_hostname(peer_event.hostname());
    event.set_serial(peer_event.serial());
    event.set_policy_domain(peer_event.policy_domain());
    event.set_policy_version(peer_event.policy_version());
    event.set_kind(peer_event.kind());
    *event.mutable_mail_domains() = peer_event.mail_domains();
    event.set_peer_org(std::string(peer_org));
    event.set_reason(TruncateUtf8(
        absl::StrCat("peer ", peer_org, ": ", peer_event.reason()),
        ctx.options.max_reason_bytes));
    event.set_revoked_at(peer_event.revoked_at());
    ASSIGN_OR_RETURN(
        mxkey::v1::SignedObject signed_event,
        ctx.keys->Sign(ObjectType::kRevocation, event.SerializeAsString()));
    // Only the feed: the peer's serials are not this org's certificates.
    RETURN_IF_ERROR(
        txn.Put(Table::kFeed, U64Key(head), signed_event.SerializeAsString()));
  }
  RETURN_IF_ERROR(SetCounter(txn, kFeedHeadCounter, head));
  return head;
}

absl::StatusOr<mxkey::v1::RevokeResponse> Revoke(
    const KeydContext& ctx, const mxkey::v1::RevokeRequest& request) {
  ASSIGN_OR_RETURN(std::string hostname, CanonicalHostname(request.hostname()));
  if (request.reason().empty() ||
      request.reason().size() > ctx.options.max_reason_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a revocation reason of 1 to ", ctx.options.max_reason_bytes,
        " bytes is required"));
  }
  for (unsigned char c : request.reason()) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          "the revocation reason must be one line of text without control "
          "characters");
    }
  }
  mxkey::v1::RevokeResponse response;
  absl::Status st = ctx.store->Write([&](WriteTxn& txn) -> absl::Status {
    response.Clear();
    ASSIGN_OR_RETURN(keyd::HostRecord host, GetHostRecord(txn, hostname));
    ASSIGN_OR_RETURN(std::vector<StoredCert> certs,
                     LoadHostCerts(txn, host, ctx.now()));
    std::vector<uint64_t> targets;
    for (const auto& c : certs) {
      if (request.serial() != 0 && c.body.serial() != request.serial()) continue;
      if (c.state == CertState::kRevoked) {
        if (request.serial() != 0) {
          return absl::FailedPreconditionError(absl::StrCat(
              "certificate ", request.serial(), " of ", hostname,
              " is already revoked"));
        }
        continue;
      }
      targets.push_back(c.body.serial());
    }
    if (targets.empty()) {
      if (request.serial() != 0) {
        return absl::NotFoundError(absl::StrCat(
            "serial ", request.serial(), " is not a certificate of ",
            hostname));
      }
      return absl::FailedPreconditionError(absl::StrCat(
          hostname, " has no unrevoked certificate to revoke"));
    }
    ASSIGN_OR_RETURN(uint64_t head,
                     AppendRevocations(txn, ctx, targets, request.reason()));
    for (uint64_t s : targets) response.add_revoked_serials(s);
    response.set_feed_seq(head);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  ctx.feed->Publish(response.feed_seq());
  LogInfo("revoked host=%s serials=%s feed_seq=%d", hostname,
          absl::StrJoin(response.revoked_serials(), ","), response.feed_seq());
  return response;
}

absl::StatusOr<FeedSlice> ReadFeed(Store& store, uint64_t from_seq,
                                   size_t limit) {
  FeedSlice slice;
  absl::Status st = store.Read([&](ReadTxn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(slice.head, GetCounter(txn, kFeedHeadCounter));
    absl::Status parse = absl::OkStatus();
    RETURN_IF_ERROR(txn.Scan(
        Table::kFeed, U64Key(from_seq + 1),
        [&](absl::string_view, absl::string_view value) {
          mxkey::v1::SignedObject event;
          if (!event.ParseFromArray(value.data(),
                                    static_cast<int>(value.size()))) {
            parse = absl::DataLossError("corrupt feed event");
            return false;
          }
          slice.events.push_back(std::move(event));
          return slice.events.size() < limit;
        }));
    return parse;
  });
  if (!st.ok()) return st;
  return slice;
}

}  // namespace mxkey
