// The C ABI of libmxkey (mta-hooks/include/mxkey.h) over KeyClient and
// Session. Every entry point catches everything: no exception and no abort
// crosses into the MTA.
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_split.h"
#include "client/key_client.h"
#include "client/lookup_error.h"
#include "mxkey.h"
#include "mta-hooks/session/peer_verifier.h"
#include "mta-hooks/session/session.h"

struct mxkey_client {
  std::unique_ptr<mxkey::KeyClient> keys;
  std::unique_ptr<mxkey::ReplayGuard> replay;
  std::unique_ptr<mxkey::KeyClientPeerVerifier> peers;
};

struct mxkey_identity {
  mxkey::LocalIdentity id;
};

struct mxkey_session {
  std::unique_ptr<mxkey::ByteStream> stream;
  std::unique_ptr<mxkey::Session> session;
  bool exported = false;
};

namespace {

thread_local std::string last_error;

mxkey_status Fail(mxkey_status code, const std::string& message) {
  last_error = message;
  return code;
}

mxkey_status FromStatus(const absl::Status& st) {
  if (st.ok()) return MXKEY_OK;
  mxkey_status code = MXKEY_E_INTERNAL;
  if (mxkey::IsLookupError(st)) {
    switch (mxkey::LookupFailureOf(st)) {
      case mxkey::LookupFailure::kNone: code = MXKEY_OK; break;
      case mxkey::LookupFailure::kInvalidName:
        code = MXKEY_E_INVALID_ARGUMENT;
        break;
      case mxkey::LookupFailure::kUnknown: code = MXKEY_E_UNKNOWN_HOST; break;
      case mxkey::LookupFailure::kRevoked: code = MXKEY_E_REVOKED; break;
      case mxkey::LookupFailure::kExpired: code = MXKEY_E_EXPIRED; break;
      case mxkey::LookupFailure::kVerification:
        code = MXKEY_E_VERIFICATION;
        break;
      case mxkey::LookupFailure::kStale: code = MXKEY_E_STALE; break;
      case mxkey::LookupFailure::kUnavailable: code = MXKEY_E_UNAVAILABLE; break;
    }
  } else {
    switch (st.code()) {
      case absl::StatusCode::kInvalidArgument:
        code = MXKEY_E_INVALID_ARGUMENT;
        break;
      // Only a verified denial is MXKEY_E_UNKNOWN_HOST (it allows NN).
      case absl::StatusCode::kNotFound: code = MXKEY_E_UNAVAILABLE; break;
      case absl::StatusCode::kUnauthenticated: code = MXKEY_E_HANDSHAKE; break;
      case absl::StatusCode::kPermissionDenied: code = MXKEY_E_REJECTED; break;
      case absl::StatusCode::kUnavailable:
      case absl::StatusCode::kDataLoss: code = MXKEY_E_IO; break;
      case absl::StatusCode::kFailedPrecondition:
      case absl::StatusCode::kResourceExhausted:
        code = MXKEY_E_SESSION_CLOSED;
        break;
      default: code = MXKEY_E_INTERNAL;
    }
  }
  return Fail(code, std::string(st.message()));
}

// Runs `body`, turning any escaping exception into MXKEY_E_INTERNAL.
template <typename Body>
mxkey_status Guard(Body body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    return Fail(MXKEY_E_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return Fail(MXKEY_E_INTERNAL, "internal error");
  }
}

mxkey_status NullArgument(const char* name) {
  return Fail(MXKEY_E_INVALID_ARGUMENT, std::string(name) + " is NULL");
}

mxkey_status Initiate(mxkey_client* client, const mxkey_identity* self,
                      const char* responder,
                      std::unique_ptr<mxkey::ByteStream> stream,
                      mxkey_session** out) {
  absl::StatusOr<mxkey::AnswerRef> answer = client->keys->LookupHost(responder);
  if (!answer.ok()) return FromStatus(answer.status());
  absl::StatusOr<std::string> key = mxkey::ResponderKey(**answer);
  if (!key.ok()) return FromStatus(key.status());
  auto s = std::make_unique<mxkey_session>();
  s->stream = std::move(stream);
  absl::StatusOr<std::unique_ptr<mxkey::Session>> session =
      mxkey::Session::Initiate(*s->stream, self->id, (*answer)->name, *key,
                               mxkey::Clock::Real());
  if (!session.ok()) return FromStatus(session.status());
  s->session = *std::move(session);
  *out = s.release();
  return MXKEY_OK;
}

mxkey_status Respond(mxkey_client* client, const mxkey_identity* self,
                     std::unique_ptr<mxkey::ByteStream> stream,
                     mxkey_session** out) {
  auto s = std::make_unique<mxkey_session>();
  s->stream = std::move(stream);
  absl::StatusOr<std::unique_ptr<mxkey::Session>> session =
      mxkey::Session::Respond(*s->stream, self->id, *client->peers,
                              *client->replay);
  // In a handshake only the replay guard runs out (it is full): a refusal,
  // not a closed session.
  if (absl::IsResourceExhausted(session.status())) {
    return Fail(MXKEY_E_REJECTED, std::string(session.status().message()));
  }
  if (!session.ok()) return FromStatus(session.status());
  s->session = *std::move(session);
  *out = s.release();
  return MXKEY_OK;
}

std::unique_ptr<mxkey::ByteStream> CallbackStreamFor(mxkey_read_fn r,
                                                     mxkey_write_fn w,
                                                     void* io) {
  return std::make_unique<mxkey::CallbackStream>(
      [r, io](char* buf, size_t n) {
        return r(io, reinterpret_cast<uint8_t*>(buf), n);
      },
      [w, io](const char* buf, size_t n) {
        return w(io, reinterpret_cast<const uint8_t*>(buf), n);
      });
}

mxkey_status CheckSession(mxkey_session* s) {
  if (s == nullptr) return NullArgument("session");
  if (s->exported) {
    return Fail(MXKEY_E_SESSION_CLOSED,
                "the session's keys were exported; it is closed");
  }
  // The header promises a failed session stays closed: also for key export,
  // which would otherwise hand out the keys of a session that broke.
  if (s->session->failed()) {
    return Fail(MXKEY_E_SESSION_CLOSED, "the session failed earlier; it is closed");
  }
  return MXKEY_OK;
}

mxkey_status CopyOut(absl::string_view data, uint8_t* out, size_t cap,
                     size_t* out_len) {
  if (data.size() > cap) {
    return Fail(MXKEY_E_BUFFER_TOO_SMALL,
                "output buffer too small: need " + std::to_string(data.size()));
  }
  if (!data.empty()) std::memcpy(out, data.data(), data.size());
  *out_len = data.size();
  return MXKEY_OK;
}

absl::string_view View(const uint8_t* p, size_t n) {
  return absl::string_view(reinterpret_cast<const char*>(p), n);
}

}  // namespace

extern "C" {

const char* mxkey_last_error(void) { return last_error.c_str(); }

const char* mxkey_status_name(mxkey_status status) {
  switch (status) {
    case MXKEY_OK: return "ok";
    case MXKEY_E_INVALID_ARGUMENT: return "invalid argument";
    case MXKEY_E_UNKNOWN_HOST: return "unknown host";
    case MXKEY_E_REVOKED: return "revoked";
    case MXKEY_E_EXPIRED: return "expired";
    case MXKEY_E_VERIFICATION: return "verification failed";
    case MXKEY_E_STALE: return "stale";
    case MXKEY_E_UNAVAILABLE: return "keyd unavailable";
    case MXKEY_E_HANDSHAKE: return "handshake failed";
    case MXKEY_E_REJECTED: return "rejected";
    case MXKEY_E_IO: return "I/O error";
    case MXKEY_E_SESSION_CLOSED: return "session closed";
    case MXKEY_E_BUFFER_TOO_SMALL: return "buffer too small";
    case MXKEY_E_INTERNAL: return "internal error";
  }
  return "unknown status";
}

mxkey_status mxkey_client_new(const char* endpoints,
                              const char* root_fingerprint,
                              const char* cache_dir, mxkey_client** out) {
  return Guard([&]() -> mxkey_status {
    if (endpoints == nullptr) return NullArgument("endpoints");
    if (root_fingerprint == nullptr) return NullArgument("root_fingerprint");
    if (out == nullptr) return NullArgument("out");
    mxkey::KeyClientOptions options;
    options.endpoints =
        absl::StrSplit(endpoints, ',', absl::SkipWhitespace());
    options.root_fingerprint = root_fingerprint;
    if (cache_dir != nullptr) options.cache_dir = cache_dir;
    absl::StatusOr<std::unique_ptr<mxkey::KeyClient>> keys =
        mxkey::KeyClient::Create(options);
    if (!keys.ok()) return FromStatus(keys.status());
    auto c = std::make_unique<mxkey_client>();
    c->keys = *std::move(keys);
    c->replay = std::make_unique<mxkey::ReplayGuard>(mxkey::Clock::Real());
    c->peers = std::make_unique<mxkey::KeyClientPeerVerifier>(c->keys.get());
    *out = c.release();
    return MXKEY_OK;
  });
}

void mxkey_client_free(mxkey_client* client) {
  Guard([&] {
    delete client;
    return MXKEY_OK;
  });
}

mxkey_status mxkey_client_set_replay_guard(mxkey_client* client,
                                           const char* dir,
                                           size_t max_entries) {
  return Guard([&]() -> mxkey_status {
    if (client == nullptr) return NullArgument("client");
    mxkey::ReplayGuardOptions options;
    if (dir != nullptr) options.dir = dir;
    if (max_entries != 0) options.max_entries = max_entries;
    absl::StatusOr<std::unique_ptr<mxkey::ReplayGuard>> guard =
        mxkey::ReplayGuard::Create(mxkey::Clock::Real(), options);
    // A directory that cannot serve (mode, permissions, not LMDB) is a bad
    // argument of this call, whatever LMDB said.
    if (!guard.ok()) {
      return Fail(MXKEY_E_INVALID_ARGUMENT, std::string(guard.status().message()));
    }
    client->replay = *std::move(guard);
    return MXKEY_OK;
  });
}

mxkey_status mxkey_lookup_host(mxkey_client* client, const char* hostname,
                               uint8_t agreement_key[MXKEY_KEY_SIZE],
                               uint64_t* serial) {
  return Guard([&]() -> mxkey_status {
    if (client == nullptr) return NullArgument("client");
    if (hostname == nullptr) return NullArgument("hostname");
    if (agreement_key == nullptr) return NullArgument("agreement_key");
    absl::StatusOr<mxkey::AnswerRef> answer =
        client->keys->LookupHost(hostname);
    if (!answer.ok()) return FromStatus(answer.status());
    const mxkey::VerifiedCert* chosen = nullptr;
    for (const auto& c : (*answer)->certificates) {
      if (c.state == mxkey::VerifiedCertState::kActive) chosen = &c;
      if (c.state == mxkey::VerifiedCertState::kNext && chosen == nullptr) {
        chosen = &c;
      }
    }
    if (chosen == nullptr) return Fail(MXKEY_E_UNKNOWN_HOST, "no usable key");
    // The verifier refuses other sizes; the boundary checks again, since
    // the caller's buffer is exactly MXKEY_KEY_SIZE.
    if (chosen->body.agreement_key().size() != MXKEY_KEY_SIZE) {
      return Fail(MXKEY_E_VERIFICATION, "certified agreement key has a bad size");
    }
    std::memcpy(agreement_key, chosen->body.agreement_key().data(),
                MXKEY_KEY_SIZE);
    if (serial != nullptr) *serial = chosen->body.serial();
    return MXKEY_OK;
  });
}

mxkey_status mxkey_identity_load(const char* key_dir, mxkey_identity** out) {
  return Guard([&]() -> mxkey_status {
    if (key_dir == nullptr) return NullArgument("key_dir");
    if (out == nullptr) return NullArgument("out");
    absl::StatusOr<mxkey::LocalIdentity> id =
        mxkey::LocalIdentity::FromKeyDir(key_dir);
    if (!id.ok()) return FromStatus(id.status());
    *out = new mxkey_identity{*std::move(id)};
    return MXKEY_OK;
  });
}

void mxkey_identity_free(mxkey_identity* identity) {
  Guard([&] {
    delete identity;
    return MXKEY_OK;
  });
}

const char* mxkey_identity_hostname(const mxkey_identity* identity) {
  return identity == nullptr ? "" : identity->id.hostname.c_str();
}

mxkey_status mxkey_session_initiate_fd(mxkey_client* client,
                                       const mxkey_identity* self,
                                       const char* responder_hostname, int fd,
                                       mxkey_session** out) {
  return Guard([&]() -> mxkey_status {
    if (client == nullptr || self == nullptr || responder_hostname == nullptr ||
        out == nullptr) {
      return NullArgument("client, self, responder_hostname or out");
    }
    return Initiate(client, self, responder_hostname,
                    std::make_unique<mxkey::FdStream>(fd), out);
  });
}

mxkey_status mxkey_session_respond_fd(mxkey_client* client,
                                      const mxkey_identity* self, int fd,
                                      mxkey_session** out) {
  return Guard([&]() -> mxkey_status {
    if (client == nullptr || self == nullptr || out == nullptr) {
      return NullArgument("client, self or out");
    }
    return Respond(client, self, std::make_unique<mxkey::FdStream>(fd), out);
  });
}

mxkey_status mxkey_session_initiate_io(mxkey_client* client,
                                       const mxkey_identity* self,
                                       const char* responder_hostname,
                                       mxkey_read_fn read_fn,
                                       mxkey_write_fn write_fn, void* io,
                                       mxkey_session** out) {
  return Guard([&]() -> mxkey_status {
    if (client == nullptr || self == nullptr || responder_hostname == nullptr ||
        read_fn == nullptr || write_fn == nullptr || out == nullptr) {
      return NullArgument("an argument");
    }
    return Initiate(client, self, responder_hostname,
                    CallbackStreamFor(read_fn, write_fn, io), out);
  });
}

mxkey_status mxkey_session_respond_io(mxkey_client* client,
                                      const mxkey_identity* self,
                                      mxkey_read_fn read_fn,
                                      mxkey_write_fn write_fn, void* io,
                                      mxkey_session** out) {
  return Guard([&]() -> mxkey_status {
    if (client == nullptr || self == nullptr || read_fn == nullptr ||
        write_fn == nullptr || out == nullptr) {
      return NullArgument("an argument");
    }
    return Respond(client, self, CallbackStreamFor(read_fn, write_fn, io), out);
  });
}

mxkey_status mxkey_session_send(mxkey_session* session, const uint8_t* data,
                                size_t len) {
  return Guard([&]() -> mxkey_status {
    if (mxkey_status st = CheckSession(session); st != MXKEY_OK) return st;
    if (data == nullptr && len > 0) return NullArgument("data");
    return FromStatus(
        session->session->Send(*session->stream, View(data, len)));
  });
}

mxkey_status mxkey_session_recv(mxkey_session* session, uint8_t* buf,
                                size_t cap, size_t* len) {
  return Guard([&]() -> mxkey_status {
    if (mxkey_status st = CheckSession(session); st != MXKEY_OK) return st;
    if (buf == nullptr || len == nullptr) return NullArgument("buf or len");
    absl::StatusOr<mxkey::SecretBytes> plain =
        session->session->Receive(*session->stream);
    if (!plain.ok()) return FromStatus(plain.status());
    return CopyOut(plain->view(), buf, cap, len);
  });
}

mxkey_status mxkey_session_encrypt(mxkey_session* session, const uint8_t* in,
                                   size_t len, uint8_t* out, size_t cap,
                                   size_t* out_len) {
  return Guard([&]() -> mxkey_status {
    if (mxkey_status st = CheckSession(session); st != MXKEY_OK) return st;
    if ((in == nullptr && len > 0) || out == nullptr || out_len == nullptr) {
      return NullArgument("in, out or out_len");
    }
    if (cap < len + 16) {
      return Fail(MXKEY_E_BUFFER_TOO_SMALL, "output needs len + 16 bytes");
    }
    absl::StatusOr<std::string> sealed = session->session->Encrypt(View(in, len));
    if (!sealed.ok()) return FromStatus(sealed.status());
    return CopyOut(*sealed, out, cap, out_len);
  });
}

mxkey_status mxkey_session_decrypt(mxkey_session* session, const uint8_t* in,
                                   size_t len, uint8_t* out, size_t cap,
                                   size_t* out_len) {
  return Guard([&]() -> mxkey_status {
    if (mxkey_status st = CheckSession(session); st != MXKEY_OK) return st;
    if ((in == nullptr && len > 0) || out == nullptr || out_len == nullptr) {
      return NullArgument("in, out or out_len");
    }
    if (len >= 16 && cap < len - 16) {
      return Fail(MXKEY_E_BUFFER_TOO_SMALL, "output needs len - 16 bytes");
    }
    absl::StatusOr<mxkey::SecretBytes> plain =
        session->session->Decrypt(View(in, len));
    if (!plain.ok()) return FromStatus(plain.status());
    return CopyOut(plain->view(), out, cap, out_len);
  });
}

mxkey_status mxkey_session_rekey_send(mxkey_session* session) {
  return Guard([&]() -> mxkey_status {
    if (mxkey_status st = CheckSession(session); st != MXKEY_OK) return st;
    return FromStatus(session->session->RekeySend());
  });
}

mxkey_status mxkey_session_rekey_recv(mxkey_session* session) {
  return Guard([&]() -> mxkey_status {
    if (mxkey_status st = CheckSession(session); st != MXKEY_OK) return st;
    return FromStatus(session->session->RekeyReceive());
  });
}

mxkey_status mxkey_session_export_keys(mxkey_session* session,
                                       uint8_t send_key[MXKEY_KEY_SIZE],
                                       uint64_t* send_nonce,
                                       uint8_t recv_key[MXKEY_KEY_SIZE],
                                       uint64_t* recv_nonce) {
  return Guard([&]() -> mxkey_status {
    if (mxkey_status st = CheckSession(session); st != MXKEY_OK) return st;
    if (send_key == nullptr || send_nonce == nullptr || recv_key == nullptr ||
        recv_nonce == nullptr) {
      return NullArgument("a key or nonce output");
    }
    const mxkey::CipherState& send = session->session->send_cipher();
    const mxkey::CipherState& recv = session->session->receive_cipher();
    std::memcpy(send_key, send.key().data(), MXKEY_KEY_SIZE);
    std::memcpy(recv_key, recv.key().data(), MXKEY_KEY_SIZE);
    *send_nonce = send.nonce();
    *recv_nonce = recv.nonce();
    session->exported = true;
    return MXKEY_OK;
  });
}

const char* mxkey_session_peer_hostname(const mxkey_session* session) {
  return session == nullptr || !session->session
             ? ""
             : session->session->peer_hostname().c_str();
}

int mxkey_session_authenticated(const mxkey_session* session) {
  return session != nullptr && session->session &&
                 session->session->authenticated()
             ? 1
             : 0;
}

void mxkey_session_free(mxkey_session* session) {
  Guard([&] {
    delete session;
    return MXKEY_OK;
  });
}

}  // extern "C"
