// Public-key parsing, validation and signature verification (OpenSSL 3 EVP).
//
// Every parse ends in from_owned_pkey() (or, for a P-256 point, internal::ec_public_from_point): the key's
// type and parameters are checked once there, so verify() never has to. Verification takes a context from
// the key's own pool of pre-initialised EVP_PKEY_CTX (internal/pkey_ctx_pool.h: a context never serves
// another key, so the OpenSSL 3.0 re-init pitfall in CONVENTIONS.md cannot occur) and hashes with an EVP_MD
// fetched once.
//
// P-256 fast paths: an SPKI that is byte for byte the canonical named-curve uncompressed form (what the
// store persists) and a raw point are imported without OpenSSL's decoder/encoder framework (which costs
// tens of microseconds per key); every other SPKI (compressed points, explicit parameters, RSA ...) takes the
// generic d2i_PUBKEY path. Both paths accept exactly the same keys.
#include "engine/crypto/public_key.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>

#include "engine/crypto/digest.h"
#include "engine/crypto/internal/ec_import.h"
#include "engine/crypto/internal/ecdsa_der.h"
#include "engine/crypto/internal/ossl_ptr.h"
#include "engine/crypto/internal/pkey_ctx_pool.h"

namespace sigil::crypto {
namespace {

using internal::BnPtr;
using internal::OpenSslBuf;
using internal::PkeyCtxPtr;
using internal::PkeyPtr;


constexpr const char* kKeyEncoding = "auth_invalid_key_encoding";
constexpr const char* kKeyType = "auth_invalid_key_type";
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 4096;
constexpr size_t kP256PointSize = 65;
constexpr size_t kSha256Size = 32;
// Parsers below hand lengths to OpenSSL as long; anything this large is not a key or a signature.
constexpr size_t kMaxInput = 64 * 1024;

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

// On the curve, not at infinity, coordinates in range; without the n*Q = O multiplication, which adds nothing
// for P-256 (cofactor 1; see internal/ec_import.h).
bool public_check_quick(EVP_PKEY* pkey) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  return ctx != nullptr && EVP_PKEY_public_check_quick(ctx.get()) == 1;
}

// Strict ECDSA DER (internal/ecdsa_der.h): exact DER re-encoding, r and s in [1, n-1].
bool ecdsa_der_is_strict(ByteView sig) {
  return internal::ecdsa_der_is_strict(sig, ByteView(internal::kP256Order), 80);  // a P-256 DER signature is <= 72 bytes
}

std::shared_ptr<internal::PkeyCtxPool> make_pool(EVP_PKEY* pkey, KeyType type) {
  return std::make_shared<internal::PkeyCtxPool>(
      pkey, internal::PkeyCtxPool::Params{sha256_md(), type == KeyType::kRsa ? RSA_PKCS1_PADDING : 0});
}

}  // namespace

// Checks type and parameters once; the handle stores the canonical SPKI (EC points uncompressed).
Result<PublicKey> PublicKey::from_owned_pkey(void* evp_pkey) {
  PkeyPtr pkey(static_cast<EVP_PKEY*>(evp_pkey));
  if (!pkey) return encoding_error();
  const auto make = [](PkeyPtr k, KeyType type, int bits, Bytes spki) {
    auto pool = make_pool(k.get(), type);
    std::shared_ptr<void> shared(k.release(), [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
    return PublicKey(std::move(shared), std::move(pool), type, bits, std::make_shared<const Bytes>(std::move(spki)));
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
    if (!public_check_quick(pkey.get())) return encoding_error();  // not on the curve / point at infinity
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

// A P-256 key from a checked EVP_PKEY made by internal::ec_public_from_point and its canonical SPKI.
Result<PublicKey> PublicKey::from_checked_p256(void* evp_pkey, Bytes spki) {
  PkeyPtr pkey(static_cast<EVP_PKEY*>(evp_pkey));
  if (!pkey) return encoding_error();
  auto pool = make_pool(pkey.get(), KeyType::kEcP256);
  std::shared_ptr<void> shared(pkey.release(), [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
  return PublicKey(std::move(shared), std::move(pool), KeyType::kEcP256, 256,
                   std::make_shared<const Bytes>(std::move(spki)));
}

Result<PublicKey> PublicKey::from_spki_der(ByteView der) {
  if (der.empty() || der.size() > kMaxInput) return encoding_error();
  // The canonical P-256 form: the fixed DER prefix, then the uncompressed point. Exactly what d2i_PUBKEY
  // would accept and re-encode identically for such bytes; anything else takes the generic path below.
  const ByteView prefix = internal::ec_spki_prefix(internal::EcCurve::kP256);
  if (der.size() == prefix.size() + kP256PointSize && std::equal(prefix.begin(), prefix.end(), der.begin())) {
    EVP_PKEY* raw = internal::ec_public_from_point(internal::EcCurve::kP256, der.subspan(prefix.size()));
    if (raw == nullptr) return encoding_error();
    return from_checked_p256(raw, Bytes(der.begin(), der.end()));
  }
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
  // Decodes the point (coordinates below p, on the curve) and runs the quick public check.
  EVP_PKEY* raw = internal::ec_public_from_point(internal::EcCurve::kP256, point);
  if (raw == nullptr) return encoding_error();
  return from_checked_p256(raw, internal::ec_spki(internal::EcCurve::kP256, point));
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
  if (sha256_digest.size() != kSha256Size || !pkey_ || !pool_) return false;
  if (type_ == KeyType::kEcP256) {
    if (!ecdsa_der_is_strict(sig)) return false;
  } else {
    if (sig.size() != static_cast<size_t>(EVP_PKEY_get_size(static_cast<EVP_PKEY*>(pkey_.get())))) return false;
  }
  // A context of this key only, initialised once (RSA: PKCS#1 v1.5; both: SHA-256).
  return pool_->verify(sha256_digest.data(), sha256_digest.size(), sig);
}

}  // namespace sigil::crypto
