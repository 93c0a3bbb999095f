#include "mta-hooks/session/noise_handshake.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/aead.h"

namespace mxkey {
namespace {

bool Uses(const std::vector<NoiseToken>& tokens, NoiseToken t) {
  for (NoiseToken x : tokens) {
    if (x == t) return true;
  }
  return false;
}

// Whether the side (initiator or not) sends its static key in the pattern.
bool SendsStatic(const NoisePattern& p, bool initiator) {
  if (Uses(initiator ? p.initiator_pre_messages : p.responder_pre_messages,
           NoiseToken::kS)) {
    return true;
  }
  for (size_t i = 0; i < p.messages.size(); ++i) {
    if ((i % 2 == 0) == initiator && Uses(p.messages[i], NoiseToken::kS)) {
      return true;
    }
  }
  return false;
}

}  // namespace

NoiseHandshake::NoiseHandshake(NoiseHandshakeConfig config)
    : pattern_(config.pattern),
      initiator_(config.initiator),
      symmetric_(NoiseProtocolName(*config.pattern)),
      s_(std::move(config.static_key)),
      rs_(std::move(config.remote_static_key)) {}

absl::StatusOr<NoiseHandshake> NoiseHandshake::Create(
    NoiseHandshakeConfig config) {
  if (config.pattern == nullptr) {
    return absl::InvalidArgumentError("Noise handshake needs a pattern");
  }
  const NoisePattern& p = *config.pattern;
  const bool i = config.initiator;
  if (SendsStatic(p, i) && !config.static_key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Noise ", p.name, ": this side needs a static key"));
  }
  const bool rs_known =
      Uses(i ? p.responder_pre_messages : p.initiator_pre_messages,
           NoiseToken::kS);
  if (rs_known && config.remote_static_key.size() != kX25519KeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Noise ", p.name, ": the remote static key must be given (32 bytes)"));
  }
  if (!rs_known) config.remote_static_key.clear();
  std::string prologue = config.prologue;
  NoiseHandshake hs(std::move(config));
  hs.symmetric_.MixHash(prologue);
  // Pre-messages: the initiator's first, then the responder's (§7.1).
  for (bool side_is_initiator : {true, false}) {
    const auto& pre = side_is_initiator ? p.initiator_pre_messages
                                        : p.responder_pre_messages;
    if (!Uses(pre, NoiseToken::kS)) continue;
    hs.symmetric_.MixHash(side_is_initiator == i ? hs.s_->public_key()
                                                 : hs.rs_);
  }
  return hs;
}

bool NoiseHandshake::IsMyTurn() const {
  return !IsComplete() && (next_message_ % 2 == 0) == initiator_;
}

absl::Status NoiseHandshake::Fail(absl::Status status) {
  failed_ = true;
  return status;
}

absl::Status NoiseHandshake::CheckUsable(bool writing) const {
  if (failed_) {
    return absl::FailedPreconditionError(
        "Noise handshake already failed; start a new one");
  }
  if (IsComplete()) {
    return absl::FailedPreconditionError("Noise handshake is already complete");
  }
  if (IsMyTurn() != writing) {
    return absl::FailedPreconditionError(
        writing ? "Noise handshake: it is the peer's turn to write"
                : "Noise handshake: it is our turn to write");
  }
  return absl::OkStatus();
}

absl::StatusOr<X25519PrivateKey> NoiseHandshake::NewEphemeral() {
  if (fixed_ephemeral_) {
    X25519PrivateKey e = std::move(*fixed_ephemeral_);
    fixed_ephemeral_.reset();
    return e;
  }
  return X25519PrivateKey::Generate();
}

absl::Status NoiseHandshake::MixDh(const X25519PrivateKey& local,
                                   absl::string_view remote) {
  ASSIGN_OR_RETURN(SecretBytes shared, local.Agree(remote));
  symmetric_.MixKey(shared);
  return absl::OkStatus();
}

absl::Status NoiseHandshake::MixDhToken(NoiseToken t) {
  // The same DH for a token whichever side reads or writes it: "es" is the
  // initiator's ephemeral with the responder's static key, and so on.
  switch (t) {
    case NoiseToken::kEE: return MixDh(*e_, re_);
    case NoiseToken::kES: return initiator_ ? MixDh(*e_, rs_) : MixDh(*s_, re_);
    case NoiseToken::kSE: return initiator_ ? MixDh(*s_, re_) : MixDh(*e_, rs_);
    case NoiseToken::kSS: return MixDh(*s_, rs_);
    default: return absl::InternalError("not a DH token");
  }
}

absl::StatusOr<std::string> NoiseHandshake::WriteMessage(
    absl::string_view payload) {
  RETURN_IF_ERROR(CheckUsable(/*writing=*/true));
  std::string out;
  absl::Status st = [&]() -> absl::Status {
    for (NoiseToken t : pattern_->messages[next_message_]) {
      switch (t) {
        case NoiseToken::kE: {
          ASSIGN_OR_RETURN(X25519PrivateKey e, NewEphemeral());
          out += e.public_key();
          symmetric_.MixHash(e.public_key());
          e_ = std::move(e);
          break;
        }
        case NoiseToken::kS: {
          ASSIGN_OR_RETURN(std::string c,
                           symmetric_.EncryptAndHash(s_->public_key()));
          out += c;
          break;
        }
        default: RETURN_IF_ERROR(MixDhToken(t)); break;
      }
    }
    ASSIGN_OR_RETURN(std::string c, symmetric_.EncryptAndHash(payload));
    out += c;
    if (out.size() > kNoiseMaxMessageSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Noise handshake message would be ", out.size(),
          " bytes; the maximum is ", kNoiseMaxMessageSize));
    }
    return absl::OkStatus();
  }();
  if (!st.ok()) return Fail(st);
  ++next_message_;
  return out;
}

absl::StatusOr<SecretBytes> NoiseHandshake::ReadMessage(
    absl::string_view message) {
  RETURN_IF_ERROR(CheckUsable(/*writing=*/false));
  if (message.size() > kNoiseMaxMessageSize) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "Noise handshake message of ", message.size(),
        " bytes; the maximum is ", kNoiseMaxMessageSize)));
  }
  SecretBytes payload;
  absl::Status st = [&]() -> absl::Status {
    auto take = [&](size_t n, absl::string_view what)
        -> absl::StatusOr<absl::string_view> {
      if (message.size() < n) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Noise handshake message is truncated: no room for the ", what));
      }
      absl::string_view part = message.substr(0, n);
      message.remove_prefix(n);
      return part;
    };
    for (NoiseToken t : pattern_->messages[next_message_]) {
      switch (t) {
        case NoiseToken::kE: {
          ASSIGN_OR_RETURN(absl::string_view re,
                           take(kX25519KeySize, "ephemeral key"));
          re_ = std::string(re);
          symmetric_.MixHash(re_);
          break;
        }
        case NoiseToken::kS: {
          size_t n = kX25519KeySize + (symmetric_.HasKey() ? kAeadTagSize : 0);
          ASSIGN_OR_RETURN(absl::string_view c, take(n, "static key"));
          absl::StatusOr<SecretBytes> rs = symmetric_.DecryptAndHash(c);
          if (!rs.ok()) {
            return absl::UnauthenticatedError(
                "Noise handshake: the peer's static key did not decrypt "
                "(tampered message or wrong responder key)");
          }
          rs_ = std::string(rs->view());
          break;
        }
        default: RETURN_IF_ERROR(MixDhToken(t)); break;
      }
    }
    if (symmetric_.HasKey() && message.size() < kAeadTagSize) {
      return absl::InvalidArgumentError(
          "Noise handshake message is truncated: no room for the payload tag");
    }
    absl::StatusOr<SecretBytes> p = symmetric_.DecryptAndHash(message);
    if (!p.ok()) {
      return absl::UnauthenticatedError(
          "Noise handshake: the payload did not decrypt (tampered message, "
          "wrong keys or a wrong prologue)");
    }
    payload = std::move(*p);
    return absl::OkStatus();
  }();
  if (!st.ok()) return Fail(st);
  ++next_message_;
  return payload;
}

absl::StatusOr<NoiseTransport> NoiseHandshake::Split() {
  if (failed_ || !IsComplete()) {
    return absl::FailedPreconditionError(
        "Noise handshake is not complete; no transport keys");
  }
  auto [c1, c2] = symmetric_.Split();
  NoiseTransport t;
  t.send = std::move(initiator_ ? c1 : c2);
  t.receive = std::move(initiator_ ? c2 : c1);
  t.handshake_hash = symmetric_.handshake_hash();
  t.remote_static_key = rs_;
  failed_ = true;  // consumed
  return t;
}

}  // namespace mxkey
