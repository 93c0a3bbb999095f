// The organization's signing keys: the org root and the online issuing key.
//
// The root certifies the issuing key; keyd signs everything else with the
// issuing key. Both private keys are sealed at rest (scrypt +
// ChaCha20-Poly1305, mode 0600) in the data directory:
//   root.key      sealed root seed
//   issuing.key   sealed seed of the current issuing key
//   org.pb        public OrgState: org name, root key, issuing certificates
// Load renews the issuing key when less than a third of its validity is
// left. Errors: NOT_FOUND if the directory was never initialized,
// ALREADY_EXISTS if Init finds keys, UNAUTHENTICATED for a wrong passphrase.
#ifndef MXKEY_KEYD_ORG_KEYS_H_
#define MXKEY_KEYD_ORG_KEYS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/mutex.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "crypto/ed25519.h"
#include "crypto/sealed_secret.h"
#include "crypto/secret_bytes.h"
#include "keyd/records.pb.h"
#include "protocol/signed_object.h"

namespace mxkey {

struct OrgKeysOptions {
  ScryptParams scrypt;
  absl::Duration issuing_validity = absl::Hours(24 * 30);
};

class OrgKeys {
 public:
  // Creates the root and a first issuing key in `dir` (which must exist).
  static absl::Status Init(const std::string& dir, const std::string& org,
                           const SecretBytes& passphrase,
                           const OrgKeysOptions& options, Clock* clock);

  static absl::StatusOr<std::unique_ptr<OrgKeys>> Load(
      const std::string& dir, const SecretBytes& passphrase,
      const OrgKeysOptions& options, Clock* clock);

  const std::string& org() const { return org_; }
  const std::string& root_public_key() const { return root_.public_key(); }
  std::string root_fingerprint() const;

  // The current issuing key's certificate and body (copies: the key may be
  // renewed concurrently).
  mxkey::v1::SignedObject issuing_cert() const;
  mxkey::v1::IssuingKeyBody issuing_body() const;
  // The certificate of the issuing key with this key id, if still kept.
  std::optional<mxkey::v1::SignedObject> IssuingCertById(
      absl::string_view key_id) const;

  // Signs `body` with the current issuing key.
  absl::StatusOr<mxkey::v1::SignedObject> Sign(ObjectType type,
                                               std::string body) const;

  // Signs a federation bundle with the org root itself: trust in other
  // roots may come only from the own root, never from an issuing key.
  absl::StatusOr<mxkey::v1::SignedObject> SignFederationBundle(
      std::string body) const;
  // Signs the statement of keyd's TLS key (KeydTlsKeyBody) with the root,
  // so clients check the TLS key against the one fingerprint they hold.
  absl::StatusOr<mxkey::v1::SignedObject> SignKeydTlsKey(
      std::string body) const;

  // Replaces the issuing key (on disk too) once less than a third of its
  // validity is left. Safe to call while other threads sign.
  absl::Status RenewIfDue();

 private:
  // Everything that changes together when the issuing key is renewed.
  struct Issuer {
    keyd::OrgState state;
    std::shared_ptr<const Ed25519PrivateKey> key;
    mxkey::v1::IssuingKeyBody body;
    std::vector<std::string> ids;  // key ids of state.issuing_certs
  };

  OrgKeys(std::string dir, Ed25519PrivateKey root, SecretBytes passphrase,
          OrgKeysOptions options, Clock* clock)
      : dir_(std::move(dir)),
        root_(std::move(root)),
        passphrase_(std::move(passphrase)),
        options_(options),
        clock_(clock) {}
  static absl::StatusOr<std::shared_ptr<const Issuer>> MakeIssuer(
      keyd::OrgState state, Ed25519PrivateKey key,
      const std::string& root_public_key);
  std::shared_ptr<const Issuer> issuer() const;

  const std::string dir_;
  const Ed25519PrivateKey root_;
  const SecretBytes passphrase_;
  const OrgKeysOptions options_;
  Clock* const clock_;
  std::string org_;

  mutable Mutex mu_;
  std::shared_ptr<const Issuer> issuer_ ABSL_GUARDED_BY(mu_);
  // Serializes renewals (file writes) without blocking signers.
  Mutex renew_mu_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_ORG_KEYS_H_
