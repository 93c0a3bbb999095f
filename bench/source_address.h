// gRPC channels from a chosen source address, for bench/run's enrollment
// figures: many clients on one machine, each from its own network (keyd
// limits enrollments per source network). The addresses come from a local
// route on loopback (bench/run adds `ip -6 route add local 2001:db8::/32
// dev lo table local`); IP_FREEBIND lets a socket bind one that no
// interface holds.
#ifndef MXKEY_BENCH_SOURCE_ADDRESS_H_
#define MXKEY_BENCH_SOURCE_ADDRESS_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

namespace mxkey {

// "2001:db8:<hi>:<lo>::<host>" written out: the address `host` in the /64
// numbered `net` (0 .. 2^32 - 1) of 2001:db8::/32.
std::string SourceInDocPrefix(uint32_t net, uint64_t host);

// A connected TCP socket from `source` (an IPv4 or IPv6 literal) to
// `target` ("127.0.0.1:PORT" or "[::1]:PORT"), or -1 (errno set).
int ConnectFrom(const std::string& source, const std::string& target);

// A channel over ConnectFrom's socket (it owns the socket), or null.
std::shared_ptr<grpc::Channel> ChannelFrom(const std::string& source,
                                           const std::string& target);

}  // namespace mxkey

#endif  // MXKEY_BENCH_SOURCE_ADDRESS_H_
