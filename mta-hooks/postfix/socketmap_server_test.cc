#include "mta-hooks/postfix/socketmap_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mta-hooks/postfix/netstring.h"
#include "mta-hooks/postfix/socket_peer.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Connects to "inet:127.0.0.1:PORT", "inet:[::1]:PORT" or "unix:PATH".
int Connect(const std::string& bound) {
  if (bound.rfind("unix:", 0) == 0) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, bound.c_str() + 5, sizeof(a.sun_path) - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    return fd;
  }
  const size_t colon = bound.rfind(':');
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(bound.substr(colon + 1), &port));
  const bool v6 = bound.find('[') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, "::1", &a.sin6_addr);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  }
  return fd;
}

void Send(int fd, const std::string& bytes) {
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()),
            static_cast<ssize_t>(bytes.size()));
}

// The next reply payload, or "<closed>" / "<timeout>", within 5 s. Reads a
// byte at a time so the next reply stays in the socket.
std::string Reply(int fd) {
  NetstringDecoder d(200000);
  char buf[1];
  for (int i = 0; i < 200000; ++i) {
    auto r = d.Next();
    if (r.kind == NetstringDecoder::Kind::kPayload) return r.payload;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return "<timeout>";
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return "<closed>";
    d.Append(absl::string_view(buf, static_cast<size_t>(n)));
  }
  return "<too many reads>";
}

// Sends one request ("MAP KEY") and returns its reply, as Reply does.
std::string Ask(int fd, const std::string& request) {
  const std::string wire = EncodeNetstring(request);
  if (write(fd, wire.data(), wire.size()) != static_cast<ssize_t>(wire.size())) {
    return "<closed>";
  }
  return Reply(fd);
}

class SocketmapServerTest : public ::testing::Test {
 protected:
  void StartServer(SocketmapServerOptions options) {
    server_ = std::make_unique<SocketmapServer>(
        std::move(options), [](const std::string& map, const std::string& key) {
          return absl::StrCat("OK ", map, "/", key);
        });
    ASSERT_TRUE(server_->Start().ok());
  }
  std::unique_ptr<SocketmapServer> server_;
};

TEST_F(SocketmapServerTest, ManyRequestsOnOneConnectionOnEveryListener) {
  char dir[] = "/tmp/mxk.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string sock = absl::StrCat(dir, "/map.sock");
  SocketmapServerOptions o;
  o.listen = {"inet:127.0.0.1:0", "inet:[::1]:0", "unix:" + sock};
  StartServer(o);
  ASSERT_EQ(server_->bound().size(), 3u);
  EXPECT_EQ(server_->bound()[2], "unix:" + sock);
  for (const std::string& bound : server_->bound()) {
    int fd = Connect(bound);
    // Two requests in one write, then one split across writes.
    Send(fd, EncodeNetstring("tlspolicy example.org") +
                 EncodeNetstring("ccert AB:CD"));
    EXPECT_EQ(Reply(fd), "OK tlspolicy/example.org") << bound;
    EXPECT_EQ(Reply(fd), "OK ccert/AB:CD") << bound;
    const std::string wire = EncodeNetstring("tlspolicy [mx1.example.org]:25");
    Send(fd, wire.substr(0, 5));
    Send(fd, wire.substr(5));
    EXPECT_EQ(Reply(fd), "OK tlspolicy/[mx1.example.org]:25") << bound;
    close(fd);
  }
  server_->Stop();
  EXPECT_NE(access(sock.c_str(), F_OK), 0) << "socket file left behind";
  rmdir(dir);
}

TEST_F(SocketmapServerTest, MalformedRequestGetsPermAndConnectionStaysUsable) {
  StartServer({{"inet:127.0.0.1:0"}});
  int fd = Connect(server_->bound()[0]);
  struct Case {
    std::string payload;
    const char* why;
  } cases[] = {
      {"tlspolicy", "NAME KEY"},
      {"TLSPOLICY example.org", "lower-case letters"},
      {"tlspolicy ", "key is empty"},
      {std::string("tlspolicy a\0b", 13), "printable ASCII"},
      {"tlspolicy a\x80\xff", "printable ASCII"},
      {"tlspolicy a b", "printable ASCII"},
  };
  for (const Case& c : cases) {
    Send(fd, EncodeNetstring(c.payload));
    const std::string reply = Reply(fd);
    EXPECT_THAT(reply, StartsWith("PERM ")) << c.payload;
    EXPECT_THAT(reply, HasSubstr(c.why)) << c.payload;
  }
  Send(fd, EncodeNetstring("tlspolicy ok.example"));
  EXPECT_EQ(Reply(fd), "OK tlspolicy/ok.example");
  close(fd);
}

TEST_F(SocketmapServerTest, BrokenFramingGetsPermThenClose) {
  StartServer({{"inet:127.0.0.1:0"}});
  for (const std::string& junk :
       {std::string("GET / HTTP/1.1\r\n\r\n"), std::string("5:abcdefgh"),
        std::string("99999999999999999999:"), std::string("100000:")}) {
    int fd = Connect(server_->bound()[0]);
    Send(fd, junk);
    const std::string reply = Reply(fd);
    EXPECT_THAT(reply, StartsWith("PERM ")) << junk;
    EXPECT_THAT(reply, HasSubstr("netstring")) << junk;
    EXPECT_EQ(Reply(fd), "<closed>") << junk;
    close(fd);
  }
}

TEST_F(SocketmapServerTest, StalledClientDoesNotStallOthers) {
  SocketmapServerOptions o;
  o.listen = {"inet:127.0.0.1:0"};
  o.request_timeout = absl::Milliseconds(300);
  StartServer(o);
  int stalled = Connect(server_->bound()[0]);
  Send(stalled, "30:tlspolicy half");  // never finished
  int other = Connect(server_->bound()[0]);
  Send(other, EncodeNetstring("tlspolicy example.org"));
  EXPECT_EQ(Reply(other), "OK tlspolicy/example.org");
  // The half-sent request times out and its connection is closed.
  EXPECT_EQ(Reply(stalled), "<closed>");
  close(stalled);
  close(other);
}

TEST_F(SocketmapServerTest, IdleConnectionIsClosedAfterIdleTimeoutOnly) {
  SocketmapServerOptions o;
  o.listen = {"inet:127.0.0.1:0"};
  o.request_timeout = absl::Seconds(30);
  o.idle_timeout = absl::Milliseconds(400);
  StartServer(o);
  int fd = Connect(server_->bound()[0]);
  for (int i = 0; i < 3; ++i) {  // busy: each pause is under the idle timeout
    Send(fd, EncodeNetstring("m k"));
    EXPECT_EQ(Reply(fd), "OK m/k");
    absl::SleepFor(absl::Milliseconds(150));
  }
  const absl::Time idle_from = absl::Now();
  EXPECT_EQ(Reply(fd), "<closed>");
  EXPECT_GE(absl::Now() - idle_from, absl::Milliseconds(200));
  close(fd);
}

TEST_F(SocketmapServerTest, ConnectionsBeyondTheLimitGetTemp) {
  SocketmapServerOptions o;
  o.listen = {"inet:127.0.0.1:0"};
  o.max_connections = 2;
  StartServer(o);
  int a = Connect(server_->bound()[0]);
  int b = Connect(server_->bound()[0]);
  Send(a, EncodeNetstring("m k"));
  Send(b, EncodeNetstring("m k"));
  EXPECT_EQ(Reply(a), "OK m/k");
  EXPECT_EQ(Reply(b), "OK m/k");
  int c = Connect(server_->bound()[0]);
  EXPECT_THAT(Reply(c), HasSubstr("TEMP mxkey-policyd: too many connections"));
  close(a);
  close(b);
  close(c);
}

// Finding 10 of trust core III: any local user could hold every
// connection idle (the idle timeout was 5 min), and every Postfix lookup
// then got TEMP. Now a new connection takes the place of one idle longer
// than idle_timeout_when_full.
TEST_F(SocketmapServerTest, AnIdleConnectionMakesRoomWhenAllAreTaken) {
  SocketmapServerOptions o;
  o.listen = {"inet:127.0.0.1:0"};
  o.max_connections = 2;
  o.idle_timeout_when_full = absl::Milliseconds(200);
  StartServer(o);
  int a = Connect(server_->bound()[0]);
  EXPECT_EQ(Ask(a, "m k"), "OK m/k");
  absl::SleepFor(absl::Milliseconds(50));
  int b = Connect(server_->bound()[0]);
  EXPECT_EQ(Ask(b, "m k"), "OK m/k");
  absl::SleepFor(absl::Milliseconds(300));  // both idle long enough
  int c = Connect(server_->bound()[0]);
  EXPECT_EQ(Ask(c, "m c"), "OK m/c");
  EXPECT_EQ(Reply(a), "<closed>");  // idle longest
  EXPECT_EQ(Ask(b, "m b"), "OK m/b");
  // Connections idle for less than that stay: the next one is refused.
  int d = Connect(server_->bound()[0]);
  EXPECT_THAT(Reply(d), HasSubstr("TEMP mxkey-policyd: too many connections"));
  close(a);
  close(b);
  close(c);
  close(d);
}

// Runs `fn` in a child process as uid/gid 65534 (nobody); its exit code.
int AsNobody(const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      _exit(90);
    }
    _exit(fn());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

TEST_F(SocketmapServerTest, OneLocalUserHoldsAtMostItsShare) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  char dir[] = "/tmp/mxkey-smap-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  chmod(dir, 0755);
  SocketmapServerOptions o;
  o.listen = {absl::StrCat("unix:", dir, "/s")};
  o.max_connections_per_peer = 2;
  StartServer(o);
  const std::string bound = server_->bound()[0];
  int a = Connect(bound);
  int b = Connect(bound);
  EXPECT_EQ(Ask(a, "m k"), "OK m/k");
  EXPECT_EQ(Ask(b, "m k"), "OK m/k");
  int c = Connect(bound);
  EXPECT_THAT(Reply(c), HasSubstr(absl::StrCat("too many connections from uid:",
                                                geteuid())));
  // Another user still gets in.
  EXPECT_EQ(AsNobody([&] {
              return Ask(Connect(bound), "m nobody") == "OK m/nobody" ? 0 : 2;
            }),
            0);
  close(a);
  close(b);
  close(c);
  server_.reset();
  rmdir(dir);
}

TEST(SocketPeerTest, ALoopbackTcpClientIsNamedByItsUid) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), len), 0);
  int accepted = accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  EXPECT_EQ(SocketPeer(accepted), absl::StrCat("uid:", geteuid()));
  // The kernel's answer by the 4-tuple (not the /proc/net/tcp fallback).
  EXPECT_EQ(SockDiagPeerUid(accepted), static_cast<long>(geteuid()));
  close(accepted);
  close(client);
  close(listener);
}

// A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1, while the
// client's socket is listed in /proc/net/tcp: still named by its uid (not
// lumped with every other local user under one address).
TEST(SocketPeerTest, AnIpv4ClientOfADualStackListenerIsNamedByItsUid) {
  int listener = socket(AF_INET6, SOCK_STREAM, 0);
  int off = 0;
  setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  sockaddr_in6 addr6{};
  addr6.sin6_family = AF_INET6;
  addr6.sin6_addr = in6addr_any;
  socklen_t len = sizeof(addr6);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr6), len), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr6), &len), 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = addr6.sin6_port;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  int accepted = accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  EXPECT_EQ(SocketPeer(accepted), absl::StrCat("uid:", geteuid()));
  close(accepted);
  close(client);
  close(listener);
}

TEST(SocketPeerTest, ReadsTheOwnerFromTheKernelTable) {
  const std::string table =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
      "retrnsmt   uid  timeout inode\n"
      "   0: 0100007F:2AF8 00000000:0000 0A 00000000:00000000 00:00000000 "
      "00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n"
      "   1: 0100007F:C350 0100007F:2AF8 01 00000000:00000000 00:00000000 "
      "00000000  1001        0 2 1 0000000000000000 20 4 30 10 -1\n"
      "   2: 0100007F:C351 0100007F:2AF8 06 00000000:00000000 03:00000000 "
      "00000000     0        0 0 3 0000000000000000\n";
  EXPECT_EQ(UidFromProcNetTcp(table, "0100007F:C350", "0100007F:2AF8"), 1001);
  // A TIME_WAIT line has no owner.
  EXPECT_EQ(UidFromProcNetTcp(table, "0100007F:C351", "0100007F:2AF8"), -1);
}

TEST(SocketmapServerStartTest, UnixSocketsGetTheModeAndGroupAsked) {
  char dir[] = "/tmp/mxkey-smap-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  SocketmapServerOptions o;
  const std::string path = absl::StrCat(dir, "/s");
  o.listen = {absl::StrCat("unix:", path)};
  o.unix_mode = 0660;
  o.unix_group = getegid();
  {
    SocketmapServer s(o, [](const std::string&, const std::string&) {
      return std::string("OK");
    });
    ASSERT_TRUE(s.Start().ok());
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    EXPECT_EQ(st.st_gid, getegid());
  }
  rmdir(dir);
}

TEST(SocketmapServerStartTest, BadListenAddressesAreNamed) {
  for (const char* spec : {"tcp:1.2.3.4:5", "inet:localhost:25",
                           "inet:127.0.0.1", "inet:127.0.0.1:70000"}) {
    SocketmapServer s({{spec}}, nullptr);
    absl::Status st = s.Start();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << spec;
  }
}

}  // namespace
}  // namespace mxkey
