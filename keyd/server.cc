#include "keyd/server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "base/files.h"
#include "base/log.h"
#include "base/metrics_http.h"
#include "base/time_format.h"
#include "base/status_macros.h"
#include "keyd/records.h"

namespace mxkey {

namespace {

absl::StatusOr<int> LockDataDir(const std::string& dir) {
  std::string path = absl::StrCat(dir, "/keyd.lock");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "another keyd is already serving ", dir,
        " (", path, " is locked); stop it first"));
  }
  return fd;
}

}  // namespace

absl::StatusOr<SecretBytes> LoadPassphrase(const std::string& data_dir,
                                           const std::string& passphrase_file) {
  std::string path = passphrase_file.empty()
                         ? absl::StrCat(data_dir, "/passphrase")
                         : passphrase_file;
  absl::StatusOr<std::string> raw = ReadFile(path, 4096);
  if (!raw.ok()) {
    return absl::Status(raw.status().code(),
                        absl::StrCat("passphrase: ", raw.status().message(),
                                     " (give --passphrase-file FILE)"));
  }
  while (!raw->empty() && (raw->back() == '\n' || raw->back() == '\r')) {
    raw->pop_back();
  }
  SecretBytes pass(*raw);
  SecureWipe(&(*raw)[0], raw->size());
  if (pass.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("passphrase file ", path, " is empty"));
  }
  return pass;
}

absl::StatusOr<std::unique_ptr<KeydServer>> KeydServer::Start(
    const ServerOptions& options, const SecretBytes& passphrase,
    Clock* clock) {
  std::unique_ptr<KeydServer> s(new KeydServer());
  ASSIGN_OR_RETURN(s->lock_fd_, LockDataDir(options.data_dir));
  s->metrics_registry_ = std::make_unique<MetricsRegistry>();
  s->metrics_ = std::make_unique<KeydMetrics>(s->metrics_registry_.get());
  LmdbOptions lmdb = options.lmdb;
  lmdb.commit_latency = s->metrics_->store_commit_latency();
  ASSIGN_OR_RETURN(s->keys_, OrgKeys::Load(options.data_dir, passphrase,
                                           options.org_keys, clock));
  ASSIGN_OR_RETURN(s->store_, LmdbStore::Open(absl::StrCat(options.data_dir,
                                                           "/db"),
                                              lmdb));
  uint64_t head = 0;
  RETURN_IF_ERROR(s->store_->Read([&](ReadTxn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(head, GetCounter(txn, kFeedHeadCounter));
    return absl::OkStatus();
  }));
  s->feed_ = std::make_unique<FeedNotifier>(head);
  s->metrics_registry_->SetGaugeFunction(
      "mxkey_keyd_feed_head", "Sequence number of the newest feed event.", {},
      [feed = s->feed_.get()] { return static_cast<double>(feed->head()); });
  s->tracked_store_ = std::make_unique<ChangeTrackingStore>(s->store_.get());
  s->ctx_ = KeydContext{s->tracked_store_.get(), s->keys_.get(), clock,
                        s->feed_.get(), options.keyd, s->metrics_.get()};
  s->ctx_.options.peer_transport = options.tls;
  s->directory_ = std::make_unique<Directory>(&s->ctx_);
  s->tracked_store_->AddListener([d = s->directory_.get()](
                                     const StoreChange& change) {
    d->Invalidate(change);
  });
  s->host_admin_ = std::make_unique<HostAdmin>(&s->ctx_);
  s->issuer_ = std::make_unique<Issuer>(&s->ctx_);
  s->federation_ = std::make_unique<Federation>(
      &s->ctx_, OrgInfoFetcherFor(options.tls, clock));
  s->recertifier_ = std::make_unique<Recertifier>(&s->ctx_);
  // Sign the (possibly empty) bundle now, so that serving it is a read, and
  // renew whatever expired while keyd was down, before anyone is served.
  RETURN_IF_ERROR(s->federation_->Bundle().status());
  RETURN_IF_ERROR(s->recertifier_->Run().status());
  s->relay_ = std::make_unique<PeerRelay>(&s->ctx_, options.relay_limits);
  RETURN_IF_ERROR(s->relay_->LoadRepublishedEvents());
  s->refusals_ = std::make_unique<RefusalDelay>(options.refusal_delay);
  s->directory_service_ = std::make_unique<KeyDirectoryService>(
      &s->ctx_, s->directory_.get(), s->federation_.get(), s->relay_.get(),
      options.watch_limits, options.watch_buffer_bytes, s->refusals_.get());
  s->enrollment_service_ = std::make_unique<EnrollmentService>(
      s->issuer_.get(), clock, options.enrollment_limits, s->metrics_.get(),
      s->refusals_.get());
  ASSIGN_OR_RETURN(
      s->admin_socket_,
      AdminSocket::Listen(options.admin_socket.empty()
                              ? absl::StrCat(options.data_dir, "/admin.sock")
                              : options.admin_socket,
                          options.admin_group));
  s->admin_service_ = std::make_unique<AdminService>(
      &s->ctx_, s->host_admin_.get(), s->federation_.get(),
      s->recertifier_.get(), s->admin_socket_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::shared_ptr<grpc::ServerCredentials> public_credentials =
      grpc::InsecureServerCredentials();
  if (UsesTls(options.listen, options.tls)) {
    s->tls_files_ = std::make_unique<KeydTlsFiles>(options.data_dir,
                                                   s->keys_.get(), clock);
    RETURN_IF_ERROR(s->tls_files_->Refresh());
    // One file holds key and certificate: a renewal is one rename, and the
    // watcher picks it up within a minute.
    auto provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            s->tls_files_->path(), s->tls_files_->path(), 60);
    grpc::experimental::TlsServerCredentialsOptions tls(provider);
    tls.watch_identity_key_cert_pairs();
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    public_credentials = grpc::experimental::TlsServerCredentials(tls);
  }
  grpc::ServerBuilder public_builder;
  public_builder.AddListeningPort(options.listen, public_credentials,
                                  &s->port_);
  public_builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  public_builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                                    options.max_streams_per_connection);
  grpc::ResourceQuota quota("keyd-public");
  quota.Resize(options.max_grpc_memory_bytes);
  public_builder.SetResourceQuota(quota);
  public_builder.RegisterService(s->directory_service_.get());
  public_builder.RegisterService(s->enrollment_service_.get());
  s->public_server_ = public_builder.BuildAndStart();
  if (s->public_server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     " (address in use or invalid; expected HOST:PORT)"));
  }

  grpc::ServerBuilder admin_builder;
  admin_builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  admin_builder.RegisterService(s->admin_service_.get());
  // Lookups work on the admin socket too (keyctl org show without --keyd).
  admin_builder.RegisterService(s->directory_service_.get());
  // No listening port: connections come from s->admin_socket_, which reads
  // each one's uid for the audit trail.
  s->admin_server_ = admin_builder.BuildAndStart();
  if (s->admin_server_ == nullptr) {
    return absl::UnavailableError("cannot start the admin server");
  }
  s->admin_socket_->Serve(s->admin_server_.get());

  if (!options.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(s->metrics_server_,
                     MetricsServer::Start(options.metrics_listen,
                                          s->metrics_registry_.get()));
    LogInfo("metrics on http://%s:%d/metrics",
            options.metrics_listen.substr(0, options.metrics_listen.rfind(':')),
            s->metrics_server_->port());
  }
  s->renewal_ = std::thread([raw = s.get()] { raw->RenewalLoop(); });
  s->peer_feeds_ = std::make_unique<PeerFeedFollower>(&s->ctx_, s->relay_.get());
  s->peer_feeds_->Start();
  LogInfo("keyd serving org=%s root=%s admin=%s tls=%s", s->keys_->org(),
          s->keys_->root_fingerprint(), s->admin_socket_->path(),
          s->tls_files_ ? "on" : "off (plaintext)");
  return s;
}

void KeydServer::RenewalLoop() {
  MutexLock lock(&renewal_mu_);
  auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(renewal_mu_) {
    return stopping_;
  };
  while (!renewal_mu_.AwaitWithTimeout(Condition(&stopping),
                                       absl::Minutes(1))) {
    renewal_mu_.Unlock();
    absl::Status st = Maintain();
    if (!st.ok()) LogWarning("maintenance: %s", st.message());
    renewal_mu_.Lock();
  }
}

absl::Status KeydServer::Maintain() {
  absl::Status result = keys_->RenewIfDue();
  const mxkey::v1::IssuingKeyBody issuing = keys_->issuing_body();
  if (issuing.not_after() - ctx_.now() < 7 * 86400) {
    LogWarning("the issuing key expires at %s, within 7 days, and has no "
               "successor yet", FormatUnixTime(issuing.not_after()));
  }
  if (!result.ok()) {
    result = absl::Status(result.code(), absl::StrCat("issuing key renewal: ",
                                                      result.message()));
  }
  // Also after an outage longer than every lifetime: what expired meanwhile
  // is renewed here, before clients notice.
  absl::StatusOr<RecertifyProgress> recertified = recertifier_->Run();
  if (!recertified.ok() && result.ok()) {
    result = absl::Status(recertified.status().code(),
                          absl::StrCat("re-certification: ",
                                       recertified.status().message()));
  }
  if (tls_files_) {
    absl::Status st = tls_files_->Refresh();
    if (!st.ok() && result.ok()) {
      result = absl::Status(st.code(), absl::StrCat("TLS identity: ", st.message()));
    }
  }
  absl::Status bundle = federation_->Bundle().status();  // re-signs if stale
  if (!bundle.ok() && result.ok()) {
    result = absl::Status(bundle.code(), absl::StrCat("federation bundle: ",
                                                      bundle.message()));
  }
  return result;
}

void KeydServer::Wait() {
  if (public_server_) public_server_->Wait();
}

void KeydServer::Shutdown() {
  {
    MutexLock lock(&renewal_mu_);
    stopping_ = true;
  }
  if (peer_feeds_) peer_feeds_->Stop();
  if (directory_service_) directory_service_->StopWatches();
  // Held refusals go now, so that the shutdown below does not wait them out.
  if (refusals_) refusals_->Stop();
  if (admin_socket_) admin_socket_->Stop();
  if (admin_server_) admin_server_->Shutdown(gpr_now(GPR_CLOCK_REALTIME));
  if (public_server_) {
    public_server_->Shutdown(
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                     gpr_time_from_seconds(2, GPR_TIMESPAN)));
  }
}

KeydServer::~KeydServer() {
  metrics_server_.reset();
  Shutdown();
  if (renewal_.joinable()) renewal_.join();
  if (public_server_) public_server_->Wait();
  if (admin_server_) admin_server_->Wait();
  public_server_.reset();
  admin_server_.reset();
  admin_socket_.reset();  // removes the socket file
  store_.reset();
  if (lock_fd_ >= 0) close(lock_fd_);
}

}  // namespace mxkey
