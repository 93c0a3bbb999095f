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
#include <string>

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

  const std::string& org() const { return state_.org(); }
  const std::string& root_public_key() const {
    return state_.root_public_key();
  }
  std::string root_fingerprint() const;
  const mxkey::v1::SignedObject& issuing_cert() const {
    return state_.issuing_certs(state_.issuing_certs_size() - 1);
  }
  const mxkey::v1::IssuingKeyBody& issuing_body() const {
    return issuing_body_;
  }
  // The certificate of the issuing key with this key id, if still known.
  const mxkey::v1::SignedObject* IssuingCertById(
      absl::string_view key_id) const;

  // Signs `body` with the current issuing key.
  absl::StatusOr<mxkey::v1::SignedObject> Sign(ObjectType type,
                                               std::string body) const;

 private:
  OrgKeys(keyd::OrgState state, Ed25519PrivateKey issuing,
          mxkey::v1::IssuingKeyBody body)
      : state_(std::move(state)),
        issuing_(std::move(issuing)),
        issuing_body_(std::move(body)) {
    for (const auto& cert : state_.issuing_certs()) {
      mxkey::v1::IssuingKeyBody b;
      b.ParseFromString(cert.body());
      issuer_ids_.push_back(KeyId(b.public_key()));
    }
  }

  keyd::OrgState state_;
  Ed25519PrivateKey issuing_;
  mxkey::v1::IssuingKeyBody issuing_body_;
  // Key ids of state_.issuing_certs, same order.
  std::vector<std::string> issuer_ids_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_ORG_KEYS_H_
