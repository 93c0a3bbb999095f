#include "bench/source_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <grpcpp/create_channel_posix.h>

namespace mxkey {
namespace {

// HOST:PORT or [HOST]:PORT into a socket address; false if neither.
bool Parse(const std::string& host, int port, sockaddr_storage* out,
           socklen_t* len) {
  std::memset(out, 0, sizeof(*out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*v4);
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*v6);
    return true;
  }
  return false;
}

}  // namespace

std::string SourceInDocPrefix(uint32_t net, uint64_t host) {
  char text[80];
  std::snprintf(text, sizeof(text), "2001:db8:%x:%x:%x:%x:%x:%x",
                net >> 16, net & 0xffff,
                static_cast<unsigned>((host >> 48) & 0xffff),
                static_cast<unsigned>((host >> 32) & 0xffff),
                static_cast<unsigned>((host >> 16) & 0xffff),
                static_cast<unsigned>(host & 0xffff));
  return text;
}

int ConnectFrom(const std::string& source, const std::string& target) {
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos) {
    errno = EINVAL;
    return -1;
  }
  std::string host = target.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  sockaddr_storage to, from;
  socklen_t to_len = 0, from_len = 0;
  if (!Parse(host, std::atoi(target.c_str() + colon + 1), &to, &to_len) ||
      !Parse(source, 0, &from, &from_len) || to.ss_family != from.ss_family) {
    errno = EINVAL;
    return -1;
  }
  const int fd = socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), from_len) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), to_len) != 0) {
    const int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

std::shared_ptr<grpc::Channel> ChannelFrom(const std::string& source,
                                           const std::string& target) {
  const int fd = ConnectFrom(source, target);
  if (fd < 0) return nullptr;
  return grpc::CreateInsecureChannelFromFd(target, fd);
}

}  // namespace mxkey
