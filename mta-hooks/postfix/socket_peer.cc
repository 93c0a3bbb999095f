#include "mta-hooks/postfix/socket_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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
  // A local process: the owner of its end of the connection. The client's
  // socket is listed with its address as local and ours as remote.
  std::ifstream file(peer.ss_family == AF_INET ? "/proc/net/tcp"
                                               : "/proc/net/tcp6");
  std::stringstream table;
  table << file.rdbuf();
  const long uid =
      UidFromProcNetTcp(table.str(), ProcAddress(peer), ProcAddress(self));
  return uid >= 0 ? absl::StrCat("uid:", uid) : IpOf(peer);
}

}  // namespace mxkey
