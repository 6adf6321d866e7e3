// service::verify_offline_line (`sigil verify`) against the WebAuthn Level 3 specification's own test
// vectors (SIGIL_VECTORS_DIR/webauthn-spec): every registration verifies and yields the credential, then the
// authentication verifies with the key the registration produced; crossOrigin/topOrigin vectors pass only
// when the top origin is allowed; mutations fail.
#include "api/service/webauthn_offline.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <optional>
#include <string>
#include <vector>

#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"

namespace sigil::service {
namespace {

constexpr int64_t kNow = 1'750'000'000;  // 2025-06; inside every vector certificate's validity
const std::string kVectorsPath = std::string(SIGIL_VECTORS_DIR) + "/webauthn-spec/webauthn-l3-test-vectors.json";

const std::vector<std::string> kNames = {
    "none-es256",    "packed-self-es256", "none-es256-crossOrigin", "none-es256-topOrigin",
    "none-es256-long-credential-id",      "packed-es256",           "packed-es384",
    "packed-es512",  "packed-rs256",      "packed-eddsa",           "packed-ed448",
    "tpm-es256",     "android-key-es256", "apple-es256",            "fido-u2f-es256"};

Bytes from_hex(std::string_view hex) {
  SIGIL_CHECK(hex.size() % 2 == 0);
  Bytes out;
  out.reserve(hex.size() / 2);
  auto nibble = [](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return static_cast<uint8_t>(c - 'A' + 10);
    SIGIL_CHECK(false);
    return 0;
  };
  for (size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  return out;
}

std::string b64url_hex(std::string_view hex) { return crypto::base64url_encode(from_hex(hex)); }

// The fields of one vector that the verifier needs, hex-decoded.
struct Vector {
  std::string name;
  std::string reg_challenge, reg_client_data, attestation_object, credential_id, aaguid_hex;
  std::string auth_challenge, auth_client_data, authenticator_data, signature;
};

std::optional<Vector> load_vector(const std::string& name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.load(kVectorsPath).get(root)) return std::nullopt;
  simdjson::dom::array vectors;
  if (root["vectors"].get_array().get(vectors)) return std::nullopt;
  for (auto v : vectors) {
    std::string_view n;
    if (v["name"].get_string().get(n) || n != name) continue;
    auto s = [&](std::string_view a, std::string_view b) {
      std::string_view out;
      if (v[a][b].get_string().get(out)) return std::string();
      return std::string(out);
    };
    Vector out;
    out.name = name;
    out.reg_challenge = s("registration", "challenge");
    out.reg_client_data = s("registration", "clientDataJSON");
    out.attestation_object = s("registration", "attestationObject");
    out.credential_id = s("registration", "credential_id");
    out.aaguid_hex = s("registration", "aaguid");
    out.auth_challenge = s("authentication", "challenge");
    out.auth_client_data = s("authentication", "clientDataJSON");
    out.authenticator_data = s("authentication", "authenticatorData");
    out.signature = s("authentication", "signature");
    return out;
  }
  return std::nullopt;
}

void common_members(JsonWriter& w, std::string_view challenge_hex, bool allow_top_origin) {
  w.key("rp_id").string("example.org");
  w.key("origins").begin_array().string("https://example.org").end_array();
  if (allow_top_origin) w.key("top_origins").begin_array().string("https://example.com").end_array();
  w.key("challenge").string(b64url_hex(challenge_hex));
}

std::string create_line(const Vector& v, bool allow_top_origin = false) {
  JsonWriter w;
  w.begin_object();
  w.key("ceremony").string("create");
  common_members(w, v.reg_challenge, allow_top_origin);
  w.key("credential").begin_object();
  w.key("id").string(b64url_hex(v.credential_id));
  w.key("rawId").string(b64url_hex(v.credential_id));
  w.key("type").string("public-key");
  w.key("response").begin_object();
  w.key("clientDataJSON").string(b64url_hex(v.reg_client_data));
  w.key("attestationObject").string(b64url_hex(v.attestation_object));
  w.end_object();
  w.end_object();
  w.end_object();
  return std::move(w).str();
}

std::string get_line(const Vector& v, const std::string& public_key, int64_t alg, int64_t sign_count,
                     bool allow_top_origin = false, std::string signature_hex = {}) {
  if (signature_hex.empty()) signature_hex = v.signature;
  JsonWriter w;
  w.begin_object();
  w.key("ceremony").string("get");
  common_members(w, v.auth_challenge, allow_top_origin);
  w.key("public_key").string(public_key);
  w.key("alg").number(alg);
  w.key("sign_count").number(sign_count);
  w.key("credential").begin_object();
  w.key("id").string(b64url_hex(v.credential_id));
  w.key("rawId").string(b64url_hex(v.credential_id));
  w.key("type").string("public-key");
  w.key("response").begin_object();
  w.key("clientDataJSON").string(b64url_hex(v.auth_client_data));
  w.key("authenticatorData").string(b64url_hex(v.authenticator_data));
  w.key("signature").string(b64url_hex(signature_hex));
  w.end_object();
  w.end_object();
  w.end_object();
  return std::move(w).str();
}

// The parsed output line of the verifier.
struct Output {
  bool ok = false;
  std::string error, credential_id, public_key, aaguid, fmt;
  int64_t alg = 0, sign_count = -1;
};

Output run(const std::string& line) {
  const std::string text = verify_offline_line(line, kNow);
  Output out;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(text).get(root), simdjson::SUCCESS) << text;
  if (root["ok"].get_bool().get(out.ok)) ADD_FAILURE() << "no ok member: " << text;
  std::string_view s;
  if (!root["error"].get_string().get(s)) out.error = std::string(s);
  if (!root["credential_id"].get_string().get(s)) out.credential_id = std::string(s);
  if (!root["public_key"].get_string().get(s)) out.public_key = std::string(s);
  if (!root["aaguid"].get_string().get(s)) out.aaguid = std::string(s);
  if (!root["fmt"].get_string().get(s)) out.fmt = std::string(s);
  if (root["alg"].get_int64().get(out.alg)) out.alg = 0;
  if (root["sign_count"].get_int64().get(out.sign_count)) out.sign_count = -1;
  return out;
}

std::string uuid_of_hex(const std::string& hex) {
  if (hex.size() != 32) return hex;
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

std::string expected_fmt(const std::string& name) {
  for (const char* f : {"none", "packed", "tpm", "android-key", "apple", "fido-u2f"}) {
    if (name.starts_with(f)) return f;
  }
  return "?";
}

bool cross_origin(const std::string& name) {
  return name.find("crossOrigin") != std::string::npos || name.find("topOrigin") != std::string::npos;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

class WebAuthnOfflineVector : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto v = load_vector(GetParam());
    ASSERT_TRUE(v.has_value()) << "vector " << GetParam() << " not in " << kVectorsPath;
    v_ = *v;
  }
  Vector v_;
};

TEST_P(WebAuthnOfflineVector, RegistrationThenAuthenticationVerify) {
  const bool cross = cross_origin(v_.name);
  const Output created = run(create_line(v_, cross));
  ASSERT_TRUE(created.ok) << v_.name << ": " << created.error;
  EXPECT_EQ(created.credential_id, b64url_hex(v_.credential_id));
  EXPECT_FALSE(created.public_key.empty());
  EXPECT_NE(created.alg, 0);
  EXPECT_EQ(created.fmt, expected_fmt(v_.name));
  if (!v_.aaguid_hex.empty()) {
    EXPECT_EQ(created.aaguid, uuid_of_hex(v_.aaguid_hex));
  }
  ASSERT_GE(created.sign_count, 0);
  const Output got = run(get_line(v_, created.public_key, created.alg, created.sign_count, cross));
  EXPECT_TRUE(got.ok) << v_.name << ": " << got.error;
}

TEST_P(WebAuthnOfflineVector, CrossOriginPassesOnlyWhenTheTopOriginIsAllowed) {
  const bool cross = cross_origin(v_.name);
  const Output strict = run(create_line(v_, false));
  EXPECT_EQ(strict.ok, !cross) << v_.name << ": " << strict.error;
  const Output lenient = run(create_line(v_, true));
  ASSERT_TRUE(lenient.ok) << v_.name << ": " << lenient.error;
  const Output got_strict = run(get_line(v_, lenient.public_key, lenient.alg, lenient.sign_count, false));
  EXPECT_EQ(got_strict.ok, !cross) << v_.name << ": " << got_strict.error;
}

TEST_P(WebAuthnOfflineVector, FlippedSignatureByteFails) {
  const bool cross = cross_origin(v_.name);
  const Output created = run(create_line(v_, cross));
  ASSERT_TRUE(created.ok) << created.error;
  // Flip a byte inside the signature value, away from any DER header.
  Bytes sig = from_hex(v_.signature);
  sig[sig.size() - 3] ^= 0x01;
  std::string hex;
  for (uint8_t b : sig) {
    static const char* digits = "0123456789abcdef";
    hex.push_back(digits[b >> 4]);
    hex.push_back(digits[b & 0xf]);
  }
  const Output got = run(get_line(v_, created.public_key, created.alg, created.sign_count, cross, hex));
  EXPECT_FALSE(got.ok) << v_.name;
}

TEST_P(WebAuthnOfflineVector, WrongChallengeOrOriginFails) {
  const bool cross = cross_origin(v_.name);
  // The authentication challenge is not the registration's.
  Vector swapped = v_;
  swapped.reg_challenge = v_.auth_challenge;
  EXPECT_FALSE(run(create_line(swapped, cross)).ok);
  const Output created = run(create_line(v_, cross));
  ASSERT_TRUE(created.ok) << created.error;
  Vector other = v_;
  other.auth_challenge = v_.reg_challenge;
  EXPECT_FALSE(run(get_line(other, created.public_key, created.alg, created.sign_count, cross)).ok);
  // Another relying party's origin list.
  std::string line = get_line(v_, created.public_key, created.alg, created.sign_count, cross);
  const std::string from = "\"https://example.org\"]";
  line.replace(line.find(from), from.size(), "\"https://example.net\"]");
  EXPECT_FALSE(run(line).ok);
}

INSTANTIATE_TEST_SUITE_P(WebAuthnSpec, WebAuthnOfflineVector, ::testing::ValuesIn(kNames), test_name);

TEST(WebAuthnOffline, VectorFileHoldsExactlyTheKnownVectors) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.load(kVectorsPath).get(root), simdjson::SUCCESS) << kVectorsPath;
  simdjson::dom::array vectors;
  ASSERT_EQ(root["vectors"].get_array().get(vectors), simdjson::SUCCESS);
  std::vector<std::string> names;
  for (auto v : vectors) {
    std::string_view n;
    ASSERT_EQ(v["name"].get_string().get(n), simdjson::SUCCESS);
    names.emplace_back(n);
  }
  EXPECT_EQ(names, kNames);
}

TEST(WebAuthnOffline, SignCountBelowTheStoredOneFails) {
  auto v = load_vector("packed-es256");
  ASSERT_TRUE(v.has_value());
  const Output created = run(create_line(*v));
  ASSERT_TRUE(created.ok) << created.error;
  // The assertion's counter is 0; a stored non-zero counter means a regression.
  EXPECT_FALSE(run(get_line(*v, created.public_key, created.alg, 5)).ok);
}

TEST(WebAuthnOffline, AlgMismatchAndGarbageFail) {
  auto v = load_vector("none-es256");
  ASSERT_TRUE(v.has_value());
  const Output created = run(create_line(*v));
  ASSERT_TRUE(created.ok) << created.error;
  EXPECT_EQ(created.alg, -7);
  EXPECT_FALSE(run(get_line(*v, created.public_key, -257, created.sign_count)).ok);
  EXPECT_FALSE(run(get_line(*v, "AAAA", -7, 0)).ok);
  for (const char* bad : {"", "not json", "[]", R"({"ceremony":"delete"})", R"({"ceremony":"create"})",
                          R"({"ceremony":"create","rp_id":"example.org","challenge":"AAAA","origins":["x"]})"}) {
    const Output out = run(bad);
    EXPECT_FALSE(out.ok) << bad;
    EXPECT_FALSE(out.error.empty()) << bad;
  }
}

TEST(WebAuthnOffline, UnknownUserVerificationPolicyIsRefused) {
  auto v = load_vector("none-es256");
  ASSERT_TRUE(v.has_value());
  std::string line = create_line(*v);
  line.insert(line.size() - 1, R"(,"user_verification":"sometimes")");
  EXPECT_FALSE(run(line).ok);
}

}  // namespace
}  // namespace sigil::service
