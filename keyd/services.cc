#include "keyd/services.h"

#include <algorithm>
#include <atomic>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/grpc_status.h"
#include "keyd/revocation.h"
#include "protocol/hostname.h"

namespace mxkey {

namespace {

// Copies a StatusOr's value into `*out`, or returns its error.
template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

// One RPC being answered, for its metrics: which, and since when.
struct Call {
  KeydMetrics* metrics;
  KeydRpc rpc;
  absl::Time start = absl::Now();

  grpc::Status Done(grpc::Status status) const {
    metrics->Rpc(rpc, status.error_code(), absl::Now() - start);
    return status;
  }
};

// Lookups never block (a short read, at most one signature), so they run
// on gRPC's own threads and finish at once.
template <typename T>
grpc::ServerUnaryReactor* Answer(const Call& call,
                                 grpc::CallbackServerContext* context,
                                 absl::StatusOr<T> result, T* out) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(call.Done(Reply(std::move(result), out)));
  return reactor;
}

namespace {

// Finishes `reactor` with `status` (already counted by Call::Done): a
// refusal (`late`) after the refusal delay, anything else at once.
void FinishCall(RefusalDelay* refusals, const std::string& source, bool late,
                grpc::ServerUnaryReactor* reactor, grpc::Status status) {
  if (!late) return reactor->Finish(std::move(status));
  refusals->Hold(source, [reactor, status = std::move(status)] {
    reactor->Finish(status);
  });
}

// A lookup refused by the denial limit.
bool Refused(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

// A relayed lookup the relay refused at once (`during_call`: its answer
// came inside the call that asked): the peer is at its
// --relay-max-calls-per-peer, counts as down, or too many wait for the
// name. Sent late like the denial limit's refusals: 64 lookups looping on
// a dead peer's names got 640 of these a second, in bursts that honest
// lookups queued behind (p99 2.5x to 5x). An UNAVAILABLE after a real call
// to the peer (up to 3 s) goes out at once.
bool RelayRefused(bool during_call, const grpc::Status& status) {
  return during_call &&
         (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
          status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
}

bool Relayed(const grpc::CallbackServerContext* context) {
  return context->client_metadata().count(kRelayedHeader) > 0;
}

// True if a certificate of `answer` (an own, trusted answer) that is
// neither revoked nor outside its validity carries `pin`.
bool AnswerHasUsablePin(const mxkey::v1::KeyAnswer& answer,
                        const std::string& pin, int64_t now) {
  std::vector<uint64_t> revoked;
  for (const auto& r : answer.revocations()) {
    mxkey::v1::RevocationEventBody body;
    if (body.ParseFromString(r.body())) revoked.push_back(body.serial());
  }
  for (const auto& c : answer.certificates()) {
    mxkey::v1::HostCertificateBody body;
    if (!body.ParseFromString(c.body()) ||
        std::count(revoked.begin(), revoked.end(), body.serial()) > 0 ||
        now < body.not_before() || now >= body.not_after()) {
      continue;
    }
    for (const auto& p : body.tls_spki_sha256()) {
      if (p == pin) return true;
    }
  }
  return false;
}

}  // namespace

std::string KeyDirectoryService::Source(
    grpc::CallbackServerContext* context) const {
  return SourceNetwork(context->peer(), prefixes_);
}

grpc::ServerUnaryReactor* KeyDirectoryService::Lookup(
    KeydRpc rpc, grpc::CallbackServerContext* context, const std::string& name,
    bool is_domain, mxkey::v1::KeyAnswer* response) {
  const Call call{ctx_->metrics, rpc};
  absl::StatusOr<std::string> canonical = CanonicalHostname(name);
  if (canonical.ok()) {
    if (std::shared_ptr<const PeerRelay::Peer> peer = relay_->For(*canonical)) {
      // Never sign anything about a peer's name from our own data: a
      // denial signed here would let anyone who can add the header turn
      // the peer's enforce domain into "unkeyed" for our clients.
      if (Relayed(context)) {
        return Answer(call, context,
                      absl::StatusOr<mxkey::v1::KeyAnswer>(
                          absl::FailedPreconditionError(absl::StrCat(
                              *canonical, " is under a domain suffix of peer ",
                              peer->peer.org(),
                              "; a relayed lookup is answered only for this "
                              "organization's own names, and never relayed "
                              "again"))),
                      response);
      }
      // Answered when the peer is (never on this thread's time).
      grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
      auto during_lookup = std::make_shared<std::atomic<bool>>(true);
      relay_->Lookup(
          std::move(peer), *canonical, is_domain,
          [this, call, reactor, response, during_lookup,
           source = Source(context)](
              absl::StatusOr<mxkey::v1::KeyAnswer> result) {
            grpc::Status status = call.Done(Reply(std::move(result), response));
            const bool refused = RelayRefused(*during_lookup, status);
            FinishCall(refusals_, source, refused, reactor, std::move(status));
          });
      during_lookup->store(false);
      return reactor;
    }
  }
  const std::string source = Source(context);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Past the denial limit (RESOURCE_EXHAUSTED) the refusal goes out late.
  grpc::Status status = call.Done(
      Reply(is_domain ? directory_->GetDomainPolicy(name, source)
                      : directory_->GetHostKeys(name, source),
            response));
  const bool refused = Refused(status);
  FinishCall(refusals_, source, refused, reactor, std::move(status));
  return reactor;
}

grpc::ServerUnaryReactor* KeyDirectoryService::GetHostKeys(
    grpc::CallbackServerContext* context,
    const mxkey::v1::GetHostKeysRequest* request,
    mxkey::v1::KeyAnswer* response) {
  return Lookup(KeydRpc::kGetHostKeys, context, request->hostname(), false,
                response);
}

grpc::ServerUnaryReactor* KeyDirectoryService::GetDomainPolicy(
    grpc::CallbackServerContext* context,
    const mxkey::v1::GetDomainPolicyRequest* request,
    mxkey::v1::KeyAnswer* response) {
  return Lookup(KeydRpc::kGetDomainPolicy, context, request->domain(), true,
                response);
}

grpc::ServerUnaryReactor* KeyDirectoryService::FindByTlsPin(
    grpc::CallbackServerContext* context,
    const mxkey::v1::FindByTlsPinRequest* request,
    mxkey::v1::KeyAnswer* response) {
  const Call call{ctx_->metrics, KeydRpc::kFindByTlsPin};
  const std::string& pin = request->tls_spki_sha256();
  absl::StatusOr<mxkey::v1::KeyAnswer> own = directory_->FindByTlsPin(pin);
  if (!own.ok() && !absl::IsNotFound(own.status())) {
    return Answer(call, context, std::move(own), response);
  }
  // An own host that no longer holds the pin usably (revoked, expired) must
  // not shadow a peer's host that does: ask the peers, then fall back to
  // the own answer (it says "revoked"), then to a signed denial.
  if (own.ok() && AnswerHasUsablePin(*own, pin, ctx_->now())) {
    return Answer(call, context, std::move(own), response);
  }
  if (Relayed(context)) {
    // A signed "no such pin" would speak for the peers, which a relayed
    // call did not ask: it gets an error, never a denial.
    if (own.ok()) return Answer(call, context, std::move(own), response);
    return Answer(call, context,
                  absl::StatusOr<mxkey::v1::KeyAnswer>(absl::FailedPreconditionError(
                      "no host of this organization is certified with that "
                      "TLS pin (a relayed call gets no signed denial)")),
                  response);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  relay_->FindByTlsPin(
      pin, [this, call, reactor, response, pin, own = std::move(own),
            source = Source(context)](
               absl::StatusOr<mxkey::v1::KeyAnswer> peer, bool usable) {
        // A denial past the denial limit (RESOURCE_EXHAUSTED) goes out late.
        absl::StatusOr<mxkey::v1::KeyAnswer> result =
            peer.ok() && usable                   ? std::move(peer)
            : own.ok()                            ? own
            : peer.ok()                           ? std::move(peer)
            // A peer could not be asked: no signed denial (it would speak
            // for it).
            : absl::IsUnavailable(peer.status()) ? std::move(peer)
                                                  : directory_->PinDenial(pin, source);
        grpc::Status status = call.Done(Reply(std::move(result), response));
        const bool refused = Refused(status);
        FinishCall(refusals_, source, refused, reactor, std::move(status));
      });
  return reactor;
}

grpc::ServerUnaryReactor* KeyDirectoryService::GetOrgInfo(
    grpc::CallbackServerContext* context, const mxkey::v1::GetOrgInfoRequest*,
    mxkey::v1::OrgInfo* response) {
  const Call call{ctx_->metrics, KeydRpc::kGetOrgInfo};
  return Answer(call, context, absl::StatusOr<mxkey::v1::OrgInfo>(
                             directory_->GetOrgInfo()),
                response);
}

grpc::ServerUnaryReactor* KeyDirectoryService::GetFederationBundle(
    grpc::CallbackServerContext* context,
    const mxkey::v1::GetFederationBundleRequest*,
    mxkey::v1::FederationBundle* response) {
  const Call call{ctx_->metrics, KeydRpc::kGetFederationBundle};
  return Answer(call, context, federation_->Bundle(), response->mutable_bundle());
}

grpc::ServerWriteReactor<grpc::ByteBuffer>*
KeyDirectoryService::WatchRevocations(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request) {
  return new FeedWatch(ctx_, {&watches_, &batches_, refusals_}, context, request,
                       &stopping_);
}

grpc::ServerUnaryReactor* EnrollmentService::Limited(
    KeydRpc rpc, grpc::CallbackServerContext* context,
    const std::function<void(Issuer::Done)>& start,
    mxkey::v1::EnrollResponse* response) {
  const Call call{metrics_, rpc};
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::string source = SourceNetwork(context->peer(), prefixes_);
  absl::Status allowed = failures_.Check(source, "failed enrollments");
  if (allowed.ok()) allowed = requests_.Take(source, "enrollment requests");
  if (!allowed.ok()) {
    FinishCall(refusals_, source, true, reactor,
               call.Done(ToGrpcStatus(allowed)));
    return reactor;
  }
  start([this, call, reactor, response, source = std::move(source)](
            absl::StatusOr<mxkey::v1::EnrollResponse> result) {
    const absl::StatusCode code = result.status().code();
    // A rejection (a guessed token, a bad signature, an unknown host) goes
    // out late, as a refusal does: guessing at full speed gains nothing.
    const bool rejected = code == absl::StatusCode::kPermissionDenied ||
                          code == absl::StatusCode::kUnauthenticated ||
                          code == absl::StatusCode::kNotFound;
    if (rejected) {
      // An empty failure bucket only matters for the next request.
      (void)failures_.Take(source, "failed enrollments");
    }
    FinishCall(refusals_, source, rejected, reactor,
               call.Done(Reply(std::move(result), response)));
  });
  return reactor;
}

grpc::ServerUnaryReactor* EnrollmentService::Enroll(
    grpc::CallbackServerContext* context,
    const mxkey::v1::EnrollRequest* request,
    mxkey::v1::EnrollResponse* response) {
  return Limited(
      KeydRpc::kEnroll, context,
      [&](Issuer::Done done) { issuer_->EnrollAsync(*request, std::move(done)); },
      response);
}

grpc::ServerUnaryReactor* EnrollmentService::Rotate(
    grpc::CallbackServerContext* context,
    const mxkey::v1::RotateRequest* request,
    mxkey::v1::EnrollResponse* response) {
  return Limited(
      KeydRpc::kRotate, context,
      [&](Issuer::Done done) { issuer_->RotateAsync(*request, std::move(done)); },
      response);
}

grpc::ServerUnaryReactor* EnrollmentService::FinishRotation(
    grpc::CallbackServerContext* context,
    const mxkey::v1::FinishRotationRequest* request,
    mxkey::v1::EnrollResponse* response) {
  return Limited(
      KeydRpc::kFinishRotation, context,
      [&](Issuer::Done done) {
        issuer_->FinishRotationAsync(*request, std::move(done));
      },
      response);
}

grpc::Status AdminService::Audited(const grpc::ServerContext* context,
                                   absl::string_view action,
                                   absl::string_view target,
                                   grpc::Status status) const {
  const std::optional<uid_t> uid =
      callers_ == nullptr ? std::nullopt : callers_->CallerUid(*context);
  // The target comes from the request: escaped, so it cannot forge lines.
  const std::string result =
      status.ok() ? "ok"
                  : absl::StrCat(absl::StatusCodeToString(
                                     static_cast<absl::StatusCode>(
                                         status.error_code())),
                                 " \"",
                                 absl::CHexEscape(status.error_message()),
                                 "\"");
  LogInfo("admin change: uid=%s action=%s target=\"%s\" result=%s",
          uid.has_value() ? absl::StrCat(*uid) : "unknown", action,
          absl::CHexEscape(target), result);
  return status;
}

grpc::Status AdminService::AddHost(grpc::ServerContext* context,
                                   const mxkey::v1::AddHostRequest* request,
                                   mxkey::v1::TokenResponse* response) {
  const Call call{ctx_->metrics, KeydRpc::kAddHost};
  return Audited(context, "add-host", request->hostname(),
                 call.Done(Reply(admin_->AddHost(*request), response)));
}

grpc::Status AdminService::RemoveHost(
    grpc::ServerContext* context, const mxkey::v1::RemoveHostRequest* request,
    mxkey::v1::RemoveHostResponse* response) {
  const Call call{ctx_->metrics, KeydRpc::kAdmin};
  return Audited(context, "remove-host", request->hostname(),
                 call.Done(Reply(admin_->RemoveHost(*request), response)));
}

grpc::Status AdminService::ListHosts(grpc::ServerContext*,
                                     const mxkey::v1::ListHostsRequest*,
                                     mxkey::v1::ListHostsResponse* response) {
  const Call call{ctx_->metrics, KeydRpc::kAdmin};
  return call.Done(Reply(admin_->ListHosts(), response));
}

grpc::Status AdminService::CreateEnrollmentToken(
    grpc::ServerContext* context,
    const mxkey::v1::CreateEnrollmentTokenRequest* request,
    mxkey::v1::TokenResponse* response) {
  const Call call{ctx_->metrics, KeydRpc::kAdmin};
  return Audited(context, "create-token", request->hostname(),
                 call.Done(Reply(admin_->CreateToken(*request), response)));
}

grpc::Status AdminService::Revoke(grpc::ServerContext* context,
                                  const mxkey::v1::RevokeRequest* request,
                                  mxkey::v1::RevokeResponse* response) {
  const Call call{ctx_->metrics, KeydRpc::kRevoke};
  return Audited(
      context,
      request->serial() == 0 ? "revoke"
                             : absl::StrCat("revoke serial=", request->serial()),
      request->hostname(),
      call.Done(Reply(mxkey::Revoke(*ctx_, *request), response)));
}

grpc::Status AdminService::SetDomainPolicy(
    grpc::ServerContext* context,
    const mxkey::v1::SetDomainPolicyRequest* request,
    mxkey::v1::SetDomainPolicyResponse* response) {
  const Call call{ctx_->metrics, KeydRpc::kSetDomainPolicy};
  return Audited(
      context, "set-policy", request->domain(),
      call.Done(Reply(admin_->SetDomainPolicy(*request), response)));
}

grpc::Status AdminService::AddPeer(grpc::ServerContext* context,
                                   const mxkey::v1::AddPeerRequest* request,
                                   mxkey::v1::PeerInfo* response) {
  const Call call{ctx_->metrics, KeydRpc::kAdmin};
  return Audited(context, "add-peer", request->org(),
                 call.Done(Reply(federation_->AddPeer(*request), response)));
}

grpc::Status AdminService::ListPeers(grpc::ServerContext*,
                                     const mxkey::v1::ListPeersRequest*,
                                     mxkey::v1::ListPeersResponse* response) {
  const Call call{ctx_->metrics, KeydRpc::kAdmin};
  return call.Done(Reply(federation_->ListPeers(), response));
}

grpc::Status AdminService::RemovePeer(
    grpc::ServerContext* context, const mxkey::v1::RemovePeerRequest* request,
    mxkey::v1::RemovePeerResponse* response) {
  const Call call{ctx_->metrics, KeydRpc::kAdmin};
  return Audited(context, "remove-peer", request->org(),
                 call.Done(Reply(federation_->RemovePeer(*request), response)));
}

grpc::Status AdminService::GetRenewalStatus(
    grpc::ServerContext*, const mxkey::v1::GetRenewalStatusRequest*,
    mxkey::v1::RenewalStatus* response) {
  const RecertifyStatus status = recertifier_->Status();
  response->set_in_progress(status.in_progress);
  response->set_certificates_recertified(status.pass.certificates);
  response->set_policies_resigned(status.pass.policies);
  response->set_pending(status.pass.pending);
  response->set_last_pass_at(status.last_pass_at);
  response->set_next_due_at(status.next_due_at);
  return grpc::Status::OK;
}

}  // namespace mxkey
