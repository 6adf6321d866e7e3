#include "engine/crypto/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace sigil::crypto {
namespace {

std::string str(const Bytes& b) { return std::string(as_chars(b)); }

struct Rfc4648Vector {
  const char* plain;
  const char* std;
  const char* url;
};

// RFC 4648 §10.
constexpr Rfc4648Vector kRfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

TEST(Base64, EncodesAndDecodesRfc4648Vectors) {
  for (const auto& v : kRfc4648) {
    EXPECT_EQ(base64_encode(as_bytes(v.plain)), v.std);
    EXPECT_EQ(base64url_encode(as_bytes(v.plain)), v.url);
    auto std_dec = base64_decode(v.std);
    ASSERT_TRUE(std_dec) << v.std;
    EXPECT_EQ(str(*std_dec), v.plain);
    auto url_dec = base64url_decode(v.url);
    ASSERT_TRUE(url_dec) << v.url;
    EXPECT_EQ(str(*url_dec), v.plain);
    auto any_std = base64_any_decode(v.std);
    auto any_url = base64_any_decode(v.url);
    ASSERT_TRUE(any_std && any_url) << v.std;
    EXPECT_EQ(str(*any_std), v.plain);
    EXPECT_EQ(str(*any_url), v.plain);
  }
}

TEST(Base64, UsesTheRightAlphabetForHighBytes) {
  const Bytes b = {0xFB, 0xFF, 0xBF};
  EXPECT_EQ(base64_encode(b), "+/+/");
  EXPECT_EQ(base64url_encode(b), "-_-_");
  EXPECT_EQ(base64_encode(Bytes{0xFB, 0xFF}), "+/8=");
  EXPECT_EQ(base64url_encode(Bytes{0xFB, 0xFF}), "-_8");
}

TEST(Base64, RoundTripsEveryByteValueAndLength) {
  Bytes all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<uint8_t>(i));
  for (size_t len = 0; len <= all.size(); len += 1) {
    const ByteView in(all.data(), len);
    auto a = base64_decode(base64_encode(in));
    auto b = base64url_decode(base64url_encode(in));
    auto c = base64_any_decode(base64url_encode(in));
    ASSERT_TRUE(a && b && c) << len;
    EXPECT_EQ(*a, Bytes(in.begin(), in.end()));
    EXPECT_EQ(*b, Bytes(in.begin(), in.end()));
    EXPECT_EQ(*c, Bytes(in.begin(), in.end()));
  }
}

TEST(Base64, StandardRequiresCorrectPadding) {
  for (const char* bad : {"Zg", "Zg=", "Zg===", "Zm8", "Zm8==", "Zm9v=", "Zm9v==", "=", "==", "====", "A", "A===",
                          "Zm9vYg=", "Zg==Zg==", "Z=g=", "=Zg="}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

TEST(Base64, RejectsWhitespace) {
  for (const char* bad : {"Zm9v\n", " Zm9v", "Zm 9v", "Zm9v\r\n", "Zm\t9v", "Zm9vYg==\n", "Zm9v YmFy"}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
    EXPECT_FALSE(base64url_decode(bad)) << bad;
    EXPECT_FALSE(base64_any_decode(bad)) << bad;
  }
}

TEST(Base64, RejectsNonZeroTrailingBits) {
  // "Zg==" is the only encoding of "f"; "Zh==".."Zv==" decode to the same byte in lax decoders.
  for (const char* bad : {"Zh==", "Zv==", "Zm9=", "Zm/=", "Zm+="}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
    EXPECT_FALSE(base64_any_decode(bad)) << bad;
  }
  for (const char* bad : {"Zh", "Zm9", "Zm_"}) {
    EXPECT_FALSE(base64url_decode(bad)) << bad;
    EXPECT_FALSE(base64_any_decode(bad)) << bad;
  }
}

TEST(Base64, RejectsCharactersOutsideTheAlphabet) {
  for (const char* bad : {"Zm9v!A==", "Zm9v.A==", "Zm9\x80", "Zm9v\x7f"}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
  EXPECT_FALSE(base64_decode(std::string_view("Zm9\0", 4)));
  EXPECT_FALSE(base64_decode("-_8=")) << "url alphabet in the standard decoder";
  EXPECT_FALSE(base64url_decode("+/8")) << "standard alphabet in the url decoder";
}

TEST(Base64, UrlRejectsPaddingAndImpossibleLengths) {
  EXPECT_FALSE(base64url_decode("Zg=="));
  EXPECT_FALSE(base64url_decode("Zm8="));
  EXPECT_FALSE(base64url_decode("Z"));
  EXPECT_FALSE(base64url_decode("Zm9vY"));
  EXPECT_TRUE(base64url_decode(""));
}

TEST(Base64, AnyAcceptsEitherAlphabetButNotMixed) {
  auto std_form = base64_any_decode("+/8=");
  auto url_form = base64_any_decode("-_8");
  auto url_padded = base64_any_decode("-_8=");
  auto std_unpadded = base64_any_decode("+/8");
  ASSERT_TRUE(std_form && url_form && url_padded && std_unpadded);
  const Bytes expected = {0xFB, 0xFF};
  EXPECT_EQ(*std_form, expected);
  EXPECT_EQ(*url_form, expected);
  EXPECT_EQ(*url_padded, expected);
  EXPECT_EQ(*std_unpadded, expected);
  EXPECT_FALSE(base64_any_decode("+_8="));
  EXPECT_FALSE(base64_any_decode("-/8"));
  EXPECT_FALSE(base64_any_decode("+/+/-_-_"));
}

TEST(Base64, AnyRequiresCorrectPaddingWhenPresent) {
  EXPECT_TRUE(base64_any_decode("Zg"));
  EXPECT_TRUE(base64_any_decode("Zg=="));
  EXPECT_FALSE(base64_any_decode("Zg="));
  EXPECT_FALSE(base64_any_decode("Zg==="));
  EXPECT_FALSE(base64_any_decode("Zm9v=="));
  EXPECT_FALSE(base64_any_decode("Z"));
}

TEST(Base64, ErrorsAreInvalidArgument) {
  auto r = base64_decode("!!!!");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace sigil::crypto
