// A host's own keys, kept in its key directory, and the signed requests
// made with them. Private keys never leave this machine.
//
// Files (all mode 0600):
//   identity.key, agreement.key          current private keys (raw 32 bytes)
//   certificate.pb                       current EnrollResponse
//   next/identity.key, ...               keys pre-published by a rotation
//   staging/identity.key, ...            keys of a request in flight
// Errors: NOT_FOUND if the directory holds no keys, INVALID_ARGUMENT for a
// malformed token or certificate file, file-system errors otherwise.
#ifndef MXKEY_CLIENT_HOST_KEYS_H_
#define MXKEY_CLIENT_HOST_KEYS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/ed25519.h"
#include "crypto/tls_key_proof.h"
#include "crypto/x25519.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

struct HostKeys {
  Ed25519PrivateKey identity;
  X25519PrivateKey agreement;
  static absl::StatusOr<HostKeys> Generate();
};

// The token text (64 hex digits) as the token's signing key.
absl::StatusOr<Ed25519PrivateKey> TokenKey(absl::string_view token_hex);

// The TLS pins to certify: the SPKI SHA-256 of the PEM's first certificate,
// or none if `pem_path` is empty.
absl::StatusOr<std::vector<std::string>> PinsFromPemFile(
    const std::string& pem_path);

// A TLS private key from a PEM file (the MTA's own key file), to prove
// possession of the key a pin names. INVALID_ARGUMENT names the file.
absl::StatusOr<TlsKeySigner> TlsKeyFromPemFile(const std::string& key_path);

// The pins certified are `pins` (already the host's: kept without a new
// proof) and those of `tls_keys`, each with its proof of possession
// (TlsKeyProof): keyd certifies a pin no host holds yet only with one.
absl::StatusOr<mxkey::v1::EnrollRequest> MakeEnrollRequest(
    const std::string& hostname, const Ed25519PrivateKey& token,
    const HostKeys& keys, const std::vector<std::string>& pins, absl::Time now,
    const std::vector<const TlsKeySigner*>& tls_keys = {});

// `overlap`: how long the current key stays in use beside the next one
// unless the rotation is finished earlier; zero asks for keyd's default.
absl::StatusOr<mxkey::v1::RotateRequest> MakeRotateRequest(
    const std::string& hostname, uint64_t current_serial,
    const Ed25519PrivateKey& current_identity, const HostKeys& next,
    const std::vector<std::string>& pins, absl::Time now,
    absl::Duration overlap = absl::ZeroDuration(),
    const std::vector<const TlsKeySigner*>& tls_keys = {});

// Says the host now uses its next keys (serial `next_serial`), signed by
// the next identity key.
absl::StatusOr<mxkey::v1::FinishRotationRequest> MakeFinishRotationRequest(
    const std::string& hostname, uint64_t next_serial,
    const Ed25519PrivateKey& next_identity, absl::Time now);

// `subdir` is "" for the current keys, "next" for pre-published ones, or
// "staging" for keys whose request is in flight (kept so that keys keyd
// certified are never lost). Without `certificate`, only the keys are saved.
absl::Status SaveHostKeys(const std::string& dir, const std::string& subdir,
                          const HostKeys& keys,
                          const mxkey::v1::EnrollResponse* certificate);
// Removes the files of `subdir` (not the current keys).
void RemoveHostKeys(const std::string& dir, const std::string& subdir);
absl::StatusOr<HostKeys> LoadHostKeys(const std::string& dir,
                                      const std::string& subdir);
absl::StatusOr<mxkey::v1::EnrollResponse> LoadCertificate(
    const std::string& dir, const std::string& subdir);

// Makes next/ the current keys once its certificate is active at `now`.
// Returns true if it did.
absl::StatusOr<bool> PromoteNextKeysIfActive(const std::string& dir,
                                             absl::Time now);

}  // namespace mxkey

#endif  // MXKEY_CLIENT_HOST_KEYS_H_
