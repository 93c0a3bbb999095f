#include "mta-hooks/postfix/netstring.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

using Kind = NetstringDecoder::Kind;
using ::testing::HasSubstr;

TEST(NetstringTest, EncodesAndDecodesSeveralInOneBuffer) {
  EXPECT_EQ(EncodeNetstring("hello world!"), "12:hello world!,");
  NetstringDecoder d(100);
  d.Append(EncodeNetstring("a b") + EncodeNetstring("") + "3:x");
  auto r = d.Next();
  ASSERT_EQ(r.kind, Kind::kPayload);
  EXPECT_EQ(r.payload, "a b");
  r = d.Next();
  ASSERT_EQ(r.kind, Kind::kPayload);
  EXPECT_EQ(r.payload, "");
  EXPECT_EQ(d.Next().kind, Kind::kNeedMore);
  d.Append("yz");
  EXPECT_EQ(d.Next().kind, Kind::kNeedMore);
  d.Append(",");
  r = d.Next();
  ASSERT_EQ(r.kind, Kind::kPayload);
  EXPECT_EQ(r.payload, "xyz");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(NetstringTest, ByteAtATime) {
  NetstringDecoder d(100);
  const std::string wire = EncodeNetstring("tlspolicy example.org");
  for (size_t i = 0; i + 1 < wire.size(); ++i) {
    d.Append(wire.substr(i, 1));
    ASSERT_EQ(d.Next().kind, Kind::kNeedMore) << i;
  }
  d.Append(",");
  EXPECT_EQ(d.Next().payload, "tlspolicy example.org");
}

TEST(NetstringTest, BrokenFramingIsStickyAndNamed) {
  struct Case {
    const char* wire;
    const char* why;
  } cases[] = {
      {"abc", "decimal length"},
      {":x,", "decimal length"},
      {"3-abc,", "followed by ':'"},
      {"3:abcd", "followed by ','"},
      {"101:", "exceeds the limit of 100"},
      {"0000000000000000000001:", "exceeds the limit"},
      {"99999999999999999999999999:", "exceeds the limit"},
  };
  for (const Case& c : cases) {
    NetstringDecoder d(100);
    d.Append(c.wire);
    auto r = d.Next();
    EXPECT_EQ(r.kind, Kind::kBroken) << c.wire;
    EXPECT_THAT(r.payload, HasSubstr(c.why)) << c.wire;
    d.Append("3:abc,");
    EXPECT_EQ(d.Next().kind, Kind::kBroken) << c.wire;
  }
}

TEST(NetstringTest, LengthAtTheLimitIsAccepted) {
  NetstringDecoder d(5);
  d.Append("5:abcde,");
  EXPECT_EQ(d.Next().payload, "abcde");
  NetstringDecoder e(5);
  e.Append("6:");
  EXPECT_EQ(e.Next().kind, Kind::kBroken);
}

}  // namespace
}  // namespace mxkey
