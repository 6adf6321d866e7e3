#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "api/http/server.h"

namespace sigil::http {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(PercentDecode, PlusIsSpaceOnlyWhenAsked) {
  EXPECT_EQ(percent_decode("a+b", true).value(), "a b");
  EXPECT_EQ(percent_decode("a+b", false).value(), "a+b");
}

TEST(PercentDecode, DecodesHexEscapesOfEitherCase) {
  EXPECT_EQ(percent_decode("a%20b", false).value(), "a b");
  EXPECT_EQ(percent_decode("%2f%2F%2B", true).value(), "//+");
  EXPECT_EQ(percent_decode("%E2%82%AC", false).value(), "\xE2\x82\xAC");
  EXPECT_EQ(percent_decode("", false).value(), "");
}

TEST(PercentDecode, RejectsBadEscapes) {
  for (const char* bad : {"%G1", "%1G", "abc%", "abc%4", "%%41", "% 41"}) {
    auto r = percent_decode(bad, true);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(PercentDecode, RejectsDecodedAndRawNul) {
  EXPECT_FALSE(percent_decode("a%00b", false).has_value());
  EXPECT_FALSE(percent_decode(std::string_view("a\0b", 3), false).has_value());
}

TEST(PercentEncode, KeepsUnreservedAndEscapesTheRest) {
  EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(percent_encode("a b+c/d?e=f&g"), "a%20b%2Bc%2Fd%3Fe%3Df%26g");
  EXPECT_EQ(percent_encode("\xE2\x82\xAC"), "%E2%82%AC");
}

TEST(PercentEncode, RoundTripsThroughDecode) {
  std::string all;
  for (int c = 1; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(percent_decode(percent_encode(all), false).value(), all);
  EXPECT_EQ(percent_decode(percent_encode(all), true).value(), all);
}

TEST(ParseForm, SplitsPairsAndDecodesKeysAndValues) {
  auto r = parse_form("grant_type=authorization_code&code=a%2Bb+c&redirect_uri=https%3A%2F%2Fx.test%2Fcb");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, (Pairs{{"grant_type", "authorization_code"},
                       {"code", "a+b c"},
                       {"redirect_uri", "https://x.test/cb"}}));
}

TEST(ParseForm, SkipsEmptyPairsAndKeepsValuelessKeys) {
  auto r = parse_form("&&a=1&&b&c=&=d&");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, (Pairs{{"a", "1"}, {"b", ""}, {"c", ""}, {"", "d"}}));
  EXPECT_TRUE(parse_form("").value().empty());
}

TEST(ParseForm, SplitsOnFirstEqualsOnly) {
  auto r = parse_form("k=v=w");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, (Pairs{{"k", "v=w"}}));
}

TEST(ParseForm, RejectsBadEscapesAndNul) {
  for (const char* bad : {"a=%G1", "a=%", "a=b%2", "%zz=1", "a=%00", "a%00=1"}) {
    auto r = parse_form(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_EQ(r.error().message, "Malformed form body") << bad;
  }
}

TEST(RequestHeader, ReturnsFirstMatchOrEmpty) {
  Request req;
  req.headers = {{"x-a", "1"}, {"x-b", "2"}, {"x-a", "3"}};
  EXPECT_EQ(req.header("x-a"), "1");
  EXPECT_EQ(req.header("x-b"), "2");
  EXPECT_EQ(req.header("x-c"), "");
}

}  // namespace
}  // namespace sigil::http
