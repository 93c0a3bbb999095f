/* mxkey-echo: a small C program on the libmxkey C ABI.
 *
 *   mxkey-echo serve   KEYD ROOT_FP KEY_DIR
 *       listens on 127.0.0.1 (an ephemeral port, printed as
 *       "listening on 127.0.0.1:PORT"), accepts one connection, runs the
 *       responder handshake (verifying the initiator through keyd) and
 *       echoes every message back until the peer closes. With
 *       MXKEY_REPLAY_DIR set, the replay guard lives in that directory,
 *       shared with every other responder process that names it (as
 *       Postfix runs many), instead of in this process's memory.
 *   mxkey-echo connect KEYD ROOT_FP KEY_DIR HOSTNAME PORT MESSAGE
 *       looks HOSTNAME up (verified), connects to 127.0.0.1:PORT, runs the
 *       initiator handshake, sends MESSAGE and checks the echo.
 *
 * Exit status: 0 on success, 1 on any failure (the error is printed), 2 for
 * usage errors. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mxkey.h"

static int fail(const char* what, mxkey_status st) {
  fprintf(stderr, "mxkey-echo: %s: %s: %s\n", what, mxkey_status_name(st),
          mxkey_last_error());
  return 1;
}

static int serve(mxkey_client* client, mxkey_identity* self) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (lfd < 0 || bind(lfd, (struct sockaddr*)&addr, sizeof addr) != 0 ||
      listen(lfd, 1) != 0 ||
      getsockname(lfd, (struct sockaddr*)&addr, &len) != 0) {
    perror("mxkey-echo: listen");
    return 1;
  }
  printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
  fflush(stdout);
  int fd = accept(lfd, NULL, NULL);
  close(lfd);
  if (fd < 0) {
    perror("mxkey-echo: accept");
    return 1;
  }
  mxkey_session* session = NULL;
  mxkey_status st = mxkey_session_respond_fd(client, self, fd, &session);
  if (st != MXKEY_OK) {
    close(fd);
    return fail("handshake", st);
  }
  printf("peer %s authenticated\n", mxkey_session_peer_hostname(session));
  fflush(stdout);
  static uint8_t buf[MXKEY_MAX_PAYLOAD];
  size_t n = 0;
  int rc = 0;
  while ((st = mxkey_session_recv(session, buf, sizeof buf, &n)) == MXKEY_OK) {
    st = mxkey_session_send(session, buf, n);
    if (st != MXKEY_OK) {
      rc = fail("send", st);
      break;
    }
  }
  /* The initiator closing the connection ends the echo normally. */
  if (rc == 0 && st != MXKEY_E_IO) rc = fail("receive", st);
  mxkey_session_free(session);
  close(fd);
  return rc;
}

static int connect_and_echo(mxkey_client* client, mxkey_identity* self,
                            const char* host, int port, const char* message) {
  uint8_t key[MXKEY_KEY_SIZE];
  uint64_t serial = 0;
  mxkey_status st = mxkey_lookup_host(client, host, key, &serial);
  if (st != MXKEY_OK) return fail("lookup", st);
  printf("%s: certified key serial %llu\n", host, (unsigned long long)serial);

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    perror("mxkey-echo: connect");
    return 1;
  }
  mxkey_session* session = NULL;
  st = mxkey_session_initiate_fd(client, self, host, fd, &session);
  if (st != MXKEY_OK) {
    close(fd);
    return fail("handshake", st);
  }
  int rc = 0;
  static uint8_t buf[MXKEY_MAX_PAYLOAD];
  size_t n = 0;
  st = mxkey_session_send(session, (const uint8_t*)message, strlen(message));
  if (st == MXKEY_OK) st = mxkey_session_recv(session, buf, sizeof buf, &n);
  if (st != MXKEY_OK) {
    rc = fail("echo", st);
  } else if (n != strlen(message) || memcmp(buf, message, n) != 0) {
    fprintf(stderr, "mxkey-echo: the echo differs from what was sent\n");
    rc = 1;
  } else {
    printf("echo: %.*s\n", (int)n, (const char*)buf);
  }
  mxkey_session_free(session);
  close(fd);
  return rc;
}

int main(int argc, char** argv) {
  int is_serve = argc == 5 && strcmp(argv[1], "serve") == 0;
  int is_connect = argc == 8 && strcmp(argv[1], "connect") == 0;
  if (!is_serve && !is_connect) {
    fprintf(stderr,
            "usage: mxkey-echo serve KEYD ROOT_FP KEY_DIR\n"
            "       mxkey-echo connect KEYD ROOT_FP KEY_DIR HOSTNAME PORT "
            "MESSAGE\n");
    return 2;
  }
  mxkey_client* client = NULL;
  mxkey_status st = mxkey_client_new(argv[2], argv[3], NULL, &client);
  if (st != MXKEY_OK) return fail("client", st);
  const char* replay_dir = getenv("MXKEY_REPLAY_DIR");
  if (is_serve && replay_dir != NULL && replay_dir[0] != '\0') {
    st = mxkey_client_set_replay_guard(client, replay_dir, 0);
    if (st != MXKEY_OK) {
      mxkey_client_free(client);
      return fail("replay guard", st);
    }
  }
  mxkey_identity* self = NULL;
  st = mxkey_identity_load(argv[4], &self);
  if (st != MXKEY_OK) {
    mxkey_client_free(client);
    return fail("identity", st);
  }
  int rc = is_serve ? serve(client, self)
                    : connect_and_echo(client, self, argv[5], atoi(argv[6]),
                                       argv[7]);
  mxkey_identity_free(self);
  mxkey_client_free(client);
  return rc;
}
