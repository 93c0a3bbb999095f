// The gRPC edge of keyd: KeyDirectory and Enrollment (public TCP) and Admin
// (Unix socket only; every change is logged with the admin's uid). Handlers
// translate between protos and the components and map absl::Status to
// grpc::Status; they hold no logic of their own.
#ifndef MXKEY_KEYD_SERVICES_H_
#define MXKEY_KEYD_SERVICES_H_

#include "keyd/admin_socket.h"
#include "keyd/directory.h"
#include "keyd/host_admin.h"
#include "keyd/federation.h"
#include "keyd/peer_relay.h"
#include "keyd/feed_watch.h"
#include "keyd/issuer.h"
#include "keyd/rate_limiter.h"
#include "keyd/recertifier.h"
#include "keyd/refusal_delay.h"
#include "keyd/keyd_context.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"

namespace mxkey {

// The KeyDirectory service as keyd implements it: every method on the
// callback API, WatchRevocations raw (its batches are shared, serialized
// once; see FeedWatch).
using KeyDirectoryBase = mxkey::v1::KeyDirectory::WithCallbackMethod_GetHostKeys<
    mxkey::v1::KeyDirectory::WithCallbackMethod_GetDomainPolicy<
        mxkey::v1::KeyDirectory::WithCallbackMethod_GetOrgInfo<
            mxkey::v1::KeyDirectory::WithCallbackMethod_GetFederationBundle<
                mxkey::v1::KeyDirectory::WithCallbackMethod_FindByTlsPin<
                    mxkey::v1::KeyDirectory::
                        WithRawCallbackMethod_WatchRevocations<
                            mxkey::v1::KeyDirectory::Service>>>>>>;

// Lookups and WatchRevocations (FeedWatch, a stream) use the callback API:
// open watches hold no threads, and are bounded by `watch_limits`.
class KeyDirectoryService final : public KeyDirectoryBase {
 public:
  // `refusals` holds the refusals of the denial limit (RefusalDelay); it
  // outlives the service.
  KeyDirectoryService(const KeydContext* ctx, Directory* directory,
                      Federation* federation, PeerRelay* relay,
                      const WatchLimits& watch_limits,
                      size_t watch_buffer_bytes, RefusalDelay* refusals)
      : ctx_(ctx),
        directory_(directory),
        federation_(federation),
        relay_(relay),
        refusals_(refusals),
        prefixes_(watch_limits.prefixes),
        watches_(watch_limits, ctx->clock, ctx->metrics),
        batches_(watch_buffer_bytes) {}

  grpc::ServerUnaryReactor* GetHostKeys(
      grpc::CallbackServerContext* context,
      const mxkey::v1::GetHostKeysRequest* request,
      mxkey::v1::KeyAnswer* response) override;
  grpc::ServerUnaryReactor* GetDomainPolicy(
      grpc::CallbackServerContext* context,
      const mxkey::v1::GetDomainPolicyRequest* request,
      mxkey::v1::KeyAnswer* response) override;
  grpc::ServerUnaryReactor* FindByTlsPin(
      grpc::CallbackServerContext* context,
      const mxkey::v1::FindByTlsPinRequest* request,
      mxkey::v1::KeyAnswer* response) override;
  grpc::ServerUnaryReactor* GetOrgInfo(grpc::CallbackServerContext* context,
                                       const mxkey::v1::GetOrgInfoRequest*,
                                       mxkey::v1::OrgInfo* response) override;
  grpc::ServerUnaryReactor* GetFederationBundle(
      grpc::CallbackServerContext* context,
      const mxkey::v1::GetFederationBundleRequest*,
      mxkey::v1::FederationBundle* response) override;
  // Sends the backlog, then new events as they come (see FeedWatch).
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchRevocations(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;

  WatchRegistry& watches() { return watches_; }
  FeedBatchCache& feed_batches() { return batches_; }

  // Makes every open watch end (called before server shutdown).
  void StopWatches() {
    stopping_.store(true);
    ctx_->feed->WakeAll();
  }

 private:
  const KeydContext* ctx_;
  Directory* directory_;
  Federation* federation_;
  PeerRelay* relay_;
  RefusalDelay* refusals_;
  // What counts as one source (the denial limit, as the watch caps).
  const SourcePrefixes prefixes_;
  WatchRegistry watches_;
  FeedBatchCache batches_;

  // A name under a peer's suffix is answered by that peer (relayed,
  // asynchronously). A call another keyd relayed to us is answered from
  // our own data only.
  grpc::ServerUnaryReactor* Lookup(KeydRpc rpc,
                                   grpc::CallbackServerContext* context,
                                   const std::string& name, bool is_domain,
                                   mxkey::v1::KeyAnswer* response);
  // The caller's network (SourceNetwork), charged for new denials.
  std::string Source(grpc::CallbackServerContext* context) const;
  std::atomic<bool> stopping_{false};
};

// Per-source limits on the public Enrollment service (keyd serve
// --enroll-limit, --enroll-failure-limit). A source that runs out gets
// RESOURCE_EXHAUSTED before its request is looked at.
struct EnrollmentLimits {
  // All Enroll, Rotate and FinishRotation requests.
  RateLimit requests{60, 30};
  // Rejected ones (bad token, bad signature, unknown host): token guessing.
  RateLimit failures{1, 10};
  // What counts as one source (keyd serve --enroll-ipv4-prefix/-ipv6-prefix).
  SourcePrefixes prefixes;
};

// Enroll and Rotate check a request on gRPC's thread (signatures), then
// finish from the store's writer once the certificate is durable: no thread
// waits through the group commit.
class EnrollmentService final
    : public mxkey::v1::Enrollment::CallbackService {
 public:
  // Refusals by the limits and failed requests go out through `refusals`
  // (RefusalDelay: token guessing at full speed costs keyd a queue slot).
  EnrollmentService(Issuer* issuer, Clock* clock, EnrollmentLimits limits,
                    KeydMetrics* metrics, RefusalDelay* refusals)
      : issuer_(issuer),
        metrics_(metrics),
        refusals_(refusals),
        prefixes_(limits.prefixes),
        requests_(clock, limits.requests),
        failures_(clock, limits.failures) {}
  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* context,
                                   const mxkey::v1::EnrollRequest* request,
                                   mxkey::v1::EnrollResponse* response) override;
  grpc::ServerUnaryReactor* Rotate(grpc::CallbackServerContext* context,
                                   const mxkey::v1::RotateRequest* request,
                                   mxkey::v1::EnrollResponse* response) override;
  grpc::ServerUnaryReactor* FinishRotation(
      grpc::CallbackServerContext* context,
      const mxkey::v1::FinishRotationRequest* request,
      mxkey::v1::EnrollResponse* response) override;

 private:
  // Applies both limits around `start`, which calls the Issuer, and counts
  // a rejection.
  grpc::ServerUnaryReactor* Limited(
      KeydRpc rpc, grpc::CallbackServerContext* context,
      const std::function<void(Issuer::Done)>& start,
      mxkey::v1::EnrollResponse* response);

  Issuer* issuer_;
  KeydMetrics* metrics_;
  RefusalDelay* refusals_;
  const SourcePrefixes prefixes_;
  RateLimiter requests_;
  RateLimiter failures_;
};

class AdminService final : public mxkey::v1::Admin::Service {
 public:
  // `callers` names the uid behind each call, for the audit line every
  // change writes; null (tests) logs uid=unknown.
  AdminService(const KeydContext* ctx, HostAdmin* admin, Federation* federation,
               const Recertifier* recertifier, const AdminSocket* callers)
      : ctx_(ctx),
        admin_(admin),
        federation_(federation),
        recertifier_(recertifier),
        callers_(callers) {}
  grpc::Status AddHost(grpc::ServerContext*,
                       const mxkey::v1::AddHostRequest* request,
                       mxkey::v1::TokenResponse* response) override;
  grpc::Status RemoveHost(grpc::ServerContext*,
                          const mxkey::v1::RemoveHostRequest* request,
                          mxkey::v1::RemoveHostResponse* response) override;
  grpc::Status ListHosts(grpc::ServerContext*,
                         const mxkey::v1::ListHostsRequest*,
                         mxkey::v1::ListHostsResponse* response) override;
  grpc::Status CreateEnrollmentToken(
      grpc::ServerContext*,
      const mxkey::v1::CreateEnrollmentTokenRequest* request,
      mxkey::v1::TokenResponse* response) override;
  grpc::Status Revoke(grpc::ServerContext*,
                      const mxkey::v1::RevokeRequest* request,
                      mxkey::v1::RevokeResponse* response) override;
  grpc::Status SetDomainPolicy(
      grpc::ServerContext*, const mxkey::v1::SetDomainPolicyRequest* request,
      mxkey::v1::SetDomainPolicyResponse* response) override;
  grpc::Status AddPeer(grpc::ServerContext*,
                       const mxkey::v1::AddPeerRequest* request,
                       mxkey::v1::PeerInfo* response) override;
  grpc::Status ListPeers(grpc::ServerContext*, const mxkey::v1::ListPeersRequest*,
                         mxkey::v1::ListPeersResponse* response) override;
  grpc::Status RemovePeer(grpc::ServerContext*,
                          const mxkey::v1::RemovePeerRequest* request,
                          mxkey::v1::RemovePeerResponse* response) override;
  grpc::Status GetRenewalStatus(grpc::ServerContext*,
                                const mxkey::v1::GetRenewalStatusRequest*,
                                mxkey::v1::RenewalStatus* response) override;

 private:
  // Logs who made a change, what, on what, and how it ended; returns
  // `status`.
  grpc::Status Audited(const grpc::ServerContext* context,
                       absl::string_view action, absl::string_view target,
                       grpc::Status status) const;

  const KeydContext* ctx_;
  HostAdmin* admin_;
  Federation* federation_;
  const Recertifier* recertifier_;
  const AdminSocket* callers_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_SERVICES_H_
