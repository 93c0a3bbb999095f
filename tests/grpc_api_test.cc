// In-process tests of every keyd RPC, through real gRPC stubs on loopback,
// including the error paths. The server runs with LMDB in a temp directory.
#include <unistd.h>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "client/answer_verifier.h"
#include "client/host_keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyd/server.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "protocol/signed_object.h"
#include "tests/grpc_probes.grpc.pb.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::mxkey::v1;

class GrpcApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ShortTempDir();
    org_.scrypt.log2_n = 4;
    ASSERT_TRUE(OrgKeys::Init(dir_, "example", pass_, org_, &clock_).ok());
    StartServer();
  }

  // Starts keyd on dir_ (again, after server_.reset()).
  void StartServer() {
    ServerOptions options;
    options.data_dir = dir_;
    options.listen = "127.0.0.1:0";
    options.org_keys = org_;
    options.lmdb.map_size = size_t{256} << 20;
    options.enrollment_limits = Limits();
    auto server = KeydServer::Start(options, pass_, &clock_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    admin_channel_ =
        grpc::CreateChannel(absl::StrCat("unix:", server_->admin_socket()),
                            grpc::InsecureChannelCredentials());
    directory_ = v1::KeyDirectory::NewStub(channel_);
    enrollment_ = v1::Enrollment::NewStub(channel_);
    admin_ = v1::Admin::NewStub(admin_channel_);
  }

  virtual EnrollmentLimits Limits() { return EnrollmentLimits(); }

  void TearDown() override {
    server_.reset();
    RunCommand({"/bin/rm", "-rf", dir_});
  }

  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(10));
    return ctx;
  }

  std::string AddHost(const std::string& host) {
    v1::AddHostRequest req;
    req.set_hostname(host);
    req.add_mail_domains("example.org");
    v1::TokenResponse resp;
    grpc::Status st = admin_->AddHost(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.token();
  }

  grpc::Status Enroll(const std::string& host, const std::string& token,
                      HostKeys* keys_out = nullptr,
                      v1::EnrollResponse* resp = nullptr) {
    HostKeys keys = *HostKeys::Generate();
    auto req = *MakeEnrollRequest(host, *TokenKey(token), keys, {},
                                  clock_.Now());
    v1::EnrollResponse local;
    grpc::Status st =
        enrollment_->Enroll(Ctx().get(), req, resp ? resp : &local);
    if (keys_out) *keys_out = std::move(keys);
    return st;
  }

  AnswerVerifier Verifier() {
    return *AnswerVerifier::Create(server_->keys().root_fingerprint(),
                                   server_->keys().root_public_key());
  }

  FakeClock clock_{absl::Now()};
  OrgKeysOptions org_;
  const SecretBytes pass_{absl::string_view("pass")};
  std::string dir_;
  std::unique_ptr<KeydServer> server_;
  std::shared_ptr<grpc::Channel> channel_, admin_channel_;
  std::unique_ptr<v1::KeyDirectory::Stub> directory_;
  std::unique_ptr<v1::Enrollment::Stub> enrollment_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

TEST_F(GrpcApiTest, EnrollLookupRotateRevoke) {
  std::string token = AddHost("mx1.example.org");
  HostKeys keys = *HostKeys::Generate();
  v1::EnrollResponse enrolled;
  ASSERT_TRUE(Enroll("mx1.example.org", token, &keys, &enrolled).ok());
  auto cert = Verifier().VerifyEnrollment(enrolled, clock_.Now());
  ASSERT_TRUE(cert.ok()) << cert.status();

  v1::GetHostKeysRequest get;
  get.set_hostname("mx1.example.org");
  v1::KeyAnswer answer;
  ASSERT_TRUE(directory_->GetHostKeys(Ctx().get(), get, &answer).ok());
  auto verified =
      Verifier().Verify(answer, "mx1.example.org", mxkey::v1::LOOKUP_KIND_HOST, clock_.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_TRUE(verified->HasValidKey());

  HostKeys next = *HostKeys::Generate();
  auto rotate = *MakeRotateRequest("mx1.example.org", cert->serial(),
                                   keys.identity, next, {}, clock_.Now());
  v1::EnrollResponse rotated;
  ASSERT_TRUE(enrollment_->Rotate(Ctx().get(), rotate, &rotated).ok());

  v1::RevokeRequest revoke;
  revoke.set_hostname("mx1.example.org");
  revoke.set_reason("test");
  v1::RevokeResponse revoked;
  ASSERT_TRUE(admin_->Revoke(Ctx().get(), revoke, &revoked).ok());
  EXPECT_EQ(revoked.revoked_serials_size(), 2);

  grpc::Status twice = admin_->Revoke(Ctx().get(), revoke, &revoked);
  EXPECT_EQ(twice.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  HostKeys third = *HostKeys::Generate();
  auto again = *MakeRotateRequest("mx1.example.org", cert->serial(),
                                  keys.identity, third, {}, clock_.Now());
  grpc::Status st = enrollment_->Rotate(Ctx().get(), again, &rotated);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("no active"));
}

TEST_F(GrpcApiTest, EnrollErrorPaths) {
  std::string token = AddHost("mx1.example.org");
  ASSERT_TRUE(Enroll("mx1.example.org", token).ok());
  grpc::Status reused = Enroll("mx1.example.org", token);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(reused.error_message(), HasSubstr("token"));

  std::string other = AddHost("mx2.example.org");
  HostKeys keys = *HostKeys::Generate();
  auto req = *MakeEnrollRequest("mx2.example.org", *TokenKey(other), keys, {},
                                clock_.Now());
  req.set_identity_signature(std::string(64, '\x01'));
  v1::EnrollResponse resp;
  grpc::Status bad_pop = enrollment_->Enroll(Ctx().get(), req, &resp);
  EXPECT_EQ(bad_pop.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(bad_pop.error_message(), HasSubstr("proof of possession"));

  // A token bound to another host.
  std::string third = AddHost("mx3.example.org");
  grpc::Status wrong_host = Enroll("mx2.example.org", third);
  EXPECT_EQ(wrong_host.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(wrong_host.error_message(), HasSubstr("another host"));

  // A fresh token works; after its expiry it does not.
  v1::CreateEnrollmentTokenRequest fresh_req;
  fresh_req.set_hostname("mx2.example.org");
  v1::TokenResponse fresh;
  ASSERT_TRUE(
      admin_->CreateEnrollmentToken(Ctx().get(), fresh_req, &fresh).ok());
  EXPECT_EQ(fresh.hostname(), "mx2.example.org");
  clock_.Advance(absl::Hours(25));
  grpc::Status expired = Enroll("mx2.example.org", fresh.token());
  EXPECT_EQ(expired.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(expired.error_message(), HasSubstr("expired"));

  v1::EnrollRequest truncated = req;
  truncated.set_body(req.body().substr(0, req.body().size() / 2));
  grpc::Status st = enrollment_->Enroll(Ctx().get(), truncated, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcApiTest, OversizedRequestIsRefused) {
  v1::GetHostKeysRequest get;
  get.set_hostname(std::string(10 << 20, 'a'));
  v1::KeyAnswer answer;
  grpc::Status st = directory_->GetHostKeys(Ctx().get(), get, &answer);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(GrpcApiTest, LookupErrors) {
  v1::GetHostKeysRequest get;
  get.set_hostname("bad name");
  v1::KeyAnswer answer;
  grpc::Status st = directory_->GetHostKeys(Ctx().get(), get, &answer);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("invalid hostname"));

  get.set_hostname("unknown.example.org");
  ASSERT_TRUE(directory_->GetHostKeys(Ctx().get(), get, &answer).ok());
  auto verified =
      Verifier().Verify(answer, "unknown.example.org", mxkey::v1::LOOKUP_KIND_HOST, clock_.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_TRUE(verified->denial.has_value());
}

TEST_F(GrpcApiTest, AdminErrors) {
  v1::RevokeRequest revoke;
  revoke.set_hostname("nope.example.org");
  revoke.set_reason("x");
  v1::RevokeResponse r;
  EXPECT_EQ(admin_->Revoke(Ctx().get(), revoke, &r).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::CreateEnrollmentTokenRequest token;
  token.set_hostname("nope.example.org");
  v1::TokenResponse t;
  EXPECT_EQ(admin_->CreateEnrollmentToken(Ctx().get(), token, &t).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::AddHostRequest add;
  add.set_hostname("bücher.example.org");
  add.add_mail_domains("example.org");
  grpc::Status st = admin_->AddHost(Ctx().get(), add, &t);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("xn--"));
  AddHost("mx1.example.org");
  v1::ListHostsResponse list;
  ASSERT_TRUE(admin_->ListHosts(Ctx().get(), {}, &list).ok());
  ASSERT_EQ(list.hosts_size(), 1);
  EXPECT_EQ(list.hosts(0).state(), "pending");
  v1::RemoveHostRequest remove;
  remove.set_hostname("mx1.example.org");
  v1::RemoveHostResponse removed;
  EXPECT_TRUE(admin_->RemoveHost(Ctx().get(), remove, &removed).ok());
  EXPECT_EQ(admin_->RemoveHost(Ctx().get(), remove, &removed).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::SetDomainPolicyRequest policy;
  policy.set_domain("example.org");
  v1::SetDomainPolicyResponse p;
  EXPECT_EQ(admin_->SetDomainPolicy(Ctx().get(), policy, &p).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  policy.set_mode(v1::POLICY_MODE_ENFORCE);
  EXPECT_TRUE(admin_->SetDomainPolicy(Ctx().get(), policy, &p).ok());
}

TEST_F(GrpcApiTest, AdminIsNotServedOnTcp) {
  auto admin_on_tcp = v1::Admin::NewStub(channel_);
  v1::ListHostsResponse list;
  grpc::Status st = admin_on_tcp->ListHosts(Ctx().get(), {}, &list);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(GrpcApiTest, DomainPolicyAndOrgInfo) {
  v1::OrgInfo info;
  ASSERT_TRUE(directory_->GetOrgInfo(Ctx().get(), {}, &info).ok());
  EXPECT_EQ(info.org(), "example");
  EXPECT_EQ(info.root_fingerprint(), server_->keys().root_fingerprint());
  v1::GetDomainPolicyRequest req;
  req.set_domain("example.org");
  v1::KeyAnswer answer;
  ASSERT_TRUE(directory_->GetDomainPolicy(Ctx().get(), req, &answer).ok());
  auto verified = Verifier().Verify(answer, "example.org", mxkey::v1::LOOKUP_KIND_DOMAIN, clock_.Now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->denial->reason(), v1::DENIAL_REASON_DOMAIN_UNKEYED);
}

// After an issuing-key renewal, a client resuming the feed gets events signed
// by the previous key; the batch must carry that key's certificate.
TEST_F(GrpcApiTest, FeedBatchCarriesTheCertificatesOfItsSigners) {
  ASSERT_TRUE(Enroll("a.example.org", AddHost("a.example.org")).ok());
  v1::RevokeRequest revoke;
  revoke.set_hostname("a.example.org");
  revoke.set_reason("test");
  v1::RevokeResponse r;
  ASSERT_TRUE(admin_->Revoke(Ctx().get(), revoke, &r).ok());
  const std::string old_key = server_->keys().issuing_body().public_key();
  server_.reset();
  clock_.Advance(absl::Hours(24 * 21));  // past 2/3 of the 30-day validity
  StartServer();                         // renews at load
  ASSERT_NE(server_->keys().issuing_body().public_key(), old_key);

  auto ctx = Ctx();
  auto reader = directory_->WatchRevocations(ctx.get(), {});
  v1::WatchRevocationsResponse batch;
  ASSERT_TRUE(reader->Read(&batch));
  ASSERT_EQ(batch.events_size(), 2);  // the enrollment, the revocation
  EXPECT_EQ(batch.events(1).signer_key_id(), KeyId(old_key));
  auto events = Verifier().VerifyFeedBatch(batch, 0, clock_.Now());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ((*events)[1].hostname(), "a.example.org");
  EXPECT_EQ((*events)[1].kind(), v1::FEED_EVENT_KIND_REVOCATION);
  ctx->TryCancel();
}

TEST_F(GrpcApiTest, WatchRevocationsResumesFromSequence) {
  for (const char* host : {"a.example.org", "b.example.org", "c.example.org"}) {
    ASSERT_TRUE(Enroll(host, AddHost(host)).ok());
    v1::RevokeRequest revoke;
    revoke.set_hostname(host);
    revoke.set_reason("test");
    v1::RevokeResponse r;
    ASSERT_TRUE(admin_->Revoke(Ctx().get(), revoke, &r).ok());
  }
  auto ctx = Ctx();
  v1::WatchRevocationsRequest req;
  // Each host: a key change (its enrollment), then its revocation.
  req.set_from_seq(2);
  auto reader = directory_->WatchRevocations(ctx.get(), req);
  v1::WatchRevocationsResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.head_seq(), 6u);
  ASSERT_EQ(resp.events_size(), 4);
  auto first = *ParseBody<v1::RevocationEventBody>(resp.events(0));
  EXPECT_EQ(first.seq(), 3u);
  EXPECT_EQ(first.hostname(), "b.example.org");
  EXPECT_EQ(first.kind(), v1::FEED_EVENT_KIND_KEY_CHANGE);

  // A new revocation arrives on the open stream.
  ASSERT_TRUE(Enroll("d.example.org", AddHost("d.example.org")).ok());
  v1::RevokeRequest revoke;
  revoke.set_hostname("d.example.org");
  revoke.set_reason("live");
  v1::RevokeResponse r;
  ASSERT_TRUE(admin_->Revoke(Ctx().get(), revoke, &r).ok());
  // Its key change (event 7) and then its revocation (event 8).
  std::vector<v1::RevocationEventBody> seen;
  for (int i = 0; i < 4 && seen.size() < 2 && reader->Read(&resp); ++i) {
    for (const auto& e : resp.events()) {
      seen.push_back(*ParseBody<v1::RevocationEventBody>(e));
    }
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].seq(), 7u);
  EXPECT_EQ(seen[1].seq(), 8u);
  EXPECT_EQ(seen[1].kind(), v1::FEED_EVENT_KIND_REVOCATION);
  ctx->TryCancel();
}

TEST_F(GrpcApiTest, HealthCheckingIsOn) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = health->Check(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// libgrpc++_reflection already registers the reflection protos, so this
// probe speaks raw bytes: ServerReflectionRequest{list_services: ""} is
// field 7, length 0.
TEST_F(GrpcApiTest, ServerReflectionListsServices) {
  grpc::GenericStub stub(channel_);
  grpc::CompletionQueue cq;
  auto ctx = Ctx();
  auto call = stub.PrepareCall(
      ctx.get(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      &cq);
  auto step = [&cq](auto&& op, intptr_t tag) {
    op(reinterpret_cast<void*>(tag));
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&got, &ok));
    EXPECT_EQ(got, reinterpret_cast<void*>(tag));
    return ok;
  };
  ASSERT_TRUE(step([&](void* t) { call->StartCall(t); }, 1));
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&slice, 1);
  ASSERT_TRUE(step([&](void* t) { call->Write(request, t); }, 2));
  ASSERT_TRUE(step([&](void* t) { call->WritesDone(t); }, 3));
  grpc::ByteBuffer response;
  ASSERT_TRUE(step([&](void* t) { call->Read(&response, t); }, 4));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  EXPECT_THAT(bytes, HasSubstr("mxkey.v1.KeyDirectory"));
  EXPECT_THAT(bytes, HasSubstr("mxkey.v1.Enrollment"));
  EXPECT_THAT(bytes, ::testing::Not(HasSubstr("mxkey.v1.Admin")));
  grpc::Status status;
  step([&](void* t) { call->Finish(&status, t); }, 5);
  cq.Shutdown();
  void* ignored;
  bool ok;
  while (cq.Next(&ignored, &ok)) {
  }
}

class GrpcApiLimitTest : public GrpcApiTest {
 protected:
  EnrollmentLimits Limits() override {
    return EnrollmentLimits{{6, 4}, {1, 3}};  // refills take 10 s, 60 s
  }
};

TEST_F(GrpcApiLimitTest, TokenGuessingIsCutOffPerSource) {
  std::string token = AddHost("mx1.example.org");
  std::string wrong = AddHost("mx2.example.org");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Enroll("mx1.example.org", wrong).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // Even the right token is refused now, before it is looked at.
  grpc::Status st = Enroll("mx1.example.org", token);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(st.error_message(), HasSubstr("failed enrollments"));
  EXPECT_THAT(st.error_message(), HasSubstr("retry in"));
  v1::ListHostsResponse list;
  ASSERT_TRUE(admin_->ListHosts(Ctx().get(), {}, &list).ok());
  for (const auto& h : list.hosts()) EXPECT_EQ(h.active_serial(), 0u);
}

// A guessed token's rejection, and a limit's refusal, went out at once: a
// guesser with 64 connections got 2,500 answers a second, and took most of
// keyd's CPU from honest enrollments. Both now go out --refusal-delay
// (default 1 s) late.
TEST_F(GrpcApiLimitTest, RejectionsAndRefusalsAreAnsweredLate) {
  std::string token = AddHost("mx1.example.org");
  std::string wrong = AddHost("mx2.example.org");
  absl::Time start = absl::Now();
  EXPECT_EQ(Enroll("mx1.example.org", wrong).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(450))
      << "a rejected enrollment was answered at once";
  for (int i = 0; i < 2; ++i) (void)Enroll("mx1.example.org", wrong);
  start = absl::Now();
  EXPECT_EQ(Enroll("mx1.example.org", token).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(450))
      << "a refusal was answered at once";
}

TEST_F(GrpcApiLimitTest, RequestsArePacedPerSource) {
  std::string token = AddHost("mx1.example.org");
  int exhausted = 0;
  for (int i = 0; i < 6; ++i) {
    // Malformed requests are rejected without counting as guesses...
    v1::EnrollRequest empty;
    v1::EnrollResponse resp;
    grpc::Status st = enrollment_->Enroll(Ctx().get(), empty, &resp);
    exhausted += st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  // ...but still take from the request budget (burst 4).
  EXPECT_EQ(exhausted, 2);
  EXPECT_EQ(Enroll("mx1.example.org", token).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

}  // namespace
}  // namespace mxkey
