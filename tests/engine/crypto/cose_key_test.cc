// CoseKey: every key type from COSE bytes, interop with the WebAuthn L3 spec vectors' assertions (read from
// SIGIL_VECTORS_DIR), kty/crv/alg consistency, invalid points, RSA size, from_spki type checks, and
// tampered signatures for every algorithm.
#include "engine/crypto/cose_key.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include <atomic>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/cbor/cbor.h"
#include "engine/crypto/digest.h"
#include "engine/crypto/internal/ecdsa_der.h"

namespace sigil::crypto {
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

// --- A tiny CBOR encoder: enough for COSE keys (ints, byte strings, text, maps in the caller's order). ---
Bytes head(uint8_t major, uint64_t v) {
  Bytes out;
  const auto m = static_cast<uint8_t>(major << 5);
  if (v < 24) {
    out.push_back(static_cast<uint8_t>(m | v));
  } else if (v <= 0xFF) {
    out = {static_cast<uint8_t>(m | 24), static_cast<uint8_t>(v)};
  } else if (v <= 0xFFFF) {
    out = {static_cast<uint8_t>(m | 25), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
  } else {
    out = {static_cast<uint8_t>(m | 26), static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
           static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
  }
  return out;
}
Bytes cint(int64_t v) { return v >= 0 ? head(0, static_cast<uint64_t>(v)) : head(1, static_cast<uint64_t>(-(v + 1))); }
Bytes cbytes(ByteView b) {
  Bytes out = head(2, b.size());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}
Bytes ctext(std::string_view s) {
  Bytes out = head(3, s.size());
  out.insert(out.end(), s.begin(), s.end());
  return out;
}
// Map with int labels, emitted in CTAP2 canonical order (shorter encoding first, then bytewise).
Bytes cose_map(std::vector<std::pair<int64_t, Bytes>> entries) {
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const Bytes ka = cint(a.first);
    const Bytes kb = cint(b.first);
    if (ka.size() != kb.size()) return ka.size() < kb.size();
    return ka < kb;
  });
  Bytes out = head(5, entries.size());
  for (const auto& [k, v] : entries) {
    const Bytes kb = cint(k);
    out.insert(out.end(), kb.begin(), kb.end());
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

Bytes ec2_key(int64_t alg, int64_t crv, ByteView x, ByteView y) {
  return cose_map({{1, cint(2)}, {3, cint(alg)}, {-1, cint(crv)}, {-2, cbytes(x)}, {-3, cbytes(y)}});
}
Bytes okp_key(int64_t alg, int64_t crv, ByteView x) {
  return cose_map({{1, cint(1)}, {3, cint(alg)}, {-1, cint(crv)}, {-2, cbytes(x)}});
}
Bytes rsa_key(int64_t alg, ByteView n, ByteView e) {
  return cose_map({{1, cint(3)}, {3, cint(alg)}, {-1, cbytes(n)}, {-2, cbytes(e)}});
}

// --- OpenSSL helpers for generated keys. ---
struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Pkey gen_rsa(size_t bits) { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits)); }
Pkey gen_ec(const char* curve) { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)); }
Pkey gen_raw(const char* type) { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, type)); }

Bytes bn_param(EVP_PKEY* k, const char* name) {
  BIGNUM* bn = nullptr;
  SIGIL_CHECK(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
  Bytes out(static_cast<size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  BN_free(bn);
  return out;
}
Bytes ec_point(EVP_PKEY* k) {
  Bytes out(200);
  size_t len = 0;
  SIGIL_CHECK(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out.data(), out.size(), &len) == 1);
  out.resize(len);
  return out;
}
Bytes raw_pub(EVP_PKEY* k) {
  size_t len = 0;
  SIGIL_CHECK(EVP_PKEY_get_raw_public_key(k, nullptr, &len) == 1);
  Bytes out(len);
  SIGIL_CHECK(EVP_PKEY_get_raw_public_key(k, out.data(), &len) == 1);
  return out;
}
Bytes spki(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(k, &der);
  SIGIL_CHECK(len > 0);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}
// padding 0: not RSA. salt_len only for PSS.
Bytes sign(EVP_PKEY* k, const char* md, ByteView msg, int padding = 0, int salt_len = RSA_PSS_SALTLEN_DIGEST) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  SIGIL_CHECK(EVP_DigestSignInit_ex(ctx, &pctx, md, nullptr, nullptr, k, nullptr) == 1);
  if (padding != 0) {
    SIGIL_CHECK(EVP_PKEY_CTX_set_rsa_padding(pctx, padding) == 1);
    if (padding == RSA_PKCS1_PSS_PADDING) SIGIL_CHECK(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt_len) == 1);
  }
  size_t len = 0;
  SIGIL_CHECK(EVP_DigestSign(ctx, nullptr, &len, msg.data(), msg.size()) == 1);
  Bytes sig(len);
  SIGIL_CHECK(EVP_DigestSign(ctx, sig.data(), &len, msg.data(), msg.size()) == 1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

Bytes flipped(Bytes b, size_t i) {
  b.at(i) ^= 0x01;
  return b;
}

// --- WebAuthn L3 spec vectors. ---
struct SpecVector {
  std::string name;
  Bytes credential_key;  // COSE bytes out of the registration's authData
  Bytes signed_data;     // authenticatorData || SHA-256(clientDataJSON) of the assertion
  Bytes signature;
};

std::vector<SpecVector> load_spec_vectors() {
  std::vector<SpecVector> out;
  const std::string path = SIGIL_VECTORS_DIR "/webauthn-spec/webauthn-l3-test-vectors.json";
  simdjson::padded_string json;
  if (simdjson::padded_string::load(path).get(json) != simdjson::SUCCESS) return out;
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (parser.iterate(json).get(doc) != simdjson::SUCCESS) return out;
  for (auto item : doc["vectors"].get_array()) {
    simdjson::ondemand::object vec = item.get_object();
    SpecVector v;
    v.name = std::string(std::string_view(vec["name"].get_string()));
    simdjson::ondemand::object reg = vec["registration"].get_object();
    const Bytes att = hex(std::string_view(reg["attestationObject"].get_string()));
    simdjson::ondemand::object auth = vec["authentication"].get_object();
    const Bytes auth_data = hex(std::string_view(auth["authenticatorData"].get_string()));
    const Bytes client_data = hex(std::string_view(auth["clientDataJSON"].get_string()));
    v.signature = hex(std::string_view(auth["signature"].get_string()));
    auto att_obj = cbor::decode(att);
    SIGIL_CHECK(att_obj.has_value());
    const Bytes& reg_auth_data = att_obj->find("authData")->bytes();
    const size_t id_len = (size_t{reg_auth_data[53]} << 8) | reg_auth_data[54];
    size_t used = 0;
    auto key = cbor::decode_prefix(ByteView(reg_auth_data).subspan(55 + id_len), &used);
    SIGIL_CHECK(key.has_value());
    v.credential_key = key->encoded();
    v.signed_data = auth_data;
    const Sha256Digest h = sha256(client_data);
    v.signed_data.insert(v.signed_data.end(), h.begin(), h.end());
    out.push_back(std::move(v));
  }
  return out;
}

int64_t expected_alg(const std::string& name) {
  if (name == "packed-es384") return cose_alg::kES384;
  if (name == "packed-es512") return cose_alg::kES512;
  if (name == "packed-rs256") return cose_alg::kRS256;
  if (name == "packed-eddsa") return cose_alg::kEdDSA;
  if (name == "packed-ed448") return -53;  // fully-specified Ed448 (RFC 9864), as the spec vector has it
  return cose_alg::kES256;
}

TEST(CoseKey, SpecVectorsParseAndVerifyAssertions) {
  const auto vectors = load_spec_vectors();
  ASSERT_EQ(vectors.size(), 15u) << "missing " SIGIL_VECTORS_DIR "/webauthn-spec/webauthn-l3-test-vectors.json";
  std::map<int64_t, size_t> verified_by_alg;
  for (const auto& v : vectors) {
    auto key = CoseKey::decode(v.credential_key);
    ASSERT_TRUE(key.has_value()) << v.name << ": " << key.error().message;
    EXPECT_EQ(key->alg(), expected_alg(v.name)) << v.name;
    EXPECT_EQ(key->cose_bytes(), v.credential_key) << v.name;
    EXPECT_FALSE(key->spki_der().empty());
    EXPECT_TRUE(key->verify(v.signed_data, v.signature)) << v.name;
    // Tampering with the signature (first, middle and last byte) or the message fails for every algorithm.
    for (size_t i : {size_t{0}, v.signature.size() / 2, v.signature.size() - 1}) {
      EXPECT_FALSE(key->verify(v.signed_data, flipped(v.signature, i))) << v.name << " byte " << i;
    }
    EXPECT_FALSE(key->verify(flipped(v.signed_data, 0), v.signature)) << v.name;
    EXPECT_FALSE(key->verify(v.signed_data, {})) << v.name;
    // The stored SPKI round-trips through from_spki with the same algorithm and verifies the same way.
    auto again = CoseKey::from_spki(key->spki_der(), key->alg());
    ASSERT_TRUE(again.has_value()) << v.name;
    EXPECT_TRUE(again->cose_bytes().empty());
    EXPECT_EQ(again->spki_der(), key->spki_der());
    EXPECT_TRUE(again->verify(v.signed_data, v.signature)) << v.name;
    ++verified_by_alg[key->alg()];
  }
  EXPECT_EQ(verified_by_alg[cose_alg::kES256], 10u);
  EXPECT_EQ(verified_by_alg[cose_alg::kES384], 1u);
  EXPECT_EQ(verified_by_alg[cose_alg::kES512], 1u);
  EXPECT_EQ(verified_by_alg[cose_alg::kRS256], 1u);
  EXPECT_EQ(verified_by_alg[cose_alg::kEdDSA], 1u);
  EXPECT_EQ(verified_by_alg[-53], 1u);
}

TEST(CoseKey, ParseTakesDecodedMapAndKeepsItsBytes) {
  const auto vectors = load_spec_vectors();
  ASSERT_FALSE(vectors.empty());
  auto map = cbor::decode(vectors[0].credential_key);
  ASSERT_TRUE(map.has_value());
  auto key = CoseKey::parse(*map);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->cose_bytes(), vectors[0].credential_key);
  auto not_map = cbor::decode(hex("820102"));
  ASSERT_TRUE(not_map.has_value());
  EXPECT_FALSE(CoseKey::parse(*not_map).has_value());
  // Trailing bytes after the map are refused by decode().
  Bytes trailing = vectors[0].credential_key;
  trailing.push_back(0);
  EXPECT_FALSE(CoseKey::decode(trailing).has_value());
  EXPECT_FALSE(CoseKey::decode({}).has_value());
}

struct EcCase {
  const char* curve;
  int64_t alg;
  int64_t crv;
  const char* md;
  size_t coord;
};
constexpr EcCase kEcCases[] = {{"P-256", cose_alg::kES256, 1, "SHA256", 32},
                               {"P-384", cose_alg::kES384, 2, "SHA384", 48},
                               {"P-521", cose_alg::kES512, 3, "SHA512", 66}};

TEST(CoseKey, Ec2KeysVerifyGeneratedSignatures) {
  const Bytes msg = hex("00010203");
  for (const auto& c : kEcCases) {
    Pkey k = gen_ec(c.curve);
    ASSERT_TRUE(k);
    const Bytes pt = ec_point(k.get());
    ASSERT_EQ(pt.size(), 1 + 2 * c.coord);
    const ByteView x = ByteView(pt).subspan(1, c.coord);
    const ByteView y = ByteView(pt).subspan(1 + c.coord);
    auto key = CoseKey::decode(ec2_key(c.alg, c.crv, x, y));
    ASSERT_TRUE(key.has_value()) << c.curve << ": " << key.error().message;
    EXPECT_EQ(key->spki_der(), spki(k.get()));
    const Bytes sig = sign(k.get(), c.md, msg);
    EXPECT_TRUE(key->verify(msg, sig)) << c.curve;
    EXPECT_FALSE(key->verify(msg, flipped(sig, sig.size() - 1))) << c.curve;
    // Strict DER: a trailing byte or a BER long-form length is refused.
    Bytes trailing = sig;
    trailing.push_back(0);
    EXPECT_FALSE(key->verify(msg, trailing));
    // Signed with another hash: refused (the key's algorithm fixes the hash).
    EXPECT_FALSE(key->verify(msg, sign(k.get(), c.alg == cose_alg::kES256 ? "SHA384" : "SHA256", msg)));
  }
}

TEST(CoseKey, Ec2RefusesMismatchedAlgCrvAndLengths) {
  Pkey k = gen_ec("P-256");
  const Bytes pt = ec_point(k.get());
  const ByteView x = ByteView(pt).subspan(1, 32);
  const ByteView y = ByteView(pt).subspan(33);
  EXPECT_TRUE(CoseKey::decode(ec2_key(cose_alg::kES256, 1, x, y)).has_value());
  EXPECT_FALSE(CoseKey::decode(ec2_key(cose_alg::kES384, 1, x, y)).has_value());   // alg for P-384
  EXPECT_FALSE(CoseKey::decode(ec2_key(cose_alg::kES256, 2, x, y)).has_value());   // crv P-384
  EXPECT_FALSE(CoseKey::decode(ec2_key(cose_alg::kEdDSA, 1, x, y)).has_value());   // OKP alg
  EXPECT_FALSE(CoseKey::decode(ec2_key(cose_alg::kRS256, 1, x, y)).has_value());   // RSA alg
  EXPECT_FALSE(CoseKey::decode(ec2_key(-999, 1, x, y)).has_value());               // unknown alg
  EXPECT_FALSE(CoseKey::decode(ec2_key(cose_alg::kES256, 1, x.first(31), y)).has_value());
  // Missing alg, crv, x or y; y as a bool (compressed) or as text.
  EXPECT_FALSE(CoseKey::decode(cose_map({{1, cint(2)}, {-1, cint(1)}, {-2, cbytes(x)}, {-3, cbytes(y)}})).has_value());
  EXPECT_FALSE(CoseKey::decode(cose_map({{1, cint(2)}, {3, cint(-7)}, {-2, cbytes(x)}, {-3, cbytes(y)}})).has_value());
  EXPECT_FALSE(CoseKey::decode(cose_map({{1, cint(2)}, {3, cint(-7)}, {-1, cint(1)}, {-3, cbytes(y)}})).has_value());
  EXPECT_FALSE(CoseKey::decode(cose_map({{1, cint(2)}, {3, cint(-7)}, {-1, cint(1)}, {-2, cbytes(x)}})).has_value());
  EXPECT_FALSE(
      CoseKey::decode(cose_map({{1, cint(2)}, {3, cint(-7)}, {-1, cint(1)}, {-2, cbytes(x)}, {-3, hex("f5")}}))
          .has_value());
  EXPECT_FALSE(
      CoseKey::decode(cose_map({{1, cint(2)}, {3, ctext("ES256")}, {-1, cint(1)}, {-2, cbytes(x)}, {-3, cbytes(y)}}))
          .has_value());
  // kty missing or unknown, or the wrong kty for the parameters.
  EXPECT_FALSE(CoseKey::decode(cose_map({{3, cint(-7)}, {-1, cint(1)}, {-2, cbytes(x)}, {-3, cbytes(y)}})).has_value());
  EXPECT_FALSE(
      CoseKey::decode(cose_map({{1, cint(4)}, {3, cint(-7)}, {-1, cint(1)}, {-2, cbytes(x)}, {-3, cbytes(y)}}))
          .has_value());
  EXPECT_FALSE(
      CoseKey::decode(cose_map({{1, cint(1)}, {3, cint(-7)}, {-1, cint(1)}, {-2, cbytes(x)}, {-3, cbytes(y)}}))
          .has_value());
}

TEST(CoseKey, Ec2RefusesPointsOffTheCurve) {
  for (const auto& c : kEcCases) {
    Pkey k = gen_ec(c.curve);
    const Bytes pt = ec_point(k.get());
    Bytes y(pt.begin() + 1 + static_cast<ptrdiff_t>(c.coord), pt.end());
    y.back() ^= 0x01;
    const ByteView x = ByteView(pt).subspan(1, c.coord);
    auto key = CoseKey::decode(ec2_key(c.alg, c.crv, x, y));
    EXPECT_FALSE(key.has_value()) << c.curve;
    // All-zero coordinates (not a point; the point at infinity has no affine form).
    const Bytes zero(c.coord, 0);
    EXPECT_FALSE(CoseKey::decode(ec2_key(c.alg, c.crv, zero, zero)).has_value()) << c.curve;
  }
}

TEST(CoseKey, UnknownLabelsNeverChangeTheKey) {
  Pkey k = gen_ec("P-256");
  const Bytes pt = ec_point(k.get());
  const ByteView x = ByteView(pt).subspan(1, 32);
  const ByteView y = ByteView(pt).subspan(33);
  auto plain = CoseKey::decode(ec2_key(cose_alg::kES256, 1, x, y));
  const Bytes with_extra = cose_map({{1, cint(2)}, {2, cbytes(hex("6b6964"))}, {3, cint(-7)}, {4, cint(2)},
                                     {-1, cint(1)}, {-2, cbytes(x)}, {-3, cbytes(y)}, {-70000, cint(5)}});
  auto extra = CoseKey::decode(with_extra);
  ASSERT_TRUE(plain.has_value());
  ASSERT_TRUE(extra.has_value());
  EXPECT_EQ(extra->spki_der(), plain->spki_der());
  EXPECT_EQ(extra->alg(), plain->alg());
  EXPECT_EQ(extra->cose_bytes(), with_extra);
  // A private key parameter (d, -4) is refused.
  EXPECT_FALSE(CoseKey::decode(cose_map({{1, cint(2)}, {3, cint(-7)}, {-1, cint(1)}, {-2, cbytes(x)},
                                         {-3, cbytes(y)}, {-4, cbytes(Bytes(32, 1))}}))
                   .has_value());
}

TEST(CoseKey, Ed25519FromCose) {
  Pkey k = gen_raw("ED25519");
  const Bytes pub = raw_pub(k.get());
  auto key = CoseKey::decode(okp_key(cose_alg::kEdDSA, 6, pub));
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_EQ(key->spki_der(), spki(k.get()));
  const Bytes msg = hex("68656c6c6f");
  const Bytes sig = sign(k.get(), nullptr, msg);
  EXPECT_TRUE(key->verify(msg, sig));
  EXPECT_TRUE(key->verify({}, sign(k.get(), nullptr, {})));
  EXPECT_FALSE(key->verify(msg, flipped(sig, 0)));
  EXPECT_FALSE(key->verify(msg, flipped(sig, 63)));
  Bytes longer = sig;
  longer.push_back(0);
  EXPECT_FALSE(key->verify(msg, longer));
  EXPECT_FALSE(key->verify(msg, ByteView(sig).first(63)));
  // Fully-specified Ed25519 (-19) is the same key type.
  EXPECT_TRUE(CoseKey::decode(okp_key(-19, 6, pub)).has_value());
  // Mismatches: Ed448 crv, wrong length, EC alg, fully-specified Ed448 alg with Ed25519 crv, private d.
  EXPECT_FALSE(CoseKey::decode(okp_key(cose_alg::kEdDSA, 7, pub)).has_value());
  EXPECT_FALSE(CoseKey::decode(okp_key(cose_alg::kEdDSA, 6, ByteView(pub).first(31))).has_value());
  EXPECT_FALSE(CoseKey::decode(okp_key(cose_alg::kES256, 6, pub)).has_value());
  EXPECT_FALSE(CoseKey::decode(okp_key(-53, 6, pub)).has_value());
  EXPECT_FALSE(CoseKey::decode(okp_key(cose_alg::kEdDSA, 4, pub)).has_value());  // X25519 is not a signing curve
  EXPECT_FALSE(CoseKey::decode(cose_map({{1, cint(1)}, {3, cint(-8)}, {-1, cint(6)}, {-2, cbytes(pub)},
                                         {-4, cbytes(Bytes(32, 1))}}))
                   .has_value());
}

TEST(CoseKey, Ed25519RefusesSmallOrderAndNonCanonicalPoints) {
  // Identity (0, 1), the order-2 point (0, -1), an order-8 point, and a non-canonical y >= p.
  for (std::string_view h : {"0100000000000000000000000000000000000000000000000000000000000000",
                             "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                             "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
                             "0000000000000000000000000000000000000000000000000000000000000000",
                             "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"}) {
    EXPECT_FALSE(CoseKey::decode(okp_key(cose_alg::kEdDSA, 6, hex(h))).has_value()) << h;
    // The same key in an SPKI is refused too.
    Bytes der = hex("302a300506032b6570032100");
    const Bytes raw = hex(h);
    der.insert(der.end(), raw.begin(), raw.end());
    EXPECT_FALSE(CoseKey::from_spki(der, cose_alg::kEdDSA).has_value()) << h;
  }
}

TEST(CoseKey, Ed448FromCose) {
  Pkey k = gen_raw("ED448");
  const Bytes pub = raw_pub(k.get());
  ASSERT_EQ(pub.size(), 57u);
  const Bytes msg = hex("68656c6c6f");
  const Bytes sig = sign(k.get(), nullptr, msg);
  for (int64_t alg : {cose_alg::kEdDSA, int64_t{-53}}) {
    auto key = CoseKey::decode(okp_key(alg, 7, pub));
    ASSERT_TRUE(key.has_value()) << key.error().message;
    EXPECT_EQ(key->spki_der(), spki(k.get()));
    EXPECT_TRUE(key->verify(msg, sig));
    EXPECT_FALSE(key->verify(msg, flipped(sig, 0)));
    EXPECT_FALSE(key->verify(msg, flipped(sig, 113)));
    EXPECT_FALSE(key->verify(msg, ByteView(sig).first(64)));
  }
  EXPECT_FALSE(CoseKey::decode(okp_key(-19, 7, pub)).has_value());
  EXPECT_FALSE(CoseKey::decode(okp_key(cose_alg::kEdDSA, 7, ByteView(pub).first(56))).has_value());
  EXPECT_FALSE(CoseKey::decode(okp_key(cose_alg::kEdDSA, 7, Bytes(32, 9))).has_value());
}

TEST(CoseKey, RsaAlgorithms) {
  Pkey k = gen_rsa(2048);
  ASSERT_TRUE(k);
  const Bytes n = bn_param(k.get(), OSSL_PKEY_PARAM_RSA_N);
  const Bytes e = bn_param(k.get(), OSSL_PKEY_PARAM_RSA_E);
  const Bytes msg = hex("00ff00ff");
  const Bytes rs256 = sign(k.get(), "SHA256", msg, RSA_PKCS1_PADDING);
  const Bytes rs1 = sign(k.get(), "SHA1", msg, RSA_PKCS1_PADDING);
  const Bytes ps256 = sign(k.get(), "SHA256", msg, RSA_PKCS1_PSS_PADDING, 32);
  const Bytes ps256_salt20 = sign(k.get(), "SHA256", msg, RSA_PKCS1_PSS_PADDING, 20);
  const std::pair<int64_t, const Bytes*> cases[] = {
      {cose_alg::kRS256, &rs256}, {cose_alg::kRS1, &rs1}, {cose_alg::kPS256, &ps256}};
  for (const auto& [alg, good] : cases) {
    auto key = CoseKey::decode(rsa_key(alg, n, e));
    ASSERT_TRUE(key.has_value()) << alg << ": " << key.error().message;
    EXPECT_EQ(key->spki_der(), spki(k.get()));
    EXPECT_TRUE(key->verify(msg, *good)) << alg;
    EXPECT_FALSE(key->verify(msg, flipped(*good, 0))) << alg;
    EXPECT_FALSE(key->verify(msg, flipped(*good, good->size() - 1))) << alg;
    EXPECT_FALSE(key->verify(msg, ByteView(*good).first(good->size() - 1))) << alg;
    // No algorithm confusion: the other schemes' signatures fail under this key.
    for (const auto& [other_alg, other] : cases) {
      if (other_alg != alg) {
        EXPECT_FALSE(key->verify(msg, *other)) << alg << " accepted " << other_alg;
      }
    }
    auto from_der = CoseKey::from_spki(spki(k.get()), alg);
    ASSERT_TRUE(from_der.has_value());
    EXPECT_TRUE(from_der->verify(msg, *good));
  }
  // PS256 needs salt length == 32 exactly.
  auto ps = CoseKey::decode(rsa_key(cose_alg::kPS256, n, e));
  ASSERT_TRUE(ps.has_value());
  EXPECT_FALSE(ps->verify(msg, ps256_salt20));
  // Mismatches and malformed parameters.
  EXPECT_FALSE(CoseKey::decode(rsa_key(cose_alg::kES256, n, e)).has_value());
  EXPECT_FALSE(CoseKey::decode(rsa_key(cose_alg::kEdDSA, n, e)).has_value());
  EXPECT_FALSE(CoseKey::decode(rsa_key(-258, n, e)).has_value());  // RS384: not supported
  Bytes padded_n = n;
  padded_n.insert(padded_n.begin(), 0);
  EXPECT_FALSE(CoseKey::decode(rsa_key(cose_alg::kRS256, padded_n, e)).has_value());  // not minimal
  EXPECT_FALSE(CoseKey::decode(rsa_key(cose_alg::kRS256, n, hex("00010001"))).has_value());
  EXPECT_FALSE(CoseKey::decode(rsa_key(cose_alg::kRS256, n, hex("010000"))).has_value());  // even e
  EXPECT_FALSE(CoseKey::decode(rsa_key(cose_alg::kRS256, n, hex("01"))).has_value());      // e = 1
  EXPECT_FALSE(CoseKey::decode(rsa_key(cose_alg::kRS256, n, {})).has_value());
  EXPECT_FALSE(CoseKey::decode(cose_map({{1, cint(3)}, {3, cint(-257)}, {-1, cbytes(n)}, {-2, cbytes(e)},
                                         {-3, cbytes(Bytes(256, 1))}}))
                   .has_value());  // private exponent present
  Bytes even_n = n;
  even_n.back() &= 0xFE;
  EXPECT_FALSE(CoseKey::decode(rsa_key(cose_alg::kRS256, even_n, e)).has_value());
}

TEST(CoseKey, RsaRefusesSmallAndHugeModuli) {
  Pkey k = gen_rsa(1024);
  ASSERT_TRUE(k);
  const Bytes n = bn_param(k.get(), OSSL_PKEY_PARAM_RSA_N);
  const Bytes e = bn_param(k.get(), OSSL_PKEY_PARAM_RSA_E);
  auto cose = CoseKey::decode(rsa_key(cose_alg::kRS256, n, e));
  ASSERT_FALSE(cose.has_value());
  EXPECT_EQ(cose.error().ts_error_code, "auth_invalid_key_type");
  EXPECT_FALSE(CoseKey::from_spki(spki(k.get()), cose_alg::kRS256).has_value());
  Bytes huge(513, 0xFF);  // 4104 bits
  EXPECT_FALSE(CoseKey::decode(rsa_key(cose_alg::kRS256, huge, e)).has_value());
}

TEST(CoseKey, FromSpkiChecksTheAlgorithm) {
  Pkey p256 = gen_ec("P-256");
  Pkey p384 = gen_ec("P-384");
  Pkey rsa = gen_rsa(2048);
  Pkey ed = gen_raw("ED25519");
  Pkey ed448 = gen_raw("ED448");
  const Bytes p256_der = spki(p256.get());
  auto ok = CoseKey::from_spki(p256_der, cose_alg::kES256);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->spki_der(), p256_der);
  EXPECT_TRUE(ok->cose_bytes().empty());
  EXPECT_EQ(ok->alg(), cose_alg::kES256);
  for (int64_t alg : {cose_alg::kES384, cose_alg::kES512, cose_alg::kEdDSA, cose_alg::kRS256, cose_alg::kPS256,
                      cose_alg::kRS1, int64_t{0}, int64_t{-999}}) {
    EXPECT_FALSE(CoseKey::from_spki(p256_der, alg).has_value()) << alg;
  }
  EXPECT_TRUE(CoseKey::from_spki(spki(p384.get()), cose_alg::kES384).has_value());
  EXPECT_FALSE(CoseKey::from_spki(spki(p384.get()), cose_alg::kES256).has_value());
  EXPECT_FALSE(CoseKey::from_spki(spki(rsa.get()), cose_alg::kES256).has_value());
  EXPECT_FALSE(CoseKey::from_spki(spki(rsa.get()), cose_alg::kEdDSA).has_value());
  EXPECT_TRUE(CoseKey::from_spki(spki(ed.get()), cose_alg::kEdDSA).has_value());
  EXPECT_FALSE(CoseKey::from_spki(spki(ed.get()), cose_alg::kES256).has_value());
  EXPECT_FALSE(CoseKey::from_spki(spki(ed.get()), -53).has_value());
  EXPECT_TRUE(CoseKey::from_spki(spki(ed448.get()), cose_alg::kEdDSA).has_value());
  EXPECT_FALSE(CoseKey::from_spki(spki(ed448.get()), -19).has_value());
  EXPECT_FALSE(CoseKey::from_spki(spki(ed448.get()), cose_alg::kRS256).has_value());
  // Trailing bytes, truncation, empty.
  Bytes trailing = p256_der;
  trailing.push_back(0);
  EXPECT_FALSE(CoseKey::from_spki(trailing, cose_alg::kES256).has_value());
  EXPECT_FALSE(CoseKey::from_spki(ByteView(p256_der).first(p256_der.size() - 1), cose_alg::kES256).has_value());
  EXPECT_FALSE(CoseKey::from_spki({}, cose_alg::kES256).has_value());
}

// CONVENTIONS.md: verifying with key A then key B on the same thread must never verify B's input under A.
TEST(CoseKey, InterleavedKeysDoNotShareState) {
  Pkey a = gen_ec("P-256");
  Pkey b = gen_ec("P-256");
  auto key_a = CoseKey::from_spki(spki(a.get()), cose_alg::kES256);
  auto key_b = CoseKey::from_spki(spki(b.get()), cose_alg::kES256);
  ASSERT_TRUE(key_a && key_b);
  const Bytes msg = hex("abcdef");
  const Bytes sig_a = sign(a.get(), "SHA256", msg);
  const Bytes sig_b = sign(b.get(), "SHA256", msg);
  EXPECT_TRUE(key_a->verify(msg, sig_a));
  EXPECT_FALSE(key_b->verify(msg, sig_a));
  EXPECT_TRUE(key_b->verify(msg, sig_b));
  EXPECT_FALSE(key_a->verify(msg, sig_b));
}

TEST(CoseKey, CopiesShareTheImmutableKey) {
  Pkey a = gen_raw("ED25519");
  auto key = CoseKey::decode(okp_key(cose_alg::kEdDSA, 6, raw_pub(a.get())));
  ASSERT_TRUE(key.has_value());
  const CoseKey copy = *key;
  const Bytes msg = hex("01");
  EXPECT_TRUE(copy.verify(msg, sign(a.get(), nullptr, msg)));
  EXPECT_EQ(copy.cose_bytes(), key->cose_bytes());
}

// Coordinates that are not below the field prime are refused (EC_POINT_oct2point), for every curve and
// through both COSE and SPKI; and an off-curve point in a canonical SPKI (the import fast path) too.
TEST(CoseKey, Ec2RefusesCoordinatesOutOfRangeAndOffCurveSpki) {
  for (const auto& c : kEcCases) {
    Pkey k = gen_ec(c.curve);
    const Bytes pt = ec_point(k.get());
    const ByteView x = ByteView(pt).subspan(1, c.coord);
    const ByteView y = ByteView(pt).subspan(1 + c.coord);
    const Bytes ones(c.coord, 0xFF);
    EXPECT_FALSE(CoseKey::decode(ec2_key(c.alg, c.crv, ones, y)).has_value()) << c.curve;
    EXPECT_FALSE(CoseKey::decode(ec2_key(c.alg, c.crv, x, ones)).has_value()) << c.curve;
    Bytes der = spki(k.get());
    ASSERT_TRUE(CoseKey::from_spki(der, c.alg).has_value()) << c.curve;
    der.back() ^= 0x01;
    EXPECT_FALSE(CoseKey::from_spki(der, c.alg).has_value()) << c.curve;
  }
}

std::string hex_of(ByteView b) {
  static const char* const kDigits = "0123456789abcdef";
  std::string out;
  for (const uint8_t v : b) {
    out.push_back(kDigits[v >> 4]);
    out.push_back(kDigits[v & 15]);
  }
  return out;
}

// Reference for the strict DER check: d2i_ECDSA_SIG consumes everything, i2d_ECDSA_SIG re-encodes it
// identically, and r, s are in [1, n-1].
bool openssl_strict_der(ByteView sig, const BIGNUM* order) {
  const unsigned char* p = sig.data();
  ECDSA_SIG* parsed = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  if (parsed == nullptr) return false;
  bool ok = p == sig.data() + sig.size();
  unsigned char* der = nullptr;
  const int len = ok ? i2d_ECDSA_SIG(parsed, &der) : 0;
  ok = ok && len > 0 && static_cast<size_t>(len) == sig.size() && std::memcmp(der, sig.data(), sig.size()) == 0;
  OPENSSL_free(der);
  if (ok) {
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(parsed, &r, &s);
    for (const BIGNUM* v : {r, s}) ok = ok && !BN_is_negative(v) && !BN_is_zero(v) && BN_cmp(v, order) < 0;
  }
  ECDSA_SIG_free(parsed);
  return ok;
}

// The byte-level strict DER parser agrees with OpenSSL on every one-byte change, truncation and extension of
// real signatures of each curve (P-521 signatures use the 0x81 long length form), and on hand-made edge cases.
TEST(EcdsaDer, StrictParserAgreesWithOpenSslOnMutations) {
  const struct {
    const char* curve;
    int nid;
    const char* md;
  } curves[] = {{"P-256", NID_X9_62_prime256v1, "SHA256"},
                {"P-384", NID_secp384r1, "SHA384"},
                {"P-521", NID_secp521r1, "SHA512"}};
  const Bytes msg = hex("0badc0de");
  int checked = 0;
  for (const auto& c : curves) {
    EC_GROUP* group = EC_GROUP_new_by_curve_name(c.nid);
    ASSERT_NE(group, nullptr);
    const BIGNUM* order = EC_GROUP_get0_order(group);
    Bytes order_bytes(static_cast<size_t>(BN_num_bytes(order)));
    BN_bn2bin(order, order_bytes.data());
    Pkey k = gen_ec(c.curve);
    std::vector<Bytes> inputs;
    for (int i = 0; i < 4; ++i) inputs.push_back(sign(k.get(), c.md, msg));
    // r = n - 1 and s = 1, r = n, s = n: edge values of the range check; negative, zero and padded values.
    inputs.push_back(hex("3006020101020101"));
    inputs.push_back(hex("30060201ff020101"));
    inputs.push_back(hex("3006020100020101"));
    inputs.push_back(hex("300702020001020101"));
    inputs.push_back(hex("30070202ff80020101"));
    inputs.push_back(hex("3007020200800201ff"));
    {
      BIGNUM* n_minus_1 = BN_dup(order);
      BN_sub_word(n_minus_1, 1);
      BIGNUM* one = BN_new();
      BN_one(one);
      for (const auto& [r, s] : std::vector<std::pair<const BIGNUM*, const BIGNUM*>>{
               {n_minus_1, one}, {order, one}, {one, order}, {n_minus_1, n_minus_1}}) {
        ECDSA_SIG* sig = ECDSA_SIG_new();
        ECDSA_SIG_set0(sig, BN_dup(r), BN_dup(s));
        unsigned char* der = nullptr;
        const int len = i2d_ECDSA_SIG(sig, &der);
        EXPECT_GT(len, 0);
        if (len > 0) inputs.emplace_back(der, der + len);
        OPENSSL_free(der);
        ECDSA_SIG_free(sig);
      }
      BN_free(n_minus_1);
      BN_free(one);
    }
    const size_t base = inputs.size();
    for (size_t b = 0; b < base; ++b) {
      const Bytes sig = inputs[b];
      for (size_t i = 0; i < sig.size(); ++i) {
        for (const int v : {0x00, 0x01, 0x02, 0x30, 0x7F, 0x80, 0x81, 0x82, 0xFF, sig[i] ^ 0x01, sig[i] ^ 0x80}) {
          Bytes m = sig;
          m[i] = static_cast<uint8_t>(v);
          inputs.push_back(std::move(m));
        }
        inputs.emplace_back(sig.begin(), sig.begin() + static_cast<ptrdiff_t>(i));  // truncations
      }
      Bytes longer = sig;
      longer.push_back(0);
      inputs.push_back(longer);
    }
    for (const Bytes& in : inputs) {
      const bool expected = openssl_strict_der(in, order);
      ERR_clear_error();
      EXPECT_EQ(internal::ecdsa_der_is_strict(in, order_bytes, 200), expected) << c.curve << " " << hex_of(in);
      ++checked;
    }
    EC_GROUP_free(group);
  }
  EXPECT_GT(checked, 3000);
}

// Each key keeps its own pool of verify contexts: many threads (more than a pool keeps) interleave keys of
// every pooled algorithm, and a signature never verifies under a neighbour key, nor fails under its own.
TEST(CoseKey, PooledContextsNeverCrossKeysAcrossThreads) {
  struct Case {
    CoseKey key;
    Bytes sig;
  };
  const Bytes msg = hex("5a5a5a");
  std::vector<Case> cases;
  const auto add = [&](Pkey k, int64_t alg, const char* md, int padding = 0, int salt = RSA_PSS_SALTLEN_DIGEST) {
    auto key = CoseKey::from_spki(spki(k.get()), alg);
    ASSERT_TRUE(key.has_value()) << alg;
    cases.push_back({*key, sign(k.get(), md, msg, padding, salt)});
  };
  for (int i = 0; i < 3; ++i) add(gen_ec("P-256"), cose_alg::kES256, "SHA256");
  add(gen_ec("P-384"), cose_alg::kES384, "SHA384");
  Pkey rsa_a = gen_rsa(2048);
  Pkey rsa_b = gen_rsa(2048);
  add(Pkey(EVP_PKEY_dup(rsa_a.get())), cose_alg::kRS256, "SHA256", RSA_PKCS1_PADDING);
  add(Pkey(EVP_PKEY_dup(rsa_b.get())), cose_alg::kRS256, "SHA256", RSA_PKCS1_PADDING);
  add(Pkey(EVP_PKEY_dup(rsa_a.get())), cose_alg::kPS256, "SHA256", RSA_PKCS1_PSS_PADDING, 32);
  constexpr int kThreads = 12;
  constexpr int kIterations = 60;
  std::atomic<int> wrong_accepts{0};
  std::atomic<int> wrong_rejects{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (int i = 0; i < kIterations; ++i) {
        const size_t own = static_cast<size_t>(i + t) % cases.size();
        const size_t other = (own + 1 + static_cast<size_t>(t) % (cases.size() - 1)) % cases.size();
        if (!cases[own].key.verify(msg, cases[own].sig)) ++wrong_rejects;
        if (cases[other].key.verify(msg, cases[own].sig)) ++wrong_accepts;
        // A copy shares the key's pool and behaves the same.
        const CoseKey copy = cases[own].key;
        if (!copy.verify(msg, cases[own].sig)) ++wrong_rejects;
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong_accepts.load(), 0);
  EXPECT_EQ(wrong_rejects.load(), 0);
  // On one thread, after all that: A, then B, then A's signature under B, and the reverse.
  EXPECT_TRUE(cases[0].key.verify(msg, cases[0].sig));
  EXPECT_FALSE(cases[1].key.verify(msg, cases[0].sig));
  EXPECT_TRUE(cases[1].key.verify(msg, cases[1].sig));
  EXPECT_FALSE(cases[0].key.verify(msg, cases[1].sig));
  // The RS256 and PS256 keys share a modulus; their pools are set up for different paddings.
  EXPECT_FALSE(cases[4].key.verify(msg, cases[6].sig));
  EXPECT_FALSE(cases[6].key.verify(msg, cases[4].sig));
}

}  // namespace
}  // namespace sigil::crypto
