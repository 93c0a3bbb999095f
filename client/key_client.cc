#include "client/key_client.h"

#include "client/keyd_channel.h"
#include "client/tls_pins.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "base/grpc_status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/time_format.h"
#include "crypto/sha256.h"
#include "protocol/certificate_times.h"
#include "protocol/hostname.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr size_t kRecentRevocations = 4096;
// How long a signed "no such TLS pin" is taken as the answer (see
// KeyClient::pin_denials_).
constexpr absl::Duration kPinDenialTtl = absl::Seconds(1);
constexpr absl::string_view kRootKey = "meta/root";
constexpr absl::string_view kFeedKey = "meta/feed_seq";
constexpr absl::string_view kBundleVersionKey = "meta/bundle_version";
constexpr absl::string_view kBundleKey = "meta/bundle";
// Without a valid federation bundle, how often one is asked for again.
constexpr absl::Duration kBundleRetry = absl::Seconds(1);
// The most events a client reads to check an answer older than its watch.
constexpr size_t kMaxBackfill = 4096;
// How an answer the feed has overtaken is refused (Fetch asks once more).
constexpr absl::string_view kOutdated = "outdated: ";

std::string DiskKey(absl::string_view name, bool is_domain) {
  return absl::StrCat(is_domain ? "d/" : "h/", name);
}

bool ValidFingerprint(absl::string_view fp) {
  if (!absl::ConsumePrefix(&fp, "sha256:") || fp.size() != 64) return false;
  for (char c : fp) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

bool Unreachable(const grpc::Status& st) {
  return st.error_code() == grpc::StatusCode::UNAVAILABLE ||
         st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// Why a host answer names no usable key, judged by its newest certificate.
absl::Status UsableStatus(const VerifiedAnswer& a) {
  if (a.HasValidKey()) return absl::OkStatus();
  if (a.denial || a.certificates.empty()) {
    return LookupError(LookupFailure::kUnknown,
                       absl::StrCat("no such host: ", a.name,
                                    " (signed denial from its org)"));
  }
  const VerifiedCert* newest = &a.certificates[0];
  for (const auto& c : a.certificates) {
    if (c.body.serial() > newest->body.serial()) newest = &c;
  }
  if (newest->state == VerifiedCertState::kRevoked) {
    std::string why;
    for (const auto& r : a.revocations) {
      if (r.serial() == newest->body.serial()) {
        why = absl::StrCat(" at ", FormatUnixTime(r.revoked_at()), ": ", r.reason());
      }
    }
    return LookupError(LookupFailure::kRevoked,
                       absl::StrCat("revoked: ", a.name, " certificate serial ",
                                    newest->body.serial(), " was revoked",
                                    why));
  }
  return LookupError(
      LookupFailure::kExpired,
      absl::StrCat("expired: ", a.name, " certificate serial ",
                   newest->body.serial(), " is valid only ",
                   FormatUnixTime(newest->body.not_before()), " .. ",
                   FormatUnixTime(newest->body.not_after())));
}

// The answer may be served until its freshness runs out or a certificate
// changes state (becomes valid, active or expired), whichever comes first.
absl::Time ServeUntil(const VerifiedAnswer& a, absl::Time now) {
  int64_t until = a.freshness.valid_until();
  for (const auto& c : a.certificates) {
    until = NextCertificateChange(c.body, absl::ToUnixSeconds(now), until);
  }
  return absl::FromUnixSeconds(until);
}

v1::LookupKind KindOf(bool is_domain) {
  return is_domain ? v1::LOOKUP_KIND_DOMAIN : v1::LOOKUP_KIND_HOST;
}

// True if `a` (an answer for `name`) should show the new key `ev` announces
// but does not: a host answer for its host, or a domain answer for one of
// its mail domains.
bool AnswerMissesKey(const VerifiedAnswer& a,
                     const v1::RevocationEventBody& ev, absl::string_view name) {
  bool concerned = name == ev.hostname();
  for (const std::string& d : ev.mail_domains()) concerned |= name == d;
  if (!concerned) return false;
  for (const auto& c : a.certificates) {
    if (c.body.hostname() == ev.hostname() && c.body.serial() >= ev.serial()) {
      return false;
    }
  }
  // A later revocation of the host (in the same answer) explains it.
  for (const auto& r : a.revocations) {
    if (r.serial() >= ev.serial()) return false;
  }
  return true;
}

bool AnswerNamesHost(const VerifiedAnswer& a, absl::string_view host) {
  for (const auto& c : a.certificates) {
    if (c.body.hostname() == host) return true;
  }
  return false;
}

}  // namespace

KeyClient::KeyClient(KeyClientOptions options)
    : options_(std::move(options)),
      hosts_(options_.max_cached_answers, options_.max_cached_bytes),
      domains_(options_.max_cached_answers, options_.max_cached_bytes) {}

KeyClient::~KeyClient() {
  if (watcher_) watcher_->Stop();
}

absl::StatusOr<std::unique_ptr<KeyClient>> KeyClient::Create(
    KeyClientOptions options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("KeyClient needs at least one keyd endpoint");
  }
  if (!ValidFingerprint(options.root_fingerprint)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "root fingerprint must be sha256: followed by 64 lower-case hex "
        "digits, got \"", options.root_fingerprint, "\""));
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  std::unique_ptr<KeyClient> client(new KeyClient(std::move(options)));
  for (const std::string& endpoint : client->options_.endpoints) {
    auto channel = KeydChannel(endpoint, client->options_.transport,
                               client->options_.root_fingerprint,
                               client->options_.clock);
    client->stubs_.push_back(v1::KeyDirectory::NewStub(channel));
    client->channels_.push_back(std::move(channel));
  }
  std::optional<uint64_t> feed_position;
  std::string feed_digest;
  if (!client->options_.cache_dir.empty()) {
    ASSIGN_OR_RETURN(client->disk_,
                     PersistentCache::Open(client->options_.cache_dir));
    ASSIGN_OR_RETURN(std::optional<std::string> seq,
                     client->disk_->Get(kFeedKey));
    // "SEQ" or "SEQ DIGEST-HEX": the digest lets keyd tell a client that
    // resumes there that its feed was rewound meanwhile.
    uint64_t n = 0;
    std::vector<std::string> parts =
        seq ? absl::StrSplit(*seq, ' ') : std::vector<std::string>();
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &n)) {
      feed_position = n;
      if (parts.size() == 2 && parts[1].size() == 64) {
        feed_digest = absl::HexStringToBytes(parts[1]);
      }
    }
    // Answers cached by a watching client are only trustworthy together
    // with the feed position they were cached at.
    if (!feed_position && client->options_.watch_revocations) {
      client->ClearCaches();
    }
  }
  absl::StatusOr<std::shared_ptr<const AnswerVerifier>> verifier =
      client->Verifier();
  if (!verifier.ok() &&
      LookupFailureOf(verifier.status()) != LookupFailure::kUnavailable) {
    return verifier.status();
  }
  if (client->disk_) {
    absl::StatusOr<std::optional<std::string>> seen =
        client->disk_->Get(kBundleVersionKey);
    uint64_t version = 0;
    if (seen.ok() && seen->has_value() && absl::SimpleAtoi(**seen, &version)) {
      MutexLock lock(&client->federation_mu_);
      client->federation_min_version_ = version;
      // The bundle kept with it: another bundle of the same version is an
      // equivocation, also across restarts.
      absl::StatusOr<std::optional<std::string>> kept =
          client->disk_->Get(kBundleKey);
      v1::SignedObject bundle;
      mxkey::v1::FederationBundleBody body;
      if (kept.ok() && kept->has_value() && bundle.ParseFromString(**kept) &&
          body.ParseFromString(bundle.body()) && body.version() == version) {
        client->federation_min_digest_ = Sha256(bundle.body());
      }
    }
  }
  if (verifier.ok()) {
    absl::Status federation = client->RefreshFederation();
    if (!federation.ok()) LogWarning("federation: %s", federation.message());
  }
  if (client->options_.watch_revocations) {
    RevocationWatcherOptions w;
    w.channels = client->channels_;
    w.start_after = feed_position;
    w.start_digest = feed_digest;
    if (feed_position) {
      // Resumed: what was cached on disk is current up to this event.
      MutexLock lock(&client->apply_mu_);
      client->covered_from_ = *feed_position;
      client->covered_since_ = client->options_.clock->Now();
    }
    w.min_backoff = client->options_.watch_min_backoff;
    w.max_backoff = client->options_.watch_max_backoff;
    w.first_response_timeout = client->options_.watch_first_response_timeout;
    w.clock = client->options_.clock;
    KeyClient* c = client.get();
    w.verifier = [c] { return c->Verifier(); };
    w.on_events = [c](const std::vector<v1::RevocationEventBody>& events,
                      uint64_t last_seq) {
      c->ApplyRevocations(events, last_seq);
    };
    w.on_resync = [c] {
      c->ClearCaches();
      MutexLock lock(&c->apply_mu_);
      c->covered_from_.reset();  // set again at the new position
      c->recent_.clear();        // numbered by a feed we no longer follow
    };
    w.on_position = [c](std::optional<uint64_t> seq,
                        const std::string& digest) {
      {
        // Where the watch began: events after it are all seen; answers
        // made before it need the events in between (CoverFeedFrom).
        MutexLock lock(&c->apply_mu_);
        if (seq && !c->covered_from_) {
          c->covered_from_ = *seq;
          c->covered_since_ = c->options_.clock->Now();
        }
      }
      if (!c->disk_) return;
      absl::Status st =
          seq ? c->disk_->Put(kFeedKey,
                              digest.empty()
                                  ? absl::StrCat(*seq)
                                  : absl::StrCat(*seq, " ",
                                                 absl::BytesToHexString(digest)))
              : c->disk_->Delete(kFeedKey);
      if (!st.ok()) LogWarning("key cache: %s", st.message());
    };
    client->watcher_ = std::make_unique<RevocationWatcher>(std::move(w));
    client->watcher_->Start();
  }
  return client;
}

grpc::Status KeyClient::CallKeyd(
    const std::function<grpc::Status(v1::KeyDirectory::Stub&,
                                     grpc::ClientContext&)>& call) {
  grpc::Status st;
  for (auto& stub : stubs_) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(options_.rpc_timeout));
    st = call(*stub, ctx);
    if (!Unreachable(st)) break;
  }
  NoteReachability(st);
  return st;
}

void KeyClient::NoteReachability(const grpc::Status& st) {
  const int now = Unreachable(st) ? 0 : 1;
  const int before = reachable_.exchange(now);
  if (before == now) return;
  const std::string endpoints = absl::StrJoin(options_.endpoints, ",");
  if (now == 0) {
    LogWarning("keyd=%s state=unreachable error=\"%s\"", endpoints,
               absl::CHexEscape(st.error_message()));
  } else if (before == 0) {
    LogInfo("keyd=%s state=reachable", endpoints);
  }
}

absl::StatusOr<std::shared_ptr<const AnswerVerifier>> KeyClient::Verifier() {
  {
    MutexLock lock(&verifier_mu_);
    if (verifier_) return verifier_;
  }
  v1::OrgInfo info;
  grpc::Status st = CallKeyd([&](v1::KeyDirectory::Stub& stub,
                                 grpc::ClientContext& ctx) {
    return stub.GetOrgInfo(&ctx, v1::GetOrgInfoRequest(), &info);
  });
  std::string root;
  if (st.ok()) {
    root = info.root_public_key();
  } else {
    std::optional<std::string> cached;
    if (disk_) {
      absl::StatusOr<std::optional<std::string>> r = disk_->Get(kRootKey);
      if (r.ok()) cached = *r;
    }
    if (!cached) {
      return LookupError(
          LookupFailure::kUnavailable,
          absl::StrCat("keyd unreachable (", st.error_message(),
                       ") and no org root cached yet"));
    }
    root = *cached;
  }
  absl::StatusOr<AnswerVerifier> v =
      AnswerVerifier::Create(options_.root_fingerprint, root,
                             options_.max_clock_skew);
  if (!v.ok()) {
    return LookupError(LookupFailure::kVerification,
                       absl::StrCat("keyd's org root is not the configured "
                                    "trust anchor: ",
                                    v.status().message()));
  }
  if (st.ok() && disk_) {
    absl::Status put = disk_->Put(kRootKey, root);
    if (!put.ok()) LogWarning("key cache: %s", put.message());
  }
  MutexLock lock(&verifier_mu_);
  if (!verifier_) verifier_ = std::make_shared<const AnswerVerifier>(*v);
  return verifier_;
}

absl::Status KeyClient::RefreshFederation() {
  ASSIGN_OR_RETURN(std::shared_ptr<const AnswerVerifier> own, Verifier());
  const absl::Time now = options_.clock->Now();
  uint64_t min_version = 0;
  {
    // Stamped before the call: concurrent lookups do not all ask again
    // while it is in flight, and a failure is retried later, not now.
    MutexLock lock(&federation_mu_);
    federation_fetched_ = now;
    min_version = federation_min_version_;
  }
  v1::FederationBundle bundle;
  grpc::Status st = CallKeyd([&](v1::KeyDirectory::Stub& stub,
                                 grpc::ClientContext& ctx) {
    return stub.GetFederationBundle(&ctx, v1::GetFederationBundleRequest(),
                                    &bundle);
  });
  bool from_disk = false;
  if (!st.ok()) {
    // A restarted client whose keyd is unreachable still knows its peers,
    // from the signed bundle it kept (verified again, rollback-checked).
    std::optional<std::string> kept;
    {
      MutexLock lock(&federation_mu_);
      if (disk_ && !federation_) {
        absl::StatusOr<std::optional<std::string>> r = disk_->Get(kBundleKey);
        if (r.ok()) kept = *r;
      }
    }
    if (!kept || !bundle.mutable_bundle()->ParseFromString(*kept)) {
      return LookupError(LookupFailure::kUnavailable,
                         absl::StrCat("federation bundle: keyd: ",
                                      st.error_message()));
    }
    from_disk = true;
  }
  absl::StatusOr<FederationTrust> trust =
      FederationTrust::Verify(bundle.bundle(), own->root_public_key(), now,
                              min_version, options_.max_clock_skew);
  if (!trust.ok()) {
    return LookupError(LookupFailure::kVerification,
                       absl::StrCat("federation bundle: ",
                                    trust.status().message()));
  }
  {
    MutexLock lock(&federation_mu_);
    if (trust->version() == federation_min_version_ &&
        !federation_min_digest_.empty() &&
        trust->body_sha256() != federation_min_digest_) {
      return LookupError(
          LookupFailure::kVerification,
          absl::StrCat("federation bundle: a second, different bundle with "
                       "version ", trust->version(), " (equivocation); the "
                       "first one seen is kept"));
    }
  }
  bool changed = false;
  uint64_t trust_version = 0;
  {
    MutexLock lock(&federation_mu_);
    changed = (federation_ ? federation_->version() : federation_min_version_) !=
              trust->version();
    if (trust->version() < federation_min_version_) return absl::OkStatus();
    federation_ = std::make_shared<const FederationTrust>(*std::move(trust));
    federation_min_version_ = federation_->version();
    federation_min_digest_ = federation_->body_sha256();
    trust_version = federation_->version();
  }
  if (!changed) return absl::OkStatus();
  // Other peers, or other suffixes: answers admitted under the old trust
  // may no longer hold. (A bundle read back from disk is the one they were
  // admitted under.)
  if (!from_disk) ClearCaches();
  if (disk_ && !from_disk) {
    absl::Status put = disk_->Put(kBundleVersionKey,
                                  absl::StrCat(trust_version));
    if (put.ok()) put = disk_->Put(kBundleKey, bundle.bundle().SerializeAsString());
    if (!put.ok()) LogWarning("key cache: %s", put.message());
  }
  return absl::OkStatus();
}

std::shared_ptr<const FederationTrust> KeyClient::Federation() {
  {
    MutexLock lock(&federation_mu_);
    if (options_.clock->Now() - federation_fetched_ <
        options_.federation_refresh) {
      return federation_;
    }
  }
  absl::Status st = RefreshFederation();
  if (!st.ok() && LookupFailureOf(st) != LookupFailure::kUnavailable) {
    LogWarning("federation: %s", st.message());
  }
  MutexLock lock(&federation_mu_);
  return federation_;
}

std::shared_ptr<const FederationTrust> KeyClient::ValidFederation() {
  std::shared_ptr<const FederationTrust> trust = Federation();
  const absl::Time now = options_.clock->Now();
  if (trust && now < trust->not_after()) return trust;
  bool retry = false;
  {
    MutexLock lock(&federation_mu_);
    retry = now - federation_fetched_ >= kBundleRetry;
  }
  if (retry) {
    absl::Status st = RefreshFederation();
    if (!st.ok()) LogWarning("federation: %s", st.message());
  }
  MutexLock lock(&federation_mu_);
  if (federation_ && now < federation_->not_after()) return federation_;
  return nullptr;
}

absl::StatusOr<KeyClient::VerifierFor> KeyClient::OwnVerifier() {
  VerifierFor out;
  out.trust = ValidFederation();
  out.trust_valid = out.trust != nullptr;
  ASSIGN_OR_RETURN(out.verifier, Verifier());
  return out;
}

absl::StatusOr<KeyClient::VerifierFor> KeyClient::VerifierForName(
    const std::string& name) {
  VerifierFor out;
  out.trust = ValidFederation();
  out.trust_valid = out.trust != nullptr;
  out.peer = out.trust ? out.trust->PeerFor(name) : nullptr;
  if (out.peer == nullptr) {
    ASSIGN_OR_RETURN(out.verifier, Verifier());
    return out;
  }
  MutexLock lock(&federation_mu_);
  std::shared_ptr<const AnswerVerifier>& v =
      peer_verifiers_[out.peer->root_public_key];
  if (!v) {
    absl::StatusOr<AnswerVerifier> created = AnswerVerifier::Create(
        KeyFingerprint(out.peer->root_public_key), out.peer->root_public_key,
        options_.max_clock_skew);
    if (!created.ok()) return created.status();
    v = std::make_shared<const AnswerVerifier>(*std::move(created));
  }
  out.verifier = v;
  return out;
}

absl::StatusOr<std::vector<v1::RevocationEventBody>> KeyClient::CoverFeedFrom(
    uint64_t feed_head) {
  std::vector<v1::RevocationEventBody> none;
  if (!watcher_) return none;
  uint64_t to = 0;
  {
    MutexLock lock(&apply_mu_);
    if (!covered_from_ || feed_head >= *covered_from_) return none;
    to = *covered_from_;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const AnswerVerifier> verifier, Verifier());
  absl::StatusOr<std::vector<v1::RevocationEventBody>> events;
  for (const auto& channel : channels_) {
    events = ReadFeedRange(channel, *verifier, feed_head, to, kMaxBackfill,
                           options_.rpc_timeout, options_.clock);
    if (events.ok()) break;
  }
  if (!events.ok()) {
    return LookupError(
        LookupFailure::kUnavailable,
        absl::StrCat("the answer was made at feed event ", feed_head,
                     ", before this client's watch began at ", to,
                     ", and the events between could not be read: ",
                     events.status().message()));
  }
  // Checked against this answer directly (Admit), not kept: recent_ is
  // bounded, and what it forgets must not be what this answer needs.
  return events;
}

absl::StatusOr<std::vector<v1::RevocationEventBody>> KeyClient::CoverFeedSince(
    absl::Time made_at) {
  std::vector<v1::RevocationEventBody> none;
  if (!watcher_) return none;
  uint64_t watch_start = 0;
  // The peer's clock and ours may differ by the skew: unless the answer was
  // surely made after the watch began, read back.
  const absl::Time since = made_at - options_.max_clock_skew;
  {
    MutexLock lock(&apply_mu_);
    if (!covered_from_ || since >= covered_since_) return none;
    // Already read back far enough for an earlier answer.
    if (since >= backfill_since_ && backfill_start_ == *covered_from_) {
      return backfill_events_;
    }
    watch_start = *covered_from_;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const AnswerVerifier> verifier, Verifier());
  // Back from the watch start until an event older than the answer (with
  // the skew to spare) or the start of the feed: bounded by kMaxBackfill.
  const int64_t before = absl::ToUnixSeconds(made_at - options_.max_clock_skew);
  for (uint64_t window = 64;; window *= 4) {
    const uint64_t from = watch_start > window ? watch_start - window : 0;
    absl::StatusOr<std::vector<v1::RevocationEventBody>> events;
    for (const auto& channel : channels_) {
      events = ReadFeedRange(channel, *verifier, from, watch_start, kMaxBackfill,
                             options_.rpc_timeout, options_.clock);
      if (events.ok()) break;
    }
    if (!events.ok()) {
      return LookupError(LookupFailure::kUnavailable,
                         absl::StrCat("a peer's answer made before this "
                                      "client's watch began cannot be checked "
                                      "against the feed: ",
                                      events.status().message()));
    }
    if (from == 0 || (!events->empty() && events->front().revoked_at() < before)) {
      MutexLock lock(&apply_mu_);
      backfill_start_ = watch_start;
      backfill_since_ = from == 0 ? absl::InfinitePast()
                                  : absl::FromUnixSeconds(events->front().revoked_at());
      backfill_events_ = *events;
      return events;
    }
    if (window * 4 > kMaxBackfill) {
      return LookupError(LookupFailure::kUnavailable,
                         "a peer's answer made before this client's watch "
                         "began is older than the feed events it can read");
    }
  }
}

absl::StatusOr<std::string> KeyClient::RootPublicKey() {
  ASSIGN_OR_RETURN(auto v, Verifier());
  return v->root_public_key();
}

absl::StatusOr<std::shared_ptr<const CachedAnswer>> KeyClient::Lookup(
    absl::string_view name, bool is_domain) {
  AnswerCache& cache = CacheFor(is_domain);
  const absl::Time now = options_.clock->Now();
  // Fast path: a cached name is canonical, so an exact hit needs no
  // canonicalization (and no allocation).
  std::shared_ptr<const CachedAnswer> hit = cache.Get(name);
  if (hit && now < hit->serve_until) return hit;
  absl::StatusOr<std::string> canonical = CanonicalHostname(name);
  if (!canonical.ok()) {
    return LookupError(LookupFailure::kInvalidName, canonical.status().message());
  }
  if (*canonical != name) {
    hit = cache.Get(*canonical);
    if (hit && now < hit->serve_until) return hit;
  }
  return Fetch(*canonical, is_domain, std::move(hit));
}

grpc::Status KeyClient::Ask(const std::string& name, bool is_domain,
                            v1::KeyAnswer& raw) {
  return CallKeyd([&](v1::KeyDirectory::Stub& stub, grpc::ClientContext& ctx) {
    if (is_domain) {
      v1::GetDomainPolicyRequest req;
      req.set_domain(name);
      return stub.GetDomainPolicy(&ctx, req, &raw);
    }
    v1::GetHostKeysRequest req;
    req.set_hostname(name);
    return stub.GetHostKeys(&ctx, req, &raw);
  });
}

absl::StatusOr<std::shared_ptr<const CachedAnswer>> KeyClient::Fetch(
    const std::string& name, bool is_domain,
    std::shared_ptr<const CachedAnswer> expired) {
  v1::KeyAnswer raw;
  grpc::Status st = Ask(name, is_domain, raw);
  if (st.ok()) {
    absl::StatusOr<std::shared_ptr<const CachedAnswer>> admitted =
        Admit(name, KindOf(is_domain), raw, /*from_keyd=*/true);
    if (admitted.ok() ||
        !absl::StartsWith(admitted.status().message(), kOutdated)) {
      return admitted;
    }
    // keyd made it before a change our watch has seen: once more (a keyd
    // that keeps doing so, or a path that replays, stays "unavailable").
    raw.Clear();
    st = Ask(name, is_domain, raw);
    if (!st.ok()) return admitted;
    return Admit(name, KindOf(is_domain), raw, /*from_keyd=*/true);
  }
  if (!Unreachable(st)) {
    absl::Status s = FromGrpcStatus(st);
    // UNAUTHENTICATED: keyd relayed a peer's answer and it failed
    // verification there. Anything else unsigned, NOT_FOUND included, proves
    // nothing: only a verified denial means "unknown".
    // (Names are validated here before they are sent: keyd's unsigned
    // INVALID_ARGUMENT proves nothing either.)
    LookupFailure kind = s.code() == absl::StatusCode::kUnauthenticated
                             ? LookupFailure::kVerification
                             : LookupFailure::kUnavailable;
    return LookupError(kind, absl::StrCat("keyd: ", s.message()));
  }
  // keyd is unreachable: serve a signed answer we hold, while it is fresh.
  std::optional<v1::KeyAnswer> held;
  if (expired) {
    held = expired->raw;
  } else if (disk_) {
    absl::StatusOr<std::optional<std::string>> bytes =
        disk_->Get(DiskKey(name, is_domain));
    if (bytes.ok() && bytes->has_value()) {
      held.emplace();
      if (!held->ParseFromString(**bytes)) held.reset();
    }
  }
  if (!held) {
    return LookupError(LookupFailure::kUnavailable,
                       absl::StrCat("keyd unreachable (", st.error_message(),
                                    ") and no cached answer for ", name));
  }
  absl::StatusOr<std::shared_ptr<const CachedAnswer>> entry =
      Admit(name, KindOf(is_domain), *held, /*from_keyd=*/false);
  if (LookupFailureOf(entry.status()) == LookupFailure::kStale) {
    return LookupError(
        LookupFailure::kStale,
        absl::StrCat("stale: keyd unreachable (", st.error_message(),
                     ") and the cached answer for ", name,
                     " is past its freshness limit: ",
                     entry.status().message()));
  }
  return entry;
}

absl::StatusOr<std::shared_ptr<const CachedAnswer>> KeyClient::Admit(
    const std::string& name, v1::LookupKind kind, const v1::KeyAnswer& raw,
    bool from_keyd) {
  const bool is_domain = kind == v1::LOOKUP_KIND_DOMAIN;
  // A pin denial is about no hostname: only the own root makes one.
  ASSIGN_OR_RETURN(VerifierFor chosen,
                   kind == v1::LOOKUP_KIND_TLS_PIN ? OwnVerifier()
                                                   : VerifierForName(name));
  const absl::Time now = options_.clock->Now();
  absl::StatusOr<VerifiedAnswer> verified =
      chosen.verifier->Verify(raw, name, kind, now);
  if (verified.ok() && chosen.peer != nullptr) {
    const FederationTrust* trust = chosen.trust.get();
    const TrustedPeer* peer = chosen.peer;
    absl::Status scope = CheckPeerScope(
        *verified,
        [trust, peer](const std::string& n) { return trust->PeerFor(n) == peer; },
        peer->org);
    if (!scope.ok()) verified = scope;
  }
  if (!verified.ok()) {
    if (absl::IsFailedPrecondition(verified.status())) {
      return LookupError(LookupFailure::kStale, verified.status().message());
    }
    if (!chosen.trust_valid) {
      // Without the own bundle the name may be a peer's, answered with the
      // peer's signatures: nothing can be said about it.
      return LookupError(
          LookupFailure::kUnavailable,
          absl::StrCat("no valid federation bundle, so the answer for ", name,
                       " cannot be attributed to an organization: ",
                       verified.status().message()));
    }
    return LookupError(LookupFailure::kVerification,
                       absl::StrCat("answer for ", name, " failed verification: ",
                                    verified.status().message()));
  }
  if (chosen.peer == nullptr) {
    absl::Status own = CheckOwnAnswer(*verified, chosen.trust.get(), now);
    if (!own.ok()) {
      return LookupError(absl::IsUnavailable(own) ? LookupFailure::kUnavailable
                                                  : LookupFailure::kVerification,
                         own.message());
    }
  }
  if (kind == v1::LOOKUP_KIND_TLS_PIN) {
    auto entry = std::make_shared<CachedAnswer>();
    entry->verified = *std::move(verified);
    entry->raw = raw;
    entry->usable = LookupError(LookupFailure::kUnknown,
                                "no host is certified with that TLS pin "
                                "(signed denial)");
    return std::shared_ptr<const CachedAnswer>(std::move(entry));
  }
  std::vector<v1::RevocationEventBody> backfilled;
  if (from_keyd && chosen.peer == nullptr) {
    // An own answer made before this client's watch began: the events
    // between are read and applied below like the recent ones.
    ASSIGN_OR_RETURN(backfilled, CoverFeedFrom(verified->freshness.feed_head()));
  } else if (from_keyd) {
    // A peer's answer carries the peer's feed position, not ours: one made
    // before our watch began is checked against the own feed's events
    // (republished peer events) since the time it was made.
    ASSIGN_OR_RETURN(backfilled,
                     CoverFeedSince(absl::FromUnixSeconds(
                         verified->freshness.as_of())));
  }
  auto entry = std::make_shared<CachedAnswer>();
  entry->verified = *std::move(verified);
  entry->raw = raw;
  entry->serve_until = ServeUntil(entry->verified, now);
  entry->bytes = 2 * raw.ByteSizeLong() + 512;

  MutexLock lock(&apply_mu_);
  // An own answer older than what recent_ still covers (it forgot events
  // since the answer was made, or the watch restarted) cannot be checked.
  const uint64_t checked_until = backfilled.empty()
                                    ? entry->verified.freshness.feed_head()
                                    : backfilled.back().seq();
  if (chosen.peer == nullptr && from_keyd && covered_from_ &&
      checked_until < *covered_from_) {
    return LookupError(LookupFailure::kUnavailable,
                       absl::StrCat("the answer for ", name,
                                    " is older than the feed events this "
                                    "client can check it against"));
  }
  // Feed events after keyd produced this answer: the ones the watcher
  // applied, and those read for it.
  std::vector<const v1::RevocationEventBody*> events;
  for (const auto& ev : recent_) events.push_back(&ev);
  for (const auto& ev : backfilled) events.push_back(&ev);
  bool revised = false;
  for (const v1::RevocationEventBody* event : events) {
    const v1::RevocationEventBody& ev = *event;
    // A peer's answer is bound to the peer's feed, not ours: every recent
    // event for one of its certificates applies (revocation is forever).
    if (chosen.peer == nullptr &&
        ev.seq() <= entry->verified.freshness.feed_head()) {
      continue;
    }
    if (ev.kind() == v1::FEED_EVENT_KIND_KEY_CHANGE) {
      // A new key after the answer was made (own answers: seq is after its
      // feed_head): the answer lacks it; ask again. Peer answers are only
      // evicted (their feed_head is another feed's).
      if (chosen.peer == nullptr && AnswerMissesKey(entry->verified, ev, name)) {
        return LookupError(
            LookupFailure::kUnavailable,
            absl::StrCat(kOutdated, "the answer for ", name, " predates the ",
                         "new key serial ", ev.serial(), " of ", ev.hostname(),
                         " (feed event ", ev.seq(), ")"));
      }
      continue;
    }
    if (!ev.policy_domain().empty()) {
      // A policy change after the answer was made: the policy it carries
      // (or its "unkeyed" denial) is not the domain's any more.
      const VerifiedAnswer& a = entry->verified;
      if (is_domain && ev.policy_domain() == name &&
          (!a.policy || a.policy->version() < ev.policy_version())) {
        return LookupError(
            LookupFailure::kUnavailable,
            absl::StrCat(kOutdated, "the answer for ", name, " predates its policy "
                         "change to version ", ev.policy_version(),
                         " (feed event ", ev.seq(), ")"));
      }
      continue;
    }
    for (auto& c : entry->verified.certificates) {
      if (c.body.hostname() == ev.hostname() &&
          c.body.serial() == ev.serial() &&
          c.state != VerifiedCertState::kRevoked) {
        c.state = VerifiedCertState::kRevoked;
        if (!is_domain) entry->verified.revocations.push_back(ev);
        revised = true;
      }
    }
  }
  entry->usable = is_domain ? absl::OkStatus() : UsableStatus(entry->verified);
  // Cache only with a known feed position (so no revocation can slip past),
  // and never an answer the feed has already overtaken.
  const bool cacheable =
      !revised && (!watcher_ || watcher_->position().has_value());
  if (cacheable) {
    CacheFor(is_domain).Put(name, entry);
    if (from_keyd && disk_) {
      absl::Status st =
          disk_->Put(DiskKey(name, is_domain), raw.SerializeAsString());
      if (!st.ok()) LogWarning("key cache: %s", st.message());
    }
  }
  return std::shared_ptr<const CachedAnswer>(std::move(entry));
}

void KeyClient::ApplyRevocations(
    const std::vector<v1::RevocationEventBody>& events, uint64_t) {
  // Any event may be a new key with a pin keyd denied before.
  ForgetPinDenials();
  MutexLock lock(&apply_mu_);
  std::vector<std::string> hosts;
  for (const auto& ev : events) {
    if (ev.kind() == v1::FEED_EVENT_KIND_KEY_CHANGE) {
      // The host's answer and its domains' lack the new key.
      hosts_.Erase(ev.hostname());
      hosts.push_back(ev.hostname());
      for (const std::string& d : ev.mail_domains()) {
        domains_.Erase(d);
        if (disk_) {
          absl::Status st = disk_->Delete(DiskKey(d, true));
          if (!st.ok()) LogWarning("key cache: %s", st.message());
        }
      }
    } else if (!ev.policy_domain().empty()) {
      domains_.Erase(ev.policy_domain());
      if (disk_) {
        absl::Status st = disk_->Delete(DiskKey(ev.policy_domain(), true));
        if (!st.ok()) LogWarning("key cache: %s", st.message());
      }
    } else {
      hosts_.Erase(ev.hostname());
      hosts.push_back(ev.hostname());
    }
    recent_.push_back(ev);
    if (recent_.size() > kRecentRevocations) {
      // Answers made before the forgotten event can no longer be checked.
      if (covered_from_) {
        covered_from_ = std::max(*covered_from_, recent_.front().seq());
      }
      recent_.pop_front();
    }
  }
  domains_.EraseIf([&](const CachedAnswer& a) {
    for (const auto& h : hosts) {
      if (AnswerNamesHost(a.verified, h)) return true;
    }
    return false;
  });
  if (!disk_) return;
  for (const auto& h : hosts) {
    absl::Status st = disk_->Delete(DiskKey(h, false));
    if (!st.ok()) LogWarning("key cache: %s", st.message());
  }
  absl::Status st = disk_->DeleteIf(
      "d/", [&](absl::string_view, absl::string_view value) {
        v1::KeyAnswer answer;
        if (!answer.ParseFromArray(value.data(), value.size())) return true;
        for (const auto& c : answer.certificates()) {
          v1::HostCertificateBody body;
          if (!body.ParseFromString(c.body())) return true;
          for (const auto& h : hosts) {
            if (body.hostname() == h) return true;
          }
        }
        return false;
      });
  if (!st.ok()) LogWarning("key cache: %s", st.message());
}

void KeyClient::ForgetPinDenials() {
  MutexLock lock(&pin_hints_mu_);
  pin_denials_.clear();
  ++pin_denials_generation_;
}

void KeyClient::ClearCaches() {
  hosts_.Clear();
  domains_.Clear();
  ForgetPinDenials();
  if (!disk_) return;
  for (absl::string_view prefix : {"h/", "d/"}) {
    absl::Status st = disk_->DeleteIf(
        prefix, [](absl::string_view, absl::string_view) { return true; });
    if (!st.ok()) LogWarning("key cache: %s", st.message());
  }
}

absl::StatusOr<AnswerRef> KeyClient::LookupHost(absl::string_view hostname) {
  ASSIGN_OR_RETURN(std::shared_ptr<const CachedAnswer> entry,
                   Lookup(hostname, /*is_domain=*/false));
  if (!entry->usable.ok()) return entry->usable;
  return AnswerRef(entry, &entry->verified);
}

absl::StatusOr<AnswerRef> KeyClient::LookupHostAnswer(
    absl::string_view hostname) {
  ASSIGN_OR_RETURN(std::shared_ptr<const CachedAnswer> entry,
                   Lookup(hostname, /*is_domain=*/false));
  return AnswerRef(entry, &entry->verified);
}

absl::StatusOr<AnswerRef> KeyClient::LookupDomain(absl::string_view domain) {
  ASSIGN_OR_RETURN(std::shared_ptr<const CachedAnswer> entry,
                   Lookup(domain, /*is_domain=*/true));
  return AnswerRef(entry, &entry->verified);
}

absl::StatusOr<AnswerRef> KeyClient::LookupByTlsPin(absl::string_view tls_pin) {
  if (tls_pin.size() != 32) {
    return LookupError(
        LookupFailure::kInvalidName,
        absl::StrCat("a TLS pin is the 32-byte SHA-256 of a DER "
                     "SubjectPublicKeyInfo, got ", tls_pin.size(), " bytes"));
  }
  const std::string pin(tls_pin);
  std::optional<std::string> hint;
  uint64_t denials_generation = 0;
  {
    ReaderMutexLock lock(&pin_hints_mu_);
    denials_generation = pin_denials_generation_;
    auto denied = pin_denials_.find(pin);
    if (denied != pin_denials_.end() &&
        options_.clock->Now() < denied->second.until) {
      return denied->second.denial->usable;
    }
    auto it = pin_hints_.find(pin);
    if (it != pin_hints_.end()) hint = it->second;
  }
  if (hint) {
    absl::StatusOr<std::shared_ptr<const CachedAnswer>> entry =
        Lookup(*hint, /*is_domain=*/false);
    if (entry.ok() && UsableCertificateHasPin((*entry)->verified, pin)) {
      return AnswerRef(*entry, &(*entry)->verified);
    }
    // keyd down: the host's own error (stale/unavailable) says it best.
    if (!entry.ok() && (LookupFailureOf(entry.status()) == LookupFailure::kStale ||
                        LookupFailureOf(entry.status()) ==
                            LookupFailure::kUnavailable)) {
      return entry.status();
    }
  }
  v1::KeyAnswer raw;
  grpc::Status st = CallKeyd([&](v1::KeyDirectory::Stub& stub,
                                 grpc::ClientContext& ctx) {
    v1::FindByTlsPinRequest req;
    req.set_tls_spki_sha256(pin);
    return stub.FindByTlsPin(&ctx, req, &raw);
  });
  if (!st.ok()) {
    absl::Status s = FromGrpcStatus(st);
    // Unsigned: NOT_FOUND included, it proves nothing.
    const LookupFailure kind = LookupFailure::kUnavailable;
    return LookupError(kind, absl::StrCat("keyd: ", s.message()));
  }
  if (raw.name() == TlsPinName(pin)) {
    // A signed denial: no host of the org (or of a peer it asked) has it.
    ASSIGN_OR_RETURN(std::shared_ptr<const CachedAnswer> denial,
                     Admit(raw.name(), v1::LOOKUP_KIND_TLS_PIN, raw,
                           /*from_keyd=*/true));
    const absl::Time until =
        std::min(options_.clock->Now() + kPinDenialTtl,
                 absl::FromUnixSeconds(denial->verified.freshness.valid_until()));
    MutexLock lock(&pin_hints_mu_);
    if (pin_denials_generation_ == denials_generation) {
      if (pin_denials_.size() >= options_.max_cached_answers) {
        pin_denials_.clear();
      }
      pin_denials_[pin] = {denial, until};
    }
    return denial->usable;
  }
  // The holder's host answer, verified against the root of the org its
  // hostname belongs to.
  absl::StatusOr<std::string> name = CanonicalHostname(raw.name());
  if (!name.ok()) {
    return LookupError(LookupFailure::kVerification,
                       absl::StrCat("keyd answered a TLS pin with a bad name: ",
                                    name.status().message()));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const CachedAnswer> entry,
                   Admit(*name, v1::LOOKUP_KIND_HOST, raw, /*from_keyd=*/true));
  if (!UsableCertificateHasPin(entry->verified, pin)) {
    // A host answer is a pin answer only if one of its certificates (usable
    // or not) carries the pin; any other genuine answer proves nothing.
    if (!AnyCertificateHasPin(entry->verified, pin)) {
      return LookupError(
          LookupFailure::kUnavailable,
          absl::StrCat("keyd answered the TLS pin with the answer of ", *name,
                       ", none of whose certificates carries it"));
    }
    // The holder's key is no longer usable: revoked or expired.
    if (!entry->usable.ok()) return entry->usable;
    return LookupError(LookupFailure::kExpired,
                       absl::StrCat("the certificate of ", *name,
                                    " that carries the TLS pin is no longer "
                                    "usable"));
  }
  MutexLock lock(&pin_hints_mu_);
  if (pin_hints_.size() >= options_.max_cached_answers) pin_hints_.clear();
  pin_hints_[pin] = *name;
  return AnswerRef(entry, &entry->verified);
}

int KeyClient::Subscribe(RevocationListener listener) {
  return watcher_ ? watcher_->Subscribe(std::move(listener)) : 0;
}

void KeyClient::Unsubscribe(int id) {
  if (watcher_) watcher_->Unsubscribe(id);
}

std::optional<uint64_t> KeyClient::FeedPosition() const {
  return watcher_ ? watcher_->position() : std::nullopt;
}

bool KeyClient::WaitForFeedPosition(uint64_t seq,
                                    absl::Duration timeout) const {
  return watcher_ && watcher_->WaitForPosition(seq, timeout);
}

}  // namespace mxkey
