#include "client/dns_exports.h"

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "client/tls_pins.h"

namespace mxkey {
namespace {

VerifiedCert Cert(const std::string& host, VerifiedCertState state,
                  std::vector<std::string> pins) {
  VerifiedCert c;
  c.body.set_hostname(host);
  for (auto& p : pins) c.body.add_tls_spki_sha256(p);
  c.state = state;
  return c;
}

VerifiedAnswer DomainAnswer(mxkey::v1::PolicyMode mode) {
  VerifiedAnswer a;
  a.name = "example.org";
  a.policy.emplace();
  a.policy->set_domain("example.org");
  a.policy->set_mode(mode);
  const std::string p1(32, '\x11'), p2(32, '\x22'), p3(32, '\x33');
  a.certificates = {Cert("mx1.example.org", VerifiedCertState::kActive, {p1}),
                    Cert("mx1.example.org", VerifiedCertState::kNext, {p2, p1}),
                    Cert("mx2.example.org", VerifiedCertState::kRevoked, {p3})};
  return a;
}

TEST(TlsPinsTest, UsableCertificatesOnlyAndNoDuplicates) {
  auto hosts = UsableTlsPins(DomainAnswer(mxkey::v1::POLICY_MODE_ENFORCE));
  ASSERT_EQ(hosts.size(), 1u);  // mx2 is revoked
  EXPECT_EQ(hosts[0].hostname, "mx1.example.org");
  EXPECT_EQ(hosts[0].pins,
            (std::vector<std::string>{std::string(32, '\x11'),
                                      std::string(32, '\x22')}));
}

TEST(TlsPinsTest, ColonHexRoundTripsAndRejectsJunk) {
  const std::string pin = absl::HexStringToBytes(
      "00ff10aa00ff10aa00ff10aa00ff10aa00ff10aa00ff10aa00ff10aa00ff10ab");
  const std::string text = ColonHex(pin);
  EXPECT_EQ(text.substr(0, 12), "00:FF:10:AA:");
  EXPECT_EQ(*ParseColonHexPin(text), pin);
  std::string lower = text;
  for (char& c : lower) c = static_cast<char>(tolower(c));
  EXPECT_EQ(*ParseColonHexPin(lower), pin);
  EXPECT_FALSE(ParseColonHexPin("AB:CD").ok());
  EXPECT_FALSE(ParseColonHexPin(text.substr(0, text.size() - 1) + "G").ok());
  EXPECT_FALSE(ParseColonHexPin("").ok());
  EXPECT_THAT(std::string(ParseColonHexPin("AB").status().message()),
              ::testing::HasSubstr("32 colon-separated"));
}

TEST(DnsExportsTest, TlsaHasOneLinePerUsablePin) {
  EXPECT_EQ(TlsaRecords(DomainAnswer(mxkey::v1::POLICY_MODE_ENFORCE)),
            "_25._tcp.mx1.example.org. IN TLSA 3 1 1 " + std::string(64, '1') +
                "\n_25._tcp.mx1.example.org. IN TLSA 3 1 1 " +
                std::string(64, '2') + "\n");
}

TEST(DnsExportsTest, MtaStsFollowsThePolicyMode) {
  EXPECT_EQ(MtaStsPolicy(DomainAnswer(mxkey::v1::POLICY_MODE_ENFORCE), 86400),
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\n"
            "max_age: 86400\r\n");
  EXPECT_THAT(MtaStsPolicy(DomainAnswer(mxkey::v1::POLICY_MODE_TESTING), 60),
              ::testing::HasSubstr("mode: testing\r\n"));
  VerifiedAnswer unkeyed;
  unkeyed.name = "c.test";
  EXPECT_EQ(MtaStsPolicy(unkeyed, 60),
            "version: STSv1\r\nmode: none\r\nmax_age: 60\r\n");
  EXPECT_EQ(TlsaRecords(unkeyed), "");
}

}  // namespace
}  // namespace mxkey
