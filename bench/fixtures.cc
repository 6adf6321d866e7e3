#include "bench/fixtures.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <simdjson.h>
#include <sodium.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <utility>

#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::bench {
namespace {

// Fixture construction failing is a broken benchmark, never a measurement: stop loudly.
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "sigil_bench: fixture setup failed: %s\n", what);
    std::exit(2);
  }
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::shared_ptr<EVP_PKEY> share(EVP_PKEY* p) { return std::shared_ptr<EVP_PKEY>(p, PkeyFree{}); }

Bytes spki_of(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey, &der);
  require(len > 0, "i2d_PUBKEY");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Bytes openssl_sign(Alg alg, EVP_PKEY* pkey, ByteView message) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  require(ctx && EVP_DigestSignInit(ctx.get(), &pctx, md_for(alg), nullptr, pkey) == 1, "sign init");
  if (alg == Alg::kPS256) {
    require(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
                EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md_for(alg)) == 1,
            "pss params");
  } else if (alg == Alg::kRS256) {
    require(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1, "pkcs1 padding");
  }
  size_t len = 0;
  require(EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) == 1, "sign size");
  Bytes sig(len);
  require(EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) == 1, "sign");
  sig.resize(len);
  return sig;
}

// CBOR heads for the few structures built here (shortest form).
void cbor_head(Bytes& out, uint8_t major, uint64_t n) {
  const auto m = static_cast<uint8_t>(major << 5);
  if (n < 24) {
    out.push_back(static_cast<uint8_t>(m | n));
  } else if (n < 0x100) {
    out.push_back(static_cast<uint8_t>(m | 24));
    out.push_back(static_cast<uint8_t>(n));
  } else {
    out.push_back(static_cast<uint8_t>(m | 25));
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(n));
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

// COSE_Key EC2 P-256 / ES256 in CTAP2 canonical order: {1:2, 3:-7, -1:1, -2:x, -3:y}.
Bytes cose_es256(EVP_PKEY* key) {
  uint8_t point[65];
  size_t len = 0;
  require(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len) == 1 &&
              len == 65,
          "public point");
  Bytes out;
  cbor_head(out, 5, 5);
  out.insert(out.end(), {0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21});
  cbor_bytes(out, ByteView(point + 1, 32));
  out.push_back(0x22);
  cbor_bytes(out, ByteView(point + 33, 32));
  return out;
}

// The message shape every verify benchmark signs: authenticatorData (37 bytes) || clientDataHash (32).
Bytes webauthn_shaped_message() { return crypto::random_bytes(37 + 32); }

Bytes digest_of(Alg alg, ByteView message) {
  if (alg == Alg::kEdDSA) return {};
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  require(EVP_Digest(message.data(), message.size(), d, &n, md_for(alg), nullptr) == 1, "digest");
  return Bytes(d, d + n);
}

int64_t cose_alg_of(Alg alg) {
  switch (alg) {
    case Alg::kES256: return crypto::cose_alg::kES256;
    case Alg::kES384: return crypto::cose_alg::kES384;
    case Alg::kEdDSA: return crypto::cose_alg::kEdDSA;
    case Alg::kRS256: return crypto::cose_alg::kRS256;
    case Alg::kPS256: return crypto::cose_alg::kPS256;
  }
  return 0;
}

// RSA key generation is slow (tens of ms per key): RS256 and PS256 share one small pool.
const std::vector<std::shared_ptr<EVP_PKEY>>& rsa_pool(size_t count) {
  static std::vector<std::shared_ptr<EVP_PKEY>> pool;
  while (pool.size() < count) {
    EVP_PKEY* k = EVP_RSA_gen(2048);
    require(k != nullptr, "EVP_RSA_gen");
    pool.push_back(share(k));
  }
  return pool;
}

SignedItem make_item(Alg alg, size_t index) {
  SignedItem it;
  it.message = webauthn_shaped_message();
  it.digest = digest_of(alg, it.message);
  switch (alg) {
    case Alg::kES256: {
      it.pkey = share(EVP_EC_gen("P-256"));
      require(it.pkey != nullptr, "EVP_EC_gen P-256");
      auto key = crypto::CoseKey::decode(cose_es256(it.pkey.get()));
      require(key.has_value(), "CoseKey::decode ES256");
      it.cose = std::make_shared<const crypto::CoseKey>(std::move(*key));
      it.signature = openssl_sign(alg, it.pkey.get(), it.message);
      break;
    }
    case Alg::kES384: {
      it.pkey = share(EVP_EC_gen("P-384"));
      require(it.pkey != nullptr, "EVP_EC_gen P-384");
      it.signature = openssl_sign(alg, it.pkey.get(), it.message);
      break;
    }
    case Alg::kEdDSA: {
      uint8_t pk[crypto_sign_PUBLICKEYBYTES];
      uint8_t sk[crypto_sign_SECRETKEYBYTES];
      require(sodium_init() >= 0, "sodium_init");
      crypto_sign_keypair(pk, sk);
      it.raw_public.assign(pk, pk + sizeof pk);
      it.pkey = share(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pk, sizeof pk));
      require(it.pkey != nullptr, "Ed25519 EVP_PKEY");
      it.signature.resize(crypto_sign_BYTES);
      crypto_sign_detached(it.signature.data(), nullptr, it.message.data(), it.message.size(), sk);
      sodium_memzero(sk, sizeof sk);
      break;
    }
    case Alg::kRS256:
    case Alg::kPS256: {
      it.pkey = rsa_pool(index + 1)[index];
      it.signature = openssl_sign(alg, it.pkey.get(), it.message);
      break;
    }
  }
  if (!it.cose) {
    auto key = crypto::CoseKey::from_spki(spki_of(it.pkey.get()), cose_alg_of(alg));
    require(key.has_value(), "CoseKey::from_spki");
    it.cose = std::make_shared<const crypto::CoseKey>(std::move(*key));
  }
  require(it.cose->verify(it.message, it.signature), "engine rejects a fixture signature");
  return it;
}

std::mutex& fixture_mu() {
  static std::mutex mu;
  return mu;
}

std::string b64u(ByteView b) { return crypto::base64url_encode(b); }

Bytes b64u_decode(std::string_view s) {
  auto b = crypto::base64url_decode(s);
  require(b.has_value(), "vector file holds invalid base64url");
  return *std::move(b);
}

void push_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

std::string client_data(std::string_view type, ByteView challenge) {
  JsonWriter w;
  w.begin_object();
  w.key("type").string(type);
  w.key("challenge").string(b64u(challenge));
  w.key("origin").string(kOrigin);
  w.key("crossOrigin").boolean(false);
  w.end_object();
  return std::move(w).str();
}

std::string response_json(const AssertionVector& v) {
  JsonWriter w;
  w.begin_object();
  w.key("id").string(b64u(v.credential_id));
  w.key("rawId").string(b64u(v.credential_id));
  w.key("type").string("public-key");
  w.key("authenticatorAttachment").string("platform");
  w.key("response").begin_object();
  w.key("clientDataJSON").string(b64u(v.client_data_json));
  w.key("authenticatorData").string(b64u(v.authenticator_data));
  w.key("signature").string(b64u(v.signature));
  w.key("userHandle").string(b64u(v.user_handle));
  w.end_object();
  w.key("clientExtensionResults").begin_object().end_object();
  w.end_object();
  return std::move(w).str();
}

// Finishes a vector whose bytes are set: parses the key, links the stored credential, checks the engine
// accepts the assertion.
void finish_vector(AssertionVector& v) {
  auto key = crypto::CoseKey::decode(v.cose_public_key);
  require(key.has_value(), "CoseKey::decode of a credential key");
  v.key = std::make_shared<const crypto::CoseKey>(std::move(*key));
  v.stored.credential_id = v.credential_id;
  v.stored.public_key = v.key.get();
  v.stored.sign_count = 0;
  v.stored.user_handle = v.user_handle;
  v.stored.backup_eligible = false;
  if (v.response_json.empty()) v.response_json = response_json(v);

  webauthn::AssertionInput in;
  in.credential_id = v.credential_id;
  in.client_data_json = v.client_data_json;
  in.authenticator_data = v.authenticator_data;
  in.signature = v.signature;
  in.user_handle = v.user_handle;
  in.expected_challenge = v.challenge;
  in.rp = &relying_party();
  in.user_verification = webauthn::UserVerification::kRequired;
  in.credential = &v.stored;
  require(webauthn::verify_assertion(in).has_value(), "verify_assertion rejects a fixture assertion");
}

AssertionVector make_vector() {
  AssertionVector v;
  PkeyPtr key(EVP_EC_gen("P-256"));
  require(key != nullptr, "EVP_EC_gen");
  v.credential_id = crypto::random_bytes(16);
  v.user_handle = crypto::random_bytes(16);
  v.cose_public_key = cose_es256(key.get());
  v.challenge = crypto::random_bytes(32);

  const auto rp_hash = crypto::sha256(as_bytes(kRpId));
  // Registration: authenticatorData with attested credential data, in a "none" attestationObject.
  Bytes reg;
  reg.insert(reg.end(), rp_hash.begin(), rp_hash.end());
  reg.push_back(webauthn::kFlagUP | webauthn::kFlagUV | webauthn::kFlagAT);
  push_be32(reg, 0);
  reg.insert(reg.end(), 16, 0);  // AAGUID
  reg.push_back(static_cast<uint8_t>(v.credential_id.size() >> 8));
  reg.push_back(static_cast<uint8_t>(v.credential_id.size()));
  reg.insert(reg.end(), v.credential_id.begin(), v.credential_id.end());
  reg.insert(reg.end(), v.cose_public_key.begin(), v.cose_public_key.end());
  cbor_head(v.attestation_object, 5, 3);  // {"fmt":"none","attStmt":{},"authData":h'..'}, canonical order
  cbor_text(v.attestation_object, "fmt");
  cbor_text(v.attestation_object, "none");
  cbor_text(v.attestation_object, "attStmt");
  cbor_head(v.attestation_object, 5, 0);
  cbor_text(v.attestation_object, "authData");
  cbor_bytes(v.attestation_object, reg);

  // Assertion: UP|UV, counter 1 (stored counter 0).
  const std::string cdj = client_data("webauthn.get", v.challenge);
  v.client_data_json.assign(cdj.begin(), cdj.end());
  v.authenticator_data.insert(v.authenticator_data.end(), rp_hash.begin(), rp_hash.end());
  v.authenticator_data.push_back(webauthn::kFlagUP | webauthn::kFlagUV);
  push_be32(v.authenticator_data, 1);
  Bytes signed_data = v.authenticator_data;
  const auto cd_hash = crypto::sha256(v.client_data_json);
  signed_data.insert(signed_data.end(), cd_hash.begin(), cd_hash.end());
  v.signature = openssl_sign(Alg::kES256, key.get(), signed_data);
  finish_vector(v);
  return v;
}

std::string& assertion_source() {
  static std::string path;
  return path;
}

std::vector<AssertionVector> load_vectors(const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  require(parser.load(path).get(doc) == simdjson::SUCCESS, "cannot read the assertion vector file");
  simdjson::dom::array arr;
  require(doc["vectors"].get_array().get(arr) == simdjson::SUCCESS, "vector file: no vectors array");
  std::vector<AssertionVector> out;
  for (simdjson::dom::element e : arr) {
    AssertionVector v;
    std::string_view s;
    auto field = [&](simdjson::dom::element obj, const char* name) {
      require(obj[name].get_string().get(s) == simdjson::SUCCESS, name);
      return b64u_decode(s);
    };
    v.credential_id = field(e, "credentialId");
    v.cose_public_key = field(e, "publicKey");
    v.user_handle = field(e, "userHandle");
    v.challenge = field(e, "challenge");
    v.attestation_object = field(e, "attestationObject");
    simdjson::dom::element resp;
    require(e["response"].get(resp) == simdjson::SUCCESS, "response");
    v.response_json = simdjson::minify(resp);
    simdjson::dom::element inner;
    require(resp["response"].get(inner) == simdjson::SUCCESS, "response.response");
    v.client_data_json = field(inner, "clientDataJSON");
    v.authenticator_data = field(inner, "authenticatorData");
    v.signature = field(inner, "signature");
    finish_vector(v);
    out.push_back(std::move(v));
  }
  require(!out.empty(), "vector file holds no vectors");
  return out;
}

}  // namespace

const char* alg_name(Alg alg) {
  switch (alg) {
    case Alg::kES256: return "ES256";
    case Alg::kES384: return "ES384";
    case Alg::kEdDSA: return "EdDSA";
    case Alg::kRS256: return "RS256";
    case Alg::kPS256: return "PS256";
  }
  return "?";
}

const EVP_MD* md_for(Alg alg) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* const sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  switch (alg) {
    case Alg::kES384: return sha384;
    case Alg::kEdDSA: return nullptr;
    default: return sha256;
  }
}

const std::vector<SignedItem>& signed_items(Alg alg, size_t count) {
  std::lock_guard lock(fixture_mu());
  static std::map<std::pair<Alg, size_t>, std::vector<SignedItem>> cache;
  auto& items = cache[{alg, count}];
  if (items.empty()) {
    items.reserve(count);
    for (size_t i = 0; i < count; ++i) items.push_back(make_item(alg, i));
  }
  return items;
}

void set_assertion_source(std::string path) { assertion_source() = std::move(path); }

const std::vector<AssertionVector>& assertion_vectors(size_t count) {
  std::lock_guard lock(fixture_mu());
  static std::vector<AssertionVector> vectors;
  if (vectors.empty()) {
    if (!assertion_source().empty()) {
      vectors = load_vectors(assertion_source());
    } else {
      vectors.reserve(count);
      for (size_t i = 0; i < count; ++i) vectors.push_back(make_vector());
    }
  }
  return vectors;
}

bool write_assertion_vectors(const std::string& path, size_t count) {
  JsonWriter w;
  w.begin_object();
  w.key("rpID").string(kRpId);
  w.key("origin").string(kOrigin);
  w.key("vectors").begin_array();
  for (size_t i = 0; i < count; ++i) {
    const AssertionVector v = make_vector();
    w.begin_object();
    w.key("credentialId").string(b64u(v.credential_id));
    w.key("publicKey").string(b64u(v.cose_public_key));
    w.key("userHandle").string(b64u(v.user_handle));
    w.key("challenge").string(b64u(v.challenge));
    w.key("attestationObject").string(b64u(v.attestation_object));
    w.key("response").raw(v.response_json);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << std::move(w).str();
  return static_cast<bool>(f);
}

const webauthn::RelyingParty& relying_party() {
  static const webauthn::RelyingParty rp = [] {
    webauthn::RelyingParty r;
    r.rp_id = kRpId;
    r.origins = {kOrigin};
    return r;
  }();
  return rp;
}

size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace sigil::bench
