// Public-key parsing, validation and signature verification (OpenSSL 3 EVP).
//
// Every parse ends in validate(): the key's type and parameters are checked once here, so verify() never
// has to. Verification builds a fresh EVP_PKEY_CTX per call (never a reused EVP_MD_CTX: see the OpenSSL 3.0
// re-init pitfall in CONVENTIONS.md) and hashes with an EVP_MD fetched once.
#include "engine/crypto/public_key.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>

#include "engine/crypto/digest.h"
#include "engine/crypto/internal/ecdsa_der.h"

namespace sigil::crypto {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const noexcept { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
struct OpenSslFree {
  void operator()(unsigned char* p) const noexcept { OPENSSL_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, ParamFree>;
using OpenSslBuf = std::unique_ptr<unsigned char, OpenSslFree>;

constexpr const char* kKeyEncoding = "auth_invalid_key_encoding";
constexpr const char* kKeyType = "auth_invalid_key_type";
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 4096;
constexpr size_t kP256PointSize = 65;
constexpr size_t kSha256Size = 32;
// Parsers below hand lengths to OpenSSL as long; anything this large is not a key or a signature.
constexpr size_t kMaxInput = 64 * 1024;

// P-256 group order n.
constexpr uint8_t kP256Order[32] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};

std::unexpected<Error> encoding_error() {
  ERR_clear_error();
  return make_error(ErrorCode::kInvalidArgument, "Public key cannot be decoded", kKeyEncoding);
}
std::unexpected<Error> type_error(std::string message) {
  ERR_clear_error();
  return make_error(ErrorCode::kInvalidArgument, std::move(message), kKeyType);
}

const EVP_MD* sha256_md() noexcept {
  static EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    SIGIL_CHECK(m != nullptr);
    return m;
  }();
  return md;
}

const BIGNUM* p256_order() noexcept {
  static BIGNUM* const n = [] {
    BIGNUM* b = BN_bin2bn(kP256Order, sizeof kP256Order, nullptr);
    SIGIL_CHECK(b != nullptr);
    return b;
  }();
  return n;
}

Result<Bytes> encode_spki(EVP_PKEY* pkey) {
  unsigned char* raw = nullptr;
  const int len = i2d_PUBKEY(pkey, &raw);
  if (len <= 0) return encoding_error();
  OpenSslBuf buf(raw);
  return Bytes(raw, raw + len);
}

bool rsa_exponent_is_odd_and_at_least_3(const EVP_PKEY* pkey) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &raw) != 1) return false;
  BnPtr e(raw);
  return BN_is_odd(e.get()) && BN_num_bits(e.get()) >= 2;  // odd with >= 2 bits: odd and >= 3
}

// The RSA modulus must be odd. OpenSSL's EVP_PKEY_public_check is not used for RSA: its SP 800-56B check
// runs Miller-Rabin with random bases, so a modulus with a small factor passed or failed at random
// (found by fuzz_public_key) and a key could register, then fail to load at login.
bool rsa_modulus_is_odd(const EVP_PKEY* pkey) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &raw) != 1) return false;
  BnPtr n(raw);
  return BN_is_odd(n.get());
}

bool public_check(EVP_PKEY* pkey) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  return ctx != nullptr && EVP_PKEY_public_check(ctx.get()) == 1;
}

// Strict ECDSA DER (internal/ecdsa_der.h): exact DER re-encoding, r and s in [1, n-1].
bool ecdsa_der_is_strict(ByteView sig) {
  return internal::ecdsa_der_is_strict(sig, p256_order(), 80);  // a P-256 DER signature is at most 72 bytes
}

}  // namespace

// Checks type and parameters once; the handle stores the canonical SPKI (EC points uncompressed).
Result<PublicKey> PublicKey::from_owned_pkey(void* evp_pkey) {
  PkeyPtr pkey(static_cast<EVP_PKEY*>(evp_pkey));
  if (!pkey) return encoding_error();
  const auto make = [](PkeyPtr k, KeyType type, int bits, Bytes spki) {
    std::shared_ptr<void> shared(k.release(), [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
    return PublicKey(std::move(shared), type, bits, std::make_shared<const Bytes>(std::move(spki)));
  };
  const int base_id = EVP_PKEY_get_base_id(pkey.get());
  if (base_id == EVP_PKEY_EC) {
    char group[64] = {};
    size_t group_len = 0;
    if (EVP_PKEY_get_group_name(pkey.get(), group, sizeof group, &group_len) != 1) {
      return type_error("EC key without a named curve");
    }
    if (std::strcmp(group, SN_X9_62_prime256v1) != 0) return type_error("EC curve is not P-256");
    // Explicit curve parameters would round-trip into a non-canonical SPKI; only named curves are accepted.
    char enc[32] = {};
    size_t enc_len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey.get(), OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof enc, &enc_len) == 1 &&
        std::strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0) {
      return type_error("EC key with explicit curve parameters");
    }
    if (!public_check(pkey.get())) return encoding_error();  // not on the curve / point at infinity
    // The canonical form stores the uncompressed point, whatever the input used.
    if (EVP_PKEY_set_utf8_string_param(pkey.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 1) {
      return encoding_error();
    }
    SIGIL_ASSIGN_OR_RETURN(Bytes spki, encode_spki(pkey.get()));
    const int bits = EVP_PKEY_get_bits(pkey.get());
    return make(std::move(pkey), KeyType::kEcP256, bits, std::move(spki));
  }
  if (base_id == EVP_PKEY_RSA) {
    const int bits = EVP_PKEY_get_bits(pkey.get());
    if (bits < kMinRsaBits || bits > kMaxRsaBits) return type_error("RSA key size must be 2048 to 4096 bits");
    if (!rsa_exponent_is_odd_and_at_least_3(pkey.get())) {
      return type_error("RSA public exponent must be odd and >= 3");
    }
    if (!rsa_modulus_is_odd(pkey.get())) return encoding_error();
    SIGIL_ASSIGN_OR_RETURN(Bytes spki, encode_spki(pkey.get()));
    return make(std::move(pkey), KeyType::kRsa, bits, std::move(spki));
  }
  // RSA-PSS-restricted keys, Ed25519, DSA, ...: decodable but not a supported key type.
  return type_error("Unsupported public key type");
}

Result<PublicKey> PublicKey::from_spki_der(ByteView der) {
  if (der.empty() || der.size() > kMaxInput) return encoding_error();
  const unsigned char* p = der.data();
  PkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!pkey || p != der.data() + der.size()) return encoding_error();
  // Full-consumption and DER check: re-encode and compare, so trailing or BER-only bytes are rejected.
  SIGIL_ASSIGN_OR_RETURN(Bytes reencoded, encode_spki(pkey.get()));
  if (reencoded.size() != der.size() || !std::equal(reencoded.begin(), reencoded.end(), der.begin())) {
    return encoding_error();
  }
  return from_owned_pkey(pkey.release());
}

Result<PublicKey> PublicKey::from_pkcs1_rsa_der(ByteView der) {
  if (der.empty() || der.size() > kMaxInput) return encoding_error();
  const unsigned char* p = der.data();
  PkeyPtr pkey(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, static_cast<long>(der.size())));
  if (!pkey || p != der.data() + der.size()) return encoding_error();
  unsigned char* raw = nullptr;
  const int len = i2d_PublicKey(pkey.get(), &raw);
  if (len <= 0) return encoding_error();
  OpenSslBuf reencoded(raw);
  if (static_cast<size_t>(len) != der.size() || std::memcmp(raw, der.data(), der.size()) != 0) {
    return encoding_error();
  }
  return from_owned_pkey(pkey.release());
}

Result<PublicKey> PublicKey::from_x962_p256(ByteView point) {
  if (point.size() != kP256PointSize || point[0] != 0x04) return encoding_error();
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    return encoding_error();
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return encoding_error();
  EVP_PKEY* raw = nullptr;
  // fromdata decodes the point with EC_POINT_oct2point, which fails off the curve; validate() re-checks.
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return encoding_error();
  return from_owned_pkey(raw);
}

Result<PublicKey> PublicKey::parse_any(ByteView der_or_point) {
  auto spki = from_spki_der(der_or_point);
  if (spki || spki.error().ts_error_code == kKeyType) return spki;
  auto pkcs1 = from_pkcs1_rsa_der(der_or_point);
  if (pkcs1 || pkcs1.error().ts_error_code == kKeyType) return pkcs1;
  if (der_or_point.size() == kP256PointSize && der_or_point[0] == 0x04) return from_x962_p256(der_or_point);
  return encoding_error();
}

bool PublicKey::verify(ByteView message, ByteView sig) const noexcept {
  const Sha256Digest digest = sha256(message);
  return verify_digest(digest, sig);
}

bool PublicKey::verify_digest(ByteView sha256_digest, ByteView sig) const noexcept {
  if (sha256_digest.size() != kSha256Size || !pkey_) return false;
  auto* pkey = static_cast<EVP_PKEY*>(pkey_.get());
  if (type_ == KeyType::kEcP256) {
    if (!ecdsa_der_is_strict(sig)) {
      ERR_clear_error();
      return false;
    }
  } else {
    if (sig.size() != static_cast<size_t>(EVP_PKEY_get_size(pkey))) return false;
  }
  // Fresh context per call: cheap next to the signature maths and immune to the EVP_MD_CTX re-init pitfall.
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  bool ok = ctx != nullptr && EVP_PKEY_verify_init(ctx.get()) == 1;
  if (ok && type_ == KeyType::kRsa) ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1;
  ok = ok && EVP_PKEY_CTX_set_signature_md(ctx.get(), sha256_md()) == 1;
  ok = ok && EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), sha256_digest.data(), sha256_digest.size()) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

}  // namespace sigil::crypto
