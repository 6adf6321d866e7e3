#include "tests/support/soft_authenticator.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <simdjson.h>

#include <stdexcept>

#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::testing {
namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(what);  // tests only
}

Bytes decode_any(std::string_view s) {
  auto b = crypto::base64_any_decode(s);
  require(b.has_value(), "options hold invalid base64");
  return *b;
}

// CBOR head for major type `major` with argument `n` (shortest form).
void cbor_head(Bytes& out, uint8_t major, uint64_t n) {
  const uint8_t m = static_cast<uint8_t>(major << 5);
  if (n < 24) {
    out.push_back(static_cast<uint8_t>(m | n));
  } else if (n < 0x100) {
    out.push_back(m | 24);
    out.push_back(static_cast<uint8_t>(n));
  } else if (n < 0x10000) {
    out.push_back(m | 25);
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(n));
  } else {
    out.push_back(m | 26);
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(n >> shift));
  }
}
void cbor_bytes(Bytes& out, ByteView b) {
  cbor_head(out, 2, b.size());
  out.insert(out.end(), b.begin(), b.end());
}
void cbor_text(Bytes& out, std::string_view t) {
  cbor_head(out, 3, t.size());
  out.insert(out.end(), t.begin(), t.end());
}

Bytes cose_es256(EVP_PKEY* key) {
  uint8_t point[65];
  size_t len = 0;
  require(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len) == 1 &&
              len == 65,
          "public point");
  Bytes out;
  cbor_head(out, 5, 5);
  out.push_back(0x01);  // kty
  out.push_back(0x02);  // EC2
  out.push_back(0x03);  // alg
  out.push_back(0x26);  // -7
  out.push_back(0x20);  // crv
  out.push_back(0x01);  // P-256
  out.push_back(0x21);  // x
  cbor_bytes(out, ByteView(point + 1, 32));
  out.push_back(0x22);  // y
  cbor_bytes(out, ByteView(point + 33, 32));
  return out;
}

Bytes sign(EVP_PKEY* key, ByteView message) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  require(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1, "sign init");
  require(EVP_DigestSign(ctx, nullptr, &len, message.data(), message.size()) == 1, "sign size");
  Bytes sig(len);
  require(EVP_DigestSign(ctx, sig.data(), &len, message.data(), message.size()) == 1, "sign");
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  return sig;
}

std::string client_data(std::string_view type, std::string_view challenge_b64url, std::string_view origin) {
  JsonWriter w;
  w.begin_object();
  w.key("type").string(type);
  w.key("challenge").string(challenge_b64url);
  w.key("origin").string(origin);
  w.key("crossOrigin").boolean(false);
  w.end_object();
  return std::move(w).str();
}

void push_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

}  // namespace

std::string SoftAuthenticator::create(std::string_view options_json, std::string_view origin) {
  simdjson::dom::parser parser;
  simdjson::dom::element o = parser.parse(std::string(options_json));
  if (o["credential_creation_options"].error() == simdjson::SUCCESS) o = o["credential_creation_options"];
  const std::string_view challenge = o["challenge"].get_string().value();
  const std::string_view rp_id = o["rp"]["id"].get_string().value();
  const std::string_view user_id = o["user"]["id"].get_string().value();

  Credential c;
  c.id = crypto::random_bytes(32);
  c.user_handle = decode_any(user_id);
  c.rp_id = std::string(rp_id);
  c.counter = counter_step > 0 ? 1 : 0;
  c.key = std::shared_ptr<void>(EVP_EC_gen("P-256"), [](void* k) { EVP_PKEY_free(static_cast<EVP_PKEY*>(k)); });
  require(c.key != nullptr, "keygen");
  // The client data carries the challenge exactly as the browser would: base64url of its bytes.
  const std::string cdj = client_data("webauthn.create", crypto::base64url_encode(decode_any(challenge)), origin);

  Bytes auth_data;
  const auto rp_hash = crypto::sha256(as_bytes(rp_id));
  auth_data.insert(auth_data.end(), rp_hash.begin(), rp_hash.end());
  uint8_t flags = 0x01 | 0x40;  // UP, AT
  if (user_verified) flags |= 0x04;
  if (backup_eligible) flags |= 0x08;
  auth_data.push_back(flags);
  push_be32(auth_data, c.counter);
  auth_data.insert(auth_data.end(), 16, 0);  // AAGUID: zeros, as for "none"
  auth_data.push_back(static_cast<uint8_t>(c.id.size() >> 8));
  auth_data.push_back(static_cast<uint8_t>(c.id.size()));
  auth_data.insert(auth_data.end(), c.id.begin(), c.id.end());
  const Bytes cose = cose_es256(static_cast<EVP_PKEY*>(c.key.get()));
  auth_data.insert(auth_data.end(), cose.begin(), cose.end());

  Bytes att;  // {"fmt":"none","attStmt":{},"authData":h'...'} in canonical order
  cbor_head(att, 5, 3);
  cbor_text(att, "fmt");
  cbor_text(att, "none");
  cbor_text(att, "attStmt");
  cbor_head(att, 5, 0);
  cbor_text(att, "authData");
  cbor_bytes(att, auth_data);

  JsonWriter w;
  w.begin_object();
  w.key("id").string(crypto::base64url_encode(c.id));
  w.key("rawId").string(crypto::base64url_encode(c.id));
  w.key("type").string("public-key");
  w.key("authenticatorAttachment").string("platform");
  w.key("response").begin_object();
  w.key("clientDataJSON").string(crypto::base64url_encode(as_bytes(cdj)));
  w.key("attestationObject").string(crypto::base64url_encode(att));
  w.key("transports").begin_array().string("internal").end_array();
  w.end_object();
  w.key("clientExtensionResults").begin_object().end_object();
  w.end_object();
  credentials_.push_back(std::move(c));
  return std::move(w).str();
}

std::string SoftAuthenticator::get(std::string_view options_json, std::string_view origin, size_t index) {
  simdjson::dom::parser parser;
  simdjson::dom::element o = parser.parse(std::string(options_json));
  if (o["credential_request_options"].error() == simdjson::SUCCESS) o = o["credential_request_options"];
  const std::string_view challenge = o["challenge"].get_string().value();
  const std::string_view rp_id = o["rpId"].get_string().value();
  require(index < credentials_.size(), "no such credential");
  Credential& c = credentials_[index];
  if (counter_step > 0) c.counter += static_cast<uint32_t>(counter_step);
  const std::string cdj = client_data("webauthn.get", crypto::base64url_encode(decode_any(challenge)), origin);
  Bytes auth_data;
  const auto rp_hash = crypto::sha256(as_bytes(rp_id));
  auth_data.insert(auth_data.end(), rp_hash.begin(), rp_hash.end());
  uint8_t flags = 0x01;
  if (user_verified) flags |= 0x04;
  if (backup_eligible) flags |= 0x08;
  auth_data.push_back(flags);
  push_be32(auth_data, c.counter);
  Bytes signed_data = auth_data;
  const auto cd_hash = crypto::sha256(as_bytes(cdj));
  signed_data.insert(signed_data.end(), cd_hash.begin(), cd_hash.end());
  const Bytes sig = sign(static_cast<EVP_PKEY*>(c.key.get()), signed_data);

  JsonWriter w;
  w.begin_object();
  w.key("id").string(crypto::base64url_encode(c.id));
  w.key("rawId").string(crypto::base64url_encode(c.id));
  w.key("type").string("public-key");
  w.key("authenticatorAttachment").string("platform");
  w.key("response").begin_object();
  w.key("clientDataJSON").string(crypto::base64url_encode(as_bytes(cdj)));
  w.key("authenticatorData").string(crypto::base64url_encode(auth_data));
  w.key("signature").string(crypto::base64url_encode(sig));
  w.key("userHandle").string(crypto::base64url_encode(c.user_handle));
  w.end_object();
  w.key("clientExtensionResults").begin_object().end_object();
  w.end_object();
  return std::move(w).str();
}

std::string encode_result(std::string_view json) { return crypto::base64_encode(as_bytes(json)); }

}  // namespace sigil::testing
