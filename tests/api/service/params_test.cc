// service::Params (JSON and form bodies) and canonical_approval_data (API.md 0.3, 0.5).
#include "api/service/params.h"

#include "engine/base/json_writer.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sigil::service {
namespace {

void expect_bad_request(const Result<Params>& r) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status(), 400);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

Params json(std::string_view body) {
  auto p = Params::from_json(body);
  SIGIL_CHECK(p.has_value());
  return std::move(*p);
}

Params form(std::vector<std::pair<std::string, std::string>> pairs) {
  auto p = Params::from_pairs(std::move(pairs));
  SIGIL_CHECK(p.has_value());
  return std::move(*p);
}

std::string nested(int depth) {
  // depth 1 = {"a":1}; each level wraps the previous one in {"a": ...}.
  std::string s = "1";
  for (int i = 0; i < depth; ++i) s = "{\"a\":" + s + "}";
  return s;
}

// --- JSON bodies ----------------------------------------------------------------------------------------

TEST(ParamsJson, ReadsScalarsAndKeepsObjectsAsJson) {
  Params p = json(R"({"s":"text","n":42,"b":true,"z":null,"o":{"k": "v"},"a":[1, 2]})");
  EXPECT_EQ(p.find("s")->kind, Param::Kind::kString);
  EXPECT_EQ(p.find("s")->text, "text");
  EXPECT_EQ(p.find("n")->kind, Param::Kind::kNumber);
  EXPECT_EQ(p.find("b")->kind, Param::Kind::kBool);
  EXPECT_EQ(p.find("z")->kind, Param::Kind::kNull);
  EXPECT_EQ(p.find("o")->kind, Param::Kind::kObject);
  EXPECT_EQ(p.find("o")->text, R"({"k":"v"})");
  EXPECT_EQ(p.find("a")->kind, Param::Kind::kArray);
  EXPECT_TRUE(p.has("s"));
  EXPECT_FALSE(p.has("z"));  // null counts as absent
  EXPECT_FALSE(p.has("missing"));
  EXPECT_EQ(p.find("missing"), nullptr);
}

TEST(ParamsJson, DecodesEscapesInStrings) {
  Params p = json(R"({"s":"a\"b\u00e9\n"})");
  EXPECT_EQ(p.find("s")->text, "a\"b\xc3\xa9\n");
}

TEST(ParamsJson, RejectsDuplicateTopLevelKeys) {
  expect_bad_request(Params::from_json(R"({"a":1,"a":2})"));
  expect_bad_request(Params::from_json(R"({"user_id":"x","key_id":"k","user_id":"y"})"));
}

TEST(ParamsJson, RejectsDuplicateNestedKeys) {
  expect_bad_request(Params::from_json(R"({"o":{"b":1,"b":2}})"));
  expect_bad_request(Params::from_json(R"({"o":{"p":{"q":"1","q":"2"}}})"));
  expect_bad_request(Params::from_json(R"({"arr":[{"x":1},{"y":1,"y":2}]})"));
  // The same key at different levels is not a duplicate.
  EXPECT_TRUE(Params::from_json(R"({"a":{"a":{"a":1}}})").has_value());
}

TEST(ParamsJson, AcceptsDepthEightAndRejectsDepthNine) {
  EXPECT_TRUE(Params::from_json(nested(8)).has_value()) << nested(8);
  expect_bad_request(Params::from_json(nested(9)));
  expect_bad_request(Params::from_json(nested(40)));
  // Arrays count as levels too.
  expect_bad_request(Params::from_json(R"({"a":[[[[[[[[[1]]]]]]]]]})"));
}

TEST(ParamsJson, RejectsInvalidUtf8) {
  expect_bad_request(Params::from_json("{\"a\":\"\xff\"}"));
  expect_bad_request(Params::from_json("{\"a\":\"\xc3\"}"));            // truncated sequence
  expect_bad_request(Params::from_json("{\"a\":\"\xed\xa0\x80\"}"));    // encoded surrogate
  expect_bad_request(Params::from_json("{\"\xc0\xaf\":\"v\"}"));        // overlong, in a key
}

TEST(ParamsJson, RejectsTrailingGarbage) {
  expect_bad_request(Params::from_json(R"({"a":1}x)"));
  expect_bad_request(Params::from_json(R"({"a":1} {"b":2})"));
  expect_bad_request(Params::from_json(R"({"a":1},)"));
  // Trailing whitespace is not garbage.
  EXPECT_TRUE(Params::from_json("{\"a\":1}\n ").has_value());
}

TEST(ParamsJson, RejectsNonObjects) {
  expect_bad_request(Params::from_json("[]"));
  expect_bad_request(Params::from_json("[{\"a\":1}]"));
  expect_bad_request(Params::from_json("1"));
  expect_bad_request(Params::from_json("\"s\""));
  expect_bad_request(Params::from_json("null"));
  expect_bad_request(Params::from_json("true"));
  expect_bad_request(Params::from_json(""));
  expect_bad_request(Params::from_json("   "));
}

TEST(ParamsJson, RejectsMalformedJson) {
  expect_bad_request(Params::from_json("{"));
  expect_bad_request(Params::from_json(R"({"a":})"));
  expect_bad_request(Params::from_json(R"({'a':1})"));
  expect_bad_request(Params::from_json(R"({"a":1,})"));
}

// --- form bodies ----------------------------------------------------------------------------------------

TEST(ParamsForm, PairsBecomeStrings) {
  Params p = form({{"user_id", "u1"}, {"timeout", "60"}, {"flag", "true"}, {"empty", ""}});
  EXPECT_EQ(p.find("user_id")->kind, Param::Kind::kString);
  auto s = p.get_string("user_id", 10);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(**s, "u1");
  auto t = p.get_int("timeout");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(**t, 60);
  auto b = p.get_bool("flag");
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(**b);
  EXPECT_TRUE(p.has("empty"));
}

TEST(ParamsForm, RejectsDuplicateParameters) {
  expect_bad_request(Params::from_pairs({{"a", "1"}, {"a", "2"}}));
}

TEST(ParamsForm, RejectsInvalidUtf8) {
  expect_bad_request(Params::from_pairs({{"a", "\xff"}}));
  expect_bad_request(Params::from_pairs({{"\xfe", "v"}}));
}

// --- typed getters --------------------------------------------------------------------------------------

TEST(ParamsGetters, GetStringChecksTypeAndLength) {
  Params p = json(R"({"s":"abcd","n":5,"o":{},"z":null})");
  auto ok = p.get_string("s", 4);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(**ok, "abcd");
  EXPECT_FALSE(p.get_string("s", 3).has_value());
  auto n = p.get_string("n", 10);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().status(), 400);
  EXPECT_FALSE(p.get_string("o", 10).has_value());
  auto z = p.get_string("z", 10);
  ASSERT_TRUE(z.has_value());
  EXPECT_FALSE(z->has_value());
  auto missing = p.get_string("missing", 10);
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->has_value());
}

TEST(ParamsGetters, RequireStringRefusesMissingNullAndEmpty) {
  Params p = json(R"({"empty":"","z":null,"ok":"v"})");
  for (std::string_view name : {"missing", "empty", "z"}) {
    auto r = p.require_string(name, 10);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().status(), 400);
    EXPECT_EQ(r.error().ts_error_code, "invalid_request");
    EXPECT_TRUE(r.error().string_error_code.empty());  // numeric error_code on ordinary endpoints
  }
  EXPECT_EQ(*p.require_string("ok", 10), "v");
}

TEST(ParamsGetters, RequirePropertyGivesTheDocumentedInvalidRequestBody) {
  Params p = json(R"({"empty":"","z":null,"ok":"v"})");
  for (std::string_view name : {"missing", "empty", "z"}) {
    auto r = p.require_property(name, 10);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().status(), 400);
    EXPECT_EQ(r.error().string_error_code, "invalid_request");
    EXPECT_EQ(r.error().message, "Invalid request: property should not be null or undefined");
  }
  EXPECT_EQ(*p.require_property("ok", 10), "v");
  EXPECT_FALSE(p.require_property("ok", 0).has_value());  // too long is not "missing"
  EXPECT_TRUE(p.require_property("ok", 0).error().string_error_code.empty());
}

TEST(ParamsGetters, ValidateObjectJsonCapsTheSize) {
  const std::string big = "{\"k\":\"" + std::string(kMaxObjectBytes, 'v') + "\"}";
  auto r = validate_object_json(big, "claims");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status(), 400);
}

TEST(ParamsGetters, GetIntReadsIntegersOnly) {
  Params p = json(R"({"i":42,"neg":-7,"f":1.5,"e":1e2,"b":true,"s":"60","bad":"6x","big":12345678901234,"o":{}})");
  EXPECT_EQ(**p.get_int("i"), 42);
  EXPECT_EQ(**p.get_int("neg"), -7);
  EXPECT_EQ(**p.get_int("s"), 60);  // form-style text is accepted
  for (std::string_view name : {"f", "e", "b", "bad", "big", "o"}) {
    auto r = p.get_int(name);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().status(), 400);
  }
  auto absent = p.get_int("missing");
  ASSERT_TRUE(absent.has_value());
  EXPECT_FALSE(absent->has_value());
  EXPECT_FALSE(form({{"x", "-"}}).get_int("x").has_value());
  EXPECT_FALSE(form({{"x", ""}}).get_int("x").has_value());
}

TEST(ParamsGetters, GetBoolReadsBooleansOnly) {
  Params p = json(R"({"t":true,"f":false,"one":1,"yes":"yes","o":{}})");
  EXPECT_TRUE(**p.get_bool("t"));
  EXPECT_FALSE(**p.get_bool("f"));
  EXPECT_FALSE(p.get_bool("one").has_value());
  EXPECT_FALSE(p.get_bool("yes").has_value());
  EXPECT_FALSE(p.get_bool("o").has_value());
  Params f = form({{"create_new_user", "false"}});
  EXPECT_FALSE(**f.get_bool("create_new_user"));
}

TEST(ParamsGetters, GetObjectAcceptsAnObjectOrJsonTextInAString) {
  Params p = json(R"({"o":{"a":"1"},"arr":[1],"n":1})");
  auto o = p.get_object("o");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(**o, R"({"a":"1"})");
  EXPECT_FALSE(p.get_object("arr").has_value());
  EXPECT_FALSE(p.get_object("n").has_value());

  Params f = form({{"approval_data", R"({"amount":"10"})"}, {"bad", "not json"}, {"list", "[1]"},
                   {"dup", R"({"a":"1","a":"2"})"}});
  auto text = f.get_object("approval_data");
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(**text, R"({"amount":"10"})");
  for (std::string_view name : {"bad", "list", "dup"}) {
    auto r = f.get_object(name);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().status(), 400);
  }
  // JSON text in a JSON string works too (the query-string / GET form).
  Params s = json(R"({"claims":"{\"id_token\":{\"email\":null}}"})");
  auto claims = s.get_object("claims");
  ASSERT_TRUE(claims.has_value());
  EXPECT_EQ(**claims, R"({"id_token":{"email":null}})");
}

TEST(ParamsGetters, ValidateObjectJsonRecompactsAndRejectsNonObjects) {
  auto ok = validate_object_json(R"({ "user_agent" : "x",  "n": 1 })", "client_attributes");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, R"({"user_agent":"x","n":1})");
  EXPECT_FALSE(validate_object_json("[1]", "claims").has_value());
  EXPECT_FALSE(validate_object_json("{", "claims").has_value());
}

// --- approval_data --------------------------------------------------------------------------------------

TEST(ApprovalData, SortsKeysByByteOrderWithoutWhitespace) {
  auto r = canonical_approval_data(R"({ "b": "2", "a": "1", "B": "3", "_": "4" })");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, R"({"B":"3","_":"4","a":"1","b":"2"})");
  auto empty = canonical_approval_data("{}");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(*empty, "{}");
}

TEST(ApprovalData, AcceptsTenEntriesAndRefusesEleven) {
  std::string ten = "{";
  for (int i = 0; i < 10; ++i) ten += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":\"v\"";
  EXPECT_TRUE(canonical_approval_data(ten + "}").has_value());
  auto eleven = canonical_approval_data(ten + ",\"k10\":\"v\"}");
  ASSERT_FALSE(eleven.has_value());
  EXPECT_EQ(eleven.error().status(), 400);
  EXPECT_EQ(eleven.error().ts_error_code, "system_invalid_input");
}

TEST(ApprovalData, AcceptsTheSdkAlphabet) {
  EXPECT_TRUE(canonical_approval_data(R"({"Pay.to_acct-1":"Bob: 10.00 EUR_x-y"})").has_value());
}

TEST(ApprovalData, RefusesCharactersOutsideTheAlphabet) {
  for (std::string_view bad : {R"({"amount":"10$"})", R"({"a/b":"1"})", R"({"a":"x\ny"})",
                               R"({"a":"caf\u00e9"})", R"({"k":"<script>"})", R"({"a,b":"1"})"}) {
    auto r = canonical_approval_data(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().ts_error_code, "system_invalid_input") << bad;
  }
}

TEST(ApprovalData, RefusesNonStringValues) {
  for (std::string_view bad : {R"({"a":1})", R"({"a":true})", R"({"a":null})", R"({"a":{"b":"c"}})",
                               R"({"a":["x"]})"}) {
    auto r = canonical_approval_data(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().status(), 400);
  }
}

TEST(ApprovalData, KeyLengthIsOneToSixtyFour) {
  EXPECT_TRUE(canonical_approval_data("{\"" + std::string(64, 'k') + "\":\"v\"}").has_value());
  EXPECT_FALSE(canonical_approval_data("{\"" + std::string(65, 'k') + "\":\"v\"}").has_value());
  EXPECT_FALSE(canonical_approval_data(R"({"":"v"})").has_value());
}

TEST(ApprovalData, ValueLengthIsZeroToTwoHundredFiftySix) {
  EXPECT_TRUE(canonical_approval_data(R"({"k":""})").has_value());
  EXPECT_TRUE(canonical_approval_data("{\"k\":\"" + std::string(256, 'v') + "\"}").has_value());
  EXPECT_FALSE(canonical_approval_data("{\"k\":\"" + std::string(257, 'v') + "\"}").has_value());
}

TEST(ApprovalData, RefusesNonObjectsAndDuplicates) {
  for (std::string_view bad : {"[]", "\"a\"", "", "{", R"({"a":"1","a":"2"})"}) {
    auto r = canonical_approval_data(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().status(), 400);
  }
}

// JsonWriter (which every response body goes through) copies runs of plain characters in bulk: escapes must
// still land exactly where they were, between and around such runs.
TEST(JsonWriterStrings, EscapesExactlyTheCharactersRfc8259RequiresAndCopiesTheRest) {
  EXPECT_EQ(JsonWriter::quote(""), R"("")");
  EXPECT_EQ(JsonWriter::quote("eyJhbGciOiJFUzI1NiJ9.e30.sig-_~/"), R"("eyJhbGciOiJFUzI1NiJ9.e30.sig-_~/")");
  EXPECT_EQ(JsonWriter::quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(JsonWriter::quote("\"start"), R"("\"start")");
  EXPECT_EQ(JsonWriter::quote("end\\"), R"("end\\")");
  EXPECT_EQ(JsonWriter::quote("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(JsonWriter::quote(std::string("x\0y\x01\x1fz", 6)), R"("x\u0000y\u0001\u001fz")");
  EXPECT_EQ(JsonWriter::quote("caf\xc3\xa9 \x7f"), "\"caf\xc3\xa9 \x7f\"");  // UTF-8 and DEL pass through
  JsonWriter w;
  w.begin_object().key("k\"1").string("v\n").key("n").number(-3).end_object();
  EXPECT_EQ(w.str(), R"({"k\"1":"v\n","n":-3})");
}

}  // namespace
}  // namespace sigil::service
