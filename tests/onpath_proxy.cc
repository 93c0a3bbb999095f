#include "tests/onpath_proxy.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr auto kRecordDeadline = std::chrono::seconds(5);
constexpr auto kShutdownGrace = std::chrono::seconds(2);

}  // namespace

const char* ProxyRpcName(ProxyRpc rpc) {
  switch (rpc) {
    case ProxyRpc::kGetHostKeys:
      return "GetHostKeys";
    case ProxyRpc::kGetDomainPolicy:
      return "GetDomainPolicy";
    case ProxyRpc::kFindByTlsPin:
      return "FindByTlsPin";
    case ProxyRpc::kGetOrgInfo:
      return "GetOrgInfo";
    case ProxyRpc::kGetFederationBundle:
      return "GetFederationBundle";
    case ProxyRpc::kWatchRevocations:
      return "WatchRevocations";
  }
  return "?";
}

RecordedResponse RecordedResponse::Unsigned(grpc::StatusCode code,
                                            const std::string& message) {
  RecordedResponse r;
  r.code = code;
  r.message = message;
  return r;
}

bool RecordedResponse::SameAs(const RecordedResponse& other) const {
  if (code != other.code) return false;
  if (!ok()) return message == other.message;
  return answer.SerializeAsString() == other.answer.SerializeAsString();
}

RecordedResponse RecordLookup(const std::string& endpoint, ProxyRpc rpc,
                              const std::string& arg, bool relayed) {
  auto stub = v1::KeyDirectory::NewStub(
      grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRecordDeadline);
  if (relayed) ctx.AddMetadata(kOnPathRelayedHeader, "1");
  RecordedResponse out;
  grpc::Status st;
  switch (rpc) {
    case ProxyRpc::kGetHostKeys: {
      v1::GetHostKeysRequest req;
      req.set_hostname(arg);
      st = stub->GetHostKeys(&ctx, req, &out.answer);
      break;
    }
    case ProxyRpc::kGetDomainPolicy: {
      v1::GetDomainPolicyRequest req;
      req.set_domain(arg);
      st = stub->GetDomainPolicy(&ctx, req, &out.answer);
      break;
    }
    case ProxyRpc::kFindByTlsPin: {
      v1::FindByTlsPinRequest req;
      req.set_tls_spki_sha256(arg);
      st = stub->FindByTlsPin(&ctx, req, &out.answer);
      break;
    }
    default:
      st = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "RecordLookup records lookups only");
  }
  out.code = st.error_code();
  out.message = st.error_message();
  if (!st.ok()) out.answer.Clear();
  return out;
}

OnPathProxy::OnPathProxy(const std::string& backend)
    : backend_(v1::KeyDirectory::NewStub(
          grpc::CreateChannel(backend, grpc::InsecureChannelCredentials()))) {}

OnPathProxy::~OnPathProxy() { Stop(); }

std::string OnPathProxy::Start() {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) return "";
  endpoint_ = absl::StrCat("127.0.0.1:", port);
  return endpoint_;
}

void OnPathProxy::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (grpc::ClientContext* c : streams_) c->TryCancel();
  }
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    server_->Wait();
    server_.reset();
  }
}

void OnPathProxy::Substitute(ProxyRpc rpc, const std::string& arg,
                             RecordedResponse response) {
  std::lock_guard<std::mutex> lock(mu_);
  substitutions_[{rpc, arg}] = std::move(response);
}

void OnPathProxy::ReturnUnsignedNotFound(ProxyRpc rpc, const std::string& arg) {
  Substitute(rpc, arg,
             RecordedResponse::Unsigned(grpc::StatusCode::NOT_FOUND,
                                        "no such name (says the attacker)"));
}

void OnPathProxy::Drop(ProxyRpc rpc, bool drop) {
  std::lock_guard<std::mutex> lock(mu_);
  if (drop) {
    dropped_.insert(rpc);
  } else {
    dropped_.erase(rpc);
  }
}

void OnPathProxy::AddRelayedHeader(bool add) {
  std::lock_guard<std::mutex> lock(mu_);
  relayed_header_ = add;
}

void OnPathProxy::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  substitutions_.clear();
  dropped_.clear();
  relayed_header_ = false;
}

int OnPathProxy::substituted(ProxyRpc rpc, const std::string& arg) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = substituted_.find({rpc, arg});
  return it == substituted_.end() ? 0 : it->second;
}

int OnPathProxy::calls(ProxyRpc rpc) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(rpc);
  return it == calls_.end() ? 0 : it->second;
}

int OnPathProxy::open_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(streams_.size());
}

std::unique_ptr<grpc::ClientContext> OnPathProxy::Upstream(
    grpc::ServerContext* context) {
  // Deadline and cancellation of the caller carry over to the upstream call.
  std::unique_ptr<grpc::ClientContext> ctx =
      grpc::ClientContext::FromServerContext(*context);
  std::lock_guard<std::mutex> lock(mu_);
  if (relayed_header_) ctx->AddMetadata(kOnPathRelayedHeader, "1");
  return ctx;
}

bool OnPathProxy::Dropped(ProxyRpc rpc, grpc::Status* status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_[rpc];
  if (stopping_ || dropped_.count(rpc) > 0) {
    *status =
        grpc::Status(grpc::StatusCode::UNAVAILABLE,
                     absl::StrCat("on-path proxy dropped ", ProxyRpcName(rpc)));
    return true;
  }
  return false;
}

template <typename Forward>
grpc::Status OnPathProxy::Lookup(ProxyRpc rpc, const std::string& arg,
                                 grpc::ServerContext* context,
                                 v1::KeyAnswer* response, Forward forward) {
  grpc::Status st;
  if (Dropped(rpc, &st)) return st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = substitutions_.find({rpc, arg});
    if (it != substitutions_.end()) {
      ++substituted_[{rpc, arg}];
      if (it->second.ok()) *response = it->second.answer;
      return it->second.status();
    }
  }
  std::unique_ptr<grpc::ClientContext> upstream = Upstream(context);
  return forward(upstream.get());
}

grpc::Status OnPathProxy::GetHostKeys(grpc::ServerContext* context,
                                      const v1::GetHostKeysRequest* request,
                                      v1::KeyAnswer* response) {
  return Lookup(ProxyRpc::kGetHostKeys, request->hostname(), context, response,
                [&](grpc::ClientContext* up) {
                  return backend_->GetHostKeys(up, *request, response);
                });
}

grpc::Status OnPathProxy::GetDomainPolicy(
    grpc::ServerContext* context, const v1::GetDomainPolicyRequest* request,
    v1::KeyAnswer* response) {
  return Lookup(ProxyRpc::kGetDomainPolicy, request->domain(), context,
                response, [&](grpc::ClientContext* up) {
                  return backend_->GetDomainPolicy(up, *request, response);
                });
}

grpc::Status OnPathProxy::FindByTlsPin(grpc::ServerContext* context,
                                       const v1::FindByTlsPinRequest* request,
                                       v1::KeyAnswer* response) {
  return Lookup(ProxyRpc::kFindByTlsPin, request->tls_spki_sha256(), context,
                response, [&](grpc::ClientContext* up) {
                  return backend_->FindByTlsPin(up, *request, response);
                });
}

grpc::Status OnPathProxy::GetOrgInfo(grpc::ServerContext* context,
                                     const v1::GetOrgInfoRequest* request,
                                     v1::OrgInfo* response) {
  grpc::Status st;
  if (Dropped(ProxyRpc::kGetOrgInfo, &st)) return st;
  std::unique_ptr<grpc::ClientContext> up = Upstream(context);
  return backend_->GetOrgInfo(up.get(), *request, response);
}

grpc::Status OnPathProxy::GetFederationBundle(
    grpc::ServerContext* context, const v1::GetFederationBundleRequest* request,
    v1::FederationBundle* response) {
  grpc::Status st;
  if (Dropped(ProxyRpc::kGetFederationBundle, &st)) return st;
  std::unique_ptr<grpc::ClientContext> up = Upstream(context);
  return backend_->GetFederationBundle(up.get(), *request, response);
}

grpc::Status OnPathProxy::WatchRevocations(
    grpc::ServerContext* context, const v1::WatchRevocationsRequest* request,
    grpc::ServerWriter<v1::WatchRevocationsResponse>* writer) {
  grpc::Status st;
  if (Dropped(ProxyRpc::kWatchRevocations, &st)) return st;
  std::unique_ptr<grpc::ClientContext> up = Upstream(context);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "proxy stopping");
    }
    streams_.insert(up.get());
  }
  std::unique_ptr<grpc::ClientReader<v1::WatchRevocationsResponse>> reader =
      backend_->WatchRevocations(up.get(), *request);
  v1::WatchRevocationsResponse batch;
  // The upstream call is cancelled with the caller's (inherited), so this
  // read ends when the client goes away even while keyd has nothing to say.
  while (reader->Read(&batch)) {
    if (!writer->Write(batch)) break;
  }
  up->TryCancel();
  st = reader->Finish();
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(up.get());
  return st;
}

}  // namespace mxkey
