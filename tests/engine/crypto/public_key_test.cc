// Key parsing (SPKI, PKCS#1, raw point), signature strictness, and the OpenSSL 3.0 context-reuse regression.
#include "engine/crypto/public_key.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "engine/crypto/digest.h"

namespace sigil::crypto {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

PkeyPtr gen_ec(const char* curve) {
  PkeyPtr k(EVP_EC_gen(curve));
  SIGIL_CHECK(k != nullptr);
  return k;
}

PkeyPtr gen_rsa(unsigned bits) {
  PkeyPtr k(EVP_RSA_gen(bits));
  SIGIL_CHECK(k != nullptr);
  return k;
}

// Key generation is slow enough to share one RSA-2048 key between tests.
EVP_PKEY* shared_rsa2048() {
  static EVP_PKEY* const k = gen_rsa(2048).release();
  return k;
}

Bytes spki_of(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(k, &der);
  SIGIL_CHECK(len > 0);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Bytes pkcs1_of(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  const int len = i2d_PublicKey(k, &der);
  SIGIL_CHECK(len > 0);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Bytes raw_point_of(EVP_PKEY* k) {
  Bytes out(65);
  size_t len = 0;
  SIGIL_CHECK(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, out.data(), out.size(), &len) == 1);
  out.resize(len);
  return out;
}

Bytes sign_with(EVP_PKEY* k, ByteView msg) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  SIGIL_CHECK(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, k) == 1);
  SIGIL_CHECK(EVP_DigestSign(ctx.get(), nullptr, &len, msg.data(), msg.size()) == 1);
  Bytes sig(len);
  SIGIL_CHECK(EVP_DigestSign(ctx.get(), sig.data(), &len, msg.data(), msg.size()) == 1);
  sig.resize(len);
  return sig;
}

// DER ECDSA-Sig-Value from raw big-endian r and s (OpenSSL encodes minimally).
Bytes ecdsa_der(const BIGNUM* r, const BIGNUM* s) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  SIGIL_CHECK(ECDSA_SIG_set0(sig, BN_dup(r), BN_dup(s)) == 1);
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  SIGIL_CHECK(len > 0);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

void expect_error(const Result<PublicKey>& r, const char* ts_code) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().ts_error_code, ts_code);
}

constexpr const char* kEncoding = "auth_invalid_key_encoding";
constexpr const char* kType = "auth_invalid_key_type";
const Bytes kMsg = {'h', 'e', 'l', 'l', 'o'};

// ---- Parsing ----

TEST(PublicKey, ParsesEcSpkiAndKeepsCanonicalDer) {
  auto k = gen_ec("P-256");
  const Bytes spki = spki_of(k.get());
  auto pub = PublicKey::from_spki_der(spki);
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->type(), KeyType::kEcP256);
  EXPECT_EQ(pub->bits(), 256);
  EXPECT_EQ(pub->spki_der(), spki);
  EXPECT_NE(pub->native_handle(), nullptr);
}

TEST(PublicKey, ParsesRsaSpkiAndKeepsCanonicalDer) {
  const Bytes spki = spki_of(shared_rsa2048());
  auto pub = PublicKey::from_spki_der(spki);
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->type(), KeyType::kRsa);
  EXPECT_EQ(pub->bits(), 2048);
  EXPECT_EQ(pub->spki_der(), spki);
}

TEST(PublicKey, ParsesPkcs1RsaPublicKeyIntoSpki) {
  auto pub = PublicKey::from_pkcs1_rsa_der(pkcs1_of(shared_rsa2048()));
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->type(), KeyType::kRsa);
  EXPECT_EQ(pub->spki_der(), spki_of(shared_rsa2048()));
}

TEST(PublicKey, ParsesRawUncompressedPoint) {
  auto k = gen_ec("P-256");
  const Bytes point = raw_point_of(k.get());
  ASSERT_EQ(point.size(), 65u);
  auto pub = PublicKey::from_x962_p256(point);
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->type(), KeyType::kEcP256);
  EXPECT_EQ(pub->spki_der(), spki_of(k.get()));
  // And it verifies what the private key signed.
  EXPECT_TRUE(pub->verify(kMsg, sign_with(k.get(), kMsg)));
}

TEST(PublicKey, ParseAnyDetectsEachEncoding) {
  auto ec = gen_ec("P-256");
  auto a = PublicKey::parse_any(spki_of(ec.get()));
  auto b = PublicKey::parse_any(raw_point_of(ec.get()));
  auto c = PublicKey::parse_any(pkcs1_of(shared_rsa2048()));
  auto d = PublicKey::parse_any(spki_of(shared_rsa2048()));
  ASSERT_TRUE(a && b && c && d);
  EXPECT_EQ(a->spki_der(), b->spki_der());
  EXPECT_EQ(c->spki_der(), d->spki_der());
  EXPECT_EQ(c->type(), KeyType::kRsa);
}

TEST(PublicKey, CanonicalisesCompressedEcSpkiToUncompressed) {
  auto k = gen_ec("P-256");
  const Bytes uncompressed = spki_of(k.get());
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(k.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                           OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED),
            1);
  const Bytes compressed = spki_of(k.get());
  ASSERT_LT(compressed.size(), uncompressed.size());
  auto pub = PublicKey::from_spki_der(compressed);
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->spki_der(), uncompressed);
}

TEST(PublicKey, RejectsOffCurvePoint) {
  auto k = gen_ec("P-256");
  Bytes point = raw_point_of(k.get());
  point.back() ^= 0x01;  // flip a bit of Y: (X, Y') is not on the curve
  expect_error(PublicKey::from_x962_p256(point), kEncoding);
  expect_error(PublicKey::parse_any(point), kEncoding);
  Bytes spki = spki_of(k.get());
  spki.back() ^= 0x01;
  expect_error(PublicKey::from_spki_der(spki), kEncoding);
}

TEST(PublicKey, RejectsRawPointWithWrongPrefixOrLength) {
  auto k = gen_ec("P-256");
  Bytes point = raw_point_of(k.get());
  Bytes hybrid = point;
  hybrid[0] = 0x06;
  expect_error(PublicKey::from_x962_p256(hybrid), kEncoding);
  expect_error(PublicKey::from_x962_p256(ByteView(point).first(64)), kEncoding);
  Bytes longer = point;
  longer.push_back(0);
  expect_error(PublicKey::from_x962_p256(longer), kEncoding);
  expect_error(PublicKey::from_x962_p256(Bytes(65, 0)), kEncoding);
  Bytes zero_point(65, 0);
  zero_point[0] = 0x04;
  expect_error(PublicKey::from_x962_p256(zero_point), kEncoding);
}

TEST(PublicKey, RejectsP384KeyAsKeyType) {
  auto k = gen_ec("P-384");
  expect_error(PublicKey::from_spki_der(spki_of(k.get())), kType);
  expect_error(PublicKey::parse_any(spki_of(k.get())), kType);
}

TEST(PublicKey, RejectsRsa1024AsKeyType) {
  auto k = gen_rsa(1024);
  expect_error(PublicKey::from_spki_der(spki_of(k.get())), kType);
  expect_error(PublicKey::from_pkcs1_rsa_der(pkcs1_of(k.get())), kType);
  expect_error(PublicKey::parse_any(pkcs1_of(k.get())), kType);
}

// An RSA public key with the modulus of a real key and the given exponent.
Bytes rsa_spki_with_exponent(unsigned long e) {
  BIGNUM* n = nullptr;
  SIGIL_CHECK(EVP_PKEY_get_bn_param(shared_rsa2048(), OSSL_PKEY_PARAM_RSA_N, &n) == 1);
  BIGNUM* e_bn = BN_new();
  SIGIL_CHECK(BN_set_word(e_bn, e) == 1);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  SIGIL_CHECK(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1);
  SIGIL_CHECK(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e_bn) == 1);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* k = nullptr;
  SIGIL_CHECK(EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) == 1);
  Bytes spki = spki_of(k);
  EVP_PKEY_free(k);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(e_bn);
  BN_free(n);
  return spki;
}

TEST(PublicKey, RejectsRsaEvenOrTooSmallExponentAsKeyType) {
  expect_error(PublicKey::from_spki_der(rsa_spki_with_exponent(1)), kType);
  expect_error(PublicKey::from_spki_der(rsa_spki_with_exponent(65536)), kType);
  EXPECT_TRUE(PublicKey::from_spki_der(rsa_spki_with_exponent(3)));
}

TEST(PublicKey, RejectsEd25519AsKeyType) {
  PkeyPtr k(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  ASSERT_TRUE(k);
  expect_error(PublicKey::from_spki_der(spki_of(k.get())), kType);
}

TEST(PublicKey, RejectsTruncatedDer) {
  auto k = gen_ec("P-256");
  const Bytes spki = spki_of(k.get());
  for (size_t len : {size_t{0}, size_t{1}, size_t{2}, spki.size() / 2, spki.size() - 1}) {
    expect_error(PublicKey::from_spki_der(ByteView(spki).first(len)), kEncoding);
    expect_error(PublicKey::parse_any(ByteView(spki).first(len)), kEncoding);
  }
  const Bytes pkcs1 = pkcs1_of(shared_rsa2048());
  expect_error(PublicKey::from_pkcs1_rsa_der(ByteView(pkcs1).first(pkcs1.size() - 1)), kEncoding);
}

TEST(PublicKey, RejectsTrailingBytes) {
  auto k = gen_ec("P-256");
  for (Bytes der : {spki_of(k.get()), spki_of(shared_rsa2048())}) {
    der.push_back(0x00);
    expect_error(PublicKey::from_spki_der(der), kEncoding);
    expect_error(PublicKey::parse_any(der), kEncoding);
  }
  Bytes pkcs1 = pkcs1_of(shared_rsa2048());
  pkcs1.push_back(0x00);
  expect_error(PublicKey::from_pkcs1_rsa_der(pkcs1), kEncoding);
}

TEST(PublicKey, RejectsBerLongFormLength) {
  auto k = gen_ec("P-256");
  const Bytes spki = spki_of(k.get());
  ASSERT_EQ(spki[0], 0x30);
  ASSERT_LT(spki[1], 0x80);  // short form in DER: 0x59
  Bytes ber = {0x30, 0x81, spki[1]};
  ber.insert(ber.end(), spki.begin() + 2, spki.end());
  expect_error(PublicKey::from_spki_der(ber), kEncoding);
  expect_error(PublicKey::parse_any(ber), kEncoding);
}

TEST(PublicKey, RejectsGarbage) {
  const Bytes garbage = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
  expect_error(PublicKey::from_spki_der(garbage), kEncoding);
  expect_error(PublicKey::from_pkcs1_rsa_der(garbage), kEncoding);
  expect_error(PublicKey::parse_any(garbage), kEncoding);
  expect_error(PublicKey::parse_any({}), kEncoding);
  expect_error(PublicKey::parse_any(Bytes(300, 0x30)), kEncoding);
}

// ---- ECDSA verification ----

struct EcFixture {
  PkeyPtr priv = gen_ec("P-256");
  PublicKey pub = *PublicKey::from_spki_der(spki_of(priv.get()));
  Bytes sig = sign_with(priv.get(), kMsg);
};

TEST(EcdsaVerify, AcceptsValidDerSignature) {
  EcFixture f;
  EXPECT_TRUE(f.pub.verify(kMsg, f.sig));
  const auto digest = sha256(kMsg);
  EXPECT_TRUE(f.pub.verify_digest(digest, f.sig));
}

TEST(EcdsaVerify, RejectsWrongMessageAndWrongDigestLength) {
  EcFixture f;
  EXPECT_FALSE(f.pub.verify(as_bytes("hellp"), f.sig));
  const auto digest = sha256(kMsg);
  EXPECT_FALSE(f.pub.verify_digest(ByteView(digest).first(31), f.sig));
  EXPECT_FALSE(f.pub.verify(kMsg, {}));
}

TEST(EcdsaVerify, RejectsTrailingByte) {
  EcFixture f;
  Bytes sig = f.sig;
  sig.push_back(0x00);
  EXPECT_FALSE(f.pub.verify(kMsg, sig));
}

TEST(EcdsaVerify, RejectsBerLongFormLength) {
  EcFixture f;
  ASSERT_EQ(f.sig[0], 0x30);
  ASSERT_LT(f.sig[1], 0x80);
  // Outer SEQUENCE length in long form.
  Bytes ber = {0x30, 0x81, f.sig[1]};
  ber.insert(ber.end(), f.sig.begin() + 2, f.sig.end());
  EXPECT_FALSE(f.pub.verify(kMsg, ber));
  // First INTEGER length in long form.
  Bytes ber_int = {0x30, static_cast<uint8_t>(f.sig[1] + 1), 0x02, 0x81};
  ber_int.insert(ber_int.end(), f.sig.begin() + 3, f.sig.end());
  EXPECT_FALSE(f.pub.verify(kMsg, ber_int));
}

TEST(EcdsaVerify, RejectsNonMinimalIntegerPadding) {
  EcFixture f;
  // 30 L 02 rl r.. 02 sl s..  ->  30 L+1 02 rl+1 00 r.. 02 sl s..  (valid BER, not DER)
  ASSERT_EQ(f.sig[2], 0x02);
  const uint8_t rl = f.sig[3];
  Bytes padded = {0x30, static_cast<uint8_t>(f.sig[1] + 1), 0x02, static_cast<uint8_t>(rl + 1), 0x00};
  padded.insert(padded.end(), f.sig.begin() + 4, f.sig.end());
  EXPECT_FALSE(f.pub.verify(kMsg, padded));
}

TEST(EcdsaVerify, RejectsZeroRAndS) {
  EcFixture f;
  const Bytes zero = {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00};
  EXPECT_FALSE(f.pub.verify(kMsg, zero));
}

TEST(EcdsaVerify, RejectsOutOfRangeScalarsAndAcceptsHighS) {
  EcFixture f;
  const unsigned char* p = f.sig.data();
  ECDSA_SIG* parsed = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(f.sig.size()));
  ASSERT_NE(parsed, nullptr);
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(parsed, &r, &s);
  EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  const BIGNUM* n = EC_GROUP_get0_order(group);
  BIGNUM* r_plus_n = BN_new();
  BIGNUM* neg_s = BN_new();
  BN_add(r_plus_n, r, n);
  BN_sub(neg_s, n, s);  // n - s: the other valid signature (high/low S)
  EXPECT_FALSE(f.pub.verify(kMsg, ecdsa_der(r_plus_n, s))) << "r + n must not be reduced mod n";
  EXPECT_FALSE(f.pub.verify(kMsg, ecdsa_der(r, n))) << "s == n";
  EXPECT_TRUE(f.pub.verify(kMsg, ecdsa_der(r, neg_s))) << "high-S is accepted by policy";
  // s = -1 (02 01 FF): OpenSSL will not encode a negative INTEGER, so splice it in by hand.
  const Bytes r_only = ecdsa_der(r, BN_value_one());  // 30 L <r TLV> 02 01 01
  Bytes negative(r_only.begin(), r_only.end());
  negative.back() = 0xFF;
  EXPECT_FALSE(f.pub.verify(kMsg, negative));
  BN_free(r_plus_n);
  BN_free(neg_s);
  EC_GROUP_free(group);
  ECDSA_SIG_free(parsed);
}

// ---- RSA verification ----

TEST(RsaVerify, AcceptsValidPkcs1Signature) {
  auto pub = PublicKey::from_spki_der(spki_of(shared_rsa2048()));
  ASSERT_TRUE(pub);
  const Bytes sig = sign_with(shared_rsa2048(), kMsg);
  EXPECT_EQ(sig.size(), 256u);
  EXPECT_TRUE(pub->verify(kMsg, sig));
  EXPECT_FALSE(pub->verify(as_bytes("other"), sig));
}

TEST(RsaVerify, RejectsWrongLengthSignature) {
  auto pub = PublicKey::from_spki_der(spki_of(shared_rsa2048()));
  ASSERT_TRUE(pub);
  const Bytes sig = sign_with(shared_rsa2048(), kMsg);
  Bytes longer = {0x00};  // same integer value, one byte longer
  longer.insert(longer.end(), sig.begin(), sig.end());
  EXPECT_FALSE(pub->verify(kMsg, longer));
  EXPECT_FALSE(pub->verify(kMsg, ByteView(sig).first(sig.size() - 1)));
  EXPECT_FALSE(pub->verify(kMsg, {}));
  Bytes flipped = sig;
  flipped[100] ^= 0x01;
  EXPECT_FALSE(pub->verify(kMsg, flipped));
}

TEST(RsaVerify, RejectsPssSignatureUnderPkcs1Policy) {
  auto pub = PublicKey::from_spki_der(spki_of(shared_rsa2048()));
  ASSERT_TRUE(pub);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  ASSERT_EQ(EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, shared_rsa2048()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
  size_t len = 256;
  Bytes sig(len);
  ASSERT_EQ(EVP_DigestSign(ctx.get(), sig.data(), &len, kMsg.data(), kMsg.size()), 1);
  EXPECT_FALSE(pub->verify(kMsg, sig));
}

TEST(Verify, KeyTypeFixesTheAlgorithm) {
  EcFixture ec;
  auto rsa = PublicKey::from_spki_der(spki_of(shared_rsa2048()));
  ASSERT_TRUE(rsa);
  EXPECT_FALSE(rsa->verify(kMsg, ec.sig));
  EXPECT_FALSE(ec.pub.verify(kMsg, sign_with(shared_rsa2048(), kMsg)));
}

// ---- OpenSSL 3.0 context-reuse pitfall (CONVENTIONS.md) ----

TEST(VerifyContext, KeyBNeverVerifiesWithKeyAOnTheSameThread) {
  EcFixture a;
  EcFixture b;
  EXPECT_TRUE(a.pub.verify(kMsg, a.sig));
  EXPECT_FALSE(b.pub.verify(kMsg, a.sig)) << "A's signature passed under B: a context kept key A";
  EXPECT_TRUE(b.pub.verify(kMsg, b.sig));
  EXPECT_FALSE(a.pub.verify(kMsg, b.sig));
}

TEST(VerifyContext, InterleavedKeysAcrossThreadsNeverCrossVerify) {
  constexpr int kKeys = 4;
  constexpr int kIterations = 1000;
  constexpr int kThreads = 3;
  std::vector<EcFixture> ec(kKeys);
  auto rsa = PublicKey::from_spki_der(spki_of(shared_rsa2048()));
  ASSERT_TRUE(rsa);
  const Bytes rsa_sig = sign_with(shared_rsa2048(), kMsg);
  std::atomic<int> wrong_accepts{0};
  std::atomic<int> wrong_rejects{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        const auto& own = ec[static_cast<size_t>((i + t) % kKeys)];
        const auto& other = ec[static_cast<size_t>((i + t + 1) % kKeys)];
        if (!own.pub.verify(kMsg, own.sig)) ++wrong_rejects;
        if (other.pub.verify(kMsg, own.sig)) ++wrong_accepts;
        if (i % 50 == 0) {
          if (!rsa->verify(kMsg, rsa_sig)) ++wrong_rejects;
          if (own.pub.verify(kMsg, rsa_sig)) ++wrong_accepts;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong_accepts.load(), 0);
  EXPECT_EQ(wrong_rejects.load(), 0);
}

}  // namespace
}  // namespace sigil::crypto
