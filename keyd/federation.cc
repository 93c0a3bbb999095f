#include "keyd/federation.h"

#include <algorithm>

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "base/grpc_status.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/sha256.h"
#include "keyd/records.h"
#include "keyd/records.pb.h"
#include "proto/mxkey/v1/mxkey.grpc.pb.h"
#include "protocol/hostname.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

namespace v1 = ::mxkey::v1;

constexpr absl::string_view kBundleKey = "federation_bundle";
constexpr size_t kMaxSuffixes = 64;
constexpr size_t kMaxOrgName = 128;

v1::PeerInfo InfoOf(const keyd::PeerRecord& r, uint64_t bundle_version) {
  v1::PeerInfo info;
  info.set_org(r.peer().org());
  *info.mutable_domain_suffixes() = r.peer().domain_suffixes();
  info.set_endpoint(r.peer().endpoint());
  info.set_root_fingerprint(KeyFingerprint(r.peer().root_public_key()));
  info.set_added_at(r.added_at());
  info.set_bundle_version(bundle_version);
  return info;
}

}  // namespace

OrgInfoFetcher OrgInfoFetcherFor(KeydTransport transport, Clock* clock) {
  return [transport, clock](const std::string& endpoint)
             -> absl::StatusOr<v1::OrgInfo> {
    auto tls_root = std::make_shared<std::string>();
    auto mu = std::make_shared<Mutex>();
    auto stub = v1::KeyDirectory::NewStub(KeydChannel(
        endpoint, transport, /*root_fingerprint=*/"", clock,
        [tls_root, mu](const std::string& root) {
          MutexLock lock(mu.get());
          *tls_root = root;
        }));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::OrgInfo info;
    grpc::Status st = stub->GetOrgInfo(&ctx, v1::GetOrgInfoRequest(), &info);
    if (!st.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "peer endpoint ", endpoint, " did not answer GetOrgInfo: ",
          st.error_message()));
    }
    MutexLock lock(mu.get());
    if (UsesTls(endpoint, transport) && *tls_root != info.root_public_key()) {
      return absl::UnauthenticatedError(absl::StrCat(
          "peer endpoint ", endpoint, " reports root ",
          KeyFingerprint(info.root_public_key()),
          ", but its TLS key is certified by another root"));
    }
    return info;
  };
}

absl::StatusOr<uint64_t> Federation::SignBundle(WriteTxn& txn) {
  ASSIGN_OR_RETURN(uint64_t version, GetCounter(txn, kBundleVersionCounter));
  ++version;
  v1::FederationBundleBody body;
  body.set_org(ctx_->keys->org());
  body.set_version(version);
  body.set_issued_at(ctx_->now());
  body.set_not_after(ctx_->now() + absl::ToInt64Seconds(kBundleValidity));
  RETURN_IF_ERROR(txn.Scan(Table::kPeers, "",
                           [&](absl::string_view, absl::string_view value) {
                             keyd::PeerRecord r;
                             if (r.ParseFromArray(value.data(),
                                                  static_cast<int>(value.size()))) {
                               *body.add_peers() = r.peer();
                             }
                             return true;
                           }));
  ASSIGN_OR_RETURN(v1::SignedObject signed_bundle,
                   ctx_->keys->SignFederationBundle(body.SerializeAsString()));
  RETURN_IF_ERROR(SetCounter(txn, kBundleVersionCounter, version));
  RETURN_IF_ERROR(txn.Put(Table::kMeta, kBundleKey,
                          signed_bundle.SerializeAsString()));
  return version;
}

absl::StatusOr<v1::PeerInfo> Federation::AddPeer(
    const v1::AddPeerRequest& request) {
  const std::string& org = request.org();
  if (org.empty() || org.size() > kMaxOrgName || org == ctx_->keys->org()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "peer org must be 1..", kMaxOrgName,
        " bytes and not this organization's own name"));
  }
  if (request.domain_suffixes().empty() ||
      static_cast<size_t>(request.domain_suffixes_size()) > kMaxSuffixes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a peer needs 1..", kMaxSuffixes, " domain suffixes"));
  }
  v1::FederationPeer peer;
  peer.set_org(org);
  for (const std::string& s : request.domain_suffixes()) {
    absl::StatusOr<std::string> suffix = CanonicalHostname(s);
    if (!suffix.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("domain suffix: ", suffix.status().message()));
    }
    // Canonical and once each: "b.example" and "B.Example." are one suffix,
    // and a bundle listing it twice is one every client rejects.
    if (std::find(peer.domain_suffixes().begin(), peer.domain_suffixes().end(),
                  *suffix) == peer.domain_suffixes().end()) {
      peer.add_domain_suffixes(*suffix);
    }
  }
  if (request.endpoint().empty() ||
      request.endpoint().find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        "peer endpoint must be HOST:PORT of its KeyDirectory");
  }
  peer.set_endpoint(request.endpoint());
  // Check the out-of-band fingerprint before anything is stored.
  ASSIGN_OR_RETURN(v1::OrgInfo info, fetch_(request.endpoint()));
  const std::string presented = KeyFingerprint(info.root_public_key());
  if (info.root_public_key().size() != 32 ||
      presented != request.root_fingerprint()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "peer root fingerprint mismatch: expected ", request.root_fingerprint(),
        ", but ", request.endpoint(), " presents ", presented,
        "; get the fingerprint again from the peer's admin"));
  }
  if (info.org() != org) {
    return absl::FailedPreconditionError(absl::StrCat(
        "peer at ", request.endpoint(), " calls itself \"", info.org(),
        "\", not \"", org, "\""));
  }
  if (info.root_public_key() == ctx_->keys->root_public_key()) {
    return absl::InvalidArgumentError("a peer cannot have this org's own root");
  }
  peer.set_root_public_key(info.root_public_key());
  keyd::PeerRecord record;
  *record.mutable_peer() = peer;
  record.set_added_at(ctx_->now());
  uint64_t version = 0;
  RETURN_IF_ERROR(ctx_->store->Write([&](WriteTxn& txn) -> absl::Status {
    // A suffix belongs to one peer only.
    absl::Status clash = absl::OkStatus();
    RETURN_IF_ERROR(txn.Scan(
        Table::kPeers, "", [&](absl::string_view key, absl::string_view value) {
          keyd::PeerRecord other;
          if (key == org || !other.ParseFromArray(
                                value.data(), static_cast<int>(value.size()))) {
            return true;
          }
          for (const std::string& mine : peer.domain_suffixes()) {
            for (const std::string& theirs : other.peer().domain_suffixes()) {
              if (mine == theirs) {
                clash = absl::FailedPreconditionError(absl::StrCat(
                    "suffix ", mine, " already belongs to peer ",
                    other.peer().org()));
                return false;
              }
            }
          }
          return true;
        }));
    RETURN_IF_ERROR(clash);
    // A peer suffix never captures the own org's names: its hosts (and
    // their mail domains) and its domain policies.
    auto captured = [&](Table table) -> absl::Status {
      absl::Status found = absl::OkStatus();
      RETURN_IF_ERROR(txn.Scan(table, "", [&](absl::string_view key,
                                             absl::string_view) {
        // kDomainHosts keys are domain NUL host.
        const absl::string_view name = key.substr(0, key.find('\0'));
        if (LongestSuffixUnder(name, peer.domain_suffixes()) > 0) {
          found = absl::FailedPreconditionError(absl::StrCat(
              "a suffix of peer ", org, " covers ", name, ", a name of this "
              "organization; a peer may speak only for names the own org "
              "does not have"));
          return false;
        }
        return true;
      }));
      return found;
    };
    RETURN_IF_ERROR(captured(Table::kHosts));
    RETURN_IF_ERROR(captured(Table::kDomainHosts));
    RETURN_IF_ERROR(captured(Table::kPolicies));
    RETURN_IF_ERROR(PutRecord(txn, Table::kPeers, org, record));
    ASSIGN_OR_RETURN(version, SignBundle(txn));
    return absl::OkStatus();
  }));
  LogInfo("peer added: org=%s endpoint=%s root=%s bundle=%d", org,
          peer.endpoint(), presented, version);
  return InfoOf(record, version);
}

absl::StatusOr<v1::ListPeersResponse> Federation::ListPeers() {
  v1::ListPeersResponse response;
  RETURN_IF_ERROR(ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(uint64_t version, GetCounter(txn, kBundleVersionCounter));
    return txn.Scan(Table::kPeers, "",
                    [&](absl::string_view, absl::string_view value) {
                      keyd::PeerRecord r;
                      if (r.ParseFromArray(value.data(),
                                           static_cast<int>(value.size()))) {
                        *response.add_peers() = InfoOf(r, version);
                      }
                      return true;
                    });
  }));
  return response;
}

absl::StatusOr<v1::RemovePeerResponse> Federation::RemovePeer(
    const v1::RemovePeerRequest& request) {
  v1::RemovePeerResponse response;
  RETURN_IF_ERROR(ctx_->store->Write([&](WriteTxn& txn) -> absl::Status {
    absl::Status del = txn.Delete(Table::kPeers, request.org());
    if (absl::IsNotFound(del)) {
      return absl::NotFoundError(absl::StrCat(
          "no peer named \"", request.org(), "\" (see keyctl peer list)"));
    }
    RETURN_IF_ERROR(del);
    ASSIGN_OR_RETURN(uint64_t version, SignBundle(txn));
    response.set_bundle_version(version);
    return absl::OkStatus();
  }));
  LogInfo("peer removed: org=%s bundle=%d", request.org(),
          response.bundle_version());
  return response;
}

absl::StatusOr<v1::SignedObject> Federation::Bundle() {
  auto current = [&]() -> absl::StatusOr<std::optional<v1::SignedObject>> {
    std::optional<v1::SignedObject> bundle;
    RETURN_IF_ERROR(ctx_->store->Read([&](ReadTxn& txn) -> absl::Status {
      absl::StatusOr<absl::string_view> raw = txn.Get(Table::kMeta, kBundleKey);
      if (absl::IsNotFound(raw.status())) return absl::OkStatus();
      if (!raw.ok()) return raw.status();
      bundle.emplace();
      if (!bundle->ParseFromArray(raw->data(), static_cast<int>(raw->size()))) {
        return absl::DataLossError("stored federation bundle is corrupt");
      }
      return absl::OkStatus();
    }));
    return bundle;
  };
  auto fresh = [&](const v1::SignedObject& b) {
    absl::StatusOr<v1::FederationBundleBody> body =
        ParseBody<v1::FederationBundleBody>(b);
    return body.ok() &&
           ctx_->now() < body->issued_at() +
                             absl::ToInt64Seconds(kBundleValidity) / 2;
  };
  ASSIGN_OR_RETURN(std::optional<v1::SignedObject> bundle, current());
  if (bundle && fresh(*bundle)) return *bundle;
  MutexLock lock(&resign_mu_);
  ASSIGN_OR_RETURN(bundle, current());  // another caller may have re-signed
  if (bundle && fresh(*bundle)) return *bundle;
  RETURN_IF_ERROR(ctx_->store->Write(
      [&](WriteTxn& txn) { return SignBundle(txn).status(); }));
  ASSIGN_OR_RETURN(bundle, current());
  if (!bundle) return absl::InternalError("federation bundle was not stored");
  return *bundle;
}

}  // namespace mxkey
