/* libmxkey C ABI: verified key lookups and the mxkey keyed session
 * (Noise_IK_25519_ChaChaPoly_SHA256) for MTAs written in C.
 *
 * Conventions:
 *  - Every handle is opaque and freed by its own *_free function (NULL is
 *    accepted and ignored).
 *  - Every fallible function returns an mxkey_status; on failure,
 *    mxkey_last_error() gives a message for this thread, valid until the
 *    next libmxkey call on the same thread.
 *  - No C++ exception and no abort crosses this interface.
 *  - Calls block. Put timeouts on the socket (SO_RCVTIMEO / SO_SNDTIMEO) or
 *    in the I/O callbacks.
 *  - A session that failed once (bad message, I/O error) stays closed:
 *    every later call returns MXKEY_E_SESSION_CLOSED. No plaintext of a
 *    message that did not authenticate is ever returned.
 */
#ifndef MXKEY_H_
#define MXKEY_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mxkey_status {
  MXKEY_OK = 0,
  MXKEY_E_INVALID_ARGUMENT = 1, /* bad name, NULL argument, oversized data */
  MXKEY_E_UNKNOWN_HOST = 2,     /* signed denial: no such host */
  MXKEY_E_REVOKED = 3,          /* the host's certificate is revoked */
  MXKEY_E_EXPIRED = 4,          /* the host's certificate has expired */
  MXKEY_E_VERIFICATION = 5,     /* an answer does not verify to the root */
  MXKEY_E_STALE = 6,            /* keyd unreachable, cached answer too old */
  MXKEY_E_UNAVAILABLE = 7,      /* keyd unreachable, nothing cached */
  MXKEY_E_HANDSHAKE = 8,        /* the peer failed to authenticate */
  MXKEY_E_REJECTED = 9,         /* replay, wrong key, policy forbids, or
                                   the replay guard is full */
  MXKEY_E_IO = 10,              /* the stream failed or closed */
  MXKEY_E_SESSION_CLOSED = 11,  /* the session failed earlier, or nonces
                                   ran out; start a new handshake */
  MXKEY_E_BUFFER_TOO_SMALL = 12,
  MXKEY_E_INTERNAL = 13
} mxkey_status;

#define MXKEY_KEY_SIZE 32
#define MXKEY_MAX_MESSAGE 65535 /* one Noise message on the wire */
#define MXKEY_MAX_PAYLOAD 65519 /* plaintext per message (65535 - 16) */

typedef struct mxkey_client mxkey_client;
typedef struct mxkey_identity mxkey_identity;
typedef struct mxkey_session mxkey_session;

const char* mxkey_last_error(void);
const char* mxkey_status_name(mxkey_status status);

/* A client of the own org's keyd. `endpoints` is a comma-separated list of
 * "host:port" (tried in order); `root_fingerprint` ("sha256:<hex>") is the
 * only trust anchor; `cache_dir` may be NULL (memory cache only). */
mxkey_status mxkey_client_new(const char* endpoints,
                              const char* root_fingerprint,
                              const char* cache_dir, mxkey_client** out);
void mxkey_client_free(mxkey_client* client);

/* Where a responding client remembers the first handshake messages it
 * accepted, to refuse replays (PROTOCOL.md §10). Without this call each
 * mxkey_client remembers in its own memory, so a replay sent to another
 * process of the same MTA (another smtpd) is not caught: give every
 * responder process the same `dir`, an LMDB store shared between them
 * (created mode 0700 if missing; one that group or others can write is
 * refused), best on tmpfs (e.g. /run/mxkey-replay). `dir` NULL: this
 * client's memory. `max_entries` (0: 262,144) bounds what is remembered at
 * once; when that many accepted first messages are still within the
 * 2-minute window, handshakes fail with MXKEY_E_REJECTED rather than one
 * being forgotten. A shared store's map is max_entries x 1 KiB (a sparse
 * file). Call it before the client's first responder session, never
 * while one runs. */
mxkey_status mxkey_client_set_replay_guard(mxkey_client* client,
                                           const char* dir,
                                           size_t max_entries);

/* The verified X25519 key (and certificate serial) to use for a session
 * with `hostname`: its active certificate's, else its next one's. */
mxkey_status mxkey_lookup_host(mxkey_client* client, const char* hostname,
                               uint8_t agreement_key[MXKEY_KEY_SIZE],
                               uint64_t* serial);

/* This host's identity: the keys and certificate in a keyctl key dir, and
 * during a rotation the next keys (next/) too: a responder answers
 * initiators that encrypted to either. Load it again after the key dir
 * changed (keyctl rotate, rotate --finish). */
mxkey_status mxkey_identity_load(const char* key_dir, mxkey_identity** out);
void mxkey_identity_free(mxkey_identity* identity);
const char* mxkey_identity_hostname(const mxkey_identity* identity);

/* I/O callbacks: return the number of bytes moved (> 0), 0 for end of
 * stream (read only), or a negative value for an error. */
typedef long (*mxkey_read_fn)(void* io, uint8_t* buf, size_t len);
typedef long (*mxkey_write_fn)(void* io, const uint8_t* buf, size_t len);

/* The initiator looks the responder up through `client` and proves its own
 * identity; the responder verifies the initiator's key through `client` and
 * rejects replayed first messages. The fd is not closed by the library. */
mxkey_status mxkey_session_initiate_fd(mxkey_client* client,
                                       const mxkey_identity* self,
                                       const char* responder_hostname, int fd,
                                       mxkey_session** out);
mxkey_status mxkey_session_respond_fd(mxkey_client* client,
                                      const mxkey_identity* self, int fd,
                                      mxkey_session** out);
mxkey_status mxkey_session_initiate_io(mxkey_client* client,
                                       const mxkey_identity* self,
                                       const char* responder_hostname,
                                       mxkey_read_fn read_fn,
                                       mxkey_write_fn write_fn, void* io,
                                       mxkey_session** out);
mxkey_status mxkey_session_respond_io(mxkey_client* client,
                                      const mxkey_identity* self,
                                      mxkey_read_fn read_fn,
                                      mxkey_write_fn write_fn, void* io,
                                      mxkey_session** out);

/* Framed, encrypted I/O on the session's fd or callbacks. */
mxkey_status mxkey_session_send(mxkey_session* session, const uint8_t* data,
                                size_t len);
mxkey_status mxkey_session_recv(mxkey_session* session, uint8_t* buf,
                                size_t cap, size_t* len);

/* One message without I/O or framing: `out` needs len + 16 bytes to
 * encrypt, len - 16 to decrypt. */
mxkey_status mxkey_session_encrypt(mxkey_session* session, const uint8_t* in,
                                   size_t len, uint8_t* out, size_t cap,
                                   size_t* out_len);
mxkey_status mxkey_session_decrypt(mxkey_session* session, const uint8_t* in,
                                   size_t len, uint8_t* out, size_t cap,
                                   size_t* out_len);
/* Noise REKEY of one direction (PROTOCOL.md §10): the key becomes the
 * first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero bytes); the nonce
 * carries on. libmxkey never rekeys by itself. The sender's rekey_send and
 * the receiver's rekey_recv must come after the same message of that
 * direction, at a point the application protocol defines; if only one side
 * rekeys, the next message fails (MXKEY_E_HANDSHAKE) and closes the
 * session. */
mxkey_status mxkey_session_rekey_send(mxkey_session* session);
mxkey_status mxkey_session_rekey_recv(mxkey_session* session);

/* Hands the transport keys (ChaCha20-Poly1305, Noise nonce layout: 4 zero
 * bytes then the 64-bit counter little-endian) to an MTA that encrypts by
 * itself. The session is closed afterwards, so no nonce is used twice. */
mxkey_status mxkey_session_export_keys(mxkey_session* session,
                                       uint8_t send_key[MXKEY_KEY_SIZE],
                                       uint64_t* send_nonce,
                                       uint8_t recv_key[MXKEY_KEY_SIZE],
                                       uint64_t* recv_nonce);

const char* mxkey_session_peer_hostname(const mxkey_session* session);
/* 1 if the peer proved a certified key (always, for these handshakes). */
int mxkey_session_authenticated(const mxkey_session* session);
void mxkey_session_free(mxkey_session* session);

#ifdef __cplusplus
}
#endif

#endif /* MXKEY_H_ */
