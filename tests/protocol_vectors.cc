#include "tests/protocol_vectors.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "client/tls_pins.h"
#include "crypto/ed25519.h"
#include "crypto/secret_bytes.h"
#include "crypto/sha256.h"
#include "crypto/spki.h"
#include "crypto/x25519.h"
#include "proto/mxkey/v1/mxkey.pb.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr int64_t kDay = 86400;
constexpr char kOrg[] = "example";
constexpr char kHost[] = "mx1.example.org";
constexpr char kDomain[] = "example.org";
constexpr char kUnknownHost[] = "mx9.example.org";
constexpr char kPeerHost[] = "mx1.peer.example";

// 32 bytes: first, first + 1, ..., first + 31.
SecretBytes Seed(uint8_t first) {
  std::string seed(32, '\0');
  for (int i = 0; i < 32; ++i) seed[i] = static_cast<char>(first + i);
  return SecretBytes(seed);
}

// The Ed25519 group order L, little-endian: adding it to S gives the
// non-canonical twin of a valid signature.
std::string AddGroupOrder(std::string signature) {
  static const uint8_t kL[32] = {
      0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
      0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
  unsigned carry = 0;
  for (int i = 0; i < 32; ++i) {
    unsigned sum = static_cast<uint8_t>(signature[32 + i]) + kL[i] + carry;
    signature[32 + i] = static_cast<char>(sum & 0xff);
    carry = sum >> 8;
  }
  return signature;
}

absl::StatusOr<v1::SignedObject> Freshness(const Ed25519PrivateKey& issuing,
                                           const v1::KeyAnswer& answer,
                                           uint64_t feed_head, int64_t as_of,
                                           v1::LookupKind kind = v1::LOOKUP_KIND_HOST,
                                           uint64_t bundle_version = 1) {
  v1::FreshnessBody body;
  body.set_name(answer.name());
  body.set_kind(kind);
  body.set_bundle_version(bundle_version);
  body.set_answer_sha256(AnswerDigest(CoveredObjects(answer)));
  body.set_feed_head(feed_head);
  body.set_as_of(as_of);
  body.set_valid_until(as_of + 300);
  return SignObject(issuing, ObjectType::kFreshness, body.SerializeAsString());
}

}  // namespace

absl::StatusOr<std::vector<ProtocolVector>> ProtocolVectors() {
  const int64_t t = kVectorTime;
  std::vector<ProtocolVector> out;
  auto bytes = [&](std::string name, std::string value) {
    out.push_back({std::move(name), std::move(value), false});
  };
  auto text = [&](std::string name, std::string value) {
    out.push_back({std::move(name), std::move(value), true});
  };

  // Keys.
  ASSIGN_OR_RETURN(Ed25519PrivateKey root, Ed25519PrivateKey::FromSeed(Seed(0x00)));
  ASSIGN_OR_RETURN(Ed25519PrivateKey issuing,
                   Ed25519PrivateKey::FromSeed(Seed(0x20)));
  ASSIGN_OR_RETURN(Ed25519PrivateKey identity,
                   Ed25519PrivateKey::FromSeed(Seed(0x40)));
  ASSIGN_OR_RETURN(X25519PrivateKey agreement,
                   X25519PrivateKey::FromBytes(Seed(0x60)));
  ASSIGN_OR_RETURN(Ed25519PrivateKey tls_key,
                   Ed25519PrivateKey::FromSeed(Seed(0x80)));
  ASSIGN_OR_RETURN(Ed25519PrivateKey peer_root,
                   Ed25519PrivateKey::FromSeed(Seed(0xa0)));
  ASSIGN_OR_RETURN(std::string tls_spki, Ed25519SpkiDer(tls_key.public_key()));
  const std::string pin = Sha256(tls_spki);

  bytes("root.seed", std::string(Seed(0x00).view()));
  bytes("root.public_key", root.public_key());
  text("root.fingerprint", KeyFingerprint(root.public_key()));
  bytes("root.key_id", KeyId(root.public_key()));
  bytes("issuing.seed", std::string(Seed(0x20).view()));
  bytes("issuing.public_key", issuing.public_key());
  bytes("issuing.key_id", KeyId(issuing.public_key()));
  bytes("host.identity_seed", std::string(Seed(0x40).view()));
  bytes("host.identity_key", identity.public_key());
  bytes("host.agreement_private", std::string(Seed(0x60).view()));
  bytes("host.agreement_key", agreement.public_key());
  bytes("host.tls_spki", tls_spki);
  bytes("host.tls_pin", pin);
  text("host.tls_pin_postfix", ColonHex(pin));

  // Issuing-key certificate.
  v1::IssuingKeyBody issuing_body;
  issuing_body.set_org(kOrg);
  issuing_body.set_public_key(issuing.public_key());
  issuing_body.set_not_before(t);
  issuing_body.set_not_after(t + 30 * kDay);
  ASSIGN_OR_RETURN(v1::SignedObject issuing_cert,
                   SignObject(root, ObjectType::kIssuingKey,
                              issuing_body.SerializeAsString()));
  bytes("issuing_cert.body", issuing_cert.body());
  bytes("issuing_cert.signature", issuing_cert.signature());

  // Host certificate.
  v1::HostCertificateBody host_body;
  host_body.set_hostname(kHost);
  host_body.add_mail_domains(kDomain);
  host_body.set_identity_key(identity.public_key());
  host_body.set_agreement_key(agreement.public_key());
  host_body.add_tls_spki_sha256(pin);
  host_body.set_serial(1);
  host_body.set_not_before(t);
  host_body.set_not_after(t + 30 * kDay);
  host_body.set_active_from(t);
  host_body.set_org(kOrg);
  ASSIGN_OR_RETURN(v1::SignedObject host_cert,
                   SignObject(issuing, ObjectType::kHostCertificate,
                              host_body.SerializeAsString()));
  bytes("host_cert.body", host_cert.body());
  bytes("host_cert.signature", host_cert.signature());

  // A host answer.
  v1::KeyAnswer host_answer;
  host_answer.set_name(kHost);
  *host_answer.add_certificates() = host_cert;
  *host_answer.add_issuing_keys() = issuing_cert;
  ASSIGN_OR_RETURN(*host_answer.mutable_freshness(),
                   Freshness(issuing, host_answer, 0, t + 60));
  bytes("host_answer.freshness_body", host_answer.freshness().body());
  bytes("host_answer.freshness_signature", host_answer.freshness().signature());
  bytes("host_answer", host_answer.SerializeAsString());

  // A domain answer: the policy and the domain's host certificates.
  v1::DomainPolicyBody policy_body;
  policy_body.set_domain(kDomain);
  policy_body.set_mode(v1::POLICY_MODE_ENFORCE);
  policy_body.set_version(1);
  policy_body.set_set_at(t);
  v1::KeyAnswer domain_answer;
  domain_answer.set_name(kDomain);
  *domain_answer.add_certificates() = host_cert;
  ASSIGN_OR_RETURN(*domain_answer.mutable_policy(),
                   SignObject(issuing, ObjectType::kDomainPolicy,
                              policy_body.SerializeAsString()));
  *domain_answer.add_issuing_keys() = issuing_cert;
  ASSIGN_OR_RETURN(*domain_answer.mutable_freshness(),
                   Freshness(issuing, domain_answer, 0, t + 60,
                             v1::LOOKUP_KIND_DOMAIN));
  bytes("policy.body", domain_answer.policy().body());
  bytes("policy.signature", domain_answer.policy().signature());
  bytes("domain_answer", domain_answer.SerializeAsString());

  // A signed denial for a name the org does not certify.
  v1::DenialBody denial_body;
  denial_body.set_name(kUnknownHost);
  denial_body.set_reason(v1::DENIAL_REASON_NO_SUCH_HOST);
  denial_body.set_as_of(t + 60);
  v1::KeyAnswer denial_answer;
  denial_answer.set_name(kUnknownHost);
  ASSIGN_OR_RETURN(*denial_answer.mutable_denial(),
                   SignObject(issuing, ObjectType::kDenial,
                              denial_body.SerializeAsString()));
  *denial_answer.add_issuing_keys() = issuing_cert;
  ASSIGN_OR_RETURN(*denial_answer.mutable_freshness(),
                   Freshness(issuing, denial_answer, 0, t + 60));
  bytes("denial.body", denial_answer.denial().body());
  bytes("denial.signature", denial_answer.denial().signature());
  bytes("denial_answer", denial_answer.SerializeAsString());

  // The revocation of the host certificate, and the host answer after it.
  v1::RevocationEventBody event_body;
  event_body.set_seq(1);
  event_body.set_hostname(kHost);
  event_body.set_serial(1);
  event_body.set_reason("key compromise");
  event_body.set_revoked_at(t + 120);
  ASSIGN_OR_RETURN(v1::SignedObject event,
                   SignObject(issuing, ObjectType::kRevocation,
                              event_body.SerializeAsString()));
  bytes("revocation.body", event.body());
  bytes("revocation.signature", event.signature());
  v1::KeyAnswer revoked_answer;
  revoked_answer.set_name(kHost);
  *revoked_answer.add_certificates() = host_cert;
  *revoked_answer.add_revocations() = event;
  *revoked_answer.add_issuing_keys() = issuing_cert;
  ASSIGN_OR_RETURN(*revoked_answer.mutable_freshness(),
                   Freshness(issuing, revoked_answer, 1, t + 120));
  bytes("revoked_answer", revoked_answer.SerializeAsString());

  // The federation bundle, signed by the root itself.
  v1::FederationBundleBody bundle_body;
  bundle_body.set_org(kOrg);
  bundle_body.set_version(1);
  bundle_body.set_issued_at(t);
  bundle_body.set_not_after(t + 7 * kDay);
  v1::FederationPeer* peer = bundle_body.add_peers();
  peer->set_org("peer");
  peer->add_domain_suffixes("peer.example");
  peer->set_endpoint("keyd.peer.example:7700");
  peer->set_root_public_key(peer_root.public_key());
  ASSIGN_OR_RETURN(v1::SignedObject bundle,
                   SignObject(root, ObjectType::kFederationBundle,
                              bundle_body.SerializeAsString()));
  bytes("bundle.body", bundle.body());
  bytes("bundle.signature", bundle.signature());

  // Invalid variants (see ProtocolAnswerChecks for why each fails).
  v1::KeyAnswer tampered = host_answer;
  std::string* body = tampered.mutable_certificates(0)->mutable_body();
  (*body)[body->size() - 1] ^= 0x01;
  bytes("invalid.tampered_certificate", tampered.SerializeAsString());

  v1::KeyAnswer by_root = host_answer;
  ASSIGN_OR_RETURN(*by_root.mutable_certificates(0),
                   SignObject(root, ObjectType::kHostCertificate,
                              host_cert.body()));
  ASSIGN_OR_RETURN(*by_root.mutable_freshness(),
                   Freshness(issuing, by_root, 0, t + 60));
  bytes("invalid.certificate_signed_by_root", by_root.SerializeAsString());

  v1::KeyAnswer non_canonical = host_answer;
  non_canonical.mutable_certificates(0)->set_signature(
      AddGroupOrder(host_cert.signature()));
  ASSIGN_OR_RETURN(*non_canonical.mutable_freshness(),
                   Freshness(issuing, non_canonical, 0, t + 60));
  bytes("invalid.non_canonical_signature", non_canonical.SerializeAsString());

  v1::KeyAnswer stripped = host_answer;
  stripped.clear_certificates();
  bytes("invalid.certificate_removed", stripped.SerializeAsString());

  v1::KeyAnswer context_swap = host_answer;
  ASSIGN_OR_RETURN(std::string wrong_context_signature,
                   SignBytes(issuing, ObjectType::kDenial, host_cert.body()));
  context_swap.mutable_certificates(0)->set_signature(wrong_context_signature);
  ASSIGN_OR_RETURN(*context_swap.mutable_freshness(),
                   Freshness(issuing, context_swap, 0, t + 60));
  bytes("invalid.wrong_context", context_swap.SerializeAsString());

  // Well signed but malformed (a dishonest peer org): a 17-byte agreement
  // key, which a C caller's 32-byte buffer would be filled past.
  v1::HostCertificateBody short_key_body = host_body;
  short_key_body.set_agreement_key(agreement.public_key().substr(0, 17));
  v1::KeyAnswer short_key = host_answer;
  ASSIGN_OR_RETURN(*short_key.mutable_certificates(0),
                   SignObject(issuing, ObjectType::kHostCertificate,
                              short_key_body.SerializeAsString()));
  ASSIGN_OR_RETURN(*short_key.mutable_freshness(),
                   Freshness(issuing, short_key, 0, t + 60));
  bytes("invalid.short_agreement_key", short_key.SerializeAsString());

  // Attacks with genuine signatures: answers to one lookup offered for
  // another, and denials the client must not take as "no key".
  v1::DenialBody host_denial_body;
  host_denial_body.set_name(kDomain);
  host_denial_body.set_reason(v1::DENIAL_REASON_NO_SUCH_HOST);
  host_denial_body.set_as_of(t + 60);
  v1::KeyAnswer host_denial_for_domain;
  host_denial_for_domain.set_name(kDomain);
  ASSIGN_OR_RETURN(*host_denial_for_domain.mutable_denial(),
                   SignObject(issuing, ObjectType::kDenial,
                              host_denial_body.SerializeAsString()));
  *host_denial_for_domain.add_issuing_keys() = issuing_cert;
  ASSIGN_OR_RETURN(*host_denial_for_domain.mutable_freshness(),
                   Freshness(issuing, host_denial_for_domain, 0, t + 60));
  bytes("attack.host_denial_named_like_the_domain",
        host_denial_for_domain.SerializeAsString());

  v1::KeyAnswer host_reason_domain = host_denial_for_domain;
  ASSIGN_OR_RETURN(*host_reason_domain.mutable_freshness(),
                   Freshness(issuing, host_reason_domain, 0, t + 60,
                             v1::LOOKUP_KIND_DOMAIN));
  bytes("attack.domain_answer_with_host_denial",
        host_reason_domain.SerializeAsString());

  v1::KeyAnswer no_policy = domain_answer;
  no_policy.clear_policy();
  ASSIGN_OR_RETURN(*no_policy.mutable_freshness(),
                   Freshness(issuing, no_policy, 0, t + 60,
                             v1::LOOKUP_KIND_DOMAIN));
  bytes("attack.domain_answer_without_policy", no_policy.SerializeAsString());

  v1::DenialBody peer_denial_body;
  peer_denial_body.set_name(kPeerHost);
  peer_denial_body.set_reason(v1::DENIAL_REASON_NO_SUCH_HOST);
  peer_denial_body.set_as_of(t + 60);
  v1::KeyAnswer peer_denial;
  peer_denial.set_name(kPeerHost);
  ASSIGN_OR_RETURN(*peer_denial.mutable_denial(),
                   SignObject(issuing, ObjectType::kDenial,
                              peer_denial_body.SerializeAsString()));
  *peer_denial.add_issuing_keys() = issuing_cert;
  ASSIGN_OR_RETURN(*peer_denial.mutable_freshness(),
                   Freshness(issuing, peer_denial, 0, t + 60));
  bytes("attack.own_denial_for_a_peer_name", peer_denial.SerializeAsString());

  v1::KeyAnswer old_bundle_denial = denial_answer;
  ASSIGN_OR_RETURN(*old_bundle_denial.mutable_freshness(),
                   Freshness(issuing, old_bundle_denial, 0, t + 60,
                             v1::LOOKUP_KIND_HOST, /*bundle_version=*/0));
  bytes("attack.denial_under_an_older_bundle",
        old_bundle_denial.SerializeAsString());

  ASSIGN_OR_RETURN(v1::SignedObject bundle_by_issuing,
                   SignObject(issuing, ObjectType::kFederationBundle,
                              bundle_body.SerializeAsString()));
  bytes("invalid.bundle_signed_by_issuing_key.signature",
        bundle_by_issuing.signature());
  return out;
}

std::vector<AnswerCheck> ProtocolAnswerChecks() {
  const absl::Time t = absl::FromUnixSeconds(kVectorTime);
  const absl::Time fresh = t + absl::Seconds(60);
  constexpr v1::LookupKind kH = v1::LOOKUP_KIND_HOST;
  constexpr v1::LookupKind kD = v1::LOOKUP_KIND_DOMAIN;
  return {
      {"host_answer", kHost, kH, fresh, ""},
      {"domain_answer", kDomain, kD, fresh, ""},
      {"denial_answer", kUnknownHost, kH, fresh, "", true},
      {"revoked_answer", kHost, kH, t + absl::Seconds(120), ""},
      {"host_answer", kHost, kH, t + absl::Seconds(360), "stale"},
      {"host_answer", kHost, kH, t + absl::Hours(24 * 30),
       "no valid issuing certificate"},
      {"denial_answer", kHost, kH, fresh, "not the name asked about"},
      {"invalid.tampered_certificate", kHost, kH, fresh,
       "does not cover this answer"},
      {"invalid.certificate_signed_by_root", kHost, kH, fresh,
       "no valid issuing certificate"},
      {"invalid.non_canonical_signature", kHost, kH, fresh,
       "signature check failed"},
      {"invalid.certificate_removed", kHost, kH, fresh,
       "does not cover this answer"},
      {"invalid.wrong_context", kHost, kH, fresh, "signature check failed"},
      {"invalid.short_agreement_key", kHost, kH, fresh,
       "agreement_key has 17 bytes, not 32"},
      // A host answer offered for a domain lookup and the reverse.
      {"attack.host_denial_named_like_the_domain", kDomain, kD, fresh,
       "answers a LOOKUP_KIND_HOST lookup"},
      {"domain_answer", kDomain, kH, fresh,
       "answers a LOOKUP_KIND_DOMAIN lookup"},
      {"attack.domain_answer_with_host_denial", kDomain, kD, fresh,
       "may deny only with DENIAL_REASON_DOMAIN_UNKEYED"},
      {"attack.domain_answer_without_policy", kDomain, kD, fresh,
       "exactly one of a policy or a denial"},
      // Denials the client must not take as "no key".
      {"attack.own_denial_for_a_peer_name", kPeerHost, kH, fresh,
       "belongs to peer peer", true},
      {"attack.denial_under_an_older_bundle", kUnknownHost, kH, fresh,
       "older than version 1", true},
  };
}

absl::StatusOr<std::string> FormatProtocolVectors() {
  ASSIGN_OR_RETURN(std::vector<ProtocolVector> vectors, ProtocolVectors());
  std::string out;
  for (const ProtocolVector& v : vectors) {
    if (v.is_text) {
      absl::StrAppend(&out, v.name, ": \"", v.value, "\"\n");
      continue;
    }
    absl::StrAppend(&out, v.name, ":\n");
    const std::string hex = absl::BytesToHexString(v.value);
    for (size_t i = 0; i < hex.size(); i += 64) {
      absl::StrAppend(&out, "  ", hex.substr(i, 64), "\n");
    }
  }
  return out;
}

}  // namespace mxkey
