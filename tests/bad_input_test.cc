// The bad-input table: malformed or hostile input at every edge (gRPC,
// the socketmap, the keyed-session handshake, keyctl). Each row asserts the
// exact error code (or reply kind, or exit status), a message that names the
// problem, and that keyd's stored state did not change.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/host_keys.h"
#include "crypto/ed25519.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mta-hooks/postfix/netstring.h"
#include "mta-hooks/postfix/policy_maps.h"
#include "mta-hooks/postfix/socketmap_server.h"
#include "mta-hooks/session/frame_io.h"
#include "mta-hooks/session/noise_handshake.h"
#include "mta-hooks/session/noise_pattern.h"
#include "mta-hooks/session/peer_verifier.h"
#include "mta-hooks/session/session.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/inprocess_keyd.h"
#include "tests/test_tls_keys.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;
using ::testing::HasSubstr;

// What a row observed: an error code name ("INVALID_ARGUMENT", "PERM",
// "exit 2", "OK") and the message that came with it.
struct Observed {
  std::string code;
  std::string message;
};

Observed FromGrpc(const grpc::Status& st) {
  return {absl::StatusCodeToString(static_cast<absl::StatusCode>(st.error_code())),
          st.error_message()};
}
Observed FromStatus(const absl::Status& st) {
  return {absl::StatusCodeToString(st.code()), std::string(st.message())};
}

class BadInputTest;
struct BadInput;
void PrintTo(const BadInput& row, std::ostream* os);

struct BadInput {
  std::string name;
  std::function<Observed(BadInputTest&)> run;
  std::string code;
  std::string message;
};

void PrintTo(const BadInput& row, std::ostream* os) { *os << row.name; }

class BadInputTest : public ::testing::TestWithParam<BadInput> {
 public:
  void SetUp() override {
    keyd_ = InProcessKeyd::Start(&clock_, "example");
    ASSERT_NE(keyd_, nullptr);
    auto channel =
        grpc::CreateChannel(keyd_->endpoint(), grpc::InsecureChannelCredentials());
    directory = v1::KeyDirectory::NewStub(channel);
    enrollment = v1::Enrollment::NewStub(channel);
    admin = v1::Admin::NewStub(grpc::CreateChannel(
        keyd_->admin_endpoint(), grpc::InsecureChannelCredentials()));
    mx1 = std::make_unique<EnrolledTestHost>(
        keyd_->AddAndEnroll("mx1.example.org", "example.org", {kPin}));
    revoked = std::make_unique<EnrolledTestHost>(
        keyd_->AddAndEnroll("gone.example.org"));
    keyd_->Revoke("gone.example.org", "decommissioned");
    pending_token = keyd_->AddHost("mx2.example.org");
    keyd_->AddHost("mx3.example.org");
    used_token = keyd_->AddHost("mx4.example.org");
    ASSERT_TRUE(Enroll("mx4.example.org", used_token).ok());
    keyd_->SetPolicy("example.org", v1::POLICY_MODE_ENFORCE);
  }

  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(10));
    return ctx;
  }

  v1::EnrollRequest EnrollRequestFor(const std::string& host,
                                     const std::string& token) {
    return *MakeEnrollRequest(host, *TokenKey(token), *HostKeys::Generate(),
                              {}, clock_.Now());
  }
  grpc::Status Enroll(const std::string& host, const std::string& token) {
    v1::EnrollResponse resp;
    return enrollment->Enroll(Ctx().get(), EnrollRequestFor(host, token), &resp);
  }
  Observed SendEnroll(const v1::EnrollRequest& req) {
    v1::EnrollResponse resp;
    return FromGrpc(enrollment->Enroll(Ctx().get(), req, &resp));
  }
  Observed SendRotate(const v1::RotateRequest& req) {
    v1::EnrollResponse resp;
    return FromGrpc(enrollment->Rotate(Ctx().get(), req, &resp));
  }
  Observed GetHost(const std::string& name) {
    v1::GetHostKeysRequest req;
    req.set_hostname(name);
    v1::KeyAnswer answer;
    return FromGrpc(directory->GetHostKeys(Ctx().get(), req, &answer));
  }

  // One raw exchange with a socketmap server backed by this keyd.
  Observed Socketmap(const std::string& wire) {
    auto client = KeyClient::Create(keyd_->ClientOptions());
    if (!client.ok()) return FromStatus(client.status());
    PolicyMapsOptions m;
    m.clock = &clock_;
    m.probe_testing = false;
    PolicyMaps maps(client->get(), m);
    SocketmapServer server({{"inet:127.0.0.1:0"}},
                           [&](const std::string& map, const std::string& key) {
                             return maps.Lookup(map, key);
                           });
    if (absl::Status st = server.Start(); !st.ok()) return FromStatus(st);
    const std::string bound = server.bound()[0];
    const int port = std::stoi(bound.substr(bound.rfind(':') + 1));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    Observed out{"<no reply>", ""};
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        write(fd, wire.data(), wire.size()) == static_cast<ssize_t>(wire.size())) {
      FdStream stream(fd);
      NetstringDecoder d(200000);
      char buf[4096];
      for (int i = 0; i < 100; ++i) {
        auto r = d.Next();
        if (r.kind == NetstringDecoder::Kind::kPayload) {
          const size_t space = r.payload.find(' ');
          out = {r.payload.substr(0, space),
                 space == std::string::npos ? "" : r.payload.substr(space + 1)};
          break;
        }
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        d.Append(absl::string_view(buf, static_cast<size_t>(n)));
      }
    }
    close(fd);
    return out;
  }

  // The responder's result when the initiator sends `first_frame_bytes` raw
  // (already framed or not) and closes.
  Observed Respond(const std::string& raw) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return {"socketpair", ""};
    (void)!write(fds[0], raw.data(), raw.size());
    shutdown(fds[0], SHUT_WR);
    FdStream stream(fds[1]);
    LocalIdentity self;
    self.hostname = mx1->hostname;
    self.serial = mx1->cert.serial();
    self.agreement = mx1->keys.agreement;
    auto client = KeyClient::Create(keyd_->ClientOptions());
    KeyClientPeerVerifier peers(client->get());
    ReplayGuard replay(&clock_);
    auto session = Session::Respond(stream, self, peers, replay);
    close(fds[0]);
    close(fds[1]);
    return FromStatus(session.status());
  }

  Observed Keyctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {RunfilePath("tools/keyctl/keyctl"),
                                     "--keyd", keyd_->endpoint(),
                                     "--admin-socket",
                                     keyd_->admin_endpoint().substr(5)};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv, absl::Seconds(30));
    return {absl::StrCat("exit ", r.exit_code), r.err};
  }

  static inline const std::string kPin = TestTlsPin("42");
  FakeClock clock_{absl::Now()};
  std::unique_ptr<InProcessKeyd> keyd_;
  std::unique_ptr<v1::KeyDirectory::Stub> directory;
  std::unique_ptr<v1::Enrollment::Stub> enrollment;
  std::unique_ptr<v1::Admin::Stub> admin;
  std::unique_ptr<EnrolledTestHost> mx1, revoked;
  std::string pending_token, used_token;
};

TEST_P(BadInputTest, IsRejectedClearlyAndChangesNothing) {
  const BadInput& row = GetParam();
  const std::string before = keyd_->Snapshot();
  const Observed got = row.run(*this);
  EXPECT_EQ(got.code, row.code) << got.message;
  EXPECT_THAT(got.message, HasSubstr(row.message));
  EXPECT_EQ(keyd_->Snapshot(), before) << "a rejected request changed state";
}

using T = BadInputTest;

std::vector<BadInput> GrpcRows() {
  std::vector<BadInput> rows = {
      {"EmptyHostname", [](T& t) { return t.GetHost(""); }, "INVALID_ARGUMENT",
       "hostname"},
      {"OverlongHostname",
       [](T& t) { return t.GetHost(std::string(250, 'a') + ".org"); },
       "INVALID_ARGUMENT", "253"},
      {"OverlongLabel",
       [](T& t) { return t.GetHost(std::string(64, 'a') + ".example.org"); },
       "INVALID_ARGUMENT", "63"},
      {"NonLdhHostname", [](T& t) { return t.GetHost("mx_1.example.org"); },
       "INVALID_ARGUMENT", "hostname"},
      {"LeadingHyphen", [](T& t) { return t.GetHost("-mx.example.org"); },
       "INVALID_ARGUMENT", "hostname"},
      {"IdnULabel", [](T& t) { return t.GetHost("bücher.example.org"); },
       "INVALID_ARGUMENT", "xn--"},
      {"TenMiBRequest",
       [](T& t) { return t.GetHost(std::string(10 << 20, 'a')); },
       "RESOURCE_EXHAUSTED", ""},
      {"BadDomain",
       [](T& t) {
         v1::GetDomainPolicyRequest req;
         req.set_domain("exa mple.org");
         v1::KeyAnswer a;
         return FromGrpc(t.directory->GetDomainPolicy(t.Ctx().get(), req, &a));
       },
       "INVALID_ARGUMENT", "mail domain"},
      {"ShortTlsPin",
       [](T& t) {
         v1::FindByTlsPinRequest req;
         req.set_tls_spki_sha256(std::string(31, 'x'));
         v1::KeyAnswer a;
         return FromGrpc(t.directory->FindByTlsPin(t.Ctx().get(), req, &a));
       },
       "INVALID_ARGUMENT", "32-byte"},
      {"TokenUsedTwice",
       [](T& t) {
         return FromGrpc(t.Enroll("mx4.example.org", t.used_token));
       },
       "PERMISSION_DENIED", "token"},
      {"TokenOfAnotherHost",
       [](T& t) {
         return FromGrpc(t.Enroll("mx3.example.org", t.pending_token));
       },
       "PERMISSION_DENIED", "another host"},
      {"ProofOfPossessionOverOtherBytes",
       [](T& t) {
         v1::EnrollRequest req =
             t.EnrollRequestFor("mx2.example.org", t.pending_token);
         v1::EnrollRequest other =
             t.EnrollRequestFor("mx2.example.org", t.pending_token);
         req.set_identity_signature(other.identity_signature());
         return t.SendEnroll(req);
       },
       "PERMISSION_DENIED", "proof of possession"},
      {"TokenSignatureByAnotherKey",
       [](T& t) {
         v1::EnrollRequest req =
             t.EnrollRequestFor("mx2.example.org", t.pending_token);
         req.set_token_signature(std::string(64, '\x07'));
         return t.SendEnroll(req);
       },
       "PERMISSION_DENIED", "token"},
      {"TruncatedEnrollmentBody",
       [](T& t) {
         v1::EnrollRequest req =
             t.EnrollRequestFor("mx2.example.org", t.pending_token);
         req.set_body(req.body().substr(0, req.body().size() / 2));
         return t.SendEnroll(req);
       },
       "INVALID_ARGUMENT", "EnrollmentBody"},
      {"GarbageEnrollmentBody",
       [](T& t) {
         v1::EnrollRequest req;
         req.set_body("\xff\xff\xff\xff");
         return t.SendEnroll(req);
       },
       "INVALID_ARGUMENT", "EnrollmentBody"},
      {"EmptyEnrollRequest",
       [](T& t) { return t.SendEnroll(v1::EnrollRequest()); },
       "INVALID_ARGUMENT", ""},
      {"RotateSignedByAnotherKey",
       [](T& t) {
         auto other = *Ed25519PrivateKey::Generate();
         return t.SendRotate(*MakeRotateRequest(
             "mx1.example.org", t.mx1->cert.serial(), other,
             *HostKeys::Generate(), {}, t.clock_.Now()));
       },
       "PERMISSION_DENIED", ""},
      {"RevokedHostRotatesBackIn",
       [](T& t) {
         return t.SendRotate(*MakeRotateRequest(
             "gone.example.org", t.revoked->cert.serial(),
             t.revoked->keys.identity, *HostKeys::Generate(), {},
             t.clock_.Now()));
       },
       "FAILED_PRECONDITION", "revoked"},
      {"RotateUnknownHost",
       [](T& t) {
         return t.SendRotate(*MakeRotateRequest(
             "nope.example.org", 1, t.mx1->keys.identity,
             *HostKeys::Generate(), {}, t.clock_.Now()));
       },
       "NOT_FOUND", ""},
      {"AddHostULabel",
       [](T& t) {
         v1::AddHostRequest req;
         req.set_hostname("bücher.example.org");
         req.add_mail_domains("example.org");
         v1::TokenResponse r;
         return FromGrpc(t.admin->AddHost(t.Ctx().get(), req, &r));
       },
       "INVALID_ARGUMENT", "xn--"},
      {"AddHostWithoutDomain",
       [](T& t) {
         v1::AddHostRequest req;
         req.set_hostname("mx9.example.org");
         v1::TokenResponse r;
         return FromGrpc(t.admin->AddHost(t.Ctx().get(), req, &r));
       },
       "INVALID_ARGUMENT", "domain"},
      {"AddHostTwice",
       [](T& t) {
         v1::AddHostRequest req;
         req.set_hostname("mx1.example.org");
         req.add_mail_domains("example.org");
         v1::TokenResponse r;
         return FromGrpc(t.admin->AddHost(t.Ctx().get(), req, &r));
       },
       "ALREADY_EXISTS", "mx1.example.org"},
      {"RevokeUnknownHost",
       [](T& t) {
         v1::RevokeRequest req;
         req.set_hostname("nope.example.org");
         req.set_reason("x");
         v1::RevokeResponse r;
         return FromGrpc(t.admin->Revoke(t.Ctx().get(), req, &r));
       },
       "NOT_FOUND", "nope.example.org"},
      {"RevokeUnknownSerial",
       [](T& t) {
         v1::RevokeRequest req;
         req.set_hostname("mx1.example.org");
         req.set_serial(999999);
         req.set_reason("x");
         v1::RevokeResponse r;
         return FromGrpc(t.admin->Revoke(t.Ctx().get(), req, &r));
       },
       "NOT_FOUND", "999999"},
      {"RevokeWithOverlongReason",
       [](T& t) {
         v1::RevokeRequest req;
         req.set_hostname("mx1.example.org");
         req.set_reason(std::string(1000, 'r'));
         v1::RevokeResponse r;
         return FromGrpc(t.admin->Revoke(t.Ctx().get(), req, &r));
       },
       "INVALID_ARGUMENT", "reason"},
      {"PolicyWithoutMode",
       [](T& t) {
         v1::SetDomainPolicyRequest req;
         req.set_domain("example.org");
         v1::SetDomainPolicyResponse r;
         return FromGrpc(t.admin->SetDomainPolicy(t.Ctx().get(), req, &r));
       },
       "INVALID_ARGUMENT", "mode"},
      {"PolicyForBadDomain",
       [](T& t) {
         v1::SetDomainPolicyRequest req;
         req.set_domain("bad..domain");
         req.set_mode(v1::POLICY_MODE_ENFORCE);
         v1::SetDomainPolicyResponse r;
         return FromGrpc(t.admin->SetDomainPolicy(t.Ctx().get(), req, &r));
       },
       "INVALID_ARGUMENT", ""},
      {"TokenForUnknownHost",
       [](T& t) {
         v1::CreateEnrollmentTokenRequest req;
         req.set_hostname("nope.example.org");
         v1::TokenResponse r;
         return FromGrpc(
             t.admin->CreateEnrollmentToken(t.Ctx().get(), req, &r));
       },
       "NOT_FOUND", "nope.example.org"},
      {"RemoveUnknownHost",
       [](T& t) {
         v1::RemoveHostRequest req;
         req.set_hostname("nope.example.org");
         v1::RemoveHostResponse r;
         return FromGrpc(t.admin->RemoveHost(t.Ctx().get(), req, &r));
       },
       "NOT_FOUND", "nope.example.org"},
      {"WatchFromBeyondTheHead",
       [](T& t) {
         v1::WatchRevocationsRequest req;
         req.set_from_seq(1000);
         auto ctx = t.Ctx();
         auto reader = t.directory->WatchRevocations(ctx.get(), req);
         v1::WatchRevocationsResponse r;
         while (reader->Read(&r)) {
         }
         return FromGrpc(reader->Finish());
       },
       "OUT_OF_RANGE", "1000"},
      // Last: moves the clock past the token's lifetime.
      {"ExpiredToken",
       [](T& t) {
         t.clock_.Advance(absl::Hours(25));
         return FromGrpc(t.Enroll("mx2.example.org", t.pending_token));
       },
       "PERMISSION_DENIED", "expired"},
  };
  return rows;
}

std::vector<BadInput> SocketmapRows() {
  auto send = [](std::string wire) {
    return [wire](T& t) { return t.Socketmap(wire); };
  };
  return {
      {"NetstringLengthOverflows", send("99999999999999999999999:x,"), "PERM",
       "exceeds the limit"},
      {"NetstringWithoutLength", send("tlspolicy example.org"), "PERM",
       "decimal length"},
      {"NetstringWithoutComma", send("3:abcX"), "PERM", "followed by ','"},
      {"OversizeRequest", send("5000:" + std::string(5000, 'a') + ","),
       "PERM", "exceeds the limit"},
      {"UnknownMap", send(EncodeNetstring("aliases root")), "PERM",
       "unknown map"},
      {"BinaryJunkKey",
       send(EncodeNetstring(std::string("tlspolicy \x01\xfe\x00z", 14))),
       "PERM", "printable ASCII"},
      {"UnclosedBracketNextHop", send(EncodeNetstring("tlspolicy [mx1")),
       "PERM", "without \"]\""},
      {"BadNextHopName", send(EncodeNetstring("tlspolicy bad_name!")), "PERM",
       "next-hop"},
      {"BadCcertPin", send(EncodeNetstring("ccert AB:CD:EF")), "PERM",
       "32 colon-separated"},
  };
}

std::vector<BadInput> HandshakeRows() {
  return {
      {"HandshakeMessageOf65536Bytes",
       [](T& t) {
         NoiseHandshakeConfig config;
         config.pattern = FindNoisePattern("IK");
         config.prologue = "prologue";
         config.static_key = t.mx1->keys.agreement;
         auto hs = NoiseHandshake::Create(std::move(config));
         if (!hs.ok()) return FromStatus(hs.status());
         return FromStatus(
             hs->ReadMessage(std::string(65536, '\0')).status());
       },
       "INVALID_ARGUMENT", "65535"},
      {"FrameOf65536Bytes",
       [](T&) {
         int fds[2];
         socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
         FdStream s(fds[0]);
         absl::Status st = WriteFrame(s, std::string(65536, 'x'));
         close(fds[0]);
         close(fds[1]);
         return FromStatus(st);
       },
       "INVALID_ARGUMENT", "65535"},
      {"TruncatedHandshakeFrame",
       [](T& t) { return t.Respond(std::string("\x00\x60", 2) + "short"); },
       "DATA_LOSS", "truncated"},
      {"JunkFirstHandshakeMessage",
       [](T& t) {
         std::string junk(96, '\x5a');
         return t.Respond(std::string("\x00\x60", 2) + junk);
       },
       "UNAUTHENTICATED", ""},
  };
}

std::vector<BadInput> KeyctlRows() {
  return {
      {"KeyctlBadHostname",
       [](T& t) {
         return t.Keyctl({"--root-fingerprint", t.keyd_->root_fingerprint(),
                          "lookup", "bad_host"});
       },
       "exit 1", "invalid hostname"},
      {"KeyctlMalformedFingerprint",
       [](T& t) {
         return t.Keyctl({"--root-fingerprint", "sha256:xyz", "lookup",
                          "mx1.example.org"});
       },
       "exit 2", "64 lower-case hex"},
      {"KeyctlWrongRoot",
       [](T& t) {
         return t.Keyctl({"--root-fingerprint",
                          "sha256:" + std::string(64, '0'), "lookup",
                          "mx1.example.org"});
       },
       "exit 4", "trust anchor"},
      {"KeyctlUnknownMode",
       [](T& t) {
         return t.Keyctl({"policy", "set", "example.org", "--mode", "strict"});
       },
       "exit 2", "strict"},
      {"KeyctlUnknownExport",
       [](T& t) {
         return t.Keyctl({"--root-fingerprint", t.keyd_->root_fingerprint(),
                          "export", "dkim", "example.org"});
       },
       "exit 2", "dkim"},
      {"KeyctlRevokeWithoutReason",
       [](T& t) { return t.Keyctl({"revoke", "mx1.example.org"}); }, "exit 2",
       "--reason"},
  };
}

std::string RowName(const ::testing::TestParamInfo<BadInput>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Grpc, BadInputTest, ::testing::ValuesIn(GrpcRows()),
                         RowName);
INSTANTIATE_TEST_SUITE_P(Socketmap, BadInputTest,
                         ::testing::ValuesIn(SocketmapRows()), RowName);
INSTANTIATE_TEST_SUITE_P(Handshake, BadInputTest,
                         ::testing::ValuesIn(HandshakeRows()), RowName);
INSTANTIATE_TEST_SUITE_P(Keyctl, BadInputTest,
                         ::testing::ValuesIn(KeyctlRows()), RowName);

}  // namespace
}  // namespace mxkey
