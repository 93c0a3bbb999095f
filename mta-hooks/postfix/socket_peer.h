// Who is on the other end of an accepted socketmap connection, as a key for
// per-peer connection limits: "uid:N" for a local process (a Unix socket,
// by SO_PEERCRED; a loopback TCP connection, by the owner of the client's
// socket, asked of the kernel by its 4-tuple with NETLINK_SOCK_DIAG, or
// read from /proc/net/tcp or tcp6 where that fails), "ip:ADDR" for a
// remote address, or
// "unknown" when nothing can be read. Never fails.
#ifndef MXKEY_MTA_HOOKS_POSTFIX_SOCKET_PEER_H_
#define MXKEY_MTA_HOOKS_POSTFIX_SOCKET_PEER_H_

#include <string>

#include "absl/strings/string_view.h"

namespace mxkey {

std::string SocketPeer(int fd);

// The uid owning the TCP socket whose local end is `local` and remote end
// `remote`, both as /proc/net/tcp prints them ("0100007F:1F90"), from the
// text of such a table; -1 if no line matches. (Exposed for tests.)
long UidFromProcNetTcp(absl::string_view table, absl::string_view local,
                       absl::string_view remote);

// The uid owning the client's end of the accepted loopback TCP connection
// `fd`, by NETLINK_SOCK_DIAG only; -1 if the kernel does not say. (Exposed
// for tests.)
long SockDiagPeerUid(int fd);

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_POSTFIX_SOCKET_PEER_H_
