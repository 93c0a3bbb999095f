#include "protocol/hostname.h"

#include "gtest/gtest.h"

namespace mxkey {
namespace {

TEST(CanonicalHostnameTest, LowerCasesAndStripsTrailingDot) {
  EXPECT_EQ(*CanonicalHostname("MX1.Example.ORG."), "mx1.example.org");
  EXPECT_EQ(*CanonicalHostname("xn--bcher-kva.example"), "xn--bcher-kva.example");
  EXPECT_EQ(*CanonicalHostname("a-b.c1.example"), "a-b.c1.example");
}

TEST(CanonicalHostnameTest, RejectsBadNames) {
  const std::string kBad[] = {
      "",
      "localhost",
      "bücher.example",
      "-a.example.org",
      "a-.example.org",
      "a..example.org",
      ".example.org",
      "a_b.example.org",
      "a b.example.org",
      "mx1.example.123",
      std::string(64, 'a') + ".example.org",
      std::string(250, 'a').insert(60, ".").insert(120, ".").insert(180, ".") +
          ".org",
      std::string("a\0b.example.org", 15),
  };
  for (const auto& name : kBad) {
    auto result = CanonicalHostname(name);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << name;
    EXPECT_NE(result.status().message().find("invalid hostname"),
              std::string::npos);
  }
}

TEST(CanonicalHostnameTest, IdnMessageNamesALabel) {
  auto result = CanonicalHostname("bücher.example");
  EXPECT_NE(result.status().message().find("xn--"), std::string::npos);
}

// Trust core III #14: A-labels that are not valid IDNA2008, and "--" in the
// 3rd and 4th position of a label that is not one, were accepted.
TEST(CanonicalHostnameTest, RejectsLabelsThatAreNotValidIdna) {
  for (const char* bad : {"xn--a.example.org", "ab--cd.example.org",
                          "mx.xn--.example", "xn--zz-9zz.example",
                          "XN--BCHER-KVA.example.org.xn--a"}) {
    auto result = CanonicalHostname(bad);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_NE(CanonicalHostname("ab--cd.example.org")
                .status()
                .message()
                .find("3rd and 4th position"),
            std::string::npos);
  // Valid A-labels, in any case, and ordinary hyphens stay accepted.
  EXPECT_EQ(*CanonicalHostname("XN--BCHER-KVA.Example"), "xn--bcher-kva.example");
  EXPECT_EQ(*CanonicalHostname("mx1.xn--mnchen-3ya.example"),
            "mx1.xn--mnchen-3ya.example");
  EXPECT_TRUE(CanonicalHostname("a-b--c.example").ok());
}

TEST(NameIsUnderTest, MatchesOnLabelBoundaries) {
  EXPECT_TRUE(NameIsUnder("mx1.example.org", "example.org"));
  EXPECT_TRUE(NameIsUnder("example.org", "example.org"));
  EXPECT_FALSE(NameIsUnder("badexample.org", "example.org"));
  EXPECT_FALSE(NameIsUnder("org", "example.org"));
}

}  // namespace
}  // namespace mxkey
