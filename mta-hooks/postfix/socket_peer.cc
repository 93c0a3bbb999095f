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
    if (f.size() < 8 || f[1] != local || f[2] != remote) continue;
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
