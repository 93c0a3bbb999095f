// An on-path attacker between the clients of org a and a's keyd (whose
// public port is plaintext) answers lookups with genuine signed answers of
// keyd given to other questions: the full substitution matrix.
//
// One keyd pair for the whole file: org a (enforce, testing, none-mode and
// unkeyed domains, a revoked host, a host with no pin) and org b (peer of a
// for b.example: an enforce domain and its host). Every lookup (GetHostKeys
// and GetDomainPolicy of every name, host or domain, own or b's, known or
// not; FindByTlsPin of every pin) is recorded through a's endpoint at four
// points of a's history (before the peering, before enforce.example.org
// moved from testing to enforce, before a revocation, now), with the
// mxkey-relayed header added, and straight from b's keyd. Then for every
// (request, recorded answer) pair a fresh KeyClient asks through the
// OnPathProxy, which answers that request with that answer (also: an
// unsigned NOT_FOUND, a dropped call), and the client's result must be at
// least as strict as the truth (the answer a genuine client gets now):
//   - an enforce domain stays enforce with exactly its true pins, or fails;
//     it never becomes a denial, none or testing; no domain gets less strict
//   - a revoked host never yields a usable key (nor does its pin)
//   - a host answer never comes back for a domain lookup or the reverse,
//     and no answer for another name is accepted
//   - an answer the own org signed never speaks for a peer's name, nor the
//     reverse
//   - an unsigned error never becomes "unknown", "revoked" or "expired"
// Then mxkey-policyd's maps (PolicyMaps) under the same substitutions:
// tlspolicy for the enforce domains (own and b's) and their MX hosts says
// "OK fingerprint match=<true pins>" or "TEMP ...", never NOTFOUND, and
// its enforce memory survives the substitution (a policyd whose keyd is
// unreachable afterwards says TEMP); ccert never accepts a revoked or an
// unknown pin. Transport modes on top: watching or not watching the
// revocation feed, the feed back-fill dropped, the federation bundle
// dropped, and the relayed header added to every call.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/files.h"
#include "client/key_client.h"
#include "client/tls_pins.h"
#include "crypto/sha256.h"
#include "gtest/gtest.h"
#include "keyd/peer_relay.h"
#include "mta-hooks/postfix/policy_maps.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "tests/inprocess_keyd.h"
#include "tests/test_tls_keys.h"
#include "tests/onpath_proxy.h"
#include "tests/subprocess.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

// PROTOCOL.md section 13: "revocation reaches following clients within
// seconds through the feed ... and is bounded by the freshness validity
// for clients that do not follow the feed". A client with
// watch_revocations = false that is handed an own answer made before a
// revocation (still fresh) cannot know better; those cells are counted and
// printed, not failed. Set to false to fail them too.
constexpr bool kExemptUnwatchedRevocationWindow = true;

// Worker threads (each with a proxy of its own) the matrices run on.
constexpr int kLanes = 2;

// Pins (raw SHA-256 of an SPKI; only their bytes matter here).
const std::string kPinEnforce = TestTlsPin("kPinEnforce");
const std::string kPinTesting = TestTlsPin("kPinTesting");
const std::string kPinNone = TestTlsPin("kPinNone");
const std::string kPinUnkeyed = TestTlsPin("kPinUnkeyed");
const std::string kPinRevoked = TestTlsPin("kPinRevoked");
const std::string kPinB = TestTlsPin("kPinB");
const std::string kPinNobody(32, '\x0d');

constexpr char kEnforceDomain[] = "enforce.example.org";
constexpr char kEnforceMx[] = "mx.enforce.example.org";
constexpr char kRevokedHost[] = "mx.revoked.example.org";
constexpr char kBDomain[] = "b.example";
constexpr char kBMx[] = "mx.b.example";

std::string PinLabel(const std::string& pin) {
  if (pin == kPinEnforce) return "pin(mx.enforce)";
  if (pin == kPinTesting) return "pin(mx.testing)";
  if (pin == kPinNone) return "pin(mx.none)";
  if (pin == kPinUnkeyed) return "pin(mx.unkeyed)";
  if (pin == kPinRevoked) return "pin(mx.revoked)";
  if (pin == kPinB) return "pin(mx.b.example)";
  if (pin == kPinNobody) return "pin(nobody)";
  return "pin(?)";
}

std::string PinsText(const std::set<std::string>& pins) {
  std::vector<std::string> out;
  for (const auto& p : pins) out.push_back(PinLabel(p));
  return absl::StrCat("{", absl::StrJoin(out, ","), "}");
}

// One lookup a client makes (what the proxy is asked).
struct Request {
  ProxyRpc rpc;
  std::string arg;  // hostname, domain, or raw pin
  bool peer_name = false;
  std::string Label() const {
    return absl::StrCat(ProxyRpcName(rpc), "(",
                        rpc == ProxyRpc::kFindByTlsPin ? PinLabel(arg) : arg,
                        ")");
  }
};

// One answer of the attacker's pool.
struct PoolAnswer {
  std::string label;  // where it was recorded, e.g. "S1 GetHostKeys(x)"
  RecordedResponse response;
  std::string signer;      // "a", "b", or "" (unsigned)
  uint64_t feed_head = 0;  // of its freshness statement (signed answers)
  std::vector<std::string> aliases;  // further recordings, same bytes
  // The label, and the other recordings that gave the same bytes.
  std::string Shown() const {
    return aliases.empty() ? label
                           : absl::StrCat(label, " [same bytes: ",
                                          absl::StrJoin(aliases, "; "), "]");
  }
  bool Is(const std::string& l) const {
    return label == l ||
           std::find(aliases.begin(), aliases.end(), l) != aliases.end();
  }
};

// What a genuine client gets for a request now.
struct Truth {
  LookupFailure kind = LookupFailure::kNone;   // host and pin lookups
  bool denial = false;                         // domain lookups
  v1::PolicyMode mode = v1::POLICY_MODE_NONE;  // domain lookups
  std::set<std::string> pins;  // usable pins (host, domain, or pin holder)
  std::string holder;          // pin lookups: the holder's hostname
  std::string org;             // who speaks for the name ("a" or "b")
  std::string Describe(ProxyRpc rpc) const {
    if (rpc == ProxyRpc::kGetDomainPolicy) {
      return denial ? "signed denial (unkeyed)"
                    : absl::StrCat("policy ", v1::PolicyMode_Name(mode),
                                   " pins=", PinsText(pins));
    }
    if (kind != LookupFailure::kNone) {
      return absl::StrCat(LookupFailureName(kind));
    }
    return absl::StrCat("usable ", holder, " pins=", PinsText(pins));
  }
};

int Strictness(bool denial, v1::PolicyMode mode) {
  if (denial) return 0;
  switch (mode) {
    case v1::POLICY_MODE_ENFORCE:
      return 2;
    case v1::POLICY_MODE_TESTING:
      return 1;
    default:
      return 0;
  }
}

std::set<std::string> UsablePins(const VerifiedAnswer& a) {
  std::set<std::string> out;
  for (const HostPins& h : UsableTlsPins(a)) {
    out.insert(h.pins.begin(), h.pins.end());
  }
  return out;
}

bool IsSignedOnlyKind(LookupFailure k) {
  return k == LookupFailure::kNone || k == LookupFailure::kUnknown ||
         k == LookupFailure::kRevoked || k == LookupFailure::kExpired;
}

// A client's result for one request.
struct Outcome {
  absl::Status status;
  LookupFailure kind = LookupFailure::kNone;
  AnswerRef answer;
  std::string Describe() const {
    if (!answer) {
      std::string m(status.message());
      if (m.size() > 180) m = m.substr(0, 180) + "...";
      return absl::StrCat(LookupFailureName(kind), ": ", m);
    }
    const VerifiedAnswer& a = *answer;
    if (a.denial) return absl::StrCat("signed denial for ", a.name);
    if (a.policy) {
      return absl::StrCat("policy ", v1::PolicyMode_Name(a.policy->mode()),
                          " for ", a.name, " pins=", PinsText(UsablePins(a)));
    }
    return absl::StrCat("usable ", a.name, " pins=", PinsText(UsablePins(a)));
  }
};

Outcome RunLookup(KeyClient& client, const Request& r) {
  absl::StatusOr<AnswerRef> got;
  switch (r.rpc) {
    case ProxyRpc::kGetHostKeys:
      got = client.LookupHost(r.arg);
      break;
    case ProxyRpc::kGetDomainPolicy:
      got = client.LookupDomain(r.arg);
      break;
    default:
      got = client.LookupByTlsPin(r.arg);
      break;
  }
  Outcome o;
  if (got.ok()) {
    o.answer = *got;
  } else {
    o.status = got.status();
    o.kind = LookupFailureOf(o.status);
  }
  return o;
}

// How the attacker (and the client) behave around the substitution.
struct Mode {
  std::string name;
  bool watch = false;          // the client follows the revocation feed
  bool drop_backfill = false;  // WatchRevocations dropped once it watches
  bool drop_feed = false;      // WatchRevocations dropped from the start
  bool drop_bundle = false;    // GetFederationBundle dropped
  bool relayed = false;        // mxkey-relayed header on forwarded calls
};

// One cell's verdict.
struct Violation {
  std::string rule;
  std::string text;
};

class OnPathAttackTest : public ::testing::Test {
 protected:
  // Everything shared by the tests of this file: one keyd pair, one proxy,
  // the recorded pool and the truth.
  struct World {
    FakeClock clock{absl::Now()};
    std::unique_ptr<InProcessKeyd> a, b;
    // One proxy per lane (worker thread); proxies[0] also records.
    std::vector<std::unique_ptr<OnPathProxy>> proxies;
    std::string a_root_id, b_root_id;  // SHA-256 of each root key
    uint64_t revocation_seq = 0;
    // The feed event of enforce.example.org's change to enforce.
    uint64_t policy_seq = 0;
    std::vector<Request> requests;
    std::vector<PoolAnswer> pool;
    std::map<std::string, Truth> truth;  // by Request::Label()
    // The genuine answers now, plain and with the relayed header.
    std::map<std::string, PoolAnswer> current, relayed;
    std::string dir;             // scratch, removed at the end
    std::string dead_endpoint;   // where no keyd listens
    std::string enforce_memory;  // a policyd's memory after genuine looks
    bool ready = false;
  };
  static World* w_;

  static void SetUpTestSuite() {
    w_ = new World();
    BuildWorld(*w_);
  }
  static void TearDownTestSuite() {
    if (w_ == nullptr) return;
    w_->proxies.clear();
    w_->a.reset();
    w_->b.reset();
    if (!w_->dir.empty()) RunCommand({"/bin/rm", "-rf", w_->dir});
    delete w_;
    w_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(w_ != nullptr && w_->ready) << "the shared setup failed";
    for (auto& p : w_->proxies) p->Reset();
  }

  static grpc::Status AddPeer(InProcessKeyd& at, const std::string& org,
                              const std::string& suffix,
                              const std::string& endpoint,
                              const std::string& fingerprint) {
    return at.AddPeer(org, {suffix}, endpoint, fingerprint);
  }

  static std::string SignerOf(const World& w, const RecordedResponse& r) {
    if (!r.ok() || r.answer.issuing_keys_size() == 0) return "";
    const std::string& id = r.answer.issuing_keys(0).signer_key_id();
    if (id == w.a_root_id) return "a";
    if (id == w.b_root_id) return "b";
    return "?";
  }

  static PoolAnswer MakePoolAnswer(const World& w, const std::string& label,
                                   RecordedResponse r) {
    PoolAnswer p;
    p.label = label;
    p.signer = SignerOf(w, r);
    if (r.ok()) {
      v1::FreshnessBody f;
      if (f.ParseFromString(r.answer.freshness().body())) {
        p.feed_head = f.feed_head();
      }
    }
    p.response = std::move(r);
    return p;
  }

  // Records every request at `endpoint` into the pool, labelled `when`.
  static std::vector<PoolAnswer> RecordAll(World& w, const std::string& when,
                                           const std::string& endpoint,
                                           bool relayed = false) {
    std::vector<PoolAnswer> out;
    for (const Request& r : w.requests) {
      out.push_back(
          MakePoolAnswer(w, absl::StrCat(when, " ", r.Label()),
                         RecordLookup(endpoint, r.rpc, r.arg, relayed)));
    }
    for (const PoolAnswer& p : out) AddToPool(w, p);
    return out;
  }

  static void AddToPool(World& w, const PoolAnswer& p) {
    for (PoolAnswer& q : w.pool) {
      if (q.response.SameAs(p.response)) {
        q.aliases.push_back(p.label);
        return;
      }
    }
    w.pool.push_back(p);
  }

  static std::unique_ptr<KeyClient> Client(const World& w,
                                           const std::string& endpoint,
                                           bool watch) {
    KeyClientOptions o = w.a->ClientOptions();
    o.endpoints = {endpoint};
    o.watch_revocations = watch;
    o.rpc_timeout = absl::Seconds(3);
    auto c = KeyClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  static Truth TruthOf(World& w, KeyClient& client, const Request& r) {
    Truth t;
    Outcome o = RunLookup(client, r);
    t.org = r.peer_name ? "b" : "a";
    if (r.rpc == ProxyRpc::kGetDomainPolicy) {
      EXPECT_TRUE(o.answer != nullptr) << r.Label() << ": " << o.Describe();
      if (!o.answer) return t;
      t.denial = o.answer->denial.has_value();
      if (o.answer->policy) t.mode = o.answer->policy->mode();
      t.pins = UsablePins(*o.answer);
      return t;
    }
    t.kind = o.kind;
    if (o.answer) {
      t.pins = UsablePins(*o.answer);
      t.holder = o.answer->name;
      if (!o.answer->certificates.empty()) {
        t.org = o.answer->certificates[0].body.org();
      }
    }
    return t;
  }

  static void BuildWorld(World& w) {
    w.dir = ShortTempDir();
    w.dead_endpoint = absl::StrCat("unix:", w.dir, "/no-keyd-here.sock");
    w.a = InProcessKeyd::Start(&w.clock, "a");
    w.b = InProcessKeyd::Start(&w.clock, "b");
    ASSERT_NE(w.a, nullptr);
    ASSERT_NE(w.b, nullptr);
    w.a_root_id = Sha256(w.a->root_public_key());
    w.b_root_id = Sha256(w.b->root_public_key());

    // Org b: an enforce domain and its host.
    w.b->AddAndEnroll(kBMx, kBDomain, {kPinB});
    w.b->SetPolicy(kBDomain, v1::POLICY_MODE_ENFORCE);
    // Org a. enforce.example.org starts in testing and moves to enforce
    // below; revoked.example.org is in enforce and its one host is revoked
    // below.
    w.a->AddAndEnroll(kEnforceMx, kEnforceDomain, {kPinEnforce});
    w.a->AddAndEnroll("mx.testing.example.org", "testing.example.org",
                      {kPinTesting});
    w.a->AddAndEnroll("mx.nopin.example.org", "testing.example.org", {});
    w.a->AddAndEnroll("mx.none.example.org", "none.example.org", {kPinNone});
    w.a->AddAndEnroll("mx.unkeyed.example.org", "unkeyed.example.org",
                      {kPinUnkeyed});
    w.a->AddAndEnroll(kRevokedHost, "revoked.example.org", {kPinRevoked});
    w.a->SetPolicy(kEnforceDomain, v1::POLICY_MODE_TESTING);
    w.a->SetPolicy("testing.example.org", v1::POLICY_MODE_TESTING);
    w.a->SetPolicy("none.example.org", v1::POLICY_MODE_NONE);
    w.a->SetPolicy("revoked.example.org", v1::POLICY_MODE_ENFORCE);

    // Every name is asked both as a host and as a domain.
    const std::vector<std::string> own = {kEnforceDomain,
                                          kEnforceMx,
                                          "testing.example.org",
                                          "mx.testing.example.org",
                                          "mx.nopin.example.org",
                                          "none.example.org",
                                          "mx.none.example.org",
                                          "unkeyed.example.org",
                                          "mx.unkeyed.example.org",
                                          "revoked.example.org",
                                          kRevokedHost,
                                          "ghost.example.org"};
    const std::vector<std::string> peer = {kBDomain, kBMx, "ghost.b.example"};
    for (bool is_peer : {false, true}) {
      for (const std::string& n : is_peer ? peer : own) {
        w.requests.push_back({ProxyRpc::kGetHostKeys, n, is_peer});
        w.requests.push_back({ProxyRpc::kGetDomainPolicy, n, is_peer});
      }
    }
    for (const std::string& pin :
         {kPinEnforce, kPinTesting, kPinNone, kPinUnkeyed, kPinRevoked, kPinB,
          kPinNobody}) {
      w.requests.push_back({ProxyRpc::kFindByTlsPin, pin, false});
    }

    // The attacker's pool, in a's history order. S0: before a trusts b
    // (a signs denials for b's names), S1: before enforce.example.org
    // moved from testing to enforce, S2: before mx.revoked was revoked.
    RecordAll(w, "S0(pre-peering)", w.a->endpoint());
    ASSERT_TRUE(AddPeer(*w.a, "b", "b.example", w.b->endpoint(),
                        w.b->root_fingerprint())
                    .ok());
    RecordAll(w, "S1(pre-enforce)", w.a->endpoint());
    w.a->SetPolicy(kEnforceDomain, v1::POLICY_MODE_ENFORCE);
    RecordAll(w, "S2(pre-revocation)", w.a->endpoint());
    w.revocation_seq = w.a->Revoke(kRevokedHost, "key compromise");
    ASSERT_GT(w.revocation_seq, 1u);
    // Nothing else writes to a's feed between the two: the policy change is
    // the event just before the revocation.
    w.policy_seq = w.revocation_seq - 1;
    std::vector<PoolAnswer> now = RecordAll(w, "S3(now)", w.a->endpoint());
    for (size_t i = 0; i < w.requests.size(); ++i) {
      w.current[w.requests[i].Label()] = now[i];
    }

    // Through the proxy with the relayed header (the product answers a
    // relayed lookup of a peer's name with an error: recorded as is).
    for (int i = 0; i < kLanes; ++i) {
      w.proxies.push_back(std::make_unique<OnPathProxy>(w.a->endpoint()));
      ASSERT_FALSE(w.proxies.back()->Start().empty());
    }
    OnPathProxy& proxy = *w.proxies[0];
    proxy.AddRelayedHeader(true);
    std::vector<PoolAnswer> relayed =
        RecordAll(w, "R(relayed header)", proxy.endpoint());
    proxy.Reset();
    for (size_t i = 0; i < w.requests.size(); ++i) {
      w.relayed[w.requests[i].Label()] = relayed[i];
    }
    // Org b's own answers to the same questions (b denies a's names).
    RecordAll(w, "B(b's keyd)", w.b->endpoint());
    // The attacker's own: unsigned errors.
    AddToPool(w, MakePoolAnswer(w, "unsigned NOT_FOUND",
                                RecordedResponse::Unsigned(
                                    grpc::StatusCode::NOT_FOUND,
                                    "no such name (says the attacker)")));
    AddToPool(w, MakePoolAnswer(
                     w, "dropped (unsigned UNAVAILABLE)",
                     RecordedResponse::Unsigned(grpc::StatusCode::UNAVAILABLE,
                                                "dropped by the attacker")));

    // The truth: a genuine client of a, straight at a's keyd.
    std::unique_ptr<KeyClient> genuine = Client(w, w.a->endpoint(), false);
    ASSERT_NE(genuine, nullptr);
    for (const Request& r : w.requests) {
      w.truth[r.Label()] = TruthOf(w, *genuine, r);
    }
    // The setup is what the matrix assumes.
    auto truth = [&](ProxyRpc rpc, const std::string& arg) -> const Truth& {
      return w.truth[Request{rpc, arg}.Label()];
    };
    const Truth& enforce = truth(ProxyRpc::kGetDomainPolicy, kEnforceDomain);
    ASSERT_FALSE(enforce.denial);
    ASSERT_EQ(enforce.mode, v1::POLICY_MODE_ENFORCE);
    ASSERT_EQ(enforce.pins, std::set<std::string>{kPinEnforce});
    ASSERT_EQ(truth(ProxyRpc::kGetDomainPolicy, "testing.example.org").mode,
              v1::POLICY_MODE_TESTING);
    ASSERT_EQ(truth(ProxyRpc::kGetDomainPolicy, "none.example.org").mode,
              v1::POLICY_MODE_NONE);
    ASSERT_TRUE(
        truth(ProxyRpc::kGetDomainPolicy, "unkeyed.example.org").denial);
    ASSERT_TRUE(
        truth(ProxyRpc::kGetDomainPolicy, "revoked.example.org").pins.empty());
    ASSERT_EQ(truth(ProxyRpc::kGetHostKeys, kRevokedHost).kind,
              LookupFailure::kRevoked);
    ASSERT_EQ(truth(ProxyRpc::kGetHostKeys, "ghost.example.org").kind,
              LookupFailure::kUnknown);
    ASSERT_EQ(truth(ProxyRpc::kGetHostKeys, kEnforceDomain).kind,
              LookupFailure::kUnknown);
    ASSERT_EQ(truth(ProxyRpc::kGetHostKeys, "mx.nopin.example.org").kind,
              LookupFailure::kNone);
    const Truth& b_domain = truth(ProxyRpc::kGetDomainPolicy, kBDomain);
    ASSERT_EQ(b_domain.mode, v1::POLICY_MODE_ENFORCE);
    ASSERT_EQ(b_domain.pins, std::set<std::string>{kPinB});
    ASSERT_EQ(truth(ProxyRpc::kGetHostKeys, "ghost.b.example").kind,
              LookupFailure::kUnknown);
    ASSERT_EQ(truth(ProxyRpc::kFindByTlsPin, kPinB).holder, kBMx);
    ASSERT_EQ(truth(ProxyRpc::kFindByTlsPin, kPinRevoked).kind,
              LookupFailure::kRevoked);
    ASSERT_EQ(truth(ProxyRpc::kFindByTlsPin, kPinNobody).kind,
              LookupFailure::kUnknown);
    // The relayed header now gets an error for b's names.
    const std::string b_label =
        Request{ProxyRpc::kGetDomainPolicy, kBDomain}.Label();
    ASSERT_FALSE(w.relayed[b_label].response.ok());

    // A policyd's enforce memory after genuine lookups of the enforce
    // next-hops (its state file is the seed of every policyd cell).
    const std::string seed = absl::StrCat(w.dir, "/seed");
    ASSERT_EQ(mkdir(seed.c_str(), 0700), 0);
    {
      std::unique_ptr<KeyClient> c = Client(w, w.a->endpoint(), false);
      ASSERT_NE(c, nullptr);
      PolicyMaps maps(c.get(), PolicydOptions(w, seed));
      for (const auto& [key, reply] : EnforceNextHops()) {
        ASSERT_EQ(maps.TlsPolicy(key), reply) << key;
      }
    }
    absl::StatusOr<std::string> memory = ReadFile(seed + "/enforce-names");
    ASSERT_TRUE(memory.ok()) << memory.status();
    w.enforce_memory = *memory;
    w.ready = true;
  }

  static PolicyMapsOptions PolicydOptions(World& w,
                                          const std::string& state_dir) {
    PolicyMapsOptions m;
    m.state_dir = state_dir;
    m.clock = &w.clock;
    m.probe_testing = false;  // no STARTTLS probes from the test
    return m;
  }

  // The enforce next-hops and the only "OK" reply each may get.
  static std::vector<std::pair<std::string, std::string>> EnforceNextHops() {
    const std::string own = "OK fingerprint match=" + ColonHex(kPinEnforce);
    const std::string peer = "OK fingerprint match=" + ColonHex(kPinB);
    return {{kEnforceDomain, own},
            {absl::StrCat("[", kEnforceMx, "]"), own},
            {kBDomain, peer},
            {absl::StrCat("[", kBMx, "]"), peer}};
  }

  // What one worker thread owns: its proxy, its scratch directory and its
  // findings.
  struct Lane {
    OnPathProxy* proxy = nullptr;
    std::string dir;
    std::vector<Violation> v;
    std::vector<std::string> exempt, notes;
    size_t reached = 0;
  };
  using Cell = std::function<void(Lane&)>;

  // While it lives, stderr (the product's WARN lines, thousands per
  // matrix) goes to a file: under TEST_UNDECLARED_OUTPUTS_DIR if Bazel set
  // one (kept in outputs.zip), else in the scratch directory.
  class StderrToFile {
   public:
    explicit StderrToFile(const std::string& name) {
      const char* outputs = getenv("TEST_UNDECLARED_OUTPUTS_DIR");
      path_ = absl::StrCat(outputs != nullptr ? outputs : w_->dir, "/", name);
      const int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd < 0) return;
      fflush(stderr);
      saved_ = dup(2);
      dup2(fd, 2);
      close(fd);
    }
    ~StderrToFile() {
      if (saved_ < 0) return;
      fflush(stderr);
      dup2(saved_, 2);
      close(saved_);
      std::cout << "(the product's log lines of this matrix are in " << path_
                << ")\n";
    }

   private:
    std::string path_;
    int saved_ = -1;
  };

  // Runs every cell once, on kLanes threads (each cell wholly on one lane),
  // and returns the findings of all lanes, sorted.
  static Lane RunInLanes(const std::vector<Cell>& cells) {
    StderrToFile quiet(absl::StrCat(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        ".log"));
    std::vector<Lane> lanes(kLanes);
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kLanes; ++i) {
      lanes[i].proxy = w_->proxies[i].get();
      lanes[i].dir = absl::StrCat(w_->dir, "/lane", i);
      mkdir(lanes[i].dir.c_str(), 0700);
      threads.emplace_back([&, i] {
        for (size_t c = next++; c < cells.size(); c = next++)
          cells[c](lanes[i]);
        lanes[i].proxy->Reset();
      });
    }
    for (auto& t : threads) t.join();
    Lane all;
    // Every client is gone: so must be every stream forwarded for one.
    auto open = [] {
      int n = 0;
      for (const auto& p : w_->proxies) n += p->open_streams();
      return n;
    };
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (open() > 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (open() > 0) {
      all.v.push_back(
          {"setup", absl::StrCat(open(),
                                 " forwarded WatchRevocations "
                                 "stream(s) outlived their client")});
    }
    for (Lane& l : lanes) {
      all.v.insert(all.v.end(), l.v.begin(), l.v.end());
      all.exempt.insert(all.exempt.end(), l.exempt.begin(), l.exempt.end());
      all.notes.insert(all.notes.end(), l.notes.begin(), l.notes.end());
      all.reached += l.reached;
    }
    std::sort(all.v.begin(), all.v.end(),
              [](const Violation& x, const Violation& y) {
                return std::tie(x.rule, x.text) < std::tie(y.rule, y.text);
              });
    std::sort(all.exempt.begin(), all.exempt.end());
    std::sort(all.notes.begin(), all.notes.end());
    return all;
  }

  // Proxy knobs for a mode (after Reset).
  static void Arm(OnPathProxy& proxy, const Mode& m) {
    proxy.Reset();
    if (m.drop_bundle) proxy.Drop(ProxyRpc::kGetFederationBundle);
    if (m.drop_feed) proxy.Drop(ProxyRpc::kWatchRevocations);
    if (m.relayed) proxy.AddRelayedHeader(true);
  }

  // A fresh client of a through the lane's proxy, in mode `m`; nullptr
  // (with a violation) if its watch did not start as the mode needs.
  static std::unique_ptr<KeyClient> ModeClient(Lane& lane, const Mode& m,
                                               const std::string& cell) {
    std::unique_ptr<KeyClient> c = Client(*w_, lane.proxy->endpoint(), m.watch);
    if (c == nullptr) return nullptr;
    if (m.watch && !m.drop_feed) {
      if (!c->WaitForFeedPosition(w_->revocation_seq, absl::Seconds(10))) {
        lane.v.push_back(
            {"setup", absl::StrCat(cell, ": the watch never started")});
        return nullptr;
      }
      if (m.drop_backfill) lane.proxy->Drop(ProxyRpc::kWatchRevocations);
    }
    return c;
  }

  // The answer a passthrough cell is served (what keyd says in `m`).
  static const PoolAnswer& Forwarded(const Mode& m, const Request& r) {
    return m.relayed ? w_->relayed.at(r.Label()) : w_->current.at(r.Label());
  }

  // True if the cell is in the documented window for clients that do not
  // follow the feed: an own answer made before the revocation.
  static bool InUnwatchedWindow(const Mode& m, const PoolAnswer& served) {
    return kExemptUnwatchedRevocationWindow && (!m.watch || m.drop_feed) &&
           served.signer == "a" && served.response.ok() &&
           served.feed_head < w_->revocation_seq;
  }
  // The same window for a policy change (it is on the feed too): an own
  // answer for the domain made before the change to enforce.
  static bool InUnwatchedPolicyWindow(const Mode& m, const Request& r,
                                      const PoolAnswer& served) {
    return kExemptUnwatchedRevocationWindow && (!m.watch || m.drop_feed) &&
           r.arg == kEnforceDomain && served.signer == "a" &&
           served.response.ok() && served.feed_head < w_->policy_seq;
  }

  // Every rule of the header comment, for one cell.
  static void Judge(const Mode& m, const Request& r, const PoolAnswer& served,
                    const Outcome& o, Lane& lane) {
    std::vector<Violation>* v = &lane.v;
    std::vector<std::string>* exempt = &lane.exempt;
    std::vector<std::string>* notes = &lane.notes;
    const Truth& t = w_->truth.at(r.Label());
    const std::string cell =
        absl::StrCat("[", m.name, "] ", r.Label(), " <- ", served.Shown(),
                     ": got ", o.Describe(), "; truth ", t.Describe(r.rpc));
    auto fail = [&](const std::string& rule) { v->push_back({rule, cell}); };
    // A revoked key (or pins of one) the window explains.
    auto revoked_extra = [&](const std::set<std::string>& got) {
      for (const auto& p : got) {
        if (!t.pins.count(p) && p != kPinRevoked) return false;
      }
      return true;
    };
    auto window = [&](const std::string& rule) {
      if (InUnwatchedWindow(m, served)) {
        exempt->push_back(absl::StrCat(rule, ": ", cell));
      } else {
        fail(rule);
      }
    };

    if (!served.response.ok() && IsSignedOnlyKind(o.kind)) {
      fail("unsigned error taken as a signed answer");
    }
    if (o.answer) {
      const VerifiedAnswer& a = *o.answer;
      // Whose answer it is.
      for (const VerifiedCert& c : a.certificates) {
        if (c.body.org() != t.org) {
          fail(absl::StrCat("certificate of org ", c.body.org(),
                            " for a name of ", t.org));
          break;
        }
      }
      if (served.response.ok() && served.signer != t.org) {
        fail(absl::StrCat("answer signed by org '", served.signer,
                          "' accepted for a name of org ", t.org));
      }
    }
    switch (r.rpc) {
      case ProxyRpc::kGetHostKeys: {
        if (o.answer) {
          const VerifiedAnswer& a = *o.answer;
          bool shape = a.name == r.arg && !a.policy && !a.denial;
          for (const VerifiedCert& c : a.certificates) {
            shape = shape && c.body.hostname() == r.arg;
          }
          if (!shape) fail("not a host answer for the host asked");
          if (t.kind == LookupFailure::kRevoked ||
              t.kind == LookupFailure::kExpired) {
            window("revoked host yields a usable key");
          } else if (t.kind != LookupFailure::kNone) {
            fail("unknown host yields a key");
          } else if (const std::set<std::string> got = UsablePins(a);
                     !std::includes(t.pins.begin(), t.pins.end(), got.begin(),
                                    got.end())) {
            if (revoked_extra(got)) {
              window("host pins are not its true pins");
            } else {
              fail("host pins are not its true pins");
            }
          }
        } else if (o.kind == LookupFailure::kUnknown &&
                   t.kind != LookupFailure::kUnknown) {
          fail(absl::StrCat(LookupFailureName(t.kind), " host became unknown"));
        } else if (o.kind == LookupFailure::kUnknown &&
                   served.signer != t.org) {
          fail(absl::StrCat("host of org ", t.org, " denied by org '",
                            served.signer, "'"));
        }
        break;
      }
      case ProxyRpc::kGetDomainPolicy: {
        if (!o.answer) break;  // an error: as strict as it gets
        const VerifiedAnswer& a = *o.answer;
        bool shape = a.name == r.arg &&
                     (a.policy.has_value() != a.denial.has_value()) &&
                     (!a.policy || a.policy->domain() == r.arg);
        for (const VerifiedCert& c : a.certificates) {
          const auto& d = c.body.mail_domains();
          shape = shape && std::find(d.begin(), d.end(), r.arg) != d.end();
        }
        if (!shape) fail("not a domain answer for the domain asked");
        const bool denial = a.denial.has_value();
        const v1::PolicyMode mode =
            a.policy ? a.policy->mode() : v1::POLICY_MODE_NONE;
        if (Strictness(denial, mode) < Strictness(t.denial, t.mode)) {
          const std::string rule = absl::StrCat(
              "domain in ", v1::PolicyMode_Name(t.mode), " came back as ",
              denial ? "a denial" : v1::PolicyMode_Name(mode));
          if (!denial && InUnwatchedPolicyWindow(m, r, served)) {
            exempt->push_back(absl::StrCat(rule, ": ", cell));
          } else {
            fail(rule);
          }
        } else if (!denial && mode == v1::POLICY_MODE_ENFORCE) {
          const std::set<std::string> got = UsablePins(a);
          const bool exact = t.mode == v1::POLICY_MODE_ENFORCE
                                 ? got == t.pins
                                 : std::includes(t.pins.begin(), t.pins.end(),
                                                 got.begin(), got.end());
          if (!exact) {
            if (revoked_extra(got) &&
                std::includes(got.begin(), got.end(), t.pins.begin(),
                              t.pins.end())) {
              window("enforce domain's pins are not its true pins");
            } else {
              fail("enforce domain's pins are not its true pins");
            }
          }
        }
        break;
      }
      default: {  // FindByTlsPin
        if (o.answer) {
          const VerifiedAnswer& a = *o.answer;
          if (t.kind == LookupFailure::kRevoked ||
              t.kind == LookupFailure::kExpired) {
            window("revoked host's pin yields a usable key");
          } else if (t.kind != LookupFailure::kNone) {
            fail("a pin no host holds yields a key");
          } else if (a.name != t.holder || !UsablePins(a).count(r.arg)) {
            fail("pin answered with another host");
          }
        } else if (o.kind == LookupFailure::kUnknown &&
                   t.kind == LookupFailure::kNone) {
          notes->push_back(
              absl::StrCat("usable pin answered 'unknown': ", cell));
        }
        break;
      }
    }
  }

  // One substitution (or passthrough, `served` == nullptr) cell of the
  // KeyClient matrix.
  static void RunClientCell(Lane& lane, const Mode& m, const Request& r,
                            const PoolAnswer* served) {
    OnPathProxy& proxy = *lane.proxy;
    Arm(proxy, m);
    const PoolAnswer& what = served ? *served : Forwarded(m, r);
    const std::string label = served ? what.Shown() : "passthrough";
    if (served) proxy.Substitute(r.rpc, r.arg, served->response);
    const std::string cell =
        absl::StrCat("[", m.name, "] ", r.Label(), " <- ", label);
    std::unique_ptr<KeyClient> client = ModeClient(lane, m, cell);
    if (client == nullptr) return;
    const int calls_before = proxy.calls(r.rpc);
    const int subs_before = proxy.substituted(r.rpc, r.arg);
    Outcome o = RunLookup(*client, r);
    const bool reached = served ? proxy.substituted(r.rpc, r.arg) > subs_before
                                : proxy.calls(r.rpc) > calls_before;
    if (!reached) {
      lane.v.push_back({"setup", absl::StrCat(cell,
                                              ": the request never reached "
                                              "the proxy (",
                                              o.Describe(), ")")});
    }
    PoolAnswer shown = what;
    shown.label = label;
    shown.aliases.clear();
    Judge(m, r, shown, o, lane);
  }

  static void Report(const std::string& what, const Lane& found) {
    const std::vector<Violation>& v = found.v;
    const std::vector<std::string>& exempt = found.exempt;
    const std::vector<std::string>& notes = found.notes;
    std::map<std::string, std::vector<std::string>> by_rule;
    for (const Violation& x : v) by_rule[x.rule].push_back(x.text);
    for (const auto& [rule, cells] : by_rule) {
      std::ostringstream text;
      text << what << ": " << cells.size() << " cell(s) violate \"" << rule
           << "\":";
      for (size_t i = 0; i < cells.size() && i < 40; ++i) {
        text << "\n  " << cells[i];
      }
      if (cells.size() > 40) text << "\n  ... " << cells.size() - 40 << " more";
      ADD_FAILURE() << text.str();
    }
    if (!exempt.empty()) {
      std::cout << what << ": " << exempt.size()
                << " cell(s) in the documented window for clients that do "
                   "not follow the revocation feed (PROTOCOL.md section 13; "
                   "not failed):\n";
      for (size_t i = 0; i < exempt.size() && i < 20; ++i) {
        std::cout << "  " << exempt[i] << "\n";
      }
      if (exempt.size() > 20)
        std::cout << "  ... " << exempt.size() - 20 << " more\n";
    }
    // Notes: stricter than the truth, but not what the truth says (a
    // certified client's pin answered "unknown"), by the kind of answer.
    std::map<std::string, std::vector<std::string>> by_kind;
    for (const std::string& n : notes) {
      const bool pin_denial =
          n.find("FindByTlsPin(pin(") != std::string::npos &&
          n.find("<- R(relayed header) FindByTlsPin") != std::string::npos;
      by_kind[pin_denial
                  ? "own-org signed NO_SUCH_PIN got with the relayed header"
                  : "a genuine answer of another question"]
          .push_back(n);
    }
    for (const auto& [kind, cells] : by_kind) {
      std::cout << what << ": note: " << cells.size()
                << " cell(s) where a usable pin came back 'unknown' from "
                << kind << " (stricter for ccert, not failed), e.g.\n";
      for (size_t i = 0; i < cells.size() && i < 3; ++i) {
        std::cout << "  " << cells[i] << "\n";
      }
    }
  }

  static std::vector<Mode> SubstitutionModes() {
    return {
        {"unwatched", false, false, false, false, false},
        {"watching", true, false, false, false, false},
        {"watching, feed back-fill dropped", true, true, false, false, false},
        {"bundle dropped", false, false, false, true, false},
    };
  }
  static std::vector<Mode> PassthroughModes() {
    return {
        {"unwatched", false, false, false, false, false},
        {"watching", true, false, false, false, false},
        {"feed dropped", true, false, true, false, false},
        {"bundle dropped", false, false, false, true, false},
        {"relayed header", false, false, false, false, true},
        {"relayed header, watching", true, false, false, false, true},
        {"relayed header, bundle dropped", false, false, false, true, true},
        {"relayed header, bundle and feed dropped", true, false, true, true,
         true},
    };
  }

  // Writes the seeded enforce memory into the lane's state directory.
  static std::string SeededStateDir(const Lane& lane) {
    const std::string dir = absl::StrCat(lane.dir, "/policyd");
    mkdir(dir.c_str(), 0700);
    std::ofstream(dir + "/enforce-names", std::ios::trunc)
        << w_->enforce_memory;
    return dir;
  }
};

OnPathAttackTest::World* OnPathAttackTest::w_ = nullptr;

TEST_F(OnPathAttackTest, ProxyHeaderIsKeydsRelayedHeader) {
  EXPECT_STREQ(kOnPathRelayedHeader, kRelayedHeader);
}

// The KeyClient matrix: every request x every recorded answer, in every
// substitution mode; and every request passed through in every transport
// mode (bundle dropped, feed dropped, relayed header).
TEST_F(OnPathAttackTest, KeyClientIsNeverLessStrictThanTheTruth) {
  const std::vector<Mode> modes = SubstitutionModes();
  std::vector<Cell> cells;
  std::map<std::string, size_t> per_mode;
  for (const Mode& m : modes) {
    for (const Request& r : w_->requests) {
      for (const PoolAnswer& p : w_->pool) {
        // Without its back-fill the watching client differs only for own
        // answers made before its watch began.
        if (m.drop_backfill &&
            !(p.signer == "a" && p.feed_head < w_->revocation_seq)) {
          continue;
        }
        cells.push_back(
            [m, &r, &p](Lane& lane) { RunClientCell(lane, m, r, &p); });
        ++per_mode[m.name];
      }
    }
  }
  const size_t substitutions = cells.size();
  for (const Mode& m : PassthroughModes()) {
    for (const Request& r : w_->requests) {
      cells.push_back(
          [m, &r](Lane& lane) { RunClientCell(lane, m, r, nullptr); });
    }
  }
  const size_t passthroughs = cells.size() - substitutions;
  const absl::Time start = absl::Now();
  const Lane found = RunInLanes(cells);
  const size_t per_full_mode = w_->requests.size() * w_->pool.size();
  std::cout << "substitution matrix: " << w_->requests.size() << " requests x "
            << w_->pool.size() << " answers = " << per_full_mode
            << " cases per mode; " << substitutions << " cases in "
            << modes.size() << " modes (+ " << passthroughs
            << " passthrough cases in " << PassthroughModes().size()
            << " transport modes), " << kLanes << " lanes, "
            << absl::FormatDuration(absl::Now() - start) << "\n";
  for (const auto& [name, n] : per_mode) {
    std::cout << "  " << name << ": " << n << " cases"
              << (n < per_full_mode
                      ? " (only own answers older than the revocation)"
                      : "")
              << "\n";
  }
  EXPECT_GE(w_->requests.size(), 30u);
  EXPECT_GE(w_->pool.size(), 80u);
  EXPECT_GE(substitutions, 30u * 80u * 3u);
  Report("KeyClient", found);
}

// The cells that broke before the trust-core fix, by name, so they cannot
// drop out of the matrix unnoticed.
TEST_F(OnPathAttackTest, FormerBugCellsAreInTheMatrix) {
  auto pooled = [](const std::string& label) -> const PoolAnswer* {
    for (const PoolAnswer& p : w_->pool) {
      if (p.Is(label)) return &p;
    }
    return nullptr;
  };
  const Mode unwatched{"unwatched", false, false, false, false, false};
  const Mode no_bundle{"bundle dropped", false, false, false, true, false};
  const Mode relayed_no_bundle{
      "relayed header, bundle dropped", false, false, false, true, true};
  const Request enforce{ProxyRpc::kGetDomainPolicy, kEnforceDomain, false};
  const Request b_domain{ProxyRpc::kGetDomainPolicy, kBDomain, true};
  // 1. A host denial named like the domain, for the domain lookup.
  const PoolAnswer* host_denial =
      pooled(absl::StrCat("S3(now) GetHostKeys(", kEnforceDomain, ")"));
  ASSERT_NE(host_denial, nullptr);
  ASSERT_EQ(host_denial->signer, "a");
  ASSERT_TRUE(host_denial->response.answer.has_denial());
  // 2. An own-org denial for a peer's enforce domain (what the relayed
  //    header used to get), with the bundle dropped; and the relayed header
  //    itself with the bundle dropped.
  const PoolAnswer* own_denial =
      pooled(absl::StrCat("S0(pre-peering) GetDomainPolicy(", kBDomain, ")"));
  ASSERT_NE(own_denial, nullptr);
  ASSERT_EQ(own_denial->signer, "a");
  ASSERT_TRUE(own_denial->response.answer.has_denial());
  // 3. An unsigned NOT_FOUND.
  const PoolAnswer* not_found = pooled("unsigned NOT_FOUND");
  ASSERT_NE(not_found, nullptr);

  std::vector<Cell> cells = {
      [&](Lane& l) { RunClientCell(l, unwatched, enforce, host_denial); },
      [&](Lane& l) { RunClientCell(l, no_bundle, enforce, host_denial); },
      [&](Lane& l) { RunClientCell(l, no_bundle, b_domain, own_denial); },
      [&](Lane& l) { RunClientCell(l, unwatched, b_domain, own_denial); },
      [&](Lane& l) { RunClientCell(l, relayed_no_bundle, b_domain, nullptr); },
  };
  const std::vector<Request> unsigned_targets = {
      {ProxyRpc::kGetHostKeys, "ghost.example.org", false},
      {ProxyRpc::kGetHostKeys, kEnforceMx, false},
      {ProxyRpc::kGetDomainPolicy, kEnforceDomain, false},
      {ProxyRpc::kFindByTlsPin, kPinNobody, false},
      {ProxyRpc::kFindByTlsPin, kPinRevoked, false}};
  for (const Request& r : unsigned_targets) {
    cells.push_back([&, r](Lane& l) {
      RunClientCell(l, unwatched, r, not_found);
      Arm(*l.proxy, unwatched);
      l.proxy->Substitute(r.rpc, r.arg, not_found->response);
      std::unique_ptr<KeyClient> c = Client(*w_, l.proxy->endpoint(), false);
      ASSERT_NE(c, nullptr);
      Outcome o = RunLookup(*c, r);
      EXPECT_EQ(o.kind, LookupFailure::kUnavailable)
          << r.Label() << ": " << o.Describe();
    });
  }
  const Lane found = RunInLanes(cells);
  Report("former bug cells", found);
  EXPECT_TRUE(found.exempt.empty());
}

// mxkey-policyd under the same substitutions: the enforce next-hops (own
// and b's) and ccert for a revoked and an unknown pin.
TEST_F(OnPathAttackTest, PolicydNeverDowngradesAnEnforceNextHop) {
  // The dead keyd of the "afterwards" policyd: nothing ever answers there.
  KeyClientOptions dead_options = w_->a->ClientOptions();
  dead_options.endpoints = {w_->dead_endpoint};
  dead_options.watch_revocations = false;
  dead_options.rpc_timeout = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<KeyClient>> created =
      KeyClient::Create(dead_options);
  ASSERT_TRUE(created.ok()) << created.status();
  KeyClient* dead = created->get();

  struct Target {
    std::string key, ok_reply;
    std::vector<Request> requests;  // the lookups its decision rests on
  };
  std::vector<Target> targets;
  for (const auto& [key, reply] : EnforceNextHops()) {
    const bool peer = key.find("b.example") != std::string::npos;
    const std::string domain = peer ? kBDomain : kEnforceDomain;
    const std::string mx = peer ? kBMx : kEnforceMx;
    Target t{key, reply, {{ProxyRpc::kGetDomainPolicy, domain, peer}}};
    if (key[0] == '[') {
      t.requests.insert(t.requests.begin(), {ProxyRpc::kGetHostKeys, mx, peer});
    }
    targets.push_back(t);
  }
  const std::vector<Mode> modes = {
      {"unwatched", false, false, false, false, false},
      {"watching", true, false, false, false, false},
      {"bundle dropped", false, false, false, true, false},
  };
  // tlspolicy: a policyd that saw the next-hop in enforce mode looks it up
  // under the substitution (OK with the true pins, or TEMP), then a policyd
  // with the same state whose keyd is unreachable (TEMP).
  auto tls_cell = [dead](Lane& lane, const Mode& m, const Target& t,
                         const Request* r, const PoolAnswer* served) {
    OnPathProxy& proxy = *lane.proxy;
    Arm(proxy, m);
    if (served) proxy.Substitute(r->rpc, r->arg, served->response);
    const std::string cell =
        absl::StrCat("[", m.name, "] tlspolicy ", t.key, " with ",
                     r ? r->Label() : "every lookup", " <- ",
                     served ? served->Shown() : "passthrough");
    const std::string state = SeededStateDir(lane);
    std::unique_ptr<KeyClient> client = ModeClient(lane, m, cell);
    if (client == nullptr) return;
    const int before = r ? proxy.substituted(r->rpc, r->arg) : 0;
    std::string reply;
    {
      PolicyMaps maps(client.get(), PolicydOptions(*w_, state));
      reply = maps.TlsPolicy(t.key);
    }
    if (r && proxy.substituted(r->rpc, r->arg) > before) ++lane.reached;
    if (reply != t.ok_reply && reply.rfind("TEMP ", 0) != 0) {
      lane.v.push_back({absl::StrCat("enforce next-hop not answered \"",
                                     t.ok_reply, "\" or TEMP"),
                        absl::StrCat(cell, ": \"", reply, "\"")});
    }
    PolicyMaps after(dead, PolicydOptions(*w_, state));
    const std::string later = after.TlsPolicy(t.key);
    if (later.rfind("TEMP ", 0) != 0) {
      lane.v.push_back(
          {"enforce memory lost after a substitution",
           absl::StrCat(cell, ": then \"", reply,
                        "\", and with keyd unreachable \"", later, "\"")});
    }
  };
  // ccert: a revoked host's pin and a pin nobody holds are never "OK".
  auto ccert_cell = [](Lane& lane, const Mode& m, const std::string& pin,
                       const PoolAnswer& p) {
    Arm(*lane.proxy, m);
    lane.proxy->Substitute(ProxyRpc::kFindByTlsPin, pin, p.response);
    const std::string cell =
        absl::StrCat("[", m.name, "] ccert ", PinLabel(pin), " <- ", p.Shown());
    std::unique_ptr<KeyClient> client = ModeClient(lane, m, cell);
    if (client == nullptr) return;
    PolicyMaps maps(client.get(), PolicydOptions(*w_, ""));
    const std::string reply = maps.Ccert(ColonHex(pin));
    if (reply.rfind("OK", 0) == 0) {
      const std::string text = absl::StrCat(cell, ": \"", reply, "\"");
      if (pin == kPinRevoked && InUnwatchedWindow(m, p)) {
        lane.exempt.push_back(
            absl::StrCat("ccert accepts a revoked pin: ", text));
      } else {
        lane.v.push_back({"ccert accepts a revoked or unknown pin", text});
      }
    }
  };

  std::vector<Cell> cells;
  for (const Mode& m : modes) {
    for (const Target& t : targets) {
      for (const Request& r : t.requests) {
        for (const PoolAnswer& p : w_->pool) {
          cells.push_back(
              [&, m, rp = &r, pp = &p](Lane& l) { tls_cell(l, m, t, rp, pp); });
        }
      }
    }
  }
  for (const Mode& m : PassthroughModes()) {
    for (const Target& t : targets) {
      cells.push_back([&, m](Lane& l) { tls_cell(l, m, t, nullptr, nullptr); });
    }
  }
  const size_t tls_cells = cells.size();
  for (const Mode& m : modes) {
    for (const std::string& pin : {kPinRevoked, kPinNobody}) {
      for (const PoolAnswer& p : w_->pool) {
        cells.push_back(
            [&, m, pin, pp = &p](Lane& l) { ccert_cell(l, m, pin, *pp); });
      }
    }
  }
  const size_t ccert_cells = cells.size() - tls_cells;
  const absl::Time start = absl::Now();
  const Lane found = RunInLanes(cells);
  std::cout << "policyd matrix: " << tls_cells << " tlspolicy cases ("
            << targets.size() << " enforce next-hops, " << found.reached
            << " with the substitution served) and " << ccert_cells
            << " ccert cases, " << kLanes << " lanes, "
            << absl::FormatDuration(absl::Now() - start) << "\n";
  EXPECT_GE(tls_cells, 6u * 80u * 3u);
  EXPECT_GE(ccert_cells, 2u * 80u * 3u);
  Report("policyd", found);
}

}  // namespace
}  // namespace mxkey
