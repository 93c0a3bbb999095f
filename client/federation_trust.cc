#include "client/federation_trust.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/time_format.h"
#include "crypto/sha256.h"
#include "protocol/hostname.h"
#include "protocol/signed_object.h"

namespace mxkey {

absl::StatusOr<FederationTrust> FederationTrust::Verify(
    const mxkey::v1::SignedObject& bundle, absl::string_view own_root,
    absl::Time now, uint64_t min_version, absl::Duration max_clock_skew) {
  absl::Status signature =
      VerifyObject(bundle, ObjectType::kFederationBundle, own_root);
  if (!signature.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "federation bundle is not signed by the own org root: ",
        signature.message()));
  }
  ASSIGN_OR_RETURN(mxkey::v1::FederationBundleBody body,
                   ParseBody<mxkey::v1::FederationBundleBody>(bundle));
  if (body.version() < min_version) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rollback: federation bundle version ", body.version(),
        " is older than version ", min_version, " already seen"));
  }
  if (absl::FromUnixSeconds(body.issued_at()) > now + max_clock_skew) {
    return absl::FailedPreconditionError(absl::StrCat(
        "federation bundle version ", body.version(), " is issued at ",
        FormatUnixTime(body.issued_at()), ", in the future"));
  }
  if (absl::FromUnixSeconds(body.not_after()) <= now) {
    return absl::FailedPreconditionError(absl::StrCat(
        "federation bundle version ", body.version(), " expired at ",
        FormatUnixTime(body.not_after())));
  }
  FederationTrust trust;
  trust.version_ = body.version();
  trust.body_sha256_ = Sha256(bundle.body());
  trust.not_after_ = absl::FromUnixSeconds(body.not_after());
  absl::flat_hash_set<std::string> suffixes;
  for (const mxkey::v1::FederationPeer& p : body.peers()) {
    if (p.org().empty()) {
      return absl::InvalidArgumentError("federation peer without an org name");
    }
    if (p.root_public_key().size() != 32 || p.root_public_key() == own_root) {
      return absl::InvalidArgumentError(absl::StrCat(
          "federation peer ", p.org(),
          ": root key must be 32 bytes and not the own root"));
    }
    TrustedPeer peer{p.org(), {}, p.endpoint(), p.root_public_key()};
    for (const std::string& s : p.domain_suffixes()) {
      absl::StatusOr<std::string> canonical = CanonicalHostname(s);
      if (!canonical.ok() || *canonical != s) {
        return absl::InvalidArgumentError(absl::StrCat(
            "federation peer ", p.org(), ": suffix \"", s,
            "\" is not a canonical domain name"));
      }
      if (!suffixes.insert(s).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "federation bundle names suffix ", s, " twice"));
      }
      peer.domain_suffixes.push_back(s);
    }
    if (peer.domain_suffixes.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "federation peer ", p.org(), " has no domain suffix"));
    }
    trust.peers_.push_back(std::move(peer));
  }
  return trust;
}

absl::Status CheckPeerScope(const VerifiedAnswer& answer,
                            const std::function<bool(const std::string&)>& owns,
                            const std::string& peer_org) {
  auto outside = [&](const std::string& what, const std::string& name) {
    return absl::UnauthenticatedError(absl::StrCat(
        "peer ", peer_org, " answered with ", what, " ", name,
        ", which it does not own (outside its domain suffixes, or under "
        "another peer's longer suffix)"));
  };
  if (!owns(answer.name)) return outside("the name", answer.name);
  for (const VerifiedCert& c : answer.certificates) {
    if (!owns(c.body.hostname())) return outside("host", c.body.hostname());
    for (const std::string& d : c.body.mail_domains()) {
      if (!owns(d)) return outside("mail domain", d);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckOwnAnswer(const VerifiedAnswer& answer,
                            const FederationTrust* trust, absl::Time now) {
  if (!answer.denial) return absl::OkStatus();
  if (trust == nullptr || now >= trust->not_after()) {
    return absl::UnavailableError(absl::StrCat(
        "no valid federation bundle of the own org, so the denial for ",
        answer.name, " cannot be told from a peer's name denied by the "
        "wrong org"));
  }
  if (const TrustedPeer* peer = trust->PeerFor(answer.name)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the own org denied ", answer.name, ", which belongs to peer ",
        peer->org, " (only the peer speaks for it)"));
  }
  if (answer.freshness.bundle_version() < trust->version()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the denial for ", answer.name, " was made under federation bundle "
        "version ", answer.freshness.bundle_version(), ", older than version ",
        trust->version(), " already seen (replayed, or the name became a "
        "peer's since)"));
  }
  return absl::OkStatus();
}

const TrustedPeer* FederationTrust::PeerFor(absl::string_view name) const {
  const TrustedPeer* best = nullptr;
  size_t best_length = 0;
  for (const TrustedPeer& peer : peers_) {
    const size_t length = LongestSuffixUnder(name, peer.domain_suffixes);
    if (length > best_length) {
      best = &peer;
      best_length = length;
    }
  }
  return best;
}

}  // namespace mxkey
