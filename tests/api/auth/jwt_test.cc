#include "api/auth/jwt.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <simdjson.h>

#include <algorithm>
#include <string>

#include "engine/base/clock.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::auth {
namespace {

using crypto::base64url_decode;
using crypto::base64url_encode;

constexpr std::string_view kIssuer = "https://userid.example";
constexpr std::string_view kTyp = "at+jwt";

JwtKey make_key(std::string kid, bool active = true) {
  auto k = crypto::SigningKey::generate_p256();
  SIGIL_CHECK(k.has_value());
  return JwtKey{std::move(kid), std::move(*k), active};
}

std::string b64(std::string_view s) { return base64url_encode(as_bytes(s)); }

std::string claims(int64_t now, int64_t exp_offset = 3600, std::string_view iss = kIssuer) {
  JsonWriter w;
  w.begin_object()
      .key("sub").string("user-1")
      .key("iss").string(iss)
      .key("iat").number(now)
      .key("exp").number(now + exp_offset)
      .end_object();
  return std::move(w).str();
}

// Signs an arbitrary header and payload with `key` (valid ES256 signature over whatever is given).
std::string craft(const JwtKey& key, std::string_view header_json, std::string_view payload_json) {
  std::string input = b64(header_json) + "." + b64(payload_json);
  auto sig = key.key.sign_es256_jose(as_bytes(input));
  SIGIL_CHECK(sig.has_value());
  return input + "." + base64url_encode(*sig);
}

class JwtTest : public ::testing::Test {
 protected:
  JwtTest() : keys_({make_key("k2"), make_key("k1", /*active=*/false)}) {}

  const JwtKey& active() const { return *keys_.signing_key(); }
  int64_t now() const { return clock_.now_s(); }

  std::string sign(std::string_view payload, std::string_view typ = kTyp) const {
    auto t = sign_jwt(active(), typ, payload);
    SIGIL_CHECK(t.has_value());
    return *t;
  }

  Result<VerifiedJwt> verify(std::string_view token, std::string_view typ = kTyp) const {
    return verify_jwt(keys_, token, kIssuer, typ, now());
  }

  static void expect_rejected(const Result<VerifiedJwt>& r, std::string_view reason) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
    EXPECT_EQ(r.error().message, "Invalid token");
    EXPECT_EQ(r.error().ts_error_code, reason);
  }

  ManualClock clock_;
  KeySet keys_;
};

TEST_F(JwtTest, SignVerifyRoundTrip) {
  const std::string payload = claims(now());
  const std::string token = sign(payload);
  auto v = verify(token);
  ASSERT_TRUE(v) << v.error().ts_error_code;
  EXPECT_EQ(v->payload_json(), payload);
  EXPECT_EQ(v->kid(), "k2");
  EXPECT_EQ(v->typ(), kTyp);
  // Any typ accepted when none is expected.
  EXPECT_TRUE(verify(token, ""));
}

TEST_F(JwtTest, HeaderHasAlgTypKidInOrder) {
  const std::string token = sign(claims(now()));
  auto header = base64url_decode(token.substr(0, token.find('.')));
  ASSERT_TRUE(header);
  EXPECT_EQ(as_chars(*header), R"({"alg":"ES256","typ":"at+jwt","kid":"k2"})");
  EXPECT_EQ(std::count(token.begin(), token.end(), '.'), 2);
  EXPECT_EQ(token.find('='), std::string::npos);
}

TEST_F(JwtTest, SigningKeyIsTheFirstActiveAndInactiveKeysStillVerify) {
  EXPECT_EQ(keys_.signing_key()->kid, "k2");
  EXPECT_EQ(keys_.find("k1")->kid, "k1");
  EXPECT_EQ(keys_.find("nope"), nullptr);
  auto old = sign_jwt(*keys_.find("k1"), kTyp, claims(now()));
  ASSERT_TRUE(old);
  auto v = verify(*old);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->kid(), "k1");
  KeySet none({make_key("x", false)});
  EXPECT_EQ(none.signing_key(), nullptr);
}

TEST_F(JwtTest, RejectsTamperedPayload) {
  const std::string token = sign(claims(now()));
  const size_t d1 = token.find('.');
  const size_t d2 = token.rfind('.');
  const std::string forged = token.substr(0, d1 + 1) + b64(claims(now(), 999999)) + token.substr(d2);
  expect_rejected(verify(forged), "jwt_bad_signature");
}

TEST_F(JwtTest, RejectsTamperedSignature) {
  const std::string token = sign(claims(now()));
  std::string forged = token;
  const size_t pos = token.rfind('.') + 10;
  forged[pos] = forged[pos] == 'A' ? 'B' : 'A';
  expect_rejected(verify(forged), "jwt_bad_signature");
  // Signature of another key under the same kid.
  const JwtKey impostor = make_key("k2");
  expect_rejected(verify(*sign_jwt(impostor, kTyp, claims(now()))), "jwt_bad_signature");
}

TEST_F(JwtTest, RejectsSignatureOfWrongLength) {
  const std::string token = sign(claims(now()));
  const std::string input = token.substr(0, token.rfind('.'));
  auto sig = base64url_decode(token.substr(token.rfind('.') + 1));
  ASSERT_TRUE(sig);
  Bytes longer = *sig;
  longer.push_back(0);
  expect_rejected(verify(input + "." + base64url_encode(longer)), "jwt_bad_signature");
  expect_rejected(verify(input + "." + base64url_encode(ByteView(*sig).first(63))), "jwt_bad_signature");
  expect_rejected(verify(input + "."), "jwt_bad_signature");
  expect_rejected(verify(input + "." + base64url_encode(Bytes(64, 0))), "jwt_bad_signature");
}

TEST_F(JwtTest, RejectsAlgNone) {
  for (const char* alg : {"none", "None", "NONE", "es256", "ES256 ", ""}) {
    const std::string header = std::string(R"({"alg":")") + alg + R"(","typ":"at+jwt","kid":"k2"})";
    const std::string token = b64(header) + "." + b64(claims(now())) + ".";
    expect_rejected(verify(token), "jwt_unsupported_alg");
    // Even with a genuine ES256 signature over it.
    expect_rejected(verify(craft(active(), header, claims(now()))), "jwt_unsupported_alg");
  }
}

TEST_F(JwtTest, RejectsHs256SignedWithThePublicKey) {
  const std::string header = R"({"alg":"HS256","typ":"at+jwt","kid":"k2"})";
  const std::string input = b64(header) + "." + b64(claims(now()));
  // The classic confusion attack: HMAC keyed with the verifier's public key bytes.
  for (const Bytes& secret : {active().key.public_key().spki_der(), active().key.x()}) {
    const auto mac = crypto::hmac_sha256(secret, as_bytes(input));
    expect_rejected(verify(input + "." + base64url_encode(mac)), "jwt_unsupported_alg");
  }
}

TEST_F(JwtTest, RejectsRs256Header) {
  const std::string header = R"({"alg":"RS256","typ":"at+jwt","kid":"k2"})";
  expect_rejected(verify(craft(active(), header, claims(now()))), "jwt_unsupported_alg");
}

TEST_F(JwtTest, RejectsUnknownKid) {
  const JwtKey stranger = make_key("k9");
  expect_rejected(verify(*sign_jwt(stranger, kTyp, claims(now()))), "jwt_unknown_kid");
  expect_rejected(verify(craft(active(), R"({"alg":"ES256","typ":"at+jwt"})", claims(now()))),
                  "jwt_malformed_header");
  expect_rejected(verify(craft(active(), R"({"alg":"ES256","typ":"at+jwt","kid":7})", claims(now()))),
                  "jwt_malformed_header");
}

TEST_F(JwtTest, RejectsWrongOrMissingTyp) {
  const std::string token = sign(claims(now()), "JWT");
  expect_rejected(verify(token, kTyp), "jwt_wrong_typ");
  EXPECT_TRUE(verify(token, "JWT"));
  const std::string no_typ = craft(active(), R"({"alg":"ES256","kid":"k2"})", claims(now()));
  expect_rejected(verify(no_typ, kTyp), "jwt_wrong_typ");
  EXPECT_TRUE(verify(no_typ, ""));
}

TEST_F(JwtTest, RejectsExpiredToken) {
  const std::string token = sign(claims(now(), 60));
  EXPECT_TRUE(verify(token));
  clock_.advance_ms(59'000);
  EXPECT_TRUE(verify(token));
  clock_.advance_ms(1'000);  // now == exp: no longer in the future
  expect_rejected(verify(token), "jwt_expired");
  clock_.advance_ms(3'600'000);
  expect_rejected(verify(token), "jwt_expired");
}

TEST_F(JwtTest, RejectsMissingOrNonNumericExp) {
  expect_rejected(verify(sign(R"({"iss":"https://userid.example"})")), "jwt_missing_exp");
  const std::string str_exp = R"({"iss":"https://userid.example","exp":")" + std::to_string(now() + 100) + "\"}";
  expect_rejected(verify(sign(str_exp)), "jwt_malformed_payload");
}

TEST_F(JwtTest, RejectsNotYetValidBeyondSkew) {
  const std::string ok = R"({"iss":"https://userid.example","exp":)" + std::to_string(now() + 600) +
                         R"(,"nbf":)" + std::to_string(now() + 60) + R"(,"iat":)" + std::to_string(now() + 60) + "}";
  EXPECT_TRUE(verify(sign(ok)));
  const std::string nbf = R"({"iss":"https://userid.example","exp":)" + std::to_string(now() + 600) +
                          R"(,"nbf":)" + std::to_string(now() + 61) + "}";
  expect_rejected(verify(sign(nbf)), "jwt_not_yet_valid");
  const std::string iat = R"({"iss":"https://userid.example","exp":)" + std::to_string(now() + 600) +
                          R"(,"iat":)" + std::to_string(now() + 61) + "}";
  expect_rejected(verify(sign(iat)), "jwt_issued_in_future");
}

TEST_F(JwtTest, RejectsWrongOrMissingIssuer) {
  expect_rejected(verify(sign(claims(now(), 3600, "https://evil.example"))), "jwt_wrong_issuer");
  expect_rejected(verify(sign(R"({"exp":)" + std::to_string(now() + 600) + "}")), "jwt_wrong_issuer");
}

TEST_F(JwtTest, RejectsDuplicateClaimsAndHeaderMembers) {
  const std::string dup_exp = R"({"iss":"https://userid.example","exp":1,"exp":)" + std::to_string(now() + 600) + "}";
  expect_rejected(verify(sign(dup_exp)), "jwt_duplicate_claim");
  const std::string dup_alg = R"({"alg":"ES256","alg":"none","typ":"at+jwt","kid":"k2"})";
  expect_rejected(verify(craft(active(), dup_alg, claims(now()))), "jwt_malformed_header");
}

TEST_F(JwtTest, RejectsCriticalHeaderExtensions) {
  const std::string header = R"({"alg":"ES256","typ":"at+jwt","kid":"k2","crit":["exp"]})";
  expect_rejected(verify(craft(active(), header, claims(now()))), "jwt_malformed_header");
}

TEST_F(JwtTest, RejectsNonObjectPayloadAndTrailingJson) {
  const std::string header = R"({"alg":"ES256","typ":"at+jwt","kid":"k2"})";
  expect_rejected(verify(craft(active(), header, "[1,2]")), "jwt_malformed_payload");
  expect_rejected(verify(craft(active(), header, "\"str\"")), "jwt_malformed_payload");
  expect_rejected(verify(craft(active(), header, claims(now()) + "{}")), "jwt_malformed_payload");
  expect_rejected(verify(craft(active(), header, "{")), "jwt_malformed_payload");
  expect_rejected(verify(craft(active(), std::string(header) + "x", claims(now()))), "jwt_malformed_header");
  expect_rejected(verify(craft(active(), "[]", claims(now()))), "jwt_malformed_header");
  EXPECT_FALSE(sign_jwt(active(), kTyp, "[1]"));
  EXPECT_FALSE(sign_jwt(active(), kTyp, ""));
}

TEST_F(JwtTest, RejectsGarbageSegments) {
  const std::string token = sign(claims(now()));
  const size_t d1 = token.find('.');
  const std::string rest = token.substr(d1);
  for (const std::string& bad : {std::string(""), std::string("."), std::string(".."), std::string("a.b.c"),
                                std::string("!!!") + rest, std::string("eyJ=") + rest, "e30" + rest}) {
    auto r = verify(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
  }
  // Padding and the standard alphabet are not base64url.
  std::string padded = token;
  padded.insert(d1, "=");
  expect_rejected(verify(padded), "jwt_malformed_header");
  std::string bad_sig = token + "=";
  expect_rejected(verify(bad_sig), "jwt_malformed_signature");
  expect_rejected(verify(std::string(20000, 'a') + ".b.c"), "jwt_malformed");
}

TEST_F(JwtTest, RejectsWrongNumberOfParts) {
  const std::string token = sign(claims(now()));
  expect_rejected(verify(token + ".x"), "jwt_malformed");
  expect_rejected(verify(token + "."), "jwt_malformed");
  expect_rejected(verify(token.substr(0, token.rfind('.'))), "jwt_malformed");
  expect_rejected(verify("abc"), "jwt_malformed");
}

TEST_F(JwtTest, JwksListsEveryKeyWithMatchingCoordinates) {
  const std::string jwks = keys_.jwks_json();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(jwks).get(root), simdjson::SUCCESS) << jwks;
  simdjson::dom::array arr;
  ASSERT_EQ(root["keys"].get(arr), simdjson::SUCCESS);
  ASSERT_EQ(arr.size(), 2u);
  for (simdjson::dom::element jwk : arr) {
    std::string_view kid, kty, crv, x, y, use, alg;
    ASSERT_EQ(jwk["kid"].get(kid), simdjson::SUCCESS);
    ASSERT_EQ(jwk["kty"].get(kty), simdjson::SUCCESS);
    ASSERT_EQ(jwk["crv"].get(crv), simdjson::SUCCESS);
    ASSERT_EQ(jwk["x"].get(x), simdjson::SUCCESS);
    ASSERT_EQ(jwk["y"].get(y), simdjson::SUCCESS);
    ASSERT_EQ(jwk["use"].get(use), simdjson::SUCCESS);
    ASSERT_EQ(jwk["alg"].get(alg), simdjson::SUCCESS);
    EXPECT_EQ(kty, "EC");
    EXPECT_EQ(crv, "P-256");
    EXPECT_EQ(use, "sig");
    EXPECT_EQ(alg, "ES256");
    const JwtKey* key = keys_.find(kid);
    ASSERT_NE(key, nullptr) << kid;
    auto xb = base64url_decode(x);
    auto yb = base64url_decode(y);
    ASSERT_TRUE(xb && yb);
    EXPECT_EQ(*xb, key->key.x());
    EXPECT_EQ(*yb, key->key.y());
    // x || y is the point inside the SPKI the verifier uses.
    const Bytes& spki = key->key.public_key().spki_der();
    Bytes xy = *xb;
    xy.insert(xy.end(), yb->begin(), yb->end());
    EXPECT_EQ(Bytes(spki.end() - 64, spki.end()), xy);
  }
}

}  // namespace
}  // namespace sigil::auth
