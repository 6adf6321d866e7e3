// Compact JWS with ES256 only. Order of checks in verify_jwt: shape → header (alg before any key is
// touched, then kid, typ) → signature → claims. Claims are parsed only after the signature verified.
#include "api/auth/jwt.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <simdjson.h>

#include <optional>

#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"

namespace sigil::auth {
namespace {

constexpr std::string_view kAlg = "ES256";
// Bearer tokens are a few hundred bytes; the cap bounds decoding and parsing work on hostile input.
constexpr size_t kMaxTokenSize = 16 * 1024;
constexpr size_t kJoseSigSize = 64;
constexpr int64_t kClockSkewS = 60;

std::unexpected<Error> invalid_token(const char* reason) {
  return make_error(ErrorCode::kUnauthenticated, "Invalid token", reason);
}

struct BnFree {
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
};

// JOSE r||s → DER, for PublicKey::verify (whose strict-DER and range checks then apply).
std::optional<Bytes> jose_to_der(ByteView sig) {
  if (sig.size() != kJoseSigSize) return std::nullopt;
  std::unique_ptr<BIGNUM, BnFree> r(BN_bin2bn(sig.data(), 32, nullptr));
  std::unique_ptr<BIGNUM, BnFree> s(BN_bin2bn(sig.data() + 32, 32, nullptr));
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> ecdsa(ECDSA_SIG_new());
  if (!r || !s || !ecdsa || ECDSA_SIG_set0(ecdsa.get(), r.get(), s.get()) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  r.release();  // owned by ecdsa now
  s.release();
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(ecdsa.get(), &der);
  if (len <= 0) {
    ERR_clear_error();
    return std::nullopt;
  }
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

simdjson::ondemand::parser& thread_parser() {
  thread_local simdjson::ondemand::parser parser;  // one parser per thread (CONVENTIONS.md)
  return parser;
}

// True when the document has nothing left after its root value ("{}x" and "{}{}" are rejected).
bool at_document_end(simdjson::ondemand::document& doc) {
  const char* loc = nullptr;
  return doc.current_location().get(loc) == simdjson::OUT_OF_BOUNDS;
}

struct Header {
  std::string alg, typ, kid;
  bool has_typ = false;
};

std::optional<Header> parse_header(std::string_view json) {
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  if (thread_parser().iterate(padded).get(doc)) return std::nullopt;
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return std::nullopt;
  Header h;
  bool has_alg = false;
  bool has_kid = false;
  for (auto field_result : obj) {
    simdjson::ondemand::field field;
    if (std::move(field_result).get(field)) return std::nullopt;
    std::string_view key;
    if (field.unescaped_key().get(key)) return std::nullopt;
    std::string_view value;
    if (key == "alg" || key == "typ" || key == "kid") {
      if (field.value().get_string().get(value)) return std::nullopt;
      bool& seen = key == "alg" ? has_alg : key == "kid" ? has_kid : h.has_typ;
      if (seen) return std::nullopt;  // duplicate member: parsers disagree on which wins
      seen = true;
      (key == "alg" ? h.alg : key == "kid" ? h.kid : h.typ) = std::string(value);
    } else if (key == "crit") {
      return std::nullopt;  // RFC 7515 §4.1.11: we understand no extensions
    }
    // Other members are skipped by the iterator.
  }
  if (!at_document_end(doc) || !has_alg || !has_kid) return std::nullopt;
  return h;
}

// Reads a NumericDate. Fractions are allowed by RFC 7519; comparisons are done in seconds.
bool read_numeric_date(simdjson::ondemand::value value, double& out) {
  return !value.get_double().get(out);
}

// On-demand parsing never looks at the values it skips, so the payload is validated whole first: callers
// get payload_json() and must be able to trust it is one well-formed JSON object (found by fuzz_jwt).
bool is_well_formed_json(std::string_view json) {
  thread_local simdjson::dom::parser dom;
  simdjson::dom::element root;
  return !dom.parse(json.data(), json.size()).get(root) && root.is_object();
}

Result<void> check_claims(std::string_view json, std::string_view expected_issuer, int64_t now_s) {
  if (!is_well_formed_json(json)) return invalid_token("jwt_malformed_payload");
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  if (thread_parser().iterate(padded).get(doc)) return invalid_token("jwt_malformed_payload");
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return invalid_token("jwt_malformed_payload");
  bool has_exp = false, has_nbf = false, has_iat = false, has_iss = false;
  double exp = 0, nbf = 0, iat = 0;
  std::string iss;
  const auto now = static_cast<double>(now_s);
  for (auto field_result : obj) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) return invalid_token("jwt_malformed_payload");
    bool* seen = nullptr;
    double* date = nullptr;
    if (key == "exp") {
      seen = &has_exp, date = &exp;
    } else if (key == "nbf") {
      seen = &has_nbf, date = &nbf;
    } else if (key == "iat") {
      seen = &has_iat, date = &iat;
    } else if (key == "iss") {
      seen = &has_iss;
    }
    if (seen == nullptr) continue;  // other claims are the caller's; the iterator skips them
    if (*seen) return invalid_token("jwt_duplicate_claim");
    *seen = true;
    if (date != nullptr) {
      if (!read_numeric_date(field.value(), *date)) return invalid_token("jwt_malformed_payload");
    } else {
      std::string_view value;
      if (field.value().get_string().get(value)) return invalid_token("jwt_malformed_payload");
      iss = std::string(value);
    }
  }
  if (!at_document_end(doc)) return invalid_token("jwt_malformed_payload");
  if (!has_exp) return invalid_token("jwt_missing_exp");
  if (!(exp > now)) return invalid_token("jwt_expired");
  const auto latest = static_cast<double>(now_s + kClockSkewS);
  if (has_nbf && nbf > latest) return invalid_token("jwt_not_yet_valid");
  if (has_iat && iat > latest) return invalid_token("jwt_issued_in_future");
  if (!has_iss || iss != expected_issuer) return invalid_token("jwt_wrong_issuer");
  return {};
}

}  // namespace

KeySet::KeySet(std::vector<JwtKey> keys) : keys_(std::move(keys)) {}

const JwtKey* KeySet::signing_key() const noexcept {
  for (const auto& k : keys_) {
    if (k.active) return &k;
  }
  return nullptr;
}

const JwtKey* KeySet::find(std::string_view kid) const noexcept {
  for (const auto& k : keys_) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

std::string KeySet::jwks_json() const {
  JsonWriter w;
  w.begin_object().key("keys").begin_array();
  for (const auto& k : keys_) {
    w.begin_object();
    w.key("kty").string("EC");
    w.key("crv").string("P-256");
    w.key("x").string(crypto::base64url_encode(k.key.x()));
    w.key("y").string(crypto::base64url_encode(k.key.y()));
    w.key("kid").string(k.kid);
    w.key("use").string("sig");
    w.key("alg").string(kAlg);
    w.end_object();
  }
  w.end_array().end_object();
  return std::move(w).str();
}

Result<std::string> sign_jwt(const JwtKey& key, std::string_view typ, std::string_view payload_json) {
  // Cheap shape check; the payload is produced by our own JsonWriter code.
  const auto first = payload_json.find_first_not_of(" \t\r\n");
  const auto last = payload_json.find_last_not_of(" \t\r\n");
  if (first == std::string_view::npos || payload_json[first] != '{' || payload_json[last] != '}') {
    return invalid_argument("JWT payload must be a JSON object");
  }
  JsonWriter header;
  header.begin_object().key("alg").string(kAlg).key("typ").string(typ).key("kid").string(key.kid).end_object();
  std::string token = crypto::base64url_encode(as_bytes(header.str()));
  token += '.';
  token += crypto::base64url_encode(as_bytes(payload_json));
  SIGIL_ASSIGN_OR_RETURN(Bytes sig, key.key.sign_es256_jose(as_bytes(token)));
  token += '.';
  token += crypto::base64url_encode(sig);
  return token;
}

Result<VerifiedJwt> verify_jwt(const KeySet& keys, std::string_view token, std::string_view expected_issuer,
                               std::string_view expected_typ, int64_t now_s) {
  if (token.empty() || token.size() > kMaxTokenSize) return invalid_token("jwt_malformed");
  const size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return invalid_token("jwt_malformed");
  const size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return invalid_token("jwt_malformed");  // exactly three segments (JWE has five)
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig_b64 = token.substr(dot2 + 1);

  auto header_bytes = crypto::base64url_decode(header_b64);
  if (!header_bytes || header_bytes->empty()) return invalid_token("jwt_malformed_header");
  const auto header = parse_header(as_chars(*header_bytes));
  if (!header) return invalid_token("jwt_malformed_header");
  // The algorithm is fixed to ES256 before any key is looked up: no "none", no HS256-with-public-key.
  if (header->alg != kAlg) return invalid_token("jwt_unsupported_alg");
  const JwtKey* key = keys.find(header->kid);
  if (key == nullptr) return invalid_token("jwt_unknown_kid");
  if (!expected_typ.empty() && (!header->has_typ || header->typ != expected_typ)) {
    return invalid_token("jwt_wrong_typ");
  }

  auto sig = crypto::base64url_decode(sig_b64);
  if (!sig) return invalid_token("jwt_malformed_signature");
  const auto der = jose_to_der(*sig);
  if (!der) return invalid_token("jwt_bad_signature");
  const std::string_view signing_input = token.substr(0, dot2);
  if (!key->key.public_key().verify(as_bytes(signing_input), *der)) return invalid_token("jwt_bad_signature");

  auto payload = crypto::base64url_decode(payload_b64);
  if (!payload) return invalid_token("jwt_malformed_payload");
  std::string payload_json(as_chars(*payload));
  SIGIL_TRY(check_claims(payload_json, expected_issuer, now_s));

  VerifiedJwt out;
  out.payload_ = std::move(payload_json);
  out.kid_ = header->kid;
  out.typ_ = header->typ;
  return out;
}

}  // namespace sigil::auth
