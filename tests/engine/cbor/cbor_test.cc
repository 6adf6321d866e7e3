// CBOR decoder: RFC 8949 Appendix A examples for the supported subset, the profile's rejections, and real
// attestationObjects from the WebAuthn L3 spec vectors (read from SIGIL_VECTORS_DIR, never copied).
#include "engine/cbor/cbor.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <optional>
#include <string>

namespace sigil::cbor {
namespace {

Bytes hex(std::string_view h) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  SIGIL_CHECK(h.size() % 2 == 0);
  Bytes out;
  for (size_t i = 0; i < h.size(); i += 2) {
    const int hi = nibble(h[i]);
    const int lo = nibble(h[i + 1]);
    SIGIL_CHECK(hi >= 0 && lo >= 0);
    out.push_back(static_cast<uint8_t>(hi * 16 + lo));
  }
  return out;
}

Result<Value> dec(std::string_view h, const Limits& limits = {}) { return decode(hex(h), limits); }

void expect_rejected(std::string_view h, const Limits& limits = {}) {
  auto v = dec(h, limits);
  EXPECT_FALSE(v.has_value()) << "accepted " << h;
  if (!v) {
    EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(Cbor, Rfc8949Unsigned) {
  const std::pair<std::string_view, int64_t> cases[] = {
      {"00", 0}, {"01", 1}, {"0a", 10}, {"17", 23}, {"1818", 24}, {"1864", 100}, {"1903e8", 1000},
      {"1a000f4240", 1000000}, {"1b000000e8d4a51000", 1000000000000}};
  for (const auto& [h, want] : cases) {
    auto v = dec(h);
    ASSERT_TRUE(v.has_value()) << h;
    EXPECT_EQ(v->type(), Value::Type::kUnsigned);
    ASSERT_TRUE(v->as_int().has_value());
    EXPECT_EQ(*v->as_int(), want);
    EXPECT_EQ(v->encoded(), hex(h));
  }
}

TEST(Cbor, Rfc8949MaxUnsignedDecodesButAsIntOverflows) {
  auto v = dec("1bffffffffffffffff");  // 18446744073709551615
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->type(), Value::Type::kUnsigned);
  EXPECT_TRUE(v->is_int());
  EXPECT_FALSE(v->as_int().has_value());
  auto big_neg = dec("3bffffffffffffffff");  // -18446744073709551616
  ASSERT_TRUE(big_neg.has_value());
  EXPECT_EQ(big_neg->type(), Value::Type::kNegative);
  EXPECT_FALSE(big_neg->as_int().has_value());
  auto max = dec("1b7fffffffffffffff");
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ(*max->as_int(), INT64_MAX);
  auto min = dec("3b7fffffffffffffff");
  ASSERT_TRUE(min.has_value());
  EXPECT_EQ(*min->as_int(), INT64_MIN);
}

TEST(Cbor, Rfc8949Negative) {
  const std::pair<std::string_view, int64_t> cases[] = {{"20", -1}, {"29", -10}, {"3863", -100}, {"3903e7", -1000}};
  for (const auto& [h, want] : cases) {
    auto v = dec(h);
    ASSERT_TRUE(v.has_value()) << h;
    EXPECT_EQ(v->type(), Value::Type::kNegative);
    EXPECT_EQ(*v->as_int(), want);
  }
}

TEST(Cbor, Rfc8949ByteStrings) {
  auto empty = dec("40");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->type(), Value::Type::kBytes);
  EXPECT_TRUE(empty->bytes().empty());
  auto four = dec("4401020304");
  ASSERT_TRUE(four.has_value());
  EXPECT_EQ(four->bytes(), hex("01020304"));
  EXPECT_FALSE(four->as_int().has_value());
}

TEST(Cbor, Rfc8949TextStrings) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"60", ""}, {"6161", "a"}, {"6449455446", "IETF"}, {"62225c", "\"\\"}, {"62c3bc", "\xc3\xbc"},
      {"63e6b0b4", "\xe6\xb0\xb4"}, {"64f0908591", "\xf0\x90\x85\x91"}};
  for (const auto& [h, want] : cases) {
    auto v = dec(h);
    ASSERT_TRUE(v.has_value()) << h;
    EXPECT_EQ(v->type(), Value::Type::kText);
    EXPECT_EQ(v->text(), want);
  }
}

TEST(Cbor, Rfc8949SimpleValues) {
  auto f = dec("f4");
  auto t = dec("f5");
  auto n = dec("f6");
  ASSERT_TRUE(f && t && n);
  EXPECT_EQ(f->type(), Value::Type::kBool);
  EXPECT_FALSE(f->boolean());
  EXPECT_EQ(t->type(), Value::Type::kBool);
  EXPECT_TRUE(t->boolean());
  EXPECT_EQ(n->type(), Value::Type::kNull);
}

TEST(Cbor, Rfc8949Arrays) {
  auto empty = dec("80");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->type(), Value::Type::kArray);
  EXPECT_TRUE(empty->array().empty());

  auto flat = dec("83010203");
  ASSERT_TRUE(flat.has_value());
  ASSERT_EQ(flat->array().size(), 3u);
  EXPECT_EQ(*flat->array()[2].as_int(), 3);

  auto nested = dec("8301820203820405");
  ASSERT_TRUE(nested.has_value());
  ASSERT_EQ(nested->array().size(), 3u);
  EXPECT_EQ(nested->array()[1].type(), Value::Type::kArray);
  EXPECT_EQ(*nested->array()[1].array()[1].as_int(), 3);
  EXPECT_EQ(*nested->array()[2].array()[0].as_int(), 4);
  EXPECT_EQ(nested->array()[1].encoded(), hex("820203"));

  // 25 items, length with one extra byte.
  auto long_array = dec("98190102030405060708090a0b0c0d0e0f101112131415161718181819");
  ASSERT_TRUE(long_array.has_value());
  EXPECT_EQ(long_array->array().size(), 25u);
}

TEST(Cbor, Rfc8949Maps) {
  auto empty = dec("a0");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->type(), Value::Type::kMap);
  EXPECT_TRUE(empty->map().empty());
  EXPECT_EQ(empty->find(1), nullptr);

  auto ints = dec("a201020304");
  ASSERT_TRUE(ints.has_value());
  ASSERT_NE(ints->find(1), nullptr);
  EXPECT_EQ(*ints->find(1)->as_int(), 2);
  EXPECT_EQ(*ints->find(3)->as_int(), 4);
  EXPECT_EQ(ints->find(2), nullptr);
  EXPECT_EQ(ints->find("a"), nullptr);

  auto mixed = dec("a26161016162820203");
  ASSERT_TRUE(mixed.has_value());
  ASSERT_NE(mixed->find("a"), nullptr);
  EXPECT_EQ(*mixed->find("a")->as_int(), 1);
  ASSERT_NE(mixed->find("b"), nullptr);
  EXPECT_EQ(mixed->find("b")->array().size(), 2u);
  EXPECT_EQ(mixed->find(1), nullptr);

  // [ "a", {"b": "c"} ]
  auto in_array = dec("826161a161626163");
  ASSERT_TRUE(in_array.has_value());
  EXPECT_EQ(in_array->array()[1].find("b")->text(), "c");
}

TEST(Cbor, FindOnNonMapIsNull) {
  auto v = dec("83010203");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->find(1), nullptr);
  EXPECT_EQ(v->find("a"), nullptr);
}

TEST(Cbor, CoseKeyOrderIsCanonical) {
  // {1: 2, 3: -7, -1: 1, -2: h'00', -3: h'01'}: CTAP2 order 1, 3, -1, -2, -3.
  auto v = dec("a5010203262001214100224101");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v->find(3)->as_int(), -7);
  EXPECT_EQ(v->find(-2)->bytes(), hex("00"));
  EXPECT_EQ(v->find(-3)->bytes(), hex("01"));
  // Int keys sort before text keys of the same encoded length (0x01 < 0x61).
  EXPECT_TRUE(dec("a20102616101").has_value());
}

TEST(Cbor, RejectsIndefiniteLengths) {
  expect_rejected("5f42010243030405ff");
  expect_rejected("7f657374726561646d696e67ff");
  expect_rejected("9fff");
  expect_rejected("9f018202039f0405ffff");
  expect_rejected("bf61610161629f0203ffff");
  expect_rejected("ff");  // break outside an indefinite item
}

TEST(Cbor, RejectsTags) {
  expect_rejected("c074323031332d30332d32315432303a30343a30305a");
  expect_rejected("c11a514b67b0");
  expect_rejected("d82076687474703a2f2f7777772e6578616d706c652e636f6d");
}

TEST(Cbor, RejectsFloatsUndefinedAndOtherSimpleValues) {
  expect_rejected("f90000");
  expect_rejected("f93c00");
  expect_rejected("fa47c35000");
  expect_rejected("fb3ff199999999999a");
  expect_rejected("f7");    // undefined
  expect_rejected("f0");    // simple(16)
  expect_rejected("f8ff");  // simple(255)
  expect_rejected("f818");
}

TEST(Cbor, RejectsReservedAdditionalInformation) {
  for (std::string_view h : {"1c", "1d", "1e", "3c", "5c", "7c", "9c", "bc", "fc", "fd", "fe"}) expect_rejected(h);
}

TEST(Cbor, RejectsNonShortestForms) {
  expect_rejected("1817");                // 23 in one extra byte
  expect_rejected("190017");              // 23 in two bytes
  expect_rejected("1900ff");              // 255 in two bytes
  expect_rejected("1a0000ffff");          // 65535 in four bytes
  expect_rejected("1b00000000ffffffff");  // 2^32-1 in eight bytes
  expect_rejected("3817");                // -24 non-shortest
  expect_rejected("580100");              // 1-byte string with a one-byte length
  expect_rejected("780161");
  expect_rejected("980101");
  expect_rejected("b8010102");
}

TEST(Cbor, RejectsTruncatedInput) {
  for (std::string_view h :
       {"", "18", "19", "1903", "1a000f42", "1b000000e8d4a510", "44010203", "64494554", "8301", "830102", "a201",
        "a2010203", "a16161", "38", "5818", "f9", "fa0000"}) {
    expect_rejected(h);
  }
}

TEST(Cbor, RejectsLengthLargerThanInputWithoutAllocating) {
  // Declared 4 GiB string with 3 bytes present: refused on the length check (ASan would report a huge
  // allocation otherwise).
  expect_rejected("5affffffff010203");
  expect_rejected("7affffffff616161");
  expect_rejected("5bffffffffffffffff010203");
  expect_rejected("9affffffff010203");
  expect_rejected("9bffffffffffffffff01");
  expect_rejected("bbffffffffffffffff0102");
  expect_rejected("bafffffff0010203");
}

TEST(Cbor, RejectsStringsOverTheLimit) {
  Limits small;
  small.max_string_bytes = 3;
  EXPECT_TRUE(dec("43010203", small).has_value());
  expect_rejected("4401020304", small);
  expect_rejected("6461626364", small);
}

TEST(Cbor, DepthLimit) {
  // Five nested arrays are allowed (the top level is depth 1), six are not.
  EXPECT_TRUE(dec("818181818101").has_value());
  EXPECT_TRUE(dec("8181818180").has_value());
  expect_rejected("81818181818101");
  expect_rejected("818181818180");
  expect_rejected("a101a101a101a101a101a0");  // maps count too
  EXPECT_TRUE(dec("a101a101a101a101a0").has_value());
  Limits shallow;
  shallow.max_depth = 1;
  EXPECT_TRUE(dec("820102", shallow).has_value());
  expect_rejected("8180", shallow);
}

TEST(Cbor, ItemLimit) {
  Limits few;
  few.max_items = 4;
  EXPECT_TRUE(dec("83010203", few).has_value());     // 4 items: the array and three ints
  expect_rejected("8401020304", few);                // 5 items
  expect_rejected("820182020304", few);              // 5 items before the end is reached
}

TEST(Cbor, ItemLimitCountsNestedItemsGlobally) {
  Limits few;
  few.max_items = 5;
  EXPECT_TRUE(dec("8201820203", few).has_value());  // [1, [2, 3]]: 5 items
  expect_rejected("8201820203" "04", few);           // [1, [2, 3, 4]] would be 6
  expect_rejected("83820102820304", few);            // 7 items
  EXPECT_TRUE(dec("a201020304", few).has_value());   // map + 4 = 5
  expect_rejected("a3010203040506", few);            // map + 6 = 7, refused on the declared count
}

TEST(Cbor, RejectsDuplicateKeys) {
  expect_rejected("a201020103");
  expect_rejected("a2616101616102");
}

TEST(Cbor, RejectsNonCanonicalKeyOrder) {
  expect_rejected("a203010102");          // {3:1, 1:2}
  expect_rejected("a2616201616102");      // {"b":1, "a":2}
  expect_rejected("a262616101616202");    // {"aa":1, "b":2}: "b" is shorter
  EXPECT_TRUE(dec("a261620162616102").has_value());  // {"b":1, "aa":2}
  expect_rejected("a220010102");                     // {-1:1, 1:2}: 0x01 < 0x20
  EXPECT_TRUE(dec("a201022001").has_value());         // {1:2, -1:1}
  expect_rejected("a26161010102");                    // {"a":1, 1:2}
  EXPECT_TRUE(dec("a20102616101").has_value());       // {1:2, "a":1}: 0x01 < 0x61
  expect_rejected("a2181801170102");                  // {24:1, 23:2}: longer encoding first
  EXPECT_TRUE(dec("a21701181802").has_value());       // {23:1, 24:2}
  // "fmt" < "attStmt" < "authData", and the reverse is refused.
  EXPECT_TRUE(dec("a363666d74016761747453746d740268617574684461746103").has_value());
  expect_rejected("a36761747453746d740163666d740268617574684461746103");
}

TEST(Cbor, RejectsNonIntTextKeys) {
  expect_rejected("a1410001");  // {h'00': 1}
  expect_rejected("a18001");    // {[]: 1}
  expect_rejected("a1a001");    // {{}: 1}
  expect_rejected("a1f401");    // {false: 1}
  expect_rejected("a1f601");    // {null: 1}
}

TEST(Cbor, RejectsInvalidUtf8) {
  expect_rejected("61ff");          // invalid byte
  expect_rejected("6180");          // lone continuation
  expect_rejected("62c0af");        // overlong '/'
  expect_rejected("63e08080");      // overlong NUL
  expect_rejected("63eda080");      // surrogate U+D800
  expect_rejected("64f4908080");    // U+110000
  expect_rejected("62e6b0");        // truncated sequence
  expect_rejected("61c3");          // truncated sequence
  expect_rejected("a161ff01");      // as a map key too
  EXPECT_TRUE(dec("63efbfbf").has_value());    // U+FFFF
  EXPECT_TRUE(dec("64f48fbfbf").has_value());  // U+10FFFF
  EXPECT_TRUE(dec("4180").has_value());        // byte strings are not UTF-8-checked
}

TEST(Cbor, RejectsTrailingBytes) {
  expect_rejected("0000");
  expect_rejected("a0ff");
  expect_rejected("8301020304");
}

TEST(Cbor, DecodePrefixReportsConsumed) {
  const Bytes in = hex("a201020304" "a16161f5");
  size_t used = 0;
  auto v = decode_prefix(in, &used);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(used, 5u);
  EXPECT_EQ(v->encoded(), hex("a201020304"));
  auto rest = decode_prefix(ByteView(in).subspan(used), &used);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(used, 4u);
  EXPECT_TRUE(rest->find("a")->boolean());
  EXPECT_TRUE(decode_prefix(in, nullptr).has_value());
  EXPECT_FALSE(decode_prefix(hex("a2010203"), &used).has_value());
}

TEST(Cbor, ValuesOwnTheirData) {
  Bytes in = hex("a2616101616244deadbeef");
  auto v = decode(in);
  ASSERT_TRUE(v.has_value());
  std::fill(in.begin(), in.end(), 0);
  EXPECT_EQ(v->find("b")->bytes(), hex("deadbeef"));
  EXPECT_EQ(v->encoded(), hex("a2616101616244deadbeef"));
}

std::optional<Bytes> json_hex(simdjson::ondemand::object obj, std::string_view key) {
  std::string_view s;
  if (obj[key].get_string().get(s) != simdjson::SUCCESS) return std::nullopt;
  return hex(s);
}

TEST(Cbor, DecodesSpecAttestationObjects) {
  const std::string path = SIGIL_VECTORS_DIR "/webauthn-spec/webauthn-l3-test-vectors.json";
  simdjson::padded_string json;
  ASSERT_EQ(simdjson::padded_string::load(path).get(json), simdjson::SUCCESS) << path;
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  ASSERT_EQ(parser.iterate(json).get(doc), simdjson::SUCCESS);
  simdjson::ondemand::array vectors;
  ASSERT_EQ(doc["vectors"].get_array().get(vectors), simdjson::SUCCESS);
  size_t decoded = 0;
  for (auto item : vectors) {
    simdjson::ondemand::object vec;
    ASSERT_EQ(item.get_object().get(vec), simdjson::SUCCESS);
    std::string_view name;
    ASSERT_EQ(vec["name"].get_string().get(name), simdjson::SUCCESS);
    const std::string vec_name(name);
    simdjson::ondemand::object reg;
    ASSERT_EQ(vec["registration"].get_object().get(reg), simdjson::SUCCESS);
    auto att = json_hex(reg, "attestationObject");
    ASSERT_TRUE(att.has_value()) << vec_name;
    auto v = decode(*att);
    ASSERT_TRUE(v.has_value()) << vec_name << ": " << v.error().message;
    EXPECT_EQ(v->encoded(), *att);
    ASSERT_NE(v->find("fmt"), nullptr) << vec_name;
    EXPECT_EQ(v->find("fmt")->type(), Value::Type::kText);
    ASSERT_NE(v->find("attStmt"), nullptr) << vec_name;
    EXPECT_EQ(v->find("attStmt")->type(), Value::Type::kMap);
    ASSERT_NE(v->find("authData"), nullptr) << vec_name;
    const Bytes& auth_data = v->find("authData")->bytes();
    ASSERT_GE(auth_data.size(), 37u + 16 + 2) << vec_name;
    // The credential public key inside authData is itself one CBOR map (decode_prefix: extensions may follow).
    const size_t id_len = (size_t{auth_data[53]} << 8) | auth_data[54];
    ASSERT_LE(55 + id_len, auth_data.size());
    size_t used = 0;
    auto cose = decode_prefix(ByteView(auth_data).subspan(55 + id_len), &used);
    ASSERT_TRUE(cose.has_value()) << vec_name;
    EXPECT_EQ(cose->type(), Value::Type::kMap);
    ASSERT_NE(cose->find(3), nullptr) << vec_name;
    EXPECT_TRUE(cose->find(3)->as_int().has_value());
    ++decoded;
  }
  EXPECT_EQ(decoded, 15u);
  std::printf("webauthn-l3-test-vectors.json: %zu/15 attestationObjects decoded\n", decoded);
}

}  // namespace
}  // namespace sigil::cbor
