#include "mta-hooks/session/session.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "client/host_keys.h"
#include "mta-hooks/session/noise_handshake.h"
#include "proto/mxkey/v1/session.pb.h"
#include "protocol/hostname.h"

namespace mxkey {
namespace {

absl::Status CheckCanonical(absl::string_view name, absl::string_view what) {
  absl::StatusOr<std::string> canonical = CanonicalHostname(name);
  if (!canonical.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", canonical.status().message()));
  }
  if (*canonical != name) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " must be canonical (lower case, no trailing dot): ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<NoiseHandshake> NewHandshake(
    const char* pattern, bool initiator, absl::string_view responder_hostname,
    const std::optional<X25519PrivateKey>& static_key,
    absl::string_view remote_static_key) {
  NoiseHandshakeConfig config;
  config.pattern = FindNoisePattern(pattern);
  config.initiator = initiator;
  config.prologue = SessionPrologue(responder_hostname);
  config.static_key = static_key;
  config.remote_static_key = std::string(remote_static_key);
  return NoiseHandshake::Create(std::move(config));
}

// Message 1 as read under one of the responder's static keys.
struct FirstMessage {
  NoiseHandshake hs;
  SecretBytes payload;
};

// Reads message 1 under the current static key, then, if it did not decrypt
// and a rotation pre-published one, under the next key. Each attempt runs
// on a fresh handshake state; a failed one releases nothing.
absl::StatusOr<FirstMessage> ReadFirstMessage(const LocalIdentity& self,
                                              absl::string_view m1) {
  absl::Status first_error;
  for (const std::optional<X25519PrivateKey>* key :
       {&self.agreement, &self.next_agreement}) {
    if (!key->has_value()) continue;
    ASSIGN_OR_RETURN(NoiseHandshake hs,
                     NewHandshake("IK", false, self.hostname, *key, ""));
    absl::StatusOr<SecretBytes> payload = hs.ReadMessage(m1);
    if (payload.ok()) return FirstMessage{std::move(hs), *std::move(payload)};
    // Only "did not decrypt" can mean the other key; a malformed message
    // is malformed under both.
    if (!absl::IsUnauthenticated(payload.status())) return payload.status();
    if (first_error.ok()) first_error = payload.status();
  }
  if (!self.next_agreement) return first_error;
  return absl::UnauthenticatedError(absl::StrCat(
      first_error.message(),
      "; tried this host's current and next (rotation) keys"));
}

// The peer closing the stream mid-handshake usually means it rejected us.
absl::Status DuringHandshake(const absl::Status& st) {
  if (absl::IsUnavailable(st)) {
    return absl::UnavailableError(absl::StrCat(
        "the peer ended the handshake (it rejected us, or failed): ",
        st.message()));
  }
  return st;
}

}  // namespace

std::string SessionPrologue(absl::string_view responder_hostname) {
  return absl::StrCat("mxkey/1", responder_hostname);
}

absl::StatusOr<LocalIdentity> LocalIdentity::FromKeyDir(const std::string& dir) {
  ASSIGN_OR_RETURN(HostKeys keys, LoadHostKeys(dir, ""));
  ASSIGN_OR_RETURN(mxkey::v1::EnrollResponse cert, LoadCertificate(dir, ""));
  mxkey::v1::HostCertificateBody body;
  if (!body.ParseFromString(cert.certificate().body())) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": certificate.pb holds no host certificate"));
  }
  if (body.agreement_key() != keys.agreement.public_key()) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": the agreement key does not match the certificate (serial ",
        body.serial(), "); run keyctl rotate or enroll again"));
  }
  LocalIdentity id;
  id.hostname = body.hostname();
  id.serial = body.serial();
  id.agreement = std::move(keys.agreement);
  // A rotation in progress: keyctl rotate saved next/ with its certificate.
  absl::StatusOr<mxkey::v1::EnrollResponse> next_cert =
      LoadCertificate(dir, "next");
  if (absl::IsNotFound(next_cert.status())) return id;
  if (!next_cert.ok()) return next_cert.status();
  ASSIGN_OR_RETURN(HostKeys next, LoadHostKeys(dir, "next"));
  mxkey::v1::HostCertificateBody next_body;
  if (!next_body.ParseFromString(next_cert->certificate().body()) ||
      next_body.hostname() != id.hostname ||
      next_body.agreement_key() != next.agreement.public_key()) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, "/next: the next agreement key does not match the next "
             "certificate of ", id.hostname, "; run keyctl rotate again"));
  }
  id.next_agreement = std::move(next.agreement);
  return id;
}

absl::StatusOr<std::unique_ptr<Session>> Session::FromHandshake(
    NoiseHandshake& hs, bool authenticated, const std::string& peer_hostname,
    uint64_t peer_serial) {
  ASSIGN_OR_RETURN(NoiseTransport t, hs.Split());
  std::unique_ptr<Session> s(new Session());
  s->send_ = std::move(t.send);
  s->receive_ = std::move(t.receive);
  s->handshake_hash_ = std::move(t.handshake_hash);
  s->authenticated_ = authenticated;
  s->peer_hostname_ = peer_hostname;
  s->peer_serial_ = peer_serial;
  return s;
}

absl::StatusOr<std::unique_ptr<Session>> Session::Initiate(
    ByteStream& stream, const LocalIdentity& self,
    const std::string& responder_hostname,
    absl::string_view responder_static_key, Clock* clock) {
  RETURN_IF_ERROR(CheckCanonical(responder_hostname, "responder hostname"));
  if (!self.agreement) {
    return absl::InvalidArgumentError("the local identity has no key");
  }
  ASSIGN_OR_RETURN(NoiseHandshake hs,
                   NewHandshake("IK", true, responder_hostname, self.agreement,
                                responder_static_key));
  mxkey::v1::SessionHello hello;
  hello.set_hostname(self.hostname);
  hello.set_serial(self.serial);
  hello.set_timestamp_ms(absl::ToUnixMillis(clock->Now()));
  ASSIGN_OR_RETURN(std::string m1, hs.WriteMessage(hello.SerializeAsString()));
  RETURN_IF_ERROR(WriteFrame(stream, m1));
  absl::StatusOr<std::string> m2 = ReadFrame(stream);
  if (!m2.ok()) return DuringHandshake(m2.status());
  absl::StatusOr<SecretBytes> payload = hs.ReadMessage(*m2);
  if (!payload.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "responder ", responder_hostname,
        " did not prove it holds its certified key: ",
        payload.status().message()));
  }
  if (!payload->empty()) {
    return absl::InvalidArgumentError(
        "the responder's handshake message carries an unexpected payload");
  }
  return FromHandshake(hs, true, responder_hostname, 0);
}

absl::StatusOr<std::unique_ptr<Session>> Session::Respond(
    ByteStream& stream, const LocalIdentity& self, PeerKeyVerifier& peers,
    ReplayGuard& replay) {
  if (!self.agreement) {
    return absl::InvalidArgumentError("the local identity has no key");
  }
  absl::StatusOr<std::string> m1 = ReadFrame(stream);
  if (!m1.ok()) return DuringHandshake(m1.status());
  ASSIGN_OR_RETURN(FirstMessage first, ReadFirstMessage(self, *m1));
  NoiseHandshake& hs = first.hs;
  const SecretBytes& payload = first.payload;
  mxkey::v1::SessionHello hello;
  if (!hello.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(
        "the initiator's hello is not a SessionHello message");
  }
  RETURN_IF_ERROR(CheckCanonical(hello.hostname(), "initiator hostname"));
  RETURN_IF_ERROR(
      peers.VerifyPeer(hello.hostname(), hello.serial(), hs.remote_static_key()));
  RETURN_IF_ERROR(replay.Accept(hello.hostname(), hs.remote_ephemeral_key(),
                                hello.timestamp_ms()));
  ASSIGN_OR_RETURN(std::string m2, hs.WriteMessage(""));
  RETURN_IF_ERROR(WriteFrame(stream, m2));
  return FromHandshake(hs, true, hello.hostname(), hello.serial());
}

absl::StatusOr<std::unique_ptr<Session>> Session::InitiateOpportunistic(
    ByteStream& stream, const std::string& responder_hostname,
    const SessionPolicy& policy) {
  if (!policy.allow_opportunistic) {
    return absl::PermissionDeniedError(
        "opportunistic (unauthenticated) sessions are not allowed by policy");
  }
  RETURN_IF_ERROR(CheckCanonical(responder_hostname, "responder hostname"));
  ASSIGN_OR_RETURN(NoiseHandshake hs, NewHandshake("NN", true, responder_hostname,
                                                   std::nullopt, ""));
  ASSIGN_OR_RETURN(std::string m1, hs.WriteMessage(""));
  RETURN_IF_ERROR(WriteFrame(stream, m1));
  absl::StatusOr<std::string> m2 = ReadFrame(stream);
  if (!m2.ok()) return DuringHandshake(m2.status());
  RETURN_IF_ERROR(hs.ReadMessage(*m2).status());
  return FromHandshake(hs, false, responder_hostname, 0);
}

absl::StatusOr<std::unique_ptr<Session>> Session::RespondOpportunistic(
    ByteStream& stream, const std::string& own_hostname,
    const SessionPolicy& policy) {
  if (!policy.allow_opportunistic) {
    return absl::PermissionDeniedError(
        "opportunistic (unauthenticated) sessions are not allowed by policy");
  }
  ASSIGN_OR_RETURN(NoiseHandshake hs,
                   NewHandshake("NN", false, own_hostname, std::nullopt, ""));
  absl::StatusOr<std::string> m1 = ReadFrame(stream);
  if (!m1.ok()) return DuringHandshake(m1.status());
  RETURN_IF_ERROR(hs.ReadMessage(*m1).status());
  ASSIGN_OR_RETURN(std::string m2, hs.WriteMessage(""));
  RETURN_IF_ERROR(WriteFrame(stream, m2));
  return FromHandshake(hs, false, "", 0);
}

absl::Status Session::Usable() const {
  if (failed_) {
    return absl::FailedPreconditionError(
        "the session has failed and is closed; start a new handshake");
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> Session::Check(absl::StatusOr<T> result) {
  if (!result.ok()) failed_ = true;
  return result;
}

absl::StatusOr<std::string> Session::Encrypt(absl::string_view plaintext) {
  RETURN_IF_ERROR(Usable());
  if (plaintext.size() > kMaxSessionPlaintext) {
    return absl::InvalidArgumentError(absl::StrCat(
        "payload of ", plaintext.size(), " bytes exceeds the maximum of ",
        kMaxSessionPlaintext, " per message; split it"));
  }
  return Check(send_.EncryptWithAd("", plaintext));
}

absl::StatusOr<SecretBytes> Session::Decrypt(absl::string_view message) {
  RETURN_IF_ERROR(Usable());
  if (message.size() > kMaxFrameSize) {
    failed_ = true;
    return absl::InvalidArgumentError(absl::StrCat(
        "message of ", message.size(), " bytes exceeds the maximum of ",
        kMaxFrameSize));
  }
  absl::StatusOr<SecretBytes> plain = receive_.DecryptWithAd("", message);
  if (!plain.ok() && absl::IsUnauthenticated(plain.status())) {
    failed_ = true;
    return absl::UnauthenticatedError(
        "a session message did not authenticate (tampered, truncated, "
        "replayed or out of order); the session is closed");
  }
  return Check(std::move(plain));
}

absl::Status Session::Send(ByteStream& stream, absl::string_view plaintext) {
  ASSIGN_OR_RETURN(std::string message, Encrypt(plaintext));
  absl::Status st = WriteFrame(stream, message);
  if (!st.ok()) failed_ = true;
  return st;
}

absl::StatusOr<SecretBytes> Session::Receive(ByteStream& stream) {
  RETURN_IF_ERROR(Usable());
  absl::StatusOr<std::string> message = ReadFrame(stream);
  if (!message.ok()) {
    failed_ = true;
    return message.status();
  }
  return Decrypt(*message);
}

absl::Status Session::RekeySend() {
  RETURN_IF_ERROR(Usable());
  absl::Status st = send_.Rekey();
  if (!st.ok()) failed_ = true;
  return st;
}

absl::Status Session::RekeyReceive() {
  RETURN_IF_ERROR(Usable());
  absl::Status st = receive_.Rekey();
  if (!st.ok()) failed_ = true;
  return st;
}

}  // namespace mxkey
