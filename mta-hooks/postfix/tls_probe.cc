#include "mta-hooks/postfix/tls_probe.h"

#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/sha256.h"

namespace mxkey {
namespace {

// Closes the socket on every path.
struct Socket {
  int fd = -1;
  ~Socket() {
    if (fd >= 0) close(fd);
  }
};

absl::Status ConnectWithin(Socket& s, const std::string& host, int port,
                           absl::Time deadline) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, freeaddrinfo);
  std::string last = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    Socket candidate;
    candidate.fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (candidate.fd < 0) continue;
    const absl::Duration left = deadline - absl::Now();
    timeval tv = absl::ToTimeval(std::max(left, absl::Milliseconds(1)));
    setsockopt(candidate.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(candidate.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(candidate.fd, a->ai_addr, a->ai_addrlen) == 0) {
      std::swap(s.fd, candidate.fd);
      return absl::OkStatus();
    }
    last = std::strerror(errno);
  }
  return absl::UnavailableError(
      absl::StrCat("connect ", host, ":", port, ": ", last));
}

// Reads one SMTP reply (all continuation lines); returns its code.
absl::StatusOr<int> ReadReply(int fd, std::string* text) {
  std::string line;
  text->clear();
  for (int bytes = 0; bytes < 65536; ++bytes) {
    char c;
    const ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::UnavailableError(
          n == 0 ? "server closed the connection" : "SMTP read timed out");
    }
    line.push_back(c);
    if (c != '\n') continue;
    text->append(line);
    if (line.size() < 4 || !absl::ascii_isdigit(line[0])) {
      return absl::UnavailableError("malformed SMTP reply");
    }
    if (line[3] != '-') return (line[0] - '0') * 100 + (line[1] - '0') * 10 +
                               (line[2] - '0');
    line.clear();
  }
  return absl::UnavailableError("SMTP reply too long");
}

absl::Status Command(int fd, absl::string_view command, int want,
                     std::string* reply) {
  if (!command.empty() &&
      send(fd, command.data(), command.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(command.size())) {
    return absl::UnavailableError("SMTP write failed");
  }
  absl::StatusOr<int> code = ReadReply(fd, reply);
  if (!code.ok()) return code.status();
  if (*code != want) {
    return absl::UnavailableError(absl::StrCat(
        "expected SMTP ", want, ", got: ", reply->substr(0, 120)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ProbeSmtpTlsPin(const std::string& host, int port,
                                            absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  Socket s;
  if (absl::Status st = ConnectWithin(s, host, port, deadline); !st.ok()) {
    return st;
  }
  std::string reply;
  if (absl::Status st = Command(s.fd, "", 220, &reply); !st.ok()) return st;
  if (absl::Status st = Command(s.fd, "EHLO mxkey-policyd.invalid\r\n", 250,
                                &reply);
      !st.ok()) {
    return st;
  }
  if (!absl::StrContains(absl::AsciiStrToUpper(reply), "STARTTLS")) {
    return absl::UnavailableError(
        absl::StrCat(host, ":", port, " does not offer STARTTLS"));
  }
  if (absl::Status st = Command(s.fd, "STARTTLS\r\n", 220, &reply); !st.ok()) {
    return st;
  }
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(
      SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return absl::UnavailableError("TLS context");
  // Any certificate is fine: the probe compares its key with the pins.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  if (!ssl || SSL_set_fd(ssl.get(), s.fd) != 1 ||
      SSL_set_tlsext_host_name(ssl.get(), host.c_str()) != 1) {
    return absl::UnavailableError("TLS setup");
  }
  if (SSL_connect(ssl.get()) != 1) {
    return absl::UnavailableError(
        absl::StrCat("TLS handshake with ", host, ":", port, " failed"));
  }
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      SSL_get1_peer_certificate(ssl.get()), X509_free);
  if (!cert) return absl::UnavailableError("server sent no certificate");
  unsigned char* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
  if (len <= 0) return absl::UnavailableError("bad server public key");
  std::string pin = Sha256(absl::string_view(reinterpret_cast<char*>(der),
                                             static_cast<size_t>(len)));
  OPENSSL_free(der);
  SSL_shutdown(ssl.get());
  if (absl::Now() > deadline) {
    return absl::DeadlineExceededError("TLS probe took too long");
  }
  return pin;
}

}  // namespace mxkey
