#include "mta-hooks/postfix/socket_peer.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace mxkey {
namespace {

// An address and port as /proc/net/tcp{,6} print them: the address as
// 32-bit words in host byte order, the port in hex.
std::string ProcAddress(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    return absl::StrFormat("%08X:%04X", v4->sin_addr.s_addr,
                           ntohs(v4->sin_port));
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  uint32_t words[4];
  std::memcpy(words, &v6->sin6_addr, sizeof(words));
  return absl::StrFormat("%08X%08X%08X%08X:%04X", words[0], words[1], words[2],
                         words[3], ntohs(v6->sin6_port));
}

// An IPv4-mapped IPv6 address (a dual-stack listener) as the IPv4 address
// it is: the client's socket is then listed in /proc/net/tcp.
void UnmapV4(sockaddr_storage* ss) {
  if (ss->ss_family != AF_INET6) return;
  const auto v6 = *reinterpret_cast<const sockaddr_in6*>(ss);
  if (!IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) return;
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = v6.sin6_port;
  std::memcpy(&v4.sin_addr, &v6.sin6_addr.s6_addr[12], 4);
  std::memset(ss, 0, sizeof(*ss));
  std::memcpy(ss, &v4, sizeof(v4));
}

bool IsLoopback(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
}

std::string IpOf(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  const void* addr =
      ss.ss_family == AF_INET
          ? static_cast<const void*>(
                &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr)
          : static_cast<const void*>(
                &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
  if (inet_ntop(ss.ss_family, addr, text, sizeof(text)) == nullptr) {
    return "unknown";
  }
  return absl::StrCat("ip:", text);
}

// The uid owning the TCP socket whose local end is `local` and remote end
// `remote`, asked of the kernel by that 4-tuple (NETLINK_SOCK_DIAG, the
// interface of ss(8)): one small message, where /proc/net/tcp is the whole
// table. -1 if the kernel does not say.
long UidFromSockDiag(const sockaddr_storage& local,
                     const sockaddr_storage& remote) {
  const int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -1;
  timeval timeout{1, 0};  // the kernel answers at once; never hang a server
  setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST;
  inet_diag_req_v2& r = message.request;
  r.sdiag_family = local.ss_family;
  r.sdiag_protocol = IPPROTO_TCP;
  r.idiag_states = ~0U;
  r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (local.ss_family == AF_INET) {
    const auto* l = reinterpret_cast<const sockaddr_in*>(&local);
    const auto* rm = reinterpret_cast<const sockaddr_in*>(&remote);
    r.id.idiag_sport = l->sin_port;
    r.id.idiag_dport = rm->sin_port;
    std::memcpy(r.id.idiag_src, &l->sin_addr, 4);
    std::memcpy(r.id.idiag_dst, &rm->sin_addr, 4);
  } else {
    const auto* l = reinterpret_cast<const sockaddr_in6*>(&local);
    const auto* rm = reinterpret_cast<const sockaddr_in6*>(&remote);
    r.id.idiag_sport = l->sin6_port;
    r.id.idiag_dport = rm->sin6_port;
    std::memcpy(r.id.idiag_src, &l->sin6_addr, 16);
    std::memcpy(r.id.idiag_dst, &rm->sin6_addr, 16);
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  long uid = -1;
  if (sendto(nl, &message, sizeof(message), 0,
             reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) ==
      static_cast<ssize_t>(sizeof(message))) {
    alignas(nlmsghdr) char buf[1024];
    const ssize_t n = recv(nl, buf, sizeof(buf), 0);
    const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
    if (n > 0 && NLMSG_OK(h, static_cast<size_t>(n)) &&
        h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
        h->nlmsg_len >= NLMSG_LENGTH(sizeof(inet_diag_msg))) {
      const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      // TIME_WAIT has no owner (uid 0): a connection of the past.
      if (m->idiag_state != 6) uid = m->idiag_uid;
    }
  }
  close(nl);
  return uid;
}

}  // namespace

long UidFromProcNetTcp(absl::string_view table, absl::string_view local,
                       absl::string_view remote) {
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
    // A connection of the past with the same ports (TIME_WAIT, 06) has no
    // owner any more (uid 0).
    if (f.size() < 8 || f[1] != local || f[2] != remote || f[3] == "06") {
      continue;
    }
    long uid = -1;
    if (absl::SimpleAtoi(f[7], &uid)) return uid;
  }
  return -1;
}

long SockDiagPeerUid(int fd) {
  sockaddr_storage peer{}, self{};
  socklen_t peer_len = sizeof(peer), self_len = sizeof(self);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&self), &self_len) != 0 ||
      (peer.ss_family != AF_INET && peer.ss_family != AF_INET6)) {
    return -1;
  }
  UnmapV4(&peer);
  UnmapV4(&self);
  return UidFromSockDiag(peer, self);
}

std::string SocketPeer(int fd) {
  ucred cred{};
  socklen_t cred_len = sizeof(cred);
  sockaddr_storage peer{}, self{};
  socklen_t peer_len = sizeof(peer), self_len = sizeof(self);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&self), &self_len) != 0) {
    return "unknown";
  }
  if (peer.ss_family == AF_UNIX) {
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0) {
      return absl::StrCat("uid:", cred.uid);
    }
    return "unknown";
  }
  if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6) return "unknown";
  UnmapV4(&peer);
  UnmapV4(&self);
  if (!IsLoopback(peer)) return IpOf(peer);
  // A local process: the owner of its end of the connection, whose local
  // address is the client's and remote address ours.
  const long diag_uid = UidFromSockDiag(peer, self);
  if (diag_uid >= 0) return absl::StrCat("uid:", diag_uid);
  // Where the kernel has no sock_diag: the whole table.
  std::ifstream file(peer.ss_family == AF_INET ? "/proc/net/tcp"
                                               : "/proc/net/tcp6");
  std::stringstream table;
  table << file.rdbuf();
  const long uid =
      UidFromProcNetTcp(table.str(), ProcAddress(peer), ProcAddress(self));
  return uid >= 0 ? absl::StrCat("uid:", uid) : IpOf(peer);
}

}  // namespace mxkey
