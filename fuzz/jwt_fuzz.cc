// Fuzz target for bearer-token verification (api/auth/jwt.h, verify_jwt), with a KeySet of one P-256 key
// generated at startup (so no stored token can ever carry a valid signature).
//
// Properties, on every input:
//  A. the input as a token never verifies; the failure is always kUnauthenticated "Invalid token" (401)
//     with a jwt_* reason;
//  B. a token we signed, with its payload segment replaced by base64url(input), fails with
//     jwt_bad_signature (the signature is checked before any claim is read) unless the payload is unchanged;
//  C. the input signed as a payload by sign_jwt: verify never fails on the header or the signature, only on
//     a claim; when it verifies, payload_json() is the input byte for byte, kid and typ are ours, and the
//     payload is one well-formed JSON object with a future exp and our issuer.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "api/auth/jwt.h"
#include "engine/crypto/base64.h"
#include "fuzz/fuzz_check.h"

namespace {

constexpr std::string_view kIssuer = "https://sigil.test/oidc";
constexpr std::string_view kTyp = "at+jwt";
constexpr int64_t kNow = 1'800'000'000;
constexpr std::string_view kPayload =
    R"({"iss":"https://sigil.test/oidc","sub":"user-1","aud":"app","exp":1800003600,"iat":1800000000})";

struct Fixture {
  std::unique_ptr<sigil::auth::KeySet> keys;
  std::string header_b64;  // of a token we signed
  std::string payload_b64;
  std::string sig_b64;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    auto key = sigil::crypto::SigningKey::generate_p256();
    FUZZ_CHECK(key.has_value(), "SigningKey::generate_p256");
    std::vector<sigil::auth::JwtKey> keys;
    keys.push_back(sigil::auth::JwtKey{"k1", std::move(*key), true});
    x.keys = std::make_unique<sigil::auth::KeySet>(std::move(keys));
    auto token = sigil::auth::sign_jwt(*x.keys->signing_key(), kTyp, kPayload);
    FUZZ_CHECK(token.has_value(), "sign_jwt");
    auto ok = sigil::auth::verify_jwt(*x.keys, *token, kIssuer, kTyp, kNow);
    FUZZ_CHECK(ok.has_value() && ok->payload_json() == kPayload, "our own token does not verify");
    const size_t d1 = token->find('.');
    const size_t d2 = token->find('.', d1 + 1);
    x.header_b64 = token->substr(0, d1);
    x.payload_b64 = token->substr(d1 + 1, d2 - d1 - 1);
    x.sig_b64 = token->substr(d2 + 1);
    return x;
  }();
  return f;
}

void check_failure_shape(const sigil::Error& e) {
  FUZZ_CHECK(e.code == sigil::ErrorCode::kUnauthenticated, "token failure is not kUnauthenticated");
  FUZZ_CHECK(e.status() == 401 && e.message == "Invalid token", "token failure is not 401 'Invalid token'");
  FUZZ_CHECK(e.ts_error_code.starts_with("jwt_"), "token failure without a jwt_* reason");
}

// One well-formed JSON object, by simdjson's validating DOM parser.
bool is_json_object(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size()).get(root)) return false;
  return root.is_object();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = fixture();
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // A. The input as a bearer token.
  {
    auto r = sigil::auth::verify_jwt(*f.keys, input, kIssuer, "", kNow);
    FUZZ_CHECK(!r.has_value(), "an arbitrary input verified as a token");
    check_failure_shape(r.error());
  }

  // B. Our token with the input as its payload.
  {
    const std::string payload_b64 = sigil::crypto::base64url_encode(sigil::as_bytes(input));
    const std::string token = f.header_b64 + "." + payload_b64 + "." + f.sig_b64;
    auto r = sigil::auth::verify_jwt(*f.keys, token, kIssuer, kTyp, kNow);
    if (payload_b64 == f.payload_b64) {
      FUZZ_CHECK(r.has_value(), "our token with its own payload failed");
    } else {
      FUZZ_CHECK(!r.has_value(), "a token with a replaced payload verified");
      check_failure_shape(r.error());
      if (token.size() <= 16 * 1024) {
        FUZZ_CHECK(r.error().ts_error_code == "jwt_bad_signature",
                   "a replaced payload failed for another reason than the signature");
      }
    }
  }

  // C. The input signed as the payload.
  if (auto token = sigil::auth::sign_jwt(*f.keys->signing_key(), kTyp, input)) {
    auto r = sigil::auth::verify_jwt(*f.keys, *token, kIssuer, kTyp, kNow);
    if (r) {
      FUZZ_CHECK(r->payload_json() == input, "verified payload differs from the signed one");
      FUZZ_CHECK(r->kid() == "k1" && r->typ() == kTyp, "verified kid/typ differ from the signed ones");
      FUZZ_CHECK(is_json_object(input), "a token whose payload is not a well-formed JSON object verified");
    } else {
      check_failure_shape(r.error());
      static const std::set<std::string, std::less<>> kClaimReasons = {
          "jwt_malformed", "jwt_malformed_payload", "jwt_duplicate_claim", "jwt_missing_exp",
          "jwt_expired",   "jwt_not_yet_valid",     "jwt_issued_in_future", "jwt_wrong_issuer"};
      FUZZ_CHECK(kClaimReasons.count(r.error().ts_error_code) == 1,
                 "a token we signed failed on its header or signature");
      if (r.error().ts_error_code == "jwt_malformed") {
        FUZZ_CHECK(token->size() > 16 * 1024, "a token we signed was malformed below the size cap");
      }
    }
  }
  return 0;
}
