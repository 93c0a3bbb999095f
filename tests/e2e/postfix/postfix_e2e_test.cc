// Two real Postfix instances, a real keyd and a real mxkey-policyd, on
// loopback inside private network and mount namespaces (so ports cannot
// collide and the test's host names live in a hosts file bound over
// /etc/hosts for this test only; the machine is not changed).
//
// A (mx.a.test, port 10025) relays every test domain to B's smtpd ports with
// smtp_tls_policy_maps = socketmap:...:tlspolicy. B (mx.b.test) serves one
// port per scenario, each presenting its own TLS key, and accepts mail only
// from clients whose key is certified (check_ccert_access ... ccert). Every
// case is asserted from Postfix's own log and queue.
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mta-hooks/postfix/netstring.h"
#include "tests/e2e/postfix/postfix_instance.h"
#include "tests/keyd_process.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int kKeydPort = 7700;
constexpr int kPeerKeydPort = 7701;  // org "f", a federation peer of a
constexpr int kPolicydPort = 11000;
constexpr int kSenderPort = 10025;
constexpr absl::Duration kWait = absl::Seconds(30);

// Why the namespaces could not be entered (empty: they were).
std::string* namespace_error = new std::string;

// Called from main() while the process has one thread (unshare(CLONE_NEWNS)
// requires it).
void EnterPrivateNamespaces(const std::string& hosts_file) {
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    *namespace_error = absl::StrCat("unshare(net, mount): ", strerror(errno),
                                    " (needs root)");
    return;
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount(hosts_file.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
    *namespace_error = absl::StrCat("bind hosts file: ", strerror(errno));
    return;
  }
  CommandResult lo = RunCommand({"/usr/sbin/ip", "link", "set", "lo", "up"});
  if (lo.exit_code != 0) *namespace_error = "ip link set lo up: " + lo.err;
}

// One socketmap request on a fresh connection to mxkey-policyd.
std::string AskPolicyd(const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kPolicydPort);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  std::string reply = "<no connection>";
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string wire = EncodeNetstring(request);
    if (write(fd, wire.data(), wire.size()) ==
        static_cast<ssize_t>(wire.size())) {
      NetstringDecoder d(100000);
      char buf[4096];
      reply = "<no reply>";
      for (int i = 0; i < 100; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        d.Append(absl::string_view(buf, static_cast<size_t>(n)));
        auto r = d.Next();
        if (r.kind == NetstringDecoder::Kind::kPayload) {
          reply = r.payload;
          break;
        }
      }
    }
  }
  close(fd);
  return reply;
}

// Polls mxkey-policyd until `request` no longer answers "OK ..." (bounded:
// 10 s), and returns the new answer.
std::string AnswerAfterChange(const std::string& request) {
  const absl::Time start = absl::Now();
  std::string answer;
  for (int i = 0; i < 5000 && absl::Now() - start < absl::Seconds(10); ++i) {
    answer = AskPolicyd(request);
    if (!absl::StartsWith(answer, "OK ")) break;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return answer;
}

// Everything the cases share: keys, keyd, policyd, both Postfix instances.
struct World {
  std::string dir;
  std::unique_ptr<KeydProcess> keyd;
  std::unique_ptr<KeydProcess> peer_keyd;
  std::unique_ptr<Subprocess> policyd;
  std::unique_ptr<PostfixInstance> a, b;

  std::string Pem(const std::string& name) const { return dir + "/" + name + ".pem"; }
  std::string Key(const std::string& name) const { return dir + "/" + name + ".key"; }

  absl::Status MakeKey(const std::string& name) {
    CommandResult r = RunCommand(
        {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", Key(name), "-out",
         Pem(name), "-subj", "/CN=" + name, "-days", "30"});
    if (r.exit_code != 0) return absl::InternalError("openssl: " + r.err);
    // Postfix's smtpd reads its key as root before dropping privileges, but
    // smtp (the client) reads it as postfix.
    chmod(Key(name).c_str(), 0644);
    return absl::OkStatus();
  }

  absl::Status Keyctl(const std::vector<std::string>& args) {
    CommandResult r = keyd->RunKeyctl(args);
    if (r.exit_code != 0) {
      return absl::InternalError(
          absl::StrCat("keyctl ", args[0], " exited ", r.exit_code, ": ", r.err));
    }
    return absl::OkStatus();
  }

  absl::Status Enroll(const std::string& host, const std::string& domain,
                      const std::string& tls_key) {
    CommandResult add =
        keyd->RunKeyctl({"--json", "host", "add", host, "--domain", domain});
    const size_t at = add.out.find("\"token\":\"");
    if (add.exit_code != 0 || at == std::string::npos) {
      return absl::InternalError("host add " + host + ": " + add.err);
    }
    return Keyctl({"enroll", host, "--token", add.out.substr(at + 9, 64),
                   "--key-dir", dir + "/keys-" + host, "--tls-cert",
                   Pem(tls_key)});
  }

  absl::Status StartPolicyd() {
    absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Start(
        {RunfilePath("mta-hooks/postfix/mxkey-policyd"), "--keyd",
         absl::StrCat("127.0.0.1:", kKeydPort), "--root-fingerprint",
         keyd->fingerprint(), "--listen",
         absl::StrCat("inet:127.0.0.1:", kPolicydPort), "--cache-dir",
         dir + "/policyd-cache", "--report-dir", dir + "/reports"},
        dir + "/policyd.log");
    if (!p.ok()) return p.status();
    policyd = *std::move(p);
    return WaitForListeningPort(dir + "/policyd.log", absl::Seconds(20))
        .status();
  }

  absl::Status Build() {
    dir = ShortTempDir();
    chmod(dir.c_str(), 0755);  // Postfix daemons run as postfix
    mkdir((dir + "/reports").c_str(), 0755);
    for (const char* k : {"a", "b", "evil", "m", "r", "rot1", "rot2", "t",
                          "t-presented", "c", "k", "uncertified", "f"}) {
      if (absl::Status s = MakeKey(k); !s.ok()) return s;
    }
    // Port 10029 presents whichever key is in rot-current.{key,pem}.
    for (const char* ext : {".key", ".pem"}) {
      std::string key = ReadFile(dir + "/rot1" + ext).value_or("");
      if (absl::Status s =
              WriteFileAtomically(dir + "/rot-current" + ext, key, 0644);
          !s.ok()) {
        return s;
      }
    }
    absl::StatusOr<std::unique_ptr<KeydProcess>> k = KeydProcess::Init();
    if (!k.ok()) return k.status();
    keyd = *std::move(k);
    // Short freshness, so the keyd-outage case goes stale within seconds.
    if (absl::Status s = keyd->Start({"--listen",
                                      absl::StrCat("127.0.0.1:", kKeydPort),
                                      "--freshness", "4s"});
        !s.ok()) {
      return s;
    }
    const std::vector<std::vector<std::string>> hosts = {
        {"mx.a.test", "a.test", "a"},      {"mx.b.test", "b.test", "b"},
        {"mx.m.test", "m.test", "m"},      {"mx.r.test", "r.test", "r"},
        {"mx.rot.test", "rot.test", "rot1"}, {"mx.t.test", "t.test", "t"},
        {"mx.k.test", "k.test", "k"}};
    for (const auto& h : hosts) {
      if (absl::Status s = Enroll(h[0], h[1], h[2]); !s.ok()) return s;
    }
    for (const char* d : {"b.test", "m.test", "r.test", "rot.test", "k.test"}) {
      if (absl::Status s = Keyctl({"policy", "set", d, "--mode", "enforce"});
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = Keyctl({"policy", "set", "t.test", "--mode", "testing"});
        !s.ok()) {
      return s;
    }
    // Org "f" runs its own keyd; a trusts it as a peer for f.test.
    absl::StatusOr<std::unique_ptr<KeydProcess>> f = KeydProcess::Init("f");
    if (!f.ok()) return f.status();
    peer_keyd = *std::move(f);
    if (absl::Status s = peer_keyd->Start(
            {"--listen", absl::StrCat("127.0.0.1:", kPeerKeydPort),
             "--freshness", "4s"});
        !s.ok()) {
      return s;
    }
    {
      CommandResult add = peer_keyd->RunKeyctl(
          {"--json", "host", "add", "mx.f.test", "--domain", "f.test"});
      const size_t at = add.out.find("\"token\":\"");
      if (add.exit_code != 0 || at == std::string::npos) {
        return absl::InternalError("f: host add: " + add.err);
      }
      for (const std::vector<std::string>& args :
           {std::vector<std::string>{"enroll", "mx.f.test", "--token",
                                     add.out.substr(at + 9, 64), "--key-dir",
                                     dir + "/keys-mx.f.test", "--tls-cert",
                                     Pem("f")},
            std::vector<std::string>{"policy", "set", "f.test", "--mode",
                                     "enforce"}}) {
        CommandResult r = peer_keyd->RunKeyctl(args);
        if (r.exit_code != 0) return absl::InternalError("f: " + r.err);
      }
    }
    if (absl::Status s = Keyctl({"peer", "add", "f", "--domain-suffix",
                                 "f.test", "--endpoint",
                                 absl::StrCat("127.0.0.1:", kPeerKeydPort),
                                 "--root-fingerprint",
                                 peer_keyd->fingerprint()});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = StartPolicyd(); !s.ok()) return s;

    const std::string map =
        absl::StrCat("socketmap:inet:127.0.0.1:", kPolicydPort);
    // Receiver B: one smtpd per scenario, each with its own TLS key.
    const std::vector<std::pair<int, std::string>> ports = {
        {10026, "b"}, {10027, "evil"}, {10028, "r"}, {10029, "rot-current"},
        {10030, "t-presented"}, {10031, "c"}, {10032, "k"}, {10033, "f"}};
    PostfixConfig bc;
    bc.dir = dir + "/b";
    bc.myhostname = "mx.b.test";
    for (const auto& [port, key] : ports) {
      bc.services.push_back(absl::StrCat(
          "127.0.0.1:", port, " inet n - n - - smtpd -o smtpd_tls_chain_files=",
          Key(key), ",", Pem(key)));
    }
    mkdir((dir + "/mail").c_str(), 0755);
    chown((dir + "/mail").c_str(), 65534, 65534);
    bc.main_cf = {
        "mynetworks =",
        "virtual_mailbox_domains = b.test m.test r.test rot.test t.test "
        "c.test k.test f.test",
        "virtual_mailbox_base = " + dir + "/mail",
        "virtual_mailbox_maps = static:inbox/",
        "virtual_uid_maps = static:65534",
        "virtual_gid_maps = static:65534",
        "smtpd_tls_security_level = may",
        "smtpd_tls_ask_ccert = yes",
        "smtpd_tls_loglevel = 1",
        "smtpd_tls_fingerprint_digest = sha256",
        "smtpd_recipient_restrictions = check_ccert_access { " + map +
            ":ccert, { search_order = pubkey_fingerprint } }, reject",
    };
    absl::StatusOr<std::unique_ptr<PostfixInstance>> b_or =
        PostfixInstance::Start(bc);
    if (!b_or.ok()) return b_or.status();
    b = *std::move(b_or);

    // Sender A: routes each domain to its port on B; pins through tlspolicy.
    std::string transport;
    const std::vector<std::pair<std::string, int>> routes = {
        {"b", 10026}, {"m", 10027}, {"r", 10028}, {"rot", 10029},
        {"t", 10030}, {"c", 10031}, {"k", 10032}, {"f", 10033}};
    for (const auto& [d, port] : routes) {
      absl::StrAppend(&transport, d, ".test smtp:[mx.", d, ".test]:", port, "\n");
    }
    mkdir((dir + "/a").c_str(), 0755);
    if (absl::Status s = WriteFileAtomically(dir + "/a/transport", transport, 0644);
        !s.ok()) {
      return s;
    }
    PostfixConfig ac;
    ac.dir = dir + "/a";
    ac.myhostname = "mx.a.test";
    ac.services = {absl::StrCat("127.0.0.1:", kSenderPort,
                                " inet n - n - - smtpd")};
    ac.main_cf = {
        "mynetworks = 127.0.0.0/8",
        "myorigin = a.test",
        "smtp_host_lookup = native",
        "smtp_dns_support_level = disabled",
        "transport_maps = texthash:" + dir + "/a/transport",
        "smtp_tls_security_level = may",
        "smtp_tls_loglevel = 1",
        "smtp_tls_fingerprint_digest = sha256",
        "smtp_tls_chain_files = " + Key("a") + " " + Pem("a"),
        "smtp_tls_policy_maps = " + map + ":tlspolicy",
    };
    absl::StatusOr<std::unique_ptr<PostfixInstance>> a_or =
        PostfixInstance::Start(ac);
    if (!a_or.ok()) return a_or.status();
    a = *std::move(a_or);
    return absl::OkStatus();
  }

  ~World() {
    a.reset();
    b.reset();
    policyd.reset();
    keyd.reset();
    peer_keyd.reset();
    if (!dir.empty()) RunCommand({"/bin/rm", "-rf", dir});
  }
};

class PostfixE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!namespace_error->empty()) return;
    world_ = new World;
    *build_error_ = world_->Build().ToString();
  }
  static void TearDownTestSuite() {
    delete world_;
    world_ = nullptr;
  }
  void SetUp() override {
    if (!namespace_error->empty()) GTEST_SKIP() << *namespace_error;
    ASSERT_EQ(*build_error_, "OK");
  }

  // Submits one message to A for `to`.
  void Send(const std::string& to) {
    CommandResult r = RunCommand(
        {"/usr/bin/swaks", "--to", to, "--from", "sender@a.test", "--server",
         absl::StrCat("127.0.0.1:", kSenderPort), "--header",
         "Subject: mxkey e2e " + to},
        absl::Seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  // A's delivery log line for `to` with `status`, within kWait.
  std::string ExpectAStatus(const std::string& to, const std::string& status) {
    absl::StatusOr<std::string> line = world_->a->WaitForLogLine(
        {"to=<" + to + ">", "status=" + status}, kWait);
    EXPECT_TRUE(line.ok()) << line.status();
    return line.value_or("");
  }
  void ExpectDeliveredToB(const std::string& to) {
    absl::StatusOr<std::string> line = world_->b->WaitForLogLine(
        {"to=<" + to + ">", "relay=virtual", "status=sent"}, kWait);
    EXPECT_TRUE(line.ok()) << line.status();
  }

  static World* world_;
  static std::string* build_error_;
};

World* PostfixE2eTest::world_ = nullptr;
std::string* PostfixE2eTest::build_error_ = new std::string;

// 1. Enforce, right key: delivered over a verified TLS connection.
TEST_F(PostfixE2eTest, EnforceRightKeyIsDeliveredVerified) {
  EXPECT_THAT(AskPolicyd("tlspolicy [mx.b.test]:10026"),
              StartsWith("OK fingerprint match="));
  Send("case1@b.test");
  std::string sent = ExpectAStatus("case1@b.test", "sent");
  EXPECT_THAT(sent, HasSubstr("relay=mx.b.test[127.0.0.1]:10026"));
  EXPECT_THAT(world_->a->Log(),
              HasSubstr("Verified TLS connection established to "
                        "mx.b.test[127.0.0.1]:10026"));
  ExpectDeliveredToB("case1@b.test");
}

// 2. Enforce, B presents another TLS key (a MITM): deferred 4.7.5, queued.
TEST_F(PostfixE2eTest, EnforceWrongKeyIsDeferredAndStaysQueued) {
  Send("case2@m.test");
  std::string deferred = ExpectAStatus("case2@m.test", "deferred");
  EXPECT_THAT(deferred, HasSubstr("dsn=4.7.5"));
  EXPECT_THAT(world_->a->QueueJson(), HasSubstr("case2@m.test"));
  EXPECT_THAT(world_->b->Log(), Not(HasSubstr("to=<case2@m.test>")));
}

// 3. Revocation: the policy answer changes within the watch's delivery
// time, and the next delivery is deferred.
TEST_F(PostfixE2eTest, RevocationDefersTheNextDelivery) {
  Send("case3a@r.test");
  ExpectAStatus("case3a@r.test", "sent");
  const std::string key = "tlspolicy [mx.r.test]:10028";
  ASSERT_THAT(AskPolicyd(key), StartsWith("OK "));
  const absl::Time before = absl::Now();
  ASSERT_TRUE(world_->Keyctl({"revoke", "mx.r.test", "--reason",
                              "key compromise"})
                  .ok());
  const absl::Time revoked = absl::Now();
  const std::string answer = AnswerAfterChange(key);
  const absl::Duration change = absl::Now() - revoked;
  std::printf("revoke -> tlspolicy answer change: %lld ms after keyctl "
              "returned (%lld ms including keyctl)\n",
              static_cast<long long>(absl::ToInt64Milliseconds(change)),
              static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() -
                                                               before)));
  RecordProperty("revoke_to_policy_change_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(change)));
  EXPECT_THAT(answer, StartsWith("TEMP "));
  // DESIGN.md's promise is 2 s to every peer; the goal is 1 s.
  EXPECT_LT(change, absl::Seconds(2));
  Send("case3b@r.test");
  ExpectAStatus("case3b@r.test", "deferred");
  EXPECT_THAT(world_->a->QueueJson(), HasSubstr("case3b@r.test"));
  EXPECT_THAT(world_->b->Log(), Not(HasSubstr("to=<case3b@r.test>")));
}

// 4. Rotation to a pre-published next key: no deferral across the cut-over.
TEST_F(PostfixE2eTest, RotationToPrePublishedKeyNeverDefers) {
  Send("case4a@rot.test");
  ExpectAStatus("case4a@rot.test", "sent");
  ASSERT_TRUE(world_->Keyctl({"rotate", "mx.rot.test", "--key-dir",
                              world_->dir + "/keys-mx.rot.test", "--tls-cert",
                              world_->Pem("rot2")})
                  .ok());
  // The policy now pins both keys (the next one pre-published).
  std::string answer;
  for (int i = 0; i < 100; ++i) {
    answer = AskPolicyd("tlspolicy [mx.rot.test]:10029");
    if (absl::StrContains(answer, "|")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(answer, HasSubstr("|"));
  Send("case4b@rot.test");
  ExpectAStatus("case4b@rot.test", "sent");
  // Cut over: B presents the next key from now on.
  for (const char* ext : {".key", ".pem"}) {
    ASSERT_TRUE(WriteFileAtomically(
                    world_->dir + "/rot-current" + ext,
                    ReadFile(world_->dir + "/rot2" + ext).value_or(""), 0644)
                    .ok());
  }
  ASSERT_TRUE(world_->b->Reload().ok());
  ASSERT_TRUE(world_->b->WaitForLogLine({"reload"}, kWait).ok());
  Send("case4c@rot.test");
  ExpectAStatus("case4c@rot.test", "sent");
  ExpectDeliveredToB("case4c@rot.test");
  for (const char* to : {"case4a@rot.test", "case4b@rot.test", "case4c@rot.test"}) {
    absl::StatusOr<std::string> deferral = world_->a->WaitForLogLine(
        {std::string("to=<") + to + ">", "status=deferred"}, absl::ZeroDuration());
    EXPECT_FALSE(deferral.ok()) << *deferral;
  }
}

// 5. Testing mode with a wrong key: delivered, and a report record written.
TEST_F(PostfixE2eTest, TestingModeDeliversAndReportsTheWrongKey) {
  Send("case5@t.test");
  ExpectAStatus("case5@t.test", "sent");
  ExpectDeliveredToB("case5@t.test");
  std::string reports;
  for (int i = 0; i < 300; ++i) {
    reports.clear();
    CommandResult cat = RunCommand(
        {"/bin/sh", "-c", "cat " + world_->dir + "/reports/*.jsonl"});
    reports = cat.out;
    if (absl::StrContains(reports, "certificate-not-trusted")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(reports, HasSubstr("\"policy-domain\":\"[mx.t.test]\""));
  EXPECT_THAT(reports, HasSubstr("\"receiving-mx-hostname\":\"mx.t.test\""));
  EXPECT_THAT(reports, HasSubstr("\"result-type\":\"certificate-not-trusted\""));
}

// 6. Unkeyed domain: delivered with opportunistic TLS (backward compatible).
TEST_F(PostfixE2eTest, UnkeyedDomainUsesOpportunisticTls) {
  EXPECT_EQ(AskPolicyd("tlspolicy [mx.c.test]:10031"), "NOTFOUND ");
  Send("case6@c.test");
  ExpectAStatus("case6@c.test", "sent");
  EXPECT_THAT(world_->a->Log(),
              HasSubstr("TLS connection established to mx.c.test"));
  ExpectDeliveredToB("case6@c.test");
}

// 8. B accepts A's certified client key and rejects an uncertified one.
TEST_F(PostfixE2eTest, ReceiverRejectsUncertifiedClientKey) {
  CommandResult bad = RunCommand(
      {"/usr/bin/swaks", "--to", "case8@b.test", "--from", "x@u.test",
       "--server", "127.0.0.1:10026", "--tls", "--tls-cert",
       world_->Pem("uncertified"), "--tls-key", world_->Key("uncertified")},
      absl::Seconds(30));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.out, HasSubstr("554 5.7.1 <case8@b.test>"));
  CommandResult good = RunCommand(
      {"/usr/bin/swaks", "--to", "case8ok@b.test", "--from", "x@a.test",
       "--server", "127.0.0.1:10026", "--tls", "--tls-cert", world_->Pem("a"),
       "--tls-key", world_->Key("a")},
      absl::Seconds(30));
  EXPECT_EQ(good.exit_code, 0) << good.out;
  ExpectDeliveredToB("case8ok@b.test");
}

// 9. Federation: f.test belongs to org "f", a peer of a's org. A's Postfix
// pins f's key through a's keyd (relayed, verified against f's root), and a
// revocation at f reaches a's mxkey-policyd through the feeds and defers
// a's next delivery.
TEST_F(PostfixE2eTest, FederatedDomainIsPinnedAndItsRevocationCrossesOver) {
  EXPECT_THAT(AskPolicyd("tlspolicy [mx.f.test]:10033"),
              StartsWith("OK fingerprint match="));
  Send("case9a@f.test");
  EXPECT_THAT(ExpectAStatus("case9a@f.test", "sent"),
              HasSubstr("relay=mx.f.test[127.0.0.1]:10033"));
  EXPECT_THAT(world_->a->Log(),
              HasSubstr("Verified TLS connection established to "
                        "mx.f.test[127.0.0.1]:10033"));
  ExpectDeliveredToB("case9a@f.test");

  const std::string key = "tlspolicy [mx.f.test]:10033";
  CommandResult revoke = world_->peer_keyd->RunKeyctl(
      {"revoke", "mx.f.test", "--reason", "key compromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  const absl::Time revoked = absl::Now();
  const std::string answer = AnswerAfterChange(key);
  const absl::Duration change = absl::Now() - revoked;
  std::printf("revoke at peer org f -> a's tlspolicy answer change: %lld ms\n",
              static_cast<long long>(absl::ToInt64Milliseconds(change)));
  RecordProperty("peer_revoke_to_policy_change_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(change)));
  EXPECT_THAT(answer, StartsWith("TEMP "));
  EXPECT_LT(change, absl::Seconds(2));
  Send("case9b@f.test");
  ExpectAStatus("case9b@f.test", "deferred");
  EXPECT_THAT(world_->b->Log(), Not(HasSubstr("to=<case9b@f.test>")));
}

// 7 (last: it stops keyd). keyd down: enforce domains are deferred (TEMP)
// on the sending side; an unkeyed domain passes A's policy, and B, which can
// no longer check A's client key, defers it with a 4xx (never a bounce).
// Once keyd is back, everything is delivered: nothing is lost.
TEST_F(PostfixE2eTest, ZKeydOutageDefersEnforceAndLosesNothing) {
  Send("case7a@k.test");
  ExpectAStatus("case7a@k.test", "sent");
  ASSERT_EQ(world_->keyd->Stop(), 0);
  std::string answer;
  for (int i = 0; i < 300; ++i) {
    answer = AskPolicyd("tlspolicy [mx.k.test]:10032");
    if (absl::StartsWith(answer, "TEMP ")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_THAT(answer, StartsWith("TEMP mxkey: [mx.k.test] is in enforce mode"));
  EXPECT_EQ(AskPolicyd("tlspolicy [mx.c.test]:10031"), "NOTFOUND ");
  Send("case7b@k.test");
  EXPECT_THAT(ExpectAStatus("case7b@k.test", "deferred"),
              HasSubstr("relay=none"));  // never connected to B
  Send("case7c@c.test");
  EXPECT_THAT(ExpectAStatus("case7c@c.test", "deferred"),
              HasSubstr("said: 451 4.3.5"));
  const std::string queue = world_->a->QueueJson();
  EXPECT_THAT(queue, HasSubstr("case7b@k.test"));
  EXPECT_THAT(queue, HasSubstr("case7c@c.test"));

  ASSERT_TRUE(world_->keyd
                  ->Start({"--listen", absl::StrCat("127.0.0.1:", kKeydPort),
                           "--freshness", "4s"})
                  .ok());
  ASSERT_TRUE(world_->a->Flush().ok());
  for (const char* to : {"case7b@k.test", "case7c@c.test"}) {
    ExpectAStatus(to, "sent");
    ExpectDeliveredToB(to);
  }
  EXPECT_THAT(world_->a->QueueJson(), Not(HasSubstr("case7b@k.test")));
  EXPECT_THAT(world_->a->Log(), Not(HasSubstr("status=bounced")));
}

}  // namespace
}  // namespace mxkey

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string hosts = "/tmp/mxkey-e2e-hosts." + std::to_string(getpid());
  FILE* f = std::fopen(hosts.c_str(), "w");
  if (f != nullptr) {
    std::fputs("127.0.0.1 localhost\n127.0.0.1 mx.a.test mx.b.test mx.m.test "
               "mx.r.test mx.rot.test mx.t.test mx.c.test mx.k.test mx.f.test\n",
               f);
    std::fclose(f);
    chmod(hosts.c_str(), 0644);
  }
  if (access("/usr/sbin/postfix", X_OK) != 0 ||
      access("/usr/bin/swaks", X_OK) != 0) {
    *mxkey::namespace_error =
        "postfix or swaks missing: run tools/install-deps";
  } else {
    mxkey::EnterPrivateNamespaces(hosts);
  }
  const int rc = RUN_ALL_TESTS();
  unlink(hosts.c_str());
  return rc;
}
