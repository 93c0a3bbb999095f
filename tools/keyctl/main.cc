// keyctl: the mxkey admin and host CLI. See README.md for every command.
//
// Exit codes (docs/ARCHITECTURE.md §4): 0 ok/valid, 1 error, 2 usage, 3 no
// valid key, 4 verification failed, 5 stale.
#include <errno.h>
#include <optional>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "CLI/CLI.hpp"
#include "base/version.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/duration_flag.h"
#include "base/files.h"
#include "base/grpc_status.h"
#include "base/time_format.h"
#include "client/answer_verifier.h"
#include "client/key_client.h"
#include "client/keyd_channel.h"
#include "crypto/spki.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "protocol/hostname.h"
#include "protocol/signed_object.h"
#include "client/host_keys.h"
#include "base/json_writer.h"
#include "client/dns_exports.h"

namespace mxkey {
namespace {

enum ExitCode {
  kOk = 0,
  kError = 1,
  kUsage = 2,
  kNoValidKey = 3,
  kVerificationFailed = 4,
  kStale = 5,
};

struct Globals {
  std::string keyd = "127.0.0.1:7700";
  bool keyd_given = false;
  std::string admin_socket;
  std::string root_fingerprint;
  bool json = false;
  int timeout_seconds = 10;
  std::string tls = "auto";
  KeydTransport transport = KeydTransport::kAuto;
};

Globals g;

int Fail(const absl::Status& st, absl::string_view what) {
  std::cerr << "keyctl: " << what << ": " << st.message() << "\n";
  if (st.code() == absl::StatusCode::kUnauthenticated) return kVerificationFailed;
  if (LookupFailureOf(st) == LookupFailure::kStale) return kStale;
  if (st.code() == absl::StatusCode::kFailedPrecondition &&
      absl::StartsWith(st.message(), "stale")) {
    return kStale;
  }
  return kError;
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(g.timeout_seconds));
  return ctx;
}

std::shared_ptr<grpc::Channel> KeydChannel() {
  // keyd's TLS key is checked against --root-fingerprint (any keyd root
  // when none is given, as for `org show`).
  return mxkey::KeydChannel(g.keyd, g.transport, g.root_fingerprint, nullptr);
}

std::shared_ptr<grpc::Channel> AdminChannel() {
  return grpc::CreateChannel(absl::StrCat("unix:", g.admin_socket),
                             grpc::InsecureChannelCredentials());
}

// Why the admin socket cannot be used, in words, or "" if it can be opened.
std::string AdminSocketProblem() {
  if (access(g.admin_socket.c_str(), R_OK | W_OK) == 0) return "";
  const int error = errno;
  if (error == EACCES) {
    return absl::StrCat("permission denied on ", g.admin_socket,
                        " (administering needs membership of keyd's "
                        "--admin-group, or keyd's own user)");
  }
  if (error == ENOENT) {
    return absl::StrCat("no admin socket at ", g.admin_socket,
                        " (is keyd running? give --admin-socket or "
                        "$MXKEY_ADMIN_SOCKET)");
  }
  return absl::StrCat("cannot use ", g.admin_socket, ": ", strerror(error));
}

absl::Status Call(const grpc::Status& st, absl::string_view where) {
  if (st.ok()) return absl::OkStatus();
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE &&
      where == g.admin_socket) {
    const std::string problem = AdminSocketProblem();
    if (!problem.empty()) return absl::UnavailableError(problem);
  }
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach keyd at ", where, ": ", st.error_message()));
  }
  return FromGrpcStatus(st);
}

std::string Hex(absl::string_view b) { return absl::BytesToHexString(b); }

constexpr absl::string_view kNeedRootFingerprint =
    "--root-fingerprint sha256:HEX is required (the trust anchor; see "
    "`keyctl org show`)";

// A KeyClient for one command: no watch, nothing kept on disk.
KeyClientOptions OneShotClientOptions() {
  KeyClientOptions options;
  options.endpoints = {g.keyd};
  options.root_fingerprint = g.root_fingerprint;
  options.transport = g.transport;
  options.rpc_timeout = absl::Seconds(g.timeout_seconds);
  options.watch_revocations = false;
  return options;
}

// keyd's root, checked against --root-fingerprint by KeyClient (the same
// check every lookup makes).
absl::StatusOr<std::shared_ptr<const AnswerVerifier>> TrustedVerifier() {
  if (g.root_fingerprint.empty()) {
    return absl::InvalidArgumentError(kNeedRootFingerprint);
  }
  absl::StatusOr<std::unique_ptr<KeyClient>> client =
      KeyClient::Create(OneShotClientOptions());
  if (!client.ok()) return client.status();
  return (*client)->Verifier();
}

const char* StateName(VerifiedCertState s) {
  switch (s) {
    case VerifiedCertState::kActive: return "active";
    case VerifiedCertState::kNext: return "next";
    case VerifiedCertState::kRevoked: return "revoked";
    case VerifiedCertState::kExpired: return "expired";
  }
  return "unknown";
}

int PrintTokenResponse(const mxkey::v1::TokenResponse& r) {
  if (g.json) {
    std::cout << JsonObject()
                     .Str("hostname", r.hostname())
                     .Str("token", r.token())
                     .Int("expires_at", r.expires_at())
                     .Build()
              << "\n";
  } else {
    std::cout << "one-time enrollment token for " << r.hostname()
              << " (shown once, expires " << FormatUnixTime(r.expires_at()) << "):\n"
              << r.token() << "\n";
  }
  return kOk;
}

int OrgShow() {
  // The admin socket serves lookups too; use it unless --keyd was given.
  // A socket that exists but cannot be opened is an answer in itself (not
  // a reason to try TCP and report "connection refused" there).
  bool use_admin = !g.keyd_given && access(g.admin_socket.c_str(), F_OK) == 0;
  if (use_admin && !AdminSocketProblem().empty()) {
    return Fail(absl::PermissionDeniedError(AdminSocketProblem()), "org show");
  }
  auto stub = mxkey::v1::KeyDirectory::NewStub(use_admin ? AdminChannel()
                                                         : KeydChannel());
  mxkey::v1::OrgInfo info;
  auto ctx = Context();
  absl::Status st = Call(stub->GetOrgInfo(ctx.get(), {}, &info),
                         use_admin ? g.admin_socket : g.keyd);
  if (!st.ok()) return Fail(st, "org show");
  // The current issuing key: its age and when keyd renews it (at two
  // thirds of its validity; host certificates are re-certified then).
  mxkey::v1::IssuingKeyBody issuing;
  issuing.ParseFromString(info.issuing_key().body());
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const int64_t renews_at =
      issuing.not_after() - (issuing.not_after() - issuing.not_before()) / 3;
  const int64_t age_days = (now - issuing.not_before()) / 86400;
  const bool expiring = issuing.not_after() - now < 7 * 86400;
  // Re-certification progress is the admin's business: only on the socket.
  std::optional<mxkey::v1::RenewalStatus> renewal;
  if (use_admin) {
    mxkey::v1::RenewalStatus r;
    auto rctx = Context();
    if (Call(mxkey::v1::Admin::NewStub(AdminChannel())
                 ->GetRenewalStatus(rctx.get(), {}, &r),
             g.admin_socket)
            .ok()) {
      renewal = r;
    }
  }
  if (g.json) {
    JsonObject json;
    json.Str("org", info.org())
        .Str("root_fingerprint", info.root_fingerprint())
        .Str("issuing_not_before", FormatUnixTime(issuing.not_before()))
        .Str("issuing_not_after", FormatUnixTime(issuing.not_after()))
        .Str("issuing_renews_at", FormatUnixTime(renews_at))
        .Int("issuing_age_days", age_days);
    if (renewal) {
      json.Raw("recertification",
               JsonObject()
                   .Raw("in_progress", renewal->in_progress() ? "true" : "false")
                   .Int("certificates_recertified",
                        static_cast<int64_t>(renewal->certificates_recertified()))
                   .Int("policies_resigned",
                        static_cast<int64_t>(renewal->policies_resigned()))
                   .Int("pending", static_cast<int64_t>(renewal->pending()))
                   .Int("last_pass_at", renewal->last_pass_at())
                   .Int("next_due_at", renewal->next_due_at())
                   .Build());
    }
    std::cout << json.Build() << "\n";
  } else {
    std::cout << "org: " << info.org() << "\nroot_fingerprint: "
              << info.root_fingerprint() << "\nissuing key: "
              << age_days << " days old, valid until "
              << FormatUnixTime(issuing.not_after()) << ", renewed by keyd at "
              << FormatUnixTime(renews_at) << "\n";
    if (renewal) {
      std::cout << "re-certification: "
                << (renewal->in_progress() ? "in progress, " : "last pass ")
                << renewal->certificates_recertified()
                << " host certificates and " << renewal->policies_resigned()
                << " policies re-signed, " << renewal->pending()
                << " still due";
      if (!renewal->in_progress() && renewal->last_pass_at() != 0) {
        std::cout << ", finished " << FormatUnixTime(renewal->last_pass_at());
      }
      if (renewal->next_due_at() != 0) {
        std::cout << "; next due " << FormatUnixTime(renewal->next_due_at());
      }
      std::cout << "\n";
    }
  }
  if (expiring) {
    std::cerr << "keyctl: warning: the issuing key expires within 7 days and "
                 "keyd has not renewed it: is keyd running?\n";
  }
  // keyd re-scans every minute once something is due: a pass that ended
  // with work left, or a due time long past, means renewal is failing.
  if (renewal && !renewal->in_progress() &&
      (renewal->pending() > 0 ||
       (renewal->next_due_at() != 0 && renewal->next_due_at() < now - 300))) {
    std::cerr << "keyctl: warning: re-certification is behind ("
              << renewal->pending()
              << " still due): host certificates will expire; look for "
                 "re-certification errors in keyd's log\n";
  }
  return kOk;
}

int HostAdd(const std::string& host, const std::vector<std::string>& domains) {
  mxkey::v1::AddHostRequest req;
  req.set_hostname(host);
  for (const auto& d : domains) req.add_mail_domains(d);
  mxkey::v1::TokenResponse resp;
  auto ctx = Context();
  absl::Status st = Call(
      mxkey::v1::Admin::NewStub(AdminChannel())->AddHost(ctx.get(), req, &resp),
      g.admin_socket);
  if (!st.ok()) return Fail(st, "host add");
  return PrintTokenResponse(resp);
}

int TokenCreate(const std::string& host) {
  mxkey::v1::CreateEnrollmentTokenRequest req;
  req.set_hostname(host);
  mxkey::v1::TokenResponse resp;
  auto ctx = Context();
  absl::Status st = Call(mxkey::v1::Admin::NewStub(AdminChannel())
                             ->CreateEnrollmentToken(ctx.get(), req, &resp),
                         g.admin_socket);
  if (!st.ok()) return Fail(st, "token create");
  return PrintTokenResponse(resp);
}

std::string HostJson(const mxkey::v1::HostSummary& h) {
  return JsonObject()
      .Str("hostname", h.hostname())
      .Raw("mail_domains",
           JsonStringArray({h.mail_domains().begin(), h.mail_domains().end()}))
      .Str("state", h.state())
      .Int("active_serial", static_cast<int64_t>(h.active_serial()))
      .Int("next_serial", static_cast<int64_t>(h.next_serial()))
      .Int("next_active_from", h.next_active_from())
      .Build();
}

int HostList(const std::string& only) {
  mxkey::v1::ListHostsResponse resp;
  auto ctx = Context();
  absl::Status st = Call(mxkey::v1::Admin::NewStub(AdminChannel())
                             ->ListHosts(ctx.get(), {}, &resp),
                         g.admin_socket);
  if (!st.ok()) return Fail(st, only.empty() ? "host list" : "host show");
  std::string wanted;
  if (!only.empty()) {
    absl::StatusOr<std::string> name = CanonicalHostname(only);
    if (!name.ok()) return Fail(name.status(), "host show");
    wanted = *name;
  }
  std::vector<std::string> rows;
  for (const auto& h : resp.hosts()) {
    if (!wanted.empty() && h.hostname() != wanted) continue;
    if (g.json) {
      rows.push_back(HostJson(h));
    } else {
      rows.push_back(absl::StrCat(
          h.hostname(), "  state=", h.state(),
          "  domains=", absl::StrJoin(h.mail_domains(), ","),
          "  active_serial=", h.active_serial(),
          "  next_serial=", h.next_serial(),
          h.next_serial() == 0
              ? ""
              : absl::StrCat("  next_active_from=",
                             FormatUnixTime(h.next_active_from()))));
    }
  }
  if (!wanted.empty() && rows.empty()) {
    std::cerr << "keyctl: host show: no host named " << wanted
              << " is registered\n";
    return kNoValidKey;
  }
  if (g.json) {
    std::cout << (wanted.empty() ? JsonArray(rows) : rows.front()) << "\n";
  } else {
    for (const auto& r : rows) std::cout << r << "\n";
  }
  return kOk;
}

std::string PeerJson(const mxkey::v1::PeerInfo& p) {
  return JsonObject()
      .Str("org", p.org())
      .Raw("domain_suffixes", JsonStringArray({p.domain_suffixes().begin(),
                                               p.domain_suffixes().end()}))
      .Str("endpoint", p.endpoint())
      .Str("root_fingerprint", p.root_fingerprint())
      .Int("added_at", p.added_at())
      .Int("bundle_version", static_cast<int64_t>(p.bundle_version()))
      .Build();
}

std::string PeerLine(const mxkey::v1::PeerInfo& p) {
  return absl::StrCat(p.org(), "  suffixes=", absl::StrJoin(p.domain_suffixes(), ","),
                      "  endpoint=", p.endpoint(), "  root=", p.root_fingerprint(),
                      "  bundle_version=", p.bundle_version());
}

int PeerAdd(const std::string& org, const std::vector<std::string>& suffixes,
            const std::string& endpoint, const std::string& fingerprint) {
  mxkey::v1::AddPeerRequest req;
  req.set_org(org);
  for (const auto& s : suffixes) req.add_domain_suffixes(s);
  req.set_endpoint(endpoint);
  req.set_root_fingerprint(fingerprint);
  mxkey::v1::PeerInfo resp;
  auto ctx = Context();
  absl::Status st = Call(
      mxkey::v1::Admin::NewStub(AdminChannel())->AddPeer(ctx.get(), req, &resp),
      g.admin_socket);
  if (!st.ok()) return Fail(st, "peer add");
  std::cout << (g.json ? PeerJson(resp) : "peer added: " + PeerLine(resp))
            << "\n";
  return kOk;
}

int PeerList(const std::string& only) {
  mxkey::v1::ListPeersResponse resp;
  auto ctx = Context();
  absl::Status st = Call(mxkey::v1::Admin::NewStub(AdminChannel())
                             ->ListPeers(ctx.get(), {}, &resp),
                         g.admin_socket);
  const char* what = only.empty() ? "peer list" : "peer show";
  if (!st.ok()) return Fail(st, what);
  std::vector<std::string> rows;
  for (const auto& p : resp.peers()) {
    if (!only.empty() && p.org() != only) continue;
    rows.push_back(g.json ? PeerJson(p) : PeerLine(p));
  }
  if (!only.empty() && rows.empty()) {
    std::cerr << "keyctl: peer show: no peer named " << only << "\n";
    return kNoValidKey;
  }
  if (g.json) {
    std::cout << (only.empty() ? JsonArray(rows) : rows.front()) << "\n";
  } else {
    for (const auto& r : rows) std::cout << r << "\n";
  }
  return kOk;
}

int PeerRemove(const std::string& org) {
  mxkey::v1::RemovePeerRequest req;
  req.set_org(org);
  mxkey::v1::RemovePeerResponse resp;
  auto ctx = Context();
  absl::Status st = Call(mxkey::v1::Admin::NewStub(AdminChannel())
                             ->RemovePeer(ctx.get(), req, &resp),
                         g.admin_socket);
  if (!st.ok()) return Fail(st, "peer remove");
  std::cout << "peer " << org << " removed; federation bundle version "
            << resp.bundle_version() << "\n";
  return kOk;
}

int HostRemove(const std::string& host) {
  mxkey::v1::RemoveHostRequest req;
  req.set_hostname(host);
  mxkey::v1::RemoveHostResponse resp;
  auto ctx = Context();
  absl::Status st = Call(mxkey::v1::Admin::NewStub(AdminChannel())
                             ->RemoveHost(ctx.get(), req, &resp),
                         g.admin_socket);
  if (!st.ok()) return Fail(st, "host remove");
  std::cout << "removed " << host << "; revoked serials: "
            << absl::StrJoin(resp.revoked_serials(), ",") << "\n";
  return kOk;
}

// Sends an Enroll or Rotate request for `keys`, verifies the issued
// certificate against the trust anchor and the keys, and saves keys and
// certificate in `key_dir`/`subdir`. The keys are staged on disk before the
// request goes out, so a certificate keyd issued never lacks its keys.
template <typename Request>
absl::StatusOr<mxkey::v1::HostCertificateBody> IssueAndSave(
    grpc::Status (mxkey::v1::Enrollment::Stub::*rpc)(
        grpc::ClientContext*, const Request&, mxkey::v1::EnrollResponse*),
    const Request& request, const HostKeys& keys, const std::string& key_dir,
    const std::string& subdir) {
  auto channel = KeydChannel();
  absl::StatusOr<std::shared_ptr<const AnswerVerifier>> verifier =
      TrustedVerifier();
  if (!verifier.ok()) return verifier.status();
  absl::Status st = SaveHostKeys(key_dir, "staging", keys, nullptr);
  if (!st.ok()) return st;
  mxkey::v1::EnrollResponse response;
  auto ctx = Context();
  auto stub = mxkey::v1::Enrollment::NewStub(channel);
  st = Call(((*stub).*rpc)(ctx.get(), request, &response), g.keyd);
  if (!st.ok()) {
    RemoveHostKeys(key_dir, "staging");
    return st;
  }
  absl::StatusOr<mxkey::v1::HostCertificateBody> cert =
      (*verifier)->VerifyEnrollment(response, absl::Now());
  if (!cert.ok()) return cert.status();
  if (cert->identity_key() != keys.identity.public_key() ||
      cert->agreement_key() != keys.agreement.public_key()) {
    return absl::UnauthenticatedError(
        "keyd returned a certificate for other keys than ours");
  }
  st = SaveHostKeys(key_dir, subdir, keys, &response);
  if (!st.ok()) return st;
  RemoveHostKeys(key_dir, "staging");
  return cert;
}

// The enrollment token, from stdin (--token -), a file only its owner can
// read (--token-file), or $MXKEY_ENROLL_TOKEN; never from the command line,
// which every local user reads in /proc/PID/cmdline and could enroll first.
absl::StatusOr<std::string> EnrollmentToken(const std::string& flag,
                                            const std::string& file) {
  const char* env = getenv("MXKEY_ENROLL_TOKEN");
  const int given = (!flag.empty()) + (!file.empty()) + (env != nullptr);
  if (given != 1) {
    return absl::InvalidArgumentError(
        given == 0 ? "give the token on stdin (--token -), in a file "
                     "(--token-file F, mode 0600) or in $MXKEY_ENROLL_TOKEN"
                   : "give the token one way only (--token -, --token-file "
                     "or $MXKEY_ENROLL_TOKEN)");
  }
  std::string token;
  if (!flag.empty()) {
    if (flag != "-") {
      return absl::InvalidArgumentError(
          "refusing a token on the command line: any local user can read it "
          "from /proc/PID/cmdline and enroll first; use --token - (stdin), "
          "--token-file F (mode 0600) or $MXKEY_ENROLL_TOKEN");
    }
    if (!std::getline(std::cin, token)) {
      return absl::InvalidArgumentError("--token -: no token on stdin");
    }
  } else if (!file.empty()) {
    struct stat st;
    if (stat(file.c_str(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--token-file ", file, ": ", strerror(errno)));
    }
    if ((st.st_mode & 077) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--token-file ", file, " is readable by others (mode ",
          absl::StrFormat("%04o", st.st_mode & 07777),
          "): chmod 600 it, and make a new token if it was exposed"));
    }
    absl::StatusOr<std::string> read = ReadFile(file, 4096);
    if (!read.ok()) return read.status();
    token = *std::move(read);
  } else {
    token = env;
  }
  token = std::string(absl::StripAsciiWhitespace(token));
  return token;
}

// keyctl's usage error for a missing trust anchor, or OK.
bool HaveRootFingerprint(absl::string_view command) {
  if (!g.root_fingerprint.empty()) return true;
  std::cerr << "keyctl: " << command << ": " << kNeedRootFingerprint << "\n";
  return false;
}

// The TLS pin to certify, from --tls-key (the MTA's private key file: its
// pin, with a proof of possession keyd needs for a pin the host does not
// hold yet) and/or --tls-cert (a certificate of that key: its pin alone,
// enough for a pin the host already holds).
struct TlsPinFlags {
  std::vector<std::string> pins;      // certified without a new proof
  std::optional<TlsKeySigner> key;    // certified with a proof
  std::vector<const TlsKeySigner*> keys() const {
    return key ? std::vector<const TlsKeySigner*>{&*key}
               : std::vector<const TlsKeySigner*>{};
  }
};

absl::StatusOr<TlsPinFlags> ReadTlsPinFlags(const std::string& tls_cert,
                                            const std::string& tls_key) {
  TlsPinFlags out;
  absl::StatusOr<std::vector<std::string>> pins = PinsFromPemFile(tls_cert);
  if (!pins.ok()) return pins.status();
  if (tls_key.empty()) {
    out.pins = *std::move(pins);
    return out;
  }
  absl::StatusOr<TlsKeySigner> key = TlsKeyFromPemFile(tls_key);
  if (!key.ok()) return key.status();
  if (!pins->empty() && (*pins)[0] != key->pin()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-cert ", tls_cert, " is not a certificate of the key in --tls-key ",
        tls_key));
  }
  out.key = *std::move(key);
  return out;
}

int Enroll(const std::string& host, const std::string& token,
           const std::string& key_dir, const std::string& tls_cert,
           const std::string& tls_key) {
  if (!HaveRootFingerprint("enroll")) return kUsage;
  absl::StatusOr<std::string> name = CanonicalHostname(host);
  if (!name.ok()) return Fail(name.status(), "enroll");
  absl::StatusOr<Ed25519PrivateKey> token_key = TokenKey(token);
  if (!token_key.ok()) return Fail(token_key.status(), "enroll");
  absl::StatusOr<TlsPinFlags> tls = ReadTlsPinFlags(tls_cert, tls_key);
  if (!tls.ok()) return Fail(tls.status(), "enroll");
  absl::StatusOr<HostKeys> keys = HostKeys::Generate();
  if (!keys.ok()) return Fail(keys.status(), "enroll");
  absl::StatusOr<mxkey::v1::EnrollRequest> req = MakeEnrollRequest(
      *name, *token_key, *keys, tls->pins, absl::Now(), tls->keys());
  if (!req.ok()) return Fail(req.status(), "enroll");
  absl::StatusOr<mxkey::v1::HostCertificateBody> cert = IssueAndSave(
      &mxkey::v1::Enrollment::Stub::Enroll, *req, *keys, key_dir, "");
  if (!cert.ok()) return Fail(cert.status(), "enroll");
  std::cout << "enrolled " << *name << " serial " << cert->serial()
            << ", valid until " << FormatUnixTime(cert->not_after()) << "; keys in "
            << key_dir << "\n";
  return kOk;
}

int Rotate(const std::string& host, const std::string& key_dir,
           const std::string& tls_cert, const std::string& tls_key,
           const std::string& overlap_text) {
  if (!HaveRootFingerprint("rotate")) return kUsage;
  absl::StatusOr<std::string> name = CanonicalHostname(host);
  if (!name.ok()) return Fail(name.status(), "rotate");
  absl::StatusOr<bool> promoted = PromoteNextKeysIfActive(key_dir, absl::Now());
  if (!promoted.ok()) return Fail(promoted.status(), "rotate");
  absl::StatusOr<HostKeys> current = LoadHostKeys(key_dir, "");
  if (!current.ok()) return Fail(current.status(), "rotate: current keys");
  absl::StatusOr<mxkey::v1::EnrollResponse> current_cert =
      LoadCertificate(key_dir, "");
  if (!current_cert.ok()) return Fail(current_cert.status(), "rotate");
  absl::StatusOr<mxkey::v1::HostCertificateBody> body =
      ParseBody<mxkey::v1::HostCertificateBody>(current_cert->certificate());
  if (!body.ok()) return Fail(body.status(), "rotate");
  absl::StatusOr<TlsPinFlags> tls = ReadTlsPinFlags(tls_cert, tls_key);
  if (!tls.ok()) return Fail(tls.status(), "rotate");
  if (tls_cert.empty() && tls_key.empty()) {
    // The TLS key stays: the host holds its pins already.
    tls->pins = std::vector<std::string>(body->tls_spki_sha256().begin(),
                                         body->tls_spki_sha256().end());
  }
  std::vector<std::string> all_pins = tls->pins;
  if (tls->key) all_pins.push_back(tls->key->pin());
  const std::vector<std::string>* pins = &all_pins;
  absl::Duration overlap = absl::ZeroDuration();
  if (!overlap_text.empty()) {
    absl::StatusOr<absl::Duration> d =
        ParseDurationFlag(overlap_text, "--overlap");
    if (!d.ok()) return Fail(d.status(), "rotate");
    overlap = *d;
  }
  // Begun already (a hook that runs twice): the same request again is done,
  // another one must wait for the finish.
  absl::StatusOr<mxkey::v1::EnrollResponse> pending =
      LoadCertificate(key_dir, "next");
  if (pending.ok()) {
    absl::StatusOr<mxkey::v1::HostCertificateBody> next_body =
        ParseBody<mxkey::v1::HostCertificateBody>(pending->certificate());
    if (!next_body.ok()) return Fail(next_body.status(), "rotate");
    const std::vector<std::string> next_pins(
        next_body->tls_spki_sha256().begin(), next_body->tls_spki_sha256().end());
    if (next_body->hostname() == *name && next_pins == *pins) {
      std::cout << "rotation of " << *name << " already begun: next serial "
                << next_body->serial() << " is pre-published; both keys are "
                << "in use until " << FormatUnixTime(next_body->active_from())
                << ". Switch the MTA to the new TLS key, then run keyctl "
                   "rotate --finish "
                << *name << " --key-dir " << key_dir << "\n";
      return kOk;
    }
    std::cerr << "keyctl: rotate: a rotation of "
              << absl::CHexEscape(next_body->hostname())
              << " with other TLS pins is pending in " << key_dir
              << " (next serial " << next_body->serial()
              << "); finish it first (keyctl rotate --finish), or wait until "
              << FormatUnixTime(next_body->active_from()) << "\n";
    return kError;
  }
  absl::StatusOr<HostKeys> next = HostKeys::Generate();
  if (!next.ok()) return Fail(next.status(), "rotate");
  absl::StatusOr<mxkey::v1::RotateRequest> req =
      MakeRotateRequest(*name, body->serial(), current->identity, *next,
                        tls->pins, absl::Now(), overlap, tls->keys());
  if (!req.ok()) return Fail(req.status(), "rotate");
  absl::StatusOr<mxkey::v1::HostCertificateBody> cert = IssueAndSave(
      &mxkey::v1::Enrollment::Stub::Rotate, *req, *next, key_dir, "next");
  if (!cert.ok()) return Fail(cert.status(), "rotate");
  std::cout << "rotation of " << *name << ": next serial " << cert->serial()
            << " pre-published; both keys are in use until "
            << FormatUnixTime(cert->active_from())
            << ". Switch the MTA to the new TLS key, then run keyctl rotate "
               "--finish "
            << *name << " --key-dir " << key_dir << "\n";
  return kOk;
}

// keyctl rotate --finish: the host uses its next keys now; keyd makes them
// active and withdraws the old ones.
int RotateFinish(const std::string& host, const std::string& key_dir) {
  if (!HaveRootFingerprint("rotate --finish")) return kUsage;
  absl::StatusOr<std::string> name = CanonicalHostname(host);
  if (!name.ok()) return Fail(name.status(), "rotate --finish");
  absl::StatusOr<mxkey::v1::EnrollResponse> next_cert =
      LoadCertificate(key_dir, "next");
  if (absl::IsNotFound(next_cert.status())) {
    // Finished already (a hook that runs twice), or never begun: either
    // way the current keys are the ones in use and nothing is left to do.
    absl::StatusOr<mxkey::v1::EnrollResponse> current =
        LoadCertificate(key_dir, "");
    if (!current.ok()) return Fail(current.status(), "rotate --finish");
    absl::StatusOr<mxkey::v1::HostCertificateBody> body =
        ParseBody<mxkey::v1::HostCertificateBody>(current->certificate());
    if (!body.ok()) return Fail(body.status(), "rotate --finish");
    std::cout << "no rotation of " << *name << " is pending in " << key_dir
              << ": serial " << body->serial()
              << " is the current key (finished already, or never begun); "
                 "nothing to do\n";
    return kOk;
  }
  if (!next_cert.ok()) return Fail(next_cert.status(), "rotate --finish");
  absl::StatusOr<mxkey::v1::HostCertificateBody> body =
      ParseBody<mxkey::v1::HostCertificateBody>(next_cert->certificate());
  if (!body.ok()) return Fail(body.status(), "rotate --finish");
  if (body->hostname() != *name) {
    std::cerr << "keyctl: rotate --finish: the next keys in " << key_dir
              << " belong to " << absl::CHexEscape(body->hostname())
              << ", not " << *name << "\n";
    return kError;
  }
  absl::StatusOr<HostKeys> next = LoadHostKeys(key_dir, "next");
  if (!next.ok()) return Fail(next.status(), "rotate --finish: next keys");
  absl::StatusOr<mxkey::v1::FinishRotationRequest> req =
      MakeFinishRotationRequest(*name, body->serial(), next->identity,
                                absl::Now());
  if (!req.ok()) return Fail(req.status(), "rotate --finish");
  // The next keys become the current ones, with the re-signed certificate.
  absl::StatusOr<mxkey::v1::HostCertificateBody> cert =
      IssueAndSave(&mxkey::v1::Enrollment::Stub::FinishRotation, *req, *next,
                   key_dir, "");
  if (!cert.ok()) return Fail(cert.status(), "rotate --finish");
  RemoveHostKeys(key_dir, "next");
  std::cout << "rotation of " << *name << " finished: serial "
            << cert->serial() << " is active since "
            << FormatUnixTime(cert->active_from())
            << "; the old key has left answers\n";
  return kOk;
}

int Revoke(const std::string& host, uint64_t serial,
           const std::string& reason) {
  mxkey::v1::RevokeRequest req;
  req.set_hostname(host);
  req.set_serial(serial);
  req.set_reason(reason);
  mxkey::v1::RevokeResponse resp;
  auto ctx = Context();
  absl::Status st = Call(
      mxkey::v1::Admin::NewStub(AdminChannel())->Revoke(ctx.get(), req, &resp),
      g.admin_socket);
  if (!st.ok()) return Fail(st, "revoke");
  std::cout << "revoked " << host << " serials "
            << absl::StrJoin(resp.revoked_serials(), ",") << " (feed seq "
            << resp.feed_seq() << ")\n";
  return kOk;
}

std::string CertJson(const VerifiedCert& c) {
  std::vector<std::string> pins;
  for (const auto& p : c.body.tls_spki_sha256()) pins.push_back(Hex(p));
  return JsonObject()
      .Int("serial", static_cast<int64_t>(c.body.serial()))
      .Str("state", StateName(c.state))
      .Str("not_before", FormatUnixTime(c.body.not_before()))
      .Str("not_after", FormatUnixTime(c.body.not_after()))
      .Str("active_from", FormatUnixTime(c.body.active_from()))
      .Str("identity_key", Hex(c.body.identity_key()))
      .Str("agreement_key", Hex(c.body.agreement_key()))
      .Raw("tls_spki_sha256", JsonStringArray(pins))
      .Build();
}

// Lookup of a host (is_domain false) or a domain's policy, through the
// same KeyClient (verification and all) that the MTA hooks use.
// Prints a domain's verified keys as DNS records (TLSA) or an MTA-STS
// policy file. Only verified answers are exported.
int Export(const std::string& kind, const std::string& domain,
           int64_t max_age) {
  const std::string what = "export " + kind;
  if (!HaveRootFingerprint(what.c_str())) return kUsage;
  absl::StatusOr<std::unique_ptr<KeyClient>> client =
      KeyClient::Create(OneShotClientOptions());
  if (!client.ok()) return Fail(client.status(), what.c_str());
  absl::StatusOr<AnswerRef> answer = (*client)->LookupDomain(domain);
  if (!answer.ok()) return Fail(answer.status(), what.c_str());
  if (kind == "tlsa") {
    const std::string records = TlsaRecords(**answer);
    if (records.empty()) {
      std::cerr << "keyctl: export tlsa: " << (*answer)->name
                << " has no MX host with a usable TLS pin\n";
      return kNoValidKey;
    }
    std::cout << records;
  } else {
    std::cout << MtaStsPolicy(**answer, max_age);
  }
  return 0;
}

// The org's hosts that serve mail domain `domain` (admin socket), sorted;
// empty if the socket cannot be asked.
std::vector<std::string> HostsServing(const std::string& domain) {
  mxkey::v1::ListHostsResponse resp;
  auto ctx = Context();
  std::vector<std::string> out;
  if (!mxkey::v1::Admin::NewStub(AdminChannel())
           ->ListHosts(ctx.get(), {}, &resp)
           .ok()) {
    return out;
  }
  for (const auto& h : resp.hosts()) {
    for (const auto& d : h.mail_domains()) {
      if (d == domain) out.push_back(h.hostname());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

int Lookup(const std::string& input, bool is_domain) {
  const char* what = is_domain ? "policy show" : "lookup";
  if (!HaveRootFingerprint(what)) return kUsage;
  absl::StatusOr<std::unique_ptr<KeyClient>> client =
      KeyClient::Create(OneShotClientOptions());
  if (!client.ok()) {
    if (client.status().code() == absl::StatusCode::kInvalidArgument) {
      std::cerr << "keyctl: " << what << ": " << client.status().message()
                << "\n";
      return kUsage;
    }
    return Fail(client.status(), what);
  }
  absl::StatusOr<AnswerRef> verified = is_domain
                                           ? (*client)->LookupDomain(input)
                                           : (*client)->LookupHostAnswer(input);
  if (!verified.ok()) return Fail(verified.status(), what);
  const std::string& name = (*verified)->name;
  absl::Status usable =
      is_domain ? absl::OkStatus() : (*client)->LookupHost(name).status();

  // A domain without a published policy is answered with a signed
  // "unkeyed" denial: say so, and (for an admin) which hosts serve it.
  const bool unkeyed = is_domain && !(*verified)->policy;
  std::vector<std::string> enrolled;
  if (unkeyed && AdminSocketProblem().empty()) enrolled = HostsServing(name);
  std::string status = is_domain
                           ? ((*verified)->HasValidKey() ? "valid"
                              : unkeyed                  ? "unkeyed"
                                                         : "unknown")
                           : usable.ok() ? "valid"
                                         : std::string(LookupFailureName(
                                               LookupFailureOf(usable)));
  std::string mode = "none";
  if ((*verified)->policy) {
    mode = (*verified)->policy->mode() == mxkey::v1::POLICY_MODE_ENFORCE ? "enforce"
           : (*verified)->policy->mode() == mxkey::v1::POLICY_MODE_TESTING
               ? "testing"
               : "none";
  }
  if (g.json) {
    std::vector<std::string> certs;
    for (const auto& c : (*verified)->certificates) certs.push_back(CertJson(c));
    JsonObject out;
    out.Str(is_domain ? "domain" : "hostname", name).Str("status", status);
    if (is_domain) out.Str("mode", mode);
    if (unkeyed) {
      std::vector<std::string> hosts;
      for (const std::string& h : enrolled) {
        hosts.push_back(JsonObject().Str("hostname", h).Build());
      }
      out.Raw("enrolled_hosts", JsonArray(hosts));
    }
    out.Raw("certificates", JsonArray(certs))
        .Int("feed_head", static_cast<int64_t>((*verified)->freshness.feed_head()))
        .Str("fresh_until", FormatUnixTime((*verified)->freshness.valid_until()));
    std::cout << out.Build() << "\n";
  } else {
    std::cout << name << ": " << status;
    if (is_domain) std::cout << " (mode " << mode << ")";
    std::cout << "\n";
    if (unkeyed) {
      std::cout << "  no policy is published, so peers see no hosts for it; "
                   "keyctl policy set "
                << name << " --mode testing publishes them\n";
      for (const std::string& h : enrolled) {
        std::cout << "  enrolled host " << h << "\n";
      }
    }
    for (const auto& c : (*verified)->certificates) {
      std::cout << "  serial " << c.body.serial() << " " << StateName(c.state)
                << (is_domain ? absl::StrCat(" host ", c.body.hostname()) : "")
                << " valid " << FormatUnixTime(c.body.not_before()) << " .. "
                << FormatUnixTime(c.body.not_after()) << "\n";
      for (const auto& p : c.body.tls_spki_sha256()) {
        std::cout << "    tls pin sha256 " << Hex(p) << "\n";
      }
    }
    for (const auto& r : (*verified)->revocations) {
      std::cout << "  serial " << r.serial() << " revoked at "
                << FormatUnixTime(r.revoked_at()) << ": " << r.reason() << "\n";
    }
  }
  if (is_domain || usable.ok()) return kOk;
  std::cerr << "keyctl: " << what << ": " << usable.message() << "\n";
  return kNoValidKey;
}

int PolicySet(const std::string& domain, const std::string& mode) {
  mxkey::v1::SetDomainPolicyRequest req;
  req.set_domain(domain);
  if (mode == "none") req.set_mode(mxkey::v1::POLICY_MODE_NONE);
  if (mode == "testing") req.set_mode(mxkey::v1::POLICY_MODE_TESTING);
  if (mode == "enforce") req.set_mode(mxkey::v1::POLICY_MODE_ENFORCE);
  mxkey::v1::SetDomainPolicyResponse resp;
  auto ctx = Context();
  absl::Status st = Call(mxkey::v1::Admin::NewStub(AdminChannel())
                             ->SetDomainPolicy(ctx.get(), req, &resp),
                         g.admin_socket);
  if (!st.ok()) return Fail(st, "policy set");
  std::cout << "policy of " << domain << " set to " << mode << "\n";
  return kOk;
}

int Watch(uint64_t from, int count) {
  auto stub = mxkey::v1::KeyDirectory::NewStub(KeydChannel());
  absl::StatusOr<std::shared_ptr<const AnswerVerifier>> verifier =
      TrustedVerifier();
  if (!verifier.ok()) return Fail(verifier.status(), "watch");
  grpc::ClientContext ctx;  // no deadline: a watch runs until stopped
  mxkey::v1::WatchRevocationsRequest req;
  req.set_from_seq(from);
  auto reader = stub->WatchRevocations(&ctx, req);
  mxkey::v1::WatchRevocationsResponse resp;
  int seen = 0;
  uint64_t last = from;
  while (reader->Read(&resp)) {
    // The same batch check KeyClient's watcher makes: signatures, no gap.
    absl::StatusOr<std::vector<mxkey::v1::RevocationEventBody>> events =
        (*verifier)->VerifyFeedBatch(resp, last, absl::Now());
    if (!events.ok()) {
      Fail(events.status(), "watch");
      return kVerificationFailed;
    }
    for (const auto& body : *events) {
      last = body.seq();
      if (body.kind() == mxkey::v1::FEED_EVENT_KIND_KEY_CHANGE) {
        if (g.json) {
          std::cout << JsonObject()
                           .Int("seq", static_cast<int64_t>(body.seq()))
                           .Str("key_change", body.hostname())
                           .Int("serial", static_cast<int64_t>(body.serial()))
                           .Str("reason", body.reason())
                           .Build()
                    << std::endl;
        } else {
          std::cout << "seq " << body.seq() << " new key " << body.hostname()
                    << " serial " << body.serial() << ": " << body.reason()
                    << std::endl;
        }
      } else if (!body.policy_domain().empty()) {
        if (g.json) {
          std::cout << JsonObject()
                           .Int("seq", static_cast<int64_t>(body.seq()))
                           .Str("policy_domain", body.policy_domain())
                           .Int("policy_version",
                                static_cast<int64_t>(body.policy_version()))
                           .Str("reason", body.reason())
                           .Build()
                    << std::endl;
        } else {
          std::cout << "seq " << body.seq() << " policy " << body.policy_domain()
                    << " version " << body.policy_version() << ": "
                    << body.reason() << std::endl;
        }
      } else if (g.json) {
        std::cout << JsonObject()
                         .Int("seq", static_cast<int64_t>(body.seq()))
                         .Str("hostname", body.hostname())
                         .Int("serial", static_cast<int64_t>(body.serial()))
                         .Str("reason", body.reason())
                         .Str("revoked_at", FormatUnixTime(body.revoked_at()))
                         .Build()
                  << std::endl;
      } else {
        std::cout << "seq " << body.seq() << " revoked " << body.hostname()
                  << " serial " << body.serial() << ": " << body.reason()
                  << std::endl;
      }
      if (count > 0 && ++seen >= count) {
        ctx.TryCancel();
        return kOk;
      }
    }
  }
  // A watch ends only when asked (--count): any other end is keyd going
  // away, and a script must not mistake it for a clean finish.
  absl::Status st = Call(reader->Finish(), g.keyd);
  std::cerr << "keyctl: watch: keyd ended the stream after seq " << last
            << (st.ok() ? " (keyd stopped or restarted?)"
                        : absl::StrCat(": ", st.message()))
            << "; resume with keyctl watch --from " << last << "\n";
  return kError;
}

}  // namespace
}  // namespace mxkey

int main(int argc, char** argv) {
  using mxkey::g;
  umask(077);
  CLI::App app{"keyctl: administer mxkey and enroll hosts"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("keyctl ") + mxkey::kVersion);
  // Global flags may follow the subcommand too (keyctl lookup H --json).
  app.fallthrough();
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  if (const char* s = getenv("MXKEY_ADMIN_SOCKET")) g.admin_socket = s;
  if (const char* s = getenv("MXKEY_ROOT_FINGERPRINT")) g.root_fingerprint = s;
  if (g.admin_socket.empty()) g.admin_socket = "var/demo/admin.sock";
  app.add_option("--keyd", g.keyd, "keyd HOST:PORT (default 127.0.0.1:7700)");
  app.add_option("--admin-socket", g.admin_socket,
                 "admin Unix socket (default $MXKEY_ADMIN_SOCKET or "
                 "var/demo/admin.sock)");
  app.add_option("--root-fingerprint", g.root_fingerprint,
                 "trusted org root, sha256:HEX (default "
                 "$MXKEY_ROOT_FINGERPRINT)");
  app.add_flag("--json", g.json, "machine-readable output");
  app.add_option("--tls", g.tls,
                 "TLS to keyd, its key checked against the root: auto (TLS "
                 "unless --keyd is loopback), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--timeout", g.timeout_seconds, "RPC timeout in seconds")
      ->check(CLI::Range(1, 3600));

  auto* org = app.add_subcommand("org", "organization")->require_subcommand(1);
  auto* org_show = org->add_subcommand("show", "org name and root fingerprint");

  auto* host = app.add_subcommand("host", "manage hosts")->require_subcommand(1);
  std::string hostname;
  std::vector<std::string> domains;
  auto* host_add = host->add_subcommand("add", "register a host, print a token");
  host_add->add_option("HOST", hostname)->required();
  host_add->add_option("--domain", domains, "mail domain served (repeatable)")
      ->required();
  auto* host_list = host->add_subcommand("list", "list hosts");
  auto* host_show = host->add_subcommand("show", "show one host");
  host_show->add_option("HOST", hostname)->required();
  auto* host_remove = host->add_subcommand("remove", "revoke and remove a host");
  host_remove->add_option("HOST", hostname)->required();

  auto* token = app.add_subcommand("token", "enrollment tokens")
                    ->require_subcommand(1);
  auto* token_create = token->add_subcommand("create", "new one-time token");
  token_create->add_option("HOST", hostname)->required();

  std::string token_text, token_file, key_dir, tls_cert, tls_key;
  auto* enroll = app.add_subcommand("enroll", "generate keys and enroll");
  enroll->add_option("HOST", hostname)->required();
  enroll->add_option("--token", token_text,
                     "the one-time token: - reads it from stdin (a token "
                     "itself on the command line is refused: any local user "
                     "can read it there)");
  enroll->add_option("--token-file", token_file,
                     "file holding the token (no group or other access)");
  enroll->add_option("--key-dir", key_dir, "where private keys go")->required();
  enroll->add_option("--tls-key", tls_key,
                     "the MTA's TLS private key (PEM): its key is pinned, "
                     "and the request is signed with it (keyd pins a TLS key "
                     "only for a host that proves it holds it)");
  enroll->add_option("--tls-cert", tls_cert,
                     "a certificate of that key (PEM), checked against "
                     "--tls-key; alone, only a key the host holds already");

  auto* rotate = app.add_subcommand("rotate", "pre-publish next keys");
  rotate->add_option("HOST", hostname)->required();
  rotate->add_option("--key-dir", key_dir, "the host's key directory")
      ->required();
  rotate->add_option("--tls-key", tls_key,
                     "the MTA's (new) TLS private key (PEM), as for enroll");
  rotate->add_option("--tls-cert", tls_cert,
                     "a certificate of that key (PEM), as for enroll");
  std::string overlap;
  bool finish = false;
  rotate->add_option("--overlap", overlap,
                     "keep the current key in use beside the next one this "
                     "long unless finished earlier (default: keyd's, 7d)");
  rotate->add_flag("--finish", finish,
                   "the host now uses its next keys: make them active and "
                   "withdraw the old ones")
      ->excludes("--overlap")
      ->excludes("--tls-cert")
      ->excludes("--tls-key");

  uint64_t serial = 0;
  std::string reason;
  auto* revoke = app.add_subcommand("revoke", "revoke a host's certificates");
  revoke->add_option("HOST", hostname)->required();
  revoke->add_option("--serial", serial, "only this certificate");
  revoke->add_option("--reason", reason, "why (recorded in the feed)")
      ->required();

  auto* lookup = app.add_subcommand("lookup", "verified host key lookup");
  lookup->add_option("HOST", hostname)->required();

  std::string mode;
  auto* policy = app.add_subcommand("policy", "domain policy")
                     ->require_subcommand(1);
  auto* policy_set = policy->add_subcommand("set", "set a domain's mode");
  policy_set->add_option("DOMAIN", hostname)->required();
  policy_set->add_option("--mode", mode, "none|testing|enforce")
      ->required()
      ->check(CLI::IsMember({"none", "testing", "enforce"}));
  auto* policy_show = policy->add_subcommand("show", "verified domain policy");
  policy_show->add_option("DOMAIN", hostname)->required();

  std::string peer_org, peer_endpoint, peer_fingerprint;
  std::vector<std::string> peer_suffixes;
  auto* peer = app.add_subcommand("peer", "federation peers")
                   ->require_subcommand(1);
  auto* peer_add = peer->add_subcommand(
      "add", "trust another org (its root key is fetched and checked)");
  peer_add->add_option("ORG", peer_org)->required();
  peer_add->add_option("--domain-suffix", peer_suffixes,
                       "mail-domain suffix the peer may certify (repeatable)")
      ->required();
  peer_add->add_option("--endpoint", peer_endpoint,
                       "the peer keyd's public HOST:PORT")
      ->required();
  peer_add->add_option("--peer-root-fingerprint", peer_fingerprint,
                       "the peer root's sha256:HEX, obtained out of band "
                       "(required)");
  // The old name clashed with the global --root-fingerprint (keyctl's own
  // trust anchor) when that was given before the command. Kept, hidden.
  std::string peer_fingerprint_old;
  peer_add
      ->add_option("--root-fingerprint", peer_fingerprint_old,
                   "deprecated: --peer-root-fingerprint")
      ->group("");
  auto* peer_list = peer->add_subcommand("list", "list peers");
  auto* peer_show = peer->add_subcommand("show", "show one peer");
  peer_show->add_option("ORG", peer_org)->required();
  auto* peer_remove = peer->add_subcommand("remove", "stop trusting a peer");
  peer_remove->add_option("ORG", peer_org)->required();

  std::string export_kind;
  int64_t max_age = 86400;
  auto* export_cmd =
      app.add_subcommand("export", "a domain's keys as DNS TLSA or MTA-STS");
  export_cmd->add_option("KIND", export_kind, "tlsa | mta-sts")
      ->required()
      ->check(CLI::IsMember({"tlsa", "mta-sts"}));
  export_cmd->add_option("DOMAIN", hostname)->required();
  export_cmd->add_option("--max-age", max_age,
                         "MTA-STS max_age in seconds (default 86400)")
      ->check(CLI::Range(int64_t{1}, int64_t{31557600}));

  uint64_t from = 0;
  int count = 0;
  auto* watch = app.add_subcommand(
      "watch", "stream feed events (revocations and policy changes)");
  watch->add_option("--from", from, "resume after this sequence number");
  watch->add_option("--count", count, "exit after this many events");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : mxkey::kUsage;
  }
  g.keyd_given = app.get_option("--keyd")->count() > 0;
  g.transport = *mxkey::ParseKeydTransport(g.tls);  // checked by IsMember

  if (org_show->parsed()) return mxkey::OrgShow();
  if (host_add->parsed()) return mxkey::HostAdd(hostname, domains);
  if (host_list->parsed()) return mxkey::HostList("");
  if (host_show->parsed()) return mxkey::HostList(hostname);
  if (host_remove->parsed()) return mxkey::HostRemove(hostname);
  if (token_create->parsed()) return mxkey::TokenCreate(hostname);
  if (enroll->parsed()) {
    absl::StatusOr<std::string> token_value =
        mxkey::EnrollmentToken(token_text, token_file);
    if (!token_value.ok()) {
      std::cerr << "keyctl: enroll: " << token_value.status().message() << "\n";
      return 2;
    }
    return mxkey::Enroll(hostname, *token_value, key_dir, tls_cert, tls_key);
  }
  if (rotate->parsed()) {
    if (finish) return mxkey::RotateFinish(hostname, key_dir);
    return mxkey::Rotate(hostname, key_dir, tls_cert, tls_key, overlap);
  }
  if (revoke->parsed()) return mxkey::Revoke(hostname, serial, reason);
  if (lookup->parsed()) return mxkey::Lookup(hostname, false);
  if (policy_set->parsed()) return mxkey::PolicySet(hostname, mode);
  if (policy_show->parsed()) return mxkey::Lookup(hostname, true);
  if (watch->parsed()) return mxkey::Watch(from, count);
  if (peer_add->parsed()) {
    if (!peer_fingerprint_old.empty()) {
      std::cerr << "keyctl: warning: peer add --root-fingerprint is "
                   "deprecated, use --peer-root-fingerprint (a global "
                   "--root-fingerprint is keyctl's own trust anchor)\n";
      if (peer_fingerprint.empty()) peer_fingerprint = peer_fingerprint_old;
    }
    if (peer_fingerprint.empty()) {
      std::cerr << "keyctl: peer add: --peer-root-fingerprint sha256:HEX is "
                   "required (the peer's root, obtained out of band)\n";
      return 2;
    }
    return mxkey::PeerAdd(peer_org, peer_suffixes, peer_endpoint,
                          peer_fingerprint);
  }
  if (peer_list->parsed()) return mxkey::PeerList("");
  if (peer_show->parsed()) return mxkey::PeerList(peer_org);
  if (peer_remove->parsed()) return mxkey::PeerRemove(peer_org);
  if (export_cmd->parsed()) {
    return mxkey::Export(export_kind, hostname, max_age);
  }
  return mxkey::kUsage;
}
