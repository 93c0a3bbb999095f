#include "keyd/tls_files.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/files.h"
#include "base/log.h"
#include "client/keyd_channel.h"
#include "crypto/sha256.h"
#include "crypto/x509_identity.h"
#include "proto/mxkey/v1/objects.pb.h"
#include "protocol/certificate_times.h"
#include "protocol/signed_object.h"

namespace mxkey {

bool KeydTlsFiles::Current() const {
  absl::StatusOr<std::string> pem = ReadFile(path_);
  if (!pem.ok()) return false;
  const absl::Time now = clock_->Now();
  // The check a client makes, plus half the validity to spare.
  if (!CheckKeydCertificate(*pem, keys_->root_fingerprint(), now).ok()) {
    return false;
  }
  absl::StatusOr<PresentedCertificate> cert = ReadPresentedCertificate(*pem);
  return cert.ok() && cert->not_after - now > kValidity / 2;
}

absl::Status KeydTlsFiles::Refresh() {
  if (Current()) return absl::OkStatus();
  const absl::Time now = clock_->Now();
  // A little slack backwards for clients whose clocks run behind.
  const absl::Time not_before = now - absl::Seconds(kBackdateSeconds);
  const absl::Time not_after = now + kValidity;
  absl::StatusOr<TlsIdentity> identity = MakeTlsIdentity(
      [&](absl::string_view spki) -> absl::StatusOr<std::string> {
        mxkey::v1::KeydTlsKeyBody body;
        body.set_org(keys_->org());
        body.set_spki_sha256(Sha256(spki));
        body.set_not_before(absl::ToUnixSeconds(not_before));
        body.set_not_after(absl::ToUnixSeconds(not_after));
        mxkey::v1::KeydTlsBinding binding;
        binding.set_root_public_key(keys_->root_public_key());
        absl::StatusOr<mxkey::v1::SignedObject> signed_body =
            keys_->SignKeydTlsKey(body.SerializeAsString());
        if (!signed_body.ok()) return signed_body.status();
        *binding.mutable_tls_key() = *std::move(signed_body);
        return binding.SerializeAsString();
      },
      not_before, not_after);
  if (!identity.ok()) return identity.status();
  SecretBytes file(identity->key_pem.size() + identity->cert_pem.size());
  memcpy(file.data(), identity->key_pem.data(), identity->key_pem.size());
  memcpy(file.data() + identity->key_pem.size(), identity->cert_pem.data(),
         identity->cert_pem.size());
  absl::Status st = WriteFileAtomically(path_, file.view(), 0600);
  if (!st.ok()) return st;
  LogInfo("TLS identity renewed: %s, valid until %s", path_,
          absl::FormatTime(not_after));
  return absl::OkStatus();
}

}  // namespace mxkey
