#include "engine/crypto/signing_key.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <thread>
#include <vector>

#include "engine/crypto/digest.h"
#include "engine/crypto/internal/ecdsa_der.h"

namespace sigil::crypto {
namespace {

const Bytes kMsg = {'s', 'i', 'g', 'i', 'l'};

Bytes jose_to_der(ByteView jose) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  SIGIL_CHECK(ECDSA_SIG_set0(sig, BN_bin2bn(jose.data(), 32, nullptr), BN_bin2bn(jose.data() + 32, 32, nullptr)) ==
              1);
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  SIGIL_CHECK(len > 0);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

Bytes pkcs8_of(EVP_PKEY* k) {
  PKCS8_PRIV_KEY_INFO* info = EVP_PKEY2PKCS8(k);
  SIGIL_CHECK(info != nullptr);
  unsigned char* der = nullptr;
  const int len = i2d_PKCS8_PRIV_KEY_INFO(info, &der);
  SIGIL_CHECK(len > 0);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  PKCS8_PRIV_KEY_INFO_free(info);
  return out;
}

TEST(SigningKey, GeneratesP256KeyWhoseDerSignaturesVerify) {
  auto key = SigningKey::generate_p256();
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->public_key().type(), KeyType::kEcP256);
  auto sig = key->sign_es256_der(kMsg);
  ASSERT_TRUE(sig);
  EXPECT_TRUE(key->public_key().verify(kMsg, *sig));
  EXPECT_FALSE(key->public_key().verify(as_bytes("other"), *sig));
}

TEST(SigningKey, JoseSignatureIs64BytesAndVerifiesAsDer) {
  auto key = SigningKey::generate_p256();
  ASSERT_TRUE(key);
  // Repeat: r or s with a leading zero byte (1/256 each) must still be left-padded to 32.
  for (int i = 0; i < 64; ++i) {
    auto jose = key->sign_es256_jose(kMsg);
    ASSERT_TRUE(jose);
    ASSERT_EQ(jose->size(), 64u);
    EXPECT_TRUE(key->public_key().verify(kMsg, jose_to_der(*jose)));
  }
}

TEST(SigningKey, CoordinatesMatchThePublicPoint) {
  auto key = SigningKey::generate_p256();
  ASSERT_TRUE(key);
  ASSERT_EQ(key->x().size(), 32u);
  ASSERT_EQ(key->y().size(), 32u);
  // The SPKI of a P-256 key ends with 04 || X || Y.
  const Bytes& spki = key->public_key().spki_der();
  const Bytes tail(spki.end() - 64, spki.end());
  Bytes xy = key->x();
  xy.insert(xy.end(), key->y().begin(), key->y().end());
  EXPECT_EQ(tail, xy);
  EXPECT_EQ(*(spki.end() - 65), 0x04);
}

TEST(SigningKey, Pkcs8RoundTripKeepsTheKey) {
  auto key = SigningKey::generate_p256();
  ASSERT_TRUE(key);
  Bytes der = key->pkcs8_der();
  auto restored = SigningKey::from_pkcs8_der(der);
  wipe(der);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(restored->public_key().spki_der(), key->public_key().spki_der());
  EXPECT_EQ(restored->x(), key->x());
  auto sig = restored->sign_es256_der(kMsg);
  ASSERT_TRUE(sig);
  EXPECT_TRUE(key->public_key().verify(kMsg, *sig));
}

TEST(SigningKey, RejectsMalformedPkcs8) {
  auto key = SigningKey::generate_p256();
  ASSERT_TRUE(key);
  Bytes der = key->pkcs8_der();
  Bytes trailing = der;
  trailing.push_back(0);
  EXPECT_FALSE(SigningKey::from_pkcs8_der(trailing));
  EXPECT_FALSE(SigningKey::from_pkcs8_der(ByteView(der).first(der.size() - 1)));
  EXPECT_FALSE(SigningKey::from_pkcs8_der({}));
  EXPECT_FALSE(SigningKey::from_pkcs8_der(Bytes{0x30, 0x03, 0x02, 0x01, 0x00}));
  // The SPKI is not a private key.
  EXPECT_FALSE(SigningKey::from_pkcs8_der(key->public_key().spki_der()));
  wipe(der);
}

TEST(SigningKey, RejectsOtherCurvesAndKeyTypes) {
  EVP_PKEY* p384 = EVP_EC_gen("P-384");
  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_TRUE(p384 && ed);
  for (EVP_PKEY* k : {p384, ed}) {
    auto r = SigningKey::from_pkcs8_der(pkcs8_of(k));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().ts_error_code, "auth_invalid_key_type");
  }
  EVP_PKEY_free(p384);
  EVP_PKEY_free(ed);
}

TEST(SigningKey, SignsConcurrentlyFromManyThreads) {
  auto key = SigningKey::generate_p256();
  ASSERT_TRUE(key);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        auto sig = key->sign_es256_jose(kMsg);
        if (!sig || !key->public_key().verify(kMsg, jose_to_der(*sig))) ++failures[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

// Each key signs with its own pre-initialised contexts (internal/pkey_ctx_pool.h): threads interleaving
// keys never get a signature made with a neighbour's key (the OpenSSL 3.0 context re-init pitfall).
TEST(SigningKey, InterleavedKeysNeverSignWithANeighboursContext) {
  std::vector<SigningKey> keys;
  for (int i = 0; i < 8; ++i) {
    auto k = SigningKey::generate_p256();
    ASSERT_TRUE(k);
    keys.push_back(*k);
  }
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < 200; ++i) {
        const size_t k = (i + t) % keys.size();
        const SigningKey& own = keys[k];
        const SigningKey& neighbour = keys[(k + 1) % keys.size()];
        auto jose = own.sign_es256_jose(kMsg);
        auto der = own.sign_es256_der(kMsg);
        if (!jose || !der) {
          ++failures[t];
          continue;
        }
        const Bytes from_jose = jose_to_der(*jose);
        if (!own.public_key().verify(kMsg, from_jose) || !own.public_key().verify(kMsg, *der)) ++failures[t];
        if (neighbour.public_key().verify(kMsg, from_jose) || neighbour.public_key().verify(kMsg, *der)) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

// DER -> r || s: short scalars are left-padded, and anything that is not strict DER with r, s in
// [1, n-1] is refused rather than converted.
TEST(EcdsaDerToFixed, PadsShortScalarsAndRefusesBadEncodings) {
  const ByteView order(internal::kP256Order);
  // DER of small r and s, through the r || s -> DER helper above (OpenSSL's minimal encoding).
  auto der_of = [](uint8_t r, uint8_t s) {
    Bytes jose(64, 0);
    jose[31] = r;
    jose[63] = s;
    return jose_to_der(jose);
  };
  uint8_t out[64];
  ASSERT_TRUE(internal::ecdsa_der_to_fixed(der_of(1, 0x80), order, out));
  Bytes expected(64, 0);
  expected[31] = 0x01;
  expected[63] = 0x80;  // encoded 02 02 00 80 in DER: the sign byte is dropped
  EXPECT_EQ(Bytes(out, out + 64), expected);

  const Bytes good = der_of(7, 9);
  Bytes trailing = good;
  trailing.push_back(0);
  Bytes bad_tag = good;
  bad_tag[0] = 0x31;
  EXPECT_FALSE(internal::ecdsa_der_to_fixed(trailing, order, out));
  EXPECT_FALSE(internal::ecdsa_der_to_fixed(bad_tag, order, out));
  EXPECT_FALSE(internal::ecdsa_der_to_fixed(ByteView(good).first(good.size() - 1), order, out));
  EXPECT_FALSE(internal::ecdsa_der_to_fixed(der_of(0, 9), order, out));  // r = 0
  EXPECT_FALSE(internal::ecdsa_der_to_fixed({}, order, out));
  // s = n is out of range even though it fits in 32 bytes.
  Bytes s_is_n = {0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00};
  s_is_n.insert(s_is_n.end(), std::begin(internal::kP256Order), std::end(internal::kP256Order));
  EXPECT_FALSE(internal::ecdsa_der_to_fixed(s_is_n, order, out));
}

// ---- seal / open ----

const Bytes kSealKey = Bytes(32, 0x42);
const Bytes kAad = {'k', 'i', 'd', '1'};

TEST(Seal, RoundTripsAndUsesAFreshNonce) {
  const Bytes plain = {'s', 'e', 'c', 'r', 'e', 't'};
  const Bytes a = seal(kSealKey, plain, kAad);
  const Bytes b = seal(kSealKey, plain, kAad);
  EXPECT_EQ(a.size(), 24 + plain.size() + 16);
  EXPECT_NE(a, b);
  auto opened = open(kSealKey, a, kAad);
  ASSERT_TRUE(opened);
  EXPECT_EQ(*opened, plain);
  auto empty = open(kSealKey, seal(kSealKey, {}, {}), {});
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(Seal, OpenRejectsAnyTamper) {
  const Bytes plain = {'s', 'e', 'c', 'r', 'e', 't'};
  const Bytes sealed = seal(kSealKey, plain, kAad);
  for (size_t i = 0; i < sealed.size(); ++i) {  // nonce, ciphertext and tag
    Bytes t = sealed;
    t[i] ^= 0x01;
    auto r = open(kSealKey, t, kAad);
    ASSERT_FALSE(r) << "byte " << i;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(open(kSealKey, sealed, as_bytes("kid2")));
  EXPECT_FALSE(open(Bytes(32, 0x43), sealed, kAad));
  EXPECT_FALSE(open(kSealKey, ByteView(sealed).first(sealed.size() - 1), kAad));
  EXPECT_FALSE(open(kSealKey, ByteView(sealed).first(39), kAad));
  EXPECT_FALSE(open(kSealKey, {}, kAad));
  EXPECT_FALSE(open(Bytes(31, 0x42), sealed, kAad));
  Bytes extended = sealed;
  extended.push_back(0);
  EXPECT_FALSE(open(kSealKey, extended, kAad));
}

}  // namespace
}  // namespace sigil::crypto
