// ES256 signing keys (OpenSSL 3 EVP) and XChaCha20-Poly1305 sealing (libsodium).
//
// Each signature uses a fresh EVP_MD_CTX, so concurrent signing from many threads shares nothing mutable;
// the EVP_PKEY itself is only read.
#include "engine/crypto/signing_key.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <cstring>

#include "engine/crypto/digest.h"
#include "engine/crypto/internal/ecdsa_der.h"
#include "engine/crypto/internal/ossl_ptr.h"
#include "engine/crypto/internal/pkey_ctx_pool.h"

namespace sigil::crypto {
namespace {

using internal::BnPtr;
using internal::Pkcs8Ptr;
using internal::PkeyCtxPtr;
using internal::PkeyPtr;


constexpr size_t kCoordSize = 32;
constexpr size_t kMaxDerSignature = 72;  // SEQUENCE { INTEGER r, INTEGER s } of P-256, each <= 33 bytes
constexpr size_t kSealKeySize = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
constexpr size_t kNonceSize = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagSize = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr size_t kMaxPkcs8 = 4096;

const EVP_MD* sha256_md() noexcept {
  static EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    SIGIL_CHECK(m != nullptr);
    return m;
  }();
  return md;
}

std::unexpected<Error> key_error(std::string message) {
  ERR_clear_error();
  return invalid_argument(std::move(message), "auth_invalid_key_encoding");
}

std::unexpected<Error> openssl_failure() {
  ERR_clear_error();
  return internal_error();
}

void ensure_sodium() noexcept {
  static const bool ok = [] {
    if (sodium_init() < 0) {
      std::fprintf(stderr, "sigil: libsodium initialisation failed\n");
      std::abort();
    }
    return true;
  }();
  (void)ok;
}

Result<Bytes> bn_param_32(const EVP_PKEY* pkey, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) return openssl_failure();
  BnPtr bn(raw);
  Bytes out(kCoordSize);
  if (BN_bn2binpad(bn.get(), out.data(), static_cast<int>(out.size())) != static_cast<int>(kCoordSize)) {
    return openssl_failure();
  }
  return out;
}

struct KeyParts {
  PublicKey public_key;
  Bytes x, y;
};

// Derives the public handle (through the same validating parser as any client key) and the JWK coordinates.
Result<KeyParts> key_parts(EVP_PKEY* pkey) {
  char group[64] = {};
  size_t group_len = 0;
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
      EVP_PKEY_get_group_name(pkey, group, sizeof group, &group_len) != 1 ||
      std::strcmp(group, SN_X9_62_prime256v1) != 0) {
    ERR_clear_error();
    return invalid_argument("Signing key is not an EC P-256 key", "auth_invalid_key_type");
  }
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey, &der);
  if (len <= 0) return openssl_failure();
  Bytes spki(der, der + len);
  OPENSSL_free(der);
  SIGIL_ASSIGN_OR_RETURN(PublicKey pub, PublicKey::from_spki_der(spki));
  SIGIL_ASSIGN_OR_RETURN(Bytes x, bn_param_32(pkey, OSSL_PKEY_PARAM_EC_PUB_X));
  SIGIL_ASSIGN_OR_RETURN(Bytes y, bn_param_32(pkey, OSSL_PKEY_PARAM_EC_PUB_Y));
  return KeyParts{std::move(pub), std::move(x), std::move(y)};
}

// Sign contexts initialised once for this key: a token signature then costs the ECDSA maths, a SHA-256 and
// a pool pop instead of EVP_DigestSignInit's provider lookups and allocations per token.
std::shared_ptr<internal::PkeyCtxPool> make_sign_pool(EVP_PKEY* pkey) {
  return std::make_shared<internal::PkeyCtxPool>(
      pkey, internal::PkeyCtxPool::Params{sha256_md(), 0, internal::PkeyCtxPool::Op::kSign});
}

// DER ECDSA signature of SHA-256(message) into sig (kMaxDerSignature bytes); its length, or 0.
size_t sign_der(internal::PkeyCtxPool& pool, ByteView message, uint8_t* sig) {
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  size_t len = kMaxDerSignature;
  if (!internal::digest(sha256_md(), message, digest, &digest_len) || !pool.sign(digest, digest_len, sig, &len)) {
    return 0;
  }
  return len;
}

}  // namespace

Result<SigningKey> SigningKey::generate_p256() {
  PkeyPtr pkey(EVP_EC_gen("P-256"));
  if (!pkey) return openssl_failure();
  SIGIL_ASSIGN_OR_RETURN(KeyParts parts, key_parts(pkey.get()));
  SigningKey key;
  key.sign_pool_ = make_sign_pool(pkey.get());
  key.pkey_ = std::shared_ptr<void>(pkey.release(), [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
  key.public_key_ = std::make_shared<const PublicKey>(std::move(parts.public_key));
  key.x_ = std::make_shared<const Bytes>(std::move(parts.x));
  key.y_ = std::make_shared<const Bytes>(std::move(parts.y));
  return key;
}

Result<SigningKey> SigningKey::from_pkcs8_der(ByteView der) {
  if (der.empty() || der.size() > kMaxPkcs8) return key_error("Signing key cannot be decoded");
  const unsigned char* p = der.data();
  Pkcs8Ptr info(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  if (!info || p != der.data() + der.size()) return key_error("Signing key cannot be decoded");
  PkeyPtr pkey(EVP_PKCS82PKEY(info.get()));
  if (!pkey) return key_error("Signing key cannot be decoded");
  SIGIL_ASSIGN_OR_RETURN(KeyParts parts, key_parts(pkey.get()));
  // The private scalar must match the stored public point (a corrupted key would sign garbage).
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_pairwise_check(check.get()) != 1) return key_error("Signing key is inconsistent");
  SigningKey key;
  key.sign_pool_ = make_sign_pool(pkey.get());
  key.pkey_ = std::shared_ptr<void>(pkey.release(), [](void* q) { EVP_PKEY_free(static_cast<EVP_PKEY*>(q)); });
  key.public_key_ = std::make_shared<const PublicKey>(std::move(parts.public_key));
  key.x_ = std::make_shared<const Bytes>(std::move(parts.x));
  key.y_ = std::make_shared<const Bytes>(std::move(parts.y));
  return key;
}

Bytes SigningKey::pkcs8_der() const {
  Pkcs8Ptr info(EVP_PKEY2PKCS8(static_cast<const EVP_PKEY*>(pkey_.get())));
  SIGIL_CHECK(info != nullptr);
  unsigned char* der = nullptr;
  const int len = i2d_PKCS8_PRIV_KEY_INFO(info.get(), &der);
  SIGIL_CHECK(len > 0);
  Bytes out(der, der + len);
  OPENSSL_clear_free(der, static_cast<size_t>(len));  // secret: OpenSSL's copy is wiped too
  return out;
}

Result<Bytes> SigningKey::sign_es256_der(ByteView message) const {
  uint8_t sig[kMaxDerSignature];
  const size_t len = sign_der(*sign_pool_, message, sig);
  if (len == 0) return openssl_failure();
  return Bytes(sig, sig + len);
}

Result<Bytes> SigningKey::sign_es256_jose(ByteView message) const {
  uint8_t der[kMaxDerSignature];
  const size_t len = sign_der(*sign_pool_, message, der);
  Bytes out(2 * kCoordSize);
  if (len == 0 || !internal::ecdsa_der_to_fixed(ByteView(der, len), ByteView(internal::kP256Order), out.data())) {
    return openssl_failure();
  }
  return out;
}

Bytes seal(ByteView key32, ByteView plaintext, ByteView aad) {
  // The key comes from validated configuration; a wrong size is a programming error.
  SIGIL_CHECK(key32.size() == kSealKeySize);
  ensure_sodium();
  Bytes out(kNonceSize + plaintext.size() + kTagSize);
  random_fill(std::span<uint8_t>(out.data(), kNonceSize));  // 192-bit random nonces never collide in practice
  unsigned long long clen = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
      out.data() + kNonceSize, &clen, plaintext.data(), plaintext.size(), aad.data(), aad.size(), nullptr,
      out.data(), key32.data());
  SIGIL_CHECK(rc == 0 && clen == plaintext.size() + kTagSize);
  return out;
}

Result<Bytes> open(ByteView key32, ByteView sealed, ByteView aad) {
  if (key32.size() != kSealKeySize) return invalid_argument("Invalid key");
  if (sealed.size() < kNonceSize + kTagSize) return invalid_argument("Sealed data is corrupt");
  ensure_sodium();
  const ByteView nonce = sealed.first(kNonceSize);
  const ByteView ct = sealed.subspan(kNonceSize);
  Bytes out(ct.size() - kTagSize);
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &mlen, nullptr, ct.data(), ct.size(), aad.data(),
                                                 aad.size(), nonce.data(), key32.data()) != 0) {
    wipe(out);
    return invalid_argument("Sealed data is corrupt");
  }
  out.resize(static_cast<size_t>(mlen));
  return out;
}

}  // namespace sigil::crypto
