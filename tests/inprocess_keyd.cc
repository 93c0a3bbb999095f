#include "tests/inprocess_keyd.h"

#include "tests/test_tls_keys.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "client/answer_verifier.h"
#include "keyd/store_snapshot.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace mxkey {

namespace v1 = ::mxkey::v1;

std::unique_ptr<InProcessKeyd> InProcessKeyd::Start(Clock* clock,
                                                    const std::string& org,
                                                    const KeydOptions& keyd,
                                                    const std::string& data_dir) {
  std::unique_ptr<InProcessKeyd> k(new InProcessKeyd());
  k->clock_ = clock;
  k->dir_ = data_dir.empty() ? ShortTempDir() : data_dir;
  OrgKeysOptions org_options;
  org_options.scrypt.log2_n = 4;
  SecretBytes pass(absl::string_view("pass"));
  absl::Status init = OrgKeys::Init(k->dir_, org, pass, org_options, clock);
  EXPECT_TRUE(init.ok()) << init;
  k->keyd_options_ = keyd;
  k->transport_ = keyd.peer_transport;
  if (!k->Serve("127.0.0.1:0")) return nullptr;
  return k;
}

bool InProcessKeyd::Serve(const std::string& listen) {
  OrgKeysOptions org_options;
  org_options.scrypt.log2_n = 4;
  SecretBytes pass(absl::string_view("pass"));
  ServerOptions options;
  options.data_dir = dir_;
  options.listen = listen;
  options.org_keys = org_options;
  options.keyd = keyd_options_;
  // The test's choice of transport (peer_transport) is the server's too.
  options.tls = keyd_options_.peer_transport;
  // Tests and benchmarks enroll many hosts from one address.
  options.enrollment_limits = EnrollmentLimits{{0, 0}, {0, 0}};
  options.lmdb.map_size = size_t{256} << 20;
  auto server = KeydServer::Start(options, pass, clock_);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return false;
  server_ = *std::move(server);
  port_ = server_->port();
  fingerprint_ = server_->keys().root_fingerprint();
  root_ = server_->keys().root_public_key();
  admin_socket_ = server_->admin_socket();
  ConnectStubs();
  return true;
}

bool InProcessKeyd::Restart() {
  EXPECT_EQ(process_, nullptr) << "Restart needs an in-process keyd";
  server_.reset();
  return Serve(absl::StrCat("127.0.0.1:", port_));
}

absl::Status InProcessKeyd::Maintain() {
  if (!server_) return absl::FailedPreconditionError("keyd is not running");
  return server_->Maintain();
}

std::unique_ptr<InProcessKeyd> InProcessKeyd::StartProcess(
    Clock* clock, const std::string& org, const KeydOptions& keyd,
    const std::vector<std::string>& serve_args) {
  std::unique_ptr<InProcessKeyd> k(new InProcessKeyd());
  k->clock_ = clock;
  auto process = KeydProcess::Init(org);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return nullptr;
  k->process_ = *std::move(process);
  k->transport_ = keyd.peer_transport;
  const char* tls = keyd.peer_transport == KeydTransport::kTls         ? "on"
                    : keyd.peer_transport == KeydTransport::kPlaintext ? "off"
                                                                       : "auto";
  std::vector<std::string> args = {
      "--freshness", absl::StrCat(absl::ToInt64Seconds(keyd.freshness), "s"),
      "--enroll-limit", "0", "--enroll-failure-limit", "0", "--tls", tls};
  args.insert(args.end(), serve_args.begin(), serve_args.end());
  absl::Status started = k->process_->Start(args);
  EXPECT_TRUE(started.ok()) << started << k->process_->log();
  if (!started.ok()) return nullptr;
  k->port_ = k->process_->port();
  k->fingerprint_ = k->process_->fingerprint();
  k->admin_socket_ = k->process_->admin_socket();
  k->ConnectStubs();
  auto directory = v1::KeyDirectory::NewStub(
      KeydChannel(k->endpoint(), k->transport_, k->fingerprint_, clock));
  v1::OrgInfo info;
  grpc::Status st = directory->GetOrgInfo(k->Ctx().get(), {}, &info);
  EXPECT_TRUE(st.ok()) << st.error_message();
  k->root_ = info.root_public_key();
  return k;
}

void InProcessKeyd::ConnectStubs() {
  enrollment_ = v1::Enrollment::NewStub(
      KeydChannel(endpoint(), transport_, fingerprint_, clock_));
  admin_ = v1::Admin::NewStub(grpc::CreateChannel(
      admin_endpoint(), grpc::InsecureChannelCredentials()));
}

InProcessKeyd::~InProcessKeyd() {
  server_.reset();
  process_.reset();  // removes its own directory
  if (!dir_.empty()) RunCommand({"/bin/rm", "-rf", dir_});
}

void InProcessKeyd::Stop() {
  server_.reset();
  if (process_) process_->Stop();
}

std::string InProcessKeyd::admin_endpoint() const {
  return absl::StrCat("unix:", admin_socket_);
}

KeyClientOptions InProcessKeyd::ClientOptions() const {
  KeyClientOptions o;
  o.endpoints = {endpoint()};
  o.root_fingerprint = fingerprint_;
  o.transport = transport_;
  o.clock = clock_;
  o.rpc_timeout = absl::Seconds(2);
  return o;
}

std::string InProcessKeyd::Snapshot() {
  EXPECT_NE(server_, nullptr) << "Snapshot needs an in-process keyd";
  return server_ ? StoreSnapshot(server_->store()) : "";
}

std::string InProcessKeyd::endpoint() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::unique_ptr<grpc::ClientContext> InProcessKeyd::Ctx() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return ctx;
}

std::string InProcessKeyd::AddHost(const std::string& host,
                                   const std::string& domain) {
  v1::AddHostRequest req;
  req.set_hostname(host);
  req.add_mail_domains(domain);
  v1::TokenResponse resp;
  grpc::Status st = admin_->AddHost(Ctx().get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp.token();
}

EnrolledTestHost InProcessKeyd::AddAndEnroll(
    const std::string& host, const std::string& domain,
    const std::vector<std::string>& pins) {
  return EnrollWithToken(host, AddHost(host, domain), pins);
}

EnrolledTestHost InProcessKeyd::ReEnroll(const std::string& host) {
  v1::CreateEnrollmentTokenRequest req;
  req.set_hostname(host);
  v1::TokenResponse resp;
  grpc::Status st = admin_->CreateEnrollmentToken(Ctx().get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return EnrollWithToken(host, resp.token(), {});
}

EnrolledTestHost InProcessKeyd::Rotate(const EnrolledTestHost& current) {
  EnrolledTestHost out{current.hostname, *HostKeys::Generate(), {}, {}};
  // The TLS key stays (as `keyctl rotate` without --tls-cert).
  const std::vector<std::string> pins(current.cert.tls_spki_sha256().begin(),
                                      current.cert.tls_spki_sha256().end());
  auto req = MakeRotateRequest(current.hostname, current.cert.serial(),
                               current.keys.identity, out.keys, pins,
                               clock_->Now());
  EXPECT_TRUE(req.ok()) << req.status();
  grpc::Status st = enrollment_->Rotate(Ctx().get(), *req, &out.response);
  EXPECT_TRUE(st.ok()) << st.error_message();
  auto verifier = AnswerVerifier::Create(fingerprint_, root_);
  auto cert = verifier->VerifyEnrollment(out.response, clock_->Now());
  EXPECT_TRUE(cert.ok()) << cert.status();
  if (cert.ok()) out.cert = *cert;
  return out;
}

void InProcessKeyd::FinishRotation(const EnrolledTestHost& next) {
  auto req = MakeFinishRotationRequest(next.hostname, next.cert.serial(),
                                       next.keys.identity, clock_->Now());
  ASSERT_TRUE(req.ok()) << req.status();
  v1::EnrollResponse resp;
  grpc::Status st = enrollment_->FinishRotation(Ctx().get(), *req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

EnrolledTestHost InProcessKeyd::EnrollWithToken(
    const std::string& host, const std::string& token,
    const std::vector<std::string>& pins) {
  EnrolledTestHost out{host, *HostKeys::Generate(), {}, {}};
  const SplitPins split = SplitTestPins(pins);
  auto req = MakeEnrollRequest(host, *TokenKey(token), out.keys, split.plain,
                               clock_->Now(), split.proven);
  EXPECT_TRUE(req.ok()) << req.status();
  v1::EnrollResponse& resp = out.response;
  grpc::Status st = enrollment_->Enroll(Ctx().get(), *req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  auto verifier = AnswerVerifier::Create(fingerprint_, root_);
  auto cert = verifier->VerifyEnrollment(resp, clock_->Now());
  EXPECT_TRUE(cert.ok()) << cert.status();
  if (cert.ok()) out.cert = *cert;
  return out;
}

grpc::Status InProcessKeyd::AddPeer(const std::string& org,
                                    const std::vector<std::string>& suffixes,
                                    const std::string& endpoint,
                                    const std::string& fingerprint) {
  v1::AddPeerRequest req;
  req.set_org(org);
  for (const auto& s : suffixes) req.add_domain_suffixes(s);
  req.set_endpoint(endpoint);
  req.set_root_fingerprint(fingerprint);
  v1::PeerInfo info;
  return admin_->AddPeer(Ctx().get(), req, &info);
}

CommandResult InProcessKeyd::Keyctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {
      RunfilePath("tools/keyctl/keyctl"), "--keyd", endpoint(),
      "--root-fingerprint", fingerprint_, "--tls",
      transport_ == KeydTransport::kTls         ? "on"
      : transport_ == KeydTransport::kPlaintext ? "off"
                                                : "auto"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, absl::Seconds(30));
}

uint64_t InProcessKeyd::Revoke(const std::string& host,
                               const std::string& reason) {
  v1::RevokeRequest req;
  req.set_hostname(host);
  req.set_reason(reason);
  v1::RevokeResponse resp;
  grpc::Status st = admin_->Revoke(Ctx().get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp.feed_seq();
}

void InProcessKeyd::SetPolicy(const std::string& domain,
                              v1::PolicyMode mode) {
  v1::SetDomainPolicyRequest req;
  req.set_domain(domain);
  req.set_mode(mode);
  v1::SetDomainPolicyResponse resp;
  grpc::Status st = admin_->SetDomainPolicy(Ctx().get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

}  // namespace mxkey

namespace mxkey {

void InProcessKeyd::SaveKeyDir(const EnrolledTestHost& host,
                               const std::string& dir) {
  absl::Status st = SaveHostKeys(dir, "", host.keys, &host.response);
  EXPECT_TRUE(st.ok()) << st;
}

}  // namespace mxkey
