#include "client/keyd_channel.h"

#include <arpa/inet.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "crypto/sha256.h"
#include "crypto/x509_identity.h"
#include "proto/mxkey/v1/objects.pb.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

// Checks each handshake's certificate, synchronously (no I/O).
class KeydCertificateVerifier
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  KeydCertificateVerifier(std::string root_fingerprint, Clock* clock,
                          std::function<void(const std::string&)> on_root)
      : root_fingerprint_(std::move(root_fingerprint)),
        clock_(clock),
        on_root_(std::move(on_root)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    const grpc::string_ref pem = request->peer_cert();
    std::string root;
    absl::Status st =
        CheckKeydCertificate(absl::string_view(pem.data(), pem.size()),
                             root_fingerprint_, clock_->Now(), &root);
    if (st.ok() && on_root_) on_root_(root);
    *sync_status = st.ok() ? grpc::Status::OK
                           : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                          std::string(st.message()));
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::string root_fingerprint_;
  Clock* const clock_;
  const std::function<void(const std::string&)> on_root_;
};

}  // namespace

absl::StatusOr<KeydTransport> ParseKeydTransport(absl::string_view text) {
  if (text == "auto") return KeydTransport::kAuto;
  if (text == "on") return KeydTransport::kTls;
  if (text == "off") return KeydTransport::kPlaintext;
  return absl::InvalidArgumentError(absl::StrCat(
      "TLS setting must be auto, on or off, got \"", text, "\""));
}

bool IsLocalEndpoint(absl::string_view endpoint) {
  if (absl::StartsWith(endpoint, "unix:")) return true;
  absl::ConsumePrefix(&endpoint, "dns:///");
  absl::ConsumePrefix(&endpoint, "ipv4:");
  absl::ConsumePrefix(&endpoint, "ipv6:");
  std::string host;
  if (absl::StartsWith(endpoint, "[")) {
    const size_t close = endpoint.find(']');
    if (close == absl::string_view::npos) return false;
    host = std::string(endpoint.substr(1, close - 1));
  } else {
    host = std::string(endpoint.substr(0, endpoint.rfind(':')));
  }
  if (host == "localhost") return true;
  unsigned char v4[4], v6[16];
  if (inet_pton(AF_INET, host.c_str(), v4) == 1) return v4[0] == 127;
  if (inet_pton(AF_INET6, host.c_str(), v6) == 1) {
    static const unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                0, 0, 0, 0, 0, 0, 0, 1};
    return memcmp(v6, kLoopback, 16) == 0;
  }
  return false;
}

bool UsesTls(absl::string_view endpoint, KeydTransport transport) {
  if (absl::StartsWith(endpoint, "unix:")) return false;
  switch (transport) {
    case KeydTransport::kTls: return true;
    case KeydTransport::kPlaintext: return false;
    case KeydTransport::kAuto: return !IsLocalEndpoint(endpoint);
  }
  return true;
}

absl::Status CheckKeydCertificate(absl::string_view pem,
                                  const std::string& root_fingerprint,
                                  absl::Time now, std::string* root) {
  absl::StatusOr<PresentedCertificate> cert = ReadPresentedCertificate(pem);
  if (!cert.ok()) return cert.status();
  if (!cert->binding) {
    return absl::UnauthenticatedError(
        "keyd's TLS certificate carries no binding to an org root (not a "
        "keyd, or one too old to serve TLS)");
  }
  mxkey::v1::KeydTlsBinding binding;
  if (!binding.ParseFromString(*cert->binding)) {
    return absl::UnauthenticatedError(
        "keyd's TLS certificate has a malformed root binding");
  }
  const std::string presented = KeyFingerprint(binding.root_public_key());
  if (!root_fingerprint.empty() && presented != root_fingerprint) {
    return absl::UnauthenticatedError(absl::StrCat(
        "keyd's TLS key is certified by the root ", presented,
        ", not the trusted ", root_fingerprint));
  }
  absl::Status signature = VerifyObject(
      binding.tls_key(), ObjectType::kKeydTlsKey, binding.root_public_key());
  if (!signature.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "keyd's TLS key statement: ", signature.message()));
  }
  absl::StatusOr<mxkey::v1::KeydTlsKeyBody> body =
      ParseBody<mxkey::v1::KeydTlsKeyBody>(binding.tls_key());
  if (!body.ok()) return absl::UnauthenticatedError(body.status().message());
  if (body->spki_sha256() != Sha256(cert->spki_der)) {
    return absl::UnauthenticatedError(
        "keyd's TLS key is not the key its root certified");
  }
  const int64_t t = absl::ToUnixSeconds(now);
  if (t < body->not_before() || t >= body->not_after()) {
    return absl::UnauthenticatedError(
        "the root's statement of keyd's TLS key is outside its validity");
  }
  if (root != nullptr) *root = binding.root_public_key();
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> KeydChannel(
    const std::string& endpoint, KeydTransport transport,
    const std::string& root_fingerprint, Clock* clock,
    std::function<void(const std::string& root)> on_root) {
  // gRPC's default reconnect backoff grows to 120 s: after a keyd restart
  // a client would keep failing for up to that long. Capped at 2 s, a
  // restart costs at most 2 s of lookups.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  if (!UsesTls(endpoint, transport)) {
    return grpc::CreateCustomChannel(
        endpoint, grpc::InsecureChannelCredentials(), args);
  }
  grpc::experimental::TlsChannelCredentialsOptions options;
  // Not the Web PKI: the certificate is checked against the org root only.
  options.set_verify_server_certs(false);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<
          KeydCertificateVerifier>(root_fingerprint,
                                   clock ? clock : Clock::Real(),
                                   std::move(on_root)));
  return grpc::CreateCustomChannel(
      endpoint, grpc::experimental::TlsCredentials(options), args);
}

}  // namespace mxkey
