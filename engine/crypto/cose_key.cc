// COSE_Key parsing and verification (see cose_key.h for the guarantees).
//
// Every key, from COSE or from an SPKI, ends in the same checks (curve/type fits the algorithm, point on the
// curve, RSA size and exponent, Ed25519 not of small order), so verify() never re-checks the key. ECDSA and
// RSA verify on a context from the key's own pool of pre-initialised EVP_PKEY_CTX (internal/
// pkey_ctx_pool.h: a context never serves another key, so the OpenSSL 3.0 re-init pitfall in
// CONVENTIONS.md cannot occur) over a digest computed with EVP_MDs fetched once.
//
// EC2 keys are imported by internal::ec_public_from_point (point decoded on the curve, quick public check:
// sufficient for the cofactor-1 NIST curves) and their SPKI is the fixed named-curve prefix + the point, so
// registration does not pay for OpenSSL's group construction, n*Q = O multiplication or encoder framework.
//
// Labels: kty(1), alg(3) and the key type's public parameters are read; COSE's other common labels (kid 2,
// key_ops 4, base IV 5) and unknown labels are ignored and can never alter the key. Private-key parameters
// (EC2/OKP d = -4; RSA -3..-12) are refused: a credential key that carries them is malformed.
#include "engine/crypto/cose_key.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "engine/cbor/cbor.h"
#include "engine/crypto/internal/ec_import.h"
#include "engine/crypto/internal/ecdsa_der.h"
#include "engine/crypto/internal/ossl_ptr.h"
#include "engine/crypto/internal/pkey_ctx_pool.h"

namespace sigil::crypto {
namespace {

using internal::BnPtr;
using internal::MdCtxPtr;
using internal::OpenSslBuf;
using internal::ParamBldPtr;
using internal::ParamPtr;
using internal::PkeyCtxPtr;
using internal::PkeyPtr;


constexpr const char* kKeyEncoding = "auth_invalid_key_encoding";
constexpr const char* kKeyType = "auth_invalid_key_type";

// COSE labels and values (RFC 9052/9053, RFC 8230, IANA).
constexpr int64_t kLabelKty = 1;
constexpr int64_t kLabelAlg = 3;
constexpr int64_t kLabelCrv = -1;  // EC2, OKP
constexpr int64_t kLabelX = -2;    // EC2, OKP
constexpr int64_t kLabelY = -3;    // EC2
constexpr int64_t kLabelD = -4;    // EC2, OKP private key
constexpr int64_t kLabelN = -1;    // RSA
constexpr int64_t kLabelE = -2;    // RSA
constexpr int64_t kRsaFirstPrivateLabel = -3;  // d, p, q, dP, dQ, qInv, other, r_i, d_i, t_i: -3..-12
constexpr int64_t kRsaLastPrivateLabel = -12;
constexpr int64_t kKtyOkp = 1;
constexpr int64_t kKtyEc2 = 2;
constexpr int64_t kKtyRsa = 3;
constexpr int64_t kCrvP256 = 1;
constexpr int64_t kCrvP384 = 2;
constexpr int64_t kCrvP521 = 3;
constexpr int64_t kCrvEd25519 = 6;
constexpr int64_t kCrvEd448 = 7;
// Fully-specified EdDSA algorithms (RFC 9864): the WebAuthn L3 spec's Ed448 vector uses -53.
constexpr int64_t kAlgEd25519 = cose_alg::kEd25519;
constexpr int64_t kAlgEd448 = cose_alg::kEd448;

constexpr size_t kEd25519KeySize = 32;
constexpr size_t kEd448KeySize = 57;
constexpr size_t kEd25519SigSize = 64;
constexpr size_t kEd448SigSize = 114;
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 4096;
// Larger than any SPKI or COSE key we accept; OpenSSL takes lengths as long.
constexpr size_t kMaxSpki = 4096;

std::unexpected<Error> encoding_error(std::string message = "Public key cannot be decoded") {
  ERR_clear_error();
  return make_error(ErrorCode::kInvalidArgument, std::move(message), kKeyEncoding);
}
std::unexpected<Error> type_error(std::string message) {
  ERR_clear_error();
  return make_error(ErrorCode::kInvalidArgument, std::move(message), kKeyType);
}

void ensure_sodium() noexcept {
  static const bool ok = [] {
    SIGIL_CHECK(sodium_init() >= 0);
    return true;
  }();
  (void)ok;
}

const EVP_MD* fetch_md(const char* name) noexcept {
  EVP_MD* m = EVP_MD_fetch(nullptr, name, nullptr);
  SIGIL_CHECK(m != nullptr);
  return m;
}
const EVP_MD* sha1_md() noexcept {
  static const EVP_MD* const md = fetch_md("SHA1");
  return md;
}
const EVP_MD* sha256_md() noexcept {
  static const EVP_MD* const md = fetch_md("SHA256");
  return md;
}
const EVP_MD* sha384_md() noexcept {
  static const EVP_MD* const md = fetch_md("SHA384");
  return md;
}
const EVP_MD* sha512_md() noexcept {
  static const EVP_MD* const md = fetch_md("SHA512");
  return md;
}

// A curve's group order, big-endian without leading zeros (for the DER range check).
struct Order {
  uint8_t bytes[66] = {};
  size_t size = 0;
  ByteView view() const noexcept { return ByteView(bytes, size); }
};

Order curve_order(int nid) noexcept {
  EC_GROUP* group = EC_GROUP_new_by_curve_name(nid);
  SIGIL_CHECK(group != nullptr);
  const BIGNUM* order = EC_GROUP_get0_order(group);
  Order out;
  SIGIL_CHECK(order != nullptr && static_cast<size_t>(BN_num_bytes(order)) <= sizeof out.bytes);
  out.size = static_cast<size_t>(BN_bn2bin(order, out.bytes));
  EC_GROUP_free(group);
  return out;
}

// What an ECDSA algorithm needs: curve, digest, order for the DER range check, DER size cap.
struct EcParams {
  int64_t crv;
  internal::EcCurve curve;
  const char* group;  // OpenSSL group name (as EVP_PKEY_get_group_name reports it)
  size_t coord_size;
  size_t max_der;     // 2 * (coord + 3) + 3 rounded up: 72 / 104 / 139
};

const EcParams* ec_params_for_alg(int64_t alg) noexcept {
  static const EcParams kP256{kCrvP256, internal::EcCurve::kP256, SN_X9_62_prime256v1, 32, 72};
  static const EcParams kP384{kCrvP384, internal::EcCurve::kP384, SN_secp384r1, 48, 104};
  static const EcParams kP521{kCrvP521, internal::EcCurve::kP521, SN_secp521r1, 66, 139};
  switch (alg) {
    case cose_alg::kES256: return &kP256;
    case cose_alg::kES384: return &kP384;
    case cose_alg::kES512: return &kP521;
    default: return nullptr;
  }
}

ByteView order_for_alg(int64_t alg) noexcept {
  static const Order p256 = curve_order(NID_X9_62_prime256v1);
  static const Order p384 = curve_order(NID_secp384r1);
  static const Order p521 = curve_order(NID_secp521r1);
  switch (alg) {
    case cose_alg::kES256: return p256.view();
    case cose_alg::kES384: return p384.view();
    case cose_alg::kES512: return p521.view();
    default: return {};
  }
}

const EVP_MD* md_for_alg(int64_t alg) noexcept {
  switch (alg) {
    case cose_alg::kES256:
    case cose_alg::kRS256:
    case cose_alg::kPS256: return sha256_md();
    case cose_alg::kES384: return sha384_md();
    case cose_alg::kES512: return sha512_md();
    case cose_alg::kRS1: return sha1_md();
    default: return nullptr;
  }
}

bool is_rsa_alg(int64_t alg) noexcept {
  return alg == cose_alg::kRS256 || alg == cose_alg::kPS256 || alg == cose_alg::kRS1;
}

// On the curve, not at infinity, coordinates in range; without the n*Q = O multiplication, which adds nothing
// for the cofactor-1 NIST curves (see internal/ec_import.h).
bool public_check_quick(EVP_PKEY* pkey) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  return ctx != nullptr && EVP_PKEY_public_check_quick(ctx.get()) == 1;
}

// The verify-context pool for an ECDSA or RSA key of `alg`; null for EdDSA (libsodium, or a fresh context).
std::shared_ptr<internal::PkeyCtxPool> make_pool(EVP_PKEY* pkey, int64_t alg) {
  const EVP_MD* md = md_for_alg(alg);
  if (md == nullptr) return nullptr;
  int padding = 0;
  if (alg == cose_alg::kRS256 || alg == cose_alg::kRS1) padding = RSA_PKCS1_PADDING;
  if (alg == cose_alg::kPS256) padding = RSA_PKCS1_PSS_PADDING;
  return std::make_shared<internal::PkeyCtxPool>(pkey, internal::PkeyCtxPool::Params{md, padding});
}

Result<Bytes> encode_spki(EVP_PKEY* pkey) {
  unsigned char* raw = nullptr;
  const int len = i2d_PUBKEY(pkey, &raw);
  if (len <= 0) return encoding_error();
  OpenSslBuf buf(raw);
  return Bytes(raw, raw + len);
}

Result<int64_t> int_label(const cbor::Value& map, int64_t label, const char* what) {
  const cbor::Value* v = map.find(label);
  if (v == nullptr) return encoding_error(std::string("COSE key without ") + what);
  auto i = v->as_int();
  if (!i) return encoding_error(std::string("COSE key ") + what + " is not an integer");
  return *i;
}

Result<ByteView> bytes_label(const cbor::Value& map, int64_t label, const char* what) {
  const cbor::Value* v = map.find(label);
  if (v == nullptr || v->type() != cbor::Value::Type::kBytes) {
    return encoding_error(std::string("COSE key ") + what + " missing or not a byte string");
  }
  return ByteView(v->bytes());
}

// The uncompressed point 04 || x || y of the curve.
Result<Bytes> ec_point(const EcParams& ec, ByteView x, ByteView y) {
  if (x.size() != ec.coord_size || y.size() != ec.coord_size) return encoding_error("EC coordinate length");
  Bytes point;
  point.reserve(1 + 2 * ec.coord_size);
  point.push_back(0x04);
  point.insert(point.end(), x.begin(), x.end());
  point.insert(point.end(), y.begin(), y.end());
  return point;
}

// A big-endian unsigned integer in its minimal encoding (RFC 8230 section 4).
Result<BnPtr> rsa_integer(ByteView b, const char* what) {
  if (b.empty() || b[0] == 0 || b.size() > kMaxRsaBits / 8) {
    return encoding_error(std::string("RSA ") + what + " not a minimal positive integer");
  }
  BnPtr bn(BN_bin2bn(b.data(), static_cast<int>(b.size()), nullptr));
  if (!bn) return encoding_error();
  return bn;
}

Result<PkeyPtr> rsa_from_ne(ByteView n, ByteView e) {
  SIGIL_ASSIGN_OR_RETURN(BnPtr bn_n, rsa_integer(n, "modulus"));
  SIGIL_ASSIGN_OR_RETURN(BnPtr bn_e, rsa_integer(e, "exponent"));
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return encoding_error();
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return encoding_error();
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return encoding_error();
  return PkeyPtr(raw);
}

// The checks every key goes through, whatever its source. Returns the raw Ed25519 key when there is one.
struct Checked {
  Bytes spki;
  Bytes ed25519;
};

Result<Checked> check_key(EVP_PKEY* pkey, int64_t alg) {
  Checked out;
  const int id = EVP_PKEY_get_base_id(pkey);
  if (const EcParams* ec = ec_params_for_alg(alg)) {
    if (id != EVP_PKEY_EC) return type_error("Key type does not match the algorithm");
    char group[64] = {};
    size_t group_len = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &group_len) != 1) {
      return type_error("EC key without a named curve");
    }
    if (std::strcmp(group, ec->group) != 0) return type_error("EC curve does not match the algorithm");
    char enc[32] = {};
    size_t enc_len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof enc, &enc_len) == 1 &&
        std::strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0) {
      return type_error("EC key with explicit curve parameters");
    }
    if (!public_check_quick(pkey)) return encoding_error("EC point is not on the curve");
    if (EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 1) {
      return encoding_error();
    }
  } else if (is_rsa_alg(alg)) {
    // rsaEncryption keys only; an id-RSASSA-PSS SPKI (restricted key) is refused.
    if (id != EVP_PKEY_RSA) return type_error("Key type does not match the algorithm");
    const int bits = EVP_PKEY_get_bits(pkey);
    if (bits < kMinRsaBits || bits > kMaxRsaBits) return type_error("RSA key size must be 2048 to 4096 bits");
    BIGNUM* raw_e = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &raw_e) != 1) return encoding_error();
    BnPtr e(raw_e);
    if (!BN_is_odd(e.get()) || BN_num_bits(e.get()) < 2) return type_error("RSA public exponent must be odd and >= 3");
    // Deterministic: only an odd modulus is required. EVP_PKEY_public_check's RSA test is randomised
    // (Miller-Rabin with random bases), so a key could pass once and fail on a later load.
    BIGNUM* raw_n = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &raw_n) != 1) return encoding_error();
    BnPtr n(raw_n);
    if (!BN_is_odd(n.get())) return encoding_error();
  } else if (alg == cose_alg::kEdDSA || alg == kAlgEd25519 || alg == kAlgEd448) {
    if (id == EVP_PKEY_ED25519 && alg != kAlgEd448) {
      size_t len = kEd25519KeySize;
      out.ed25519.resize(kEd25519KeySize);
      if (EVP_PKEY_get_raw_public_key(pkey, out.ed25519.data(), &len) != 1 || len != kEd25519KeySize) {
        return encoding_error();
      }
      ensure_sodium();
      // 0 for small-order points and non-canonical encodings, which libsodium's verify refuses anyway.
      if (crypto_core_ed25519_is_valid_point(out.ed25519.data()) != 1) {
        return encoding_error("Ed25519 key is not a valid point of large order");
      }
    } else if (id == EVP_PKEY_ED448 && alg != kAlgEd25519) {
      // Decoding the point is left to verification (which fails for an invalid one); OpenSSL 3.0's public
      // check for Ed448 only checks presence.
    } else {
      return type_error("Key type does not match the algorithm");
    }
  } else {
    return type_error("Unsupported COSE algorithm");
  }
  SIGIL_ASSIGN_OR_RETURN(out.spki, encode_spki(pkey));
  return out;
}

}  // namespace

Result<CoseKey> CoseKey::parse(const cbor::Value& map) {
  if (map.type() != cbor::Value::Type::kMap) return encoding_error("COSE key is not a map");
  SIGIL_ASSIGN_OR_RETURN(const int64_t kty, int_label(map, kLabelKty, "kty"));
  // WebAuthn requires alg in a credential public key.
  SIGIL_ASSIGN_OR_RETURN(const int64_t alg, int_label(map, kLabelAlg, "alg"));

  PkeyPtr pkey;
  Bytes ec_spki;  // set for EC2 keys, which internal::ec_public_from_point has checked already
  if (kty == kKtyEc2) {
    const EcParams* ec = ec_params_for_alg(alg);
    if (ec == nullptr) return type_error("COSE alg does not fit an EC2 key");
    SIGIL_ASSIGN_OR_RETURN(const int64_t crv, int_label(map, kLabelCrv, "crv"));
    if (crv != ec->crv) return type_error("COSE crv does not match alg");
    if (map.find(kLabelD) != nullptr) return encoding_error("COSE key carries a private key");
    SIGIL_ASSIGN_OR_RETURN(const ByteView x, bytes_label(map, kLabelX, "x"));
    SIGIL_ASSIGN_OR_RETURN(const ByteView y, bytes_label(map, kLabelY, "y"));  // compressed (bool y) refused
    SIGIL_ASSIGN_OR_RETURN(const Bytes point, ec_point(*ec, x, y));
    // Coordinates below p, on the curve, not at infinity (quick public check); the group is the named curve
    // by construction, so check_key has nothing left to check.
    pkey.reset(internal::ec_public_from_point(ec->curve, point));
    if (!pkey) return encoding_error("EC point is not on the curve");
    ec_spki = internal::ec_spki(ec->curve, point);
  } else if (kty == kKtyOkp) {
    if (alg != cose_alg::kEdDSA && alg != kAlgEd25519 && alg != kAlgEd448) {
      return type_error("COSE alg does not fit an OKP key");
    }
    SIGIL_ASSIGN_OR_RETURN(const int64_t crv, int_label(map, kLabelCrv, "crv"));
    if (map.find(kLabelD) != nullptr) return encoding_error("COSE key carries a private key");
    SIGIL_ASSIGN_OR_RETURN(const ByteView x, bytes_label(map, kLabelX, "x"));
    int type = 0;
    if (crv == kCrvEd25519 && alg != kAlgEd448) {
      if (x.size() != kEd25519KeySize) return encoding_error("Ed25519 key length");
      type = EVP_PKEY_ED25519;
    } else if (crv == kCrvEd448 && alg != kAlgEd25519) {
      if (x.size() != kEd448KeySize) return encoding_error("Ed448 key length");
      type = EVP_PKEY_ED448;
    } else {
      return type_error("COSE crv does not match alg");
    }
    pkey.reset(EVP_PKEY_new_raw_public_key(type, nullptr, x.data(), x.size()));
    if (!pkey) return encoding_error();
  } else if (kty == kKtyRsa) {
    if (!is_rsa_alg(alg)) return type_error("COSE alg does not fit an RSA key");
    for (int64_t label = kRsaFirstPrivateLabel; label >= kRsaLastPrivateLabel; --label) {
      if (map.find(label) != nullptr) return encoding_error("COSE key carries a private key");
    }
    SIGIL_ASSIGN_OR_RETURN(const ByteView n, bytes_label(map, kLabelN, "n"));
    SIGIL_ASSIGN_OR_RETURN(const ByteView e, bytes_label(map, kLabelE, "e"));
    SIGIL_ASSIGN_OR_RETURN(pkey, rsa_from_ne(n, e));
  } else {
    return type_error("Unsupported COSE key type");
  }

  Checked checked;
  if (!ec_spki.empty()) {
    checked.spki = std::move(ec_spki);
  } else {
    SIGIL_ASSIGN_OR_RETURN(checked, check_key(pkey.get(), alg));
  }
  return make(pkey.release(), alg, std::move(checked.spki), std::move(checked.ed25519), map.encoded());
}

CoseKey CoseKey::make(void* evp_pkey, int64_t alg, Bytes spki, Bytes ed25519, Bytes cose) {
  PkeyPtr pkey(static_cast<EVP_PKEY*>(evp_pkey));
  CoseKey key;
  key.alg_ = alg;
  // EdDSA keys have no pool: Ed25519 verifies through libsodium, Ed448 with a fresh context.
  if (ed25519.empty() && EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_ED448) key.pool_ = make_pool(pkey.get(), alg);
  key.pkey_ = std::shared_ptr<void>(pkey.release(), [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
  if (!ed25519.empty()) key.ed25519_ = std::make_shared<const Bytes>(std::move(ed25519));
  key.cose_ = std::make_shared<const Bytes>(std::move(cose));
  key.spki_ = std::make_shared<const Bytes>(std::move(spki));
  return key;
}

Result<CoseKey> CoseKey::decode(ByteView cose) {
  auto map = cbor::decode(cose);
  if (!map) return encoding_error("COSE key is not valid CBOR");
  return parse(*map);
}

Result<CoseKey> CoseKey::from_spki(ByteView spki_der, int64_t alg) {
  if (spki_der.empty() || spki_der.size() > kMaxSpki) return encoding_error();
  // The canonical named-curve form of the algorithm's curve (the fixed DER prefix, then the uncompressed
  // point) is imported without OpenSSL's decoder; d2i_PUBKEY would accept exactly these bytes too.
  if (const EcParams* ec = ec_params_for_alg(alg)) {
    const ByteView prefix = internal::ec_spki_prefix(ec->curve);
    if (spki_der.size() == prefix.size() + internal::ec_point_size(ec->curve) &&
        std::equal(prefix.begin(), prefix.end(), spki_der.begin())) {
      PkeyPtr pkey(internal::ec_public_from_point(ec->curve, spki_der.subspan(prefix.size())));
      if (!pkey) return encoding_error("EC point is not on the curve");
      return make(pkey.release(), alg, Bytes(spki_der.begin(), spki_der.end()), Bytes(), Bytes());
    }
  }
  const unsigned char* p = spki_der.data();
  PkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size())));
  if (!pkey || p != spki_der.data() + spki_der.size()) return encoding_error();
  // DER check: re-encode and compare, so BER-only forms are refused too.
  SIGIL_ASSIGN_OR_RETURN(const Bytes reencoded, encode_spki(pkey.get()));
  if (reencoded.size() != spki_der.size() || !std::equal(reencoded.begin(), reencoded.end(), spki_der.begin())) {
    return encoding_error();
  }
  SIGIL_ASSIGN_OR_RETURN(Checked checked, check_key(pkey.get(), alg));
  return make(pkey.release(), alg, std::move(checked.spki), std::move(checked.ed25519), Bytes());
}

bool CoseKey::verify(ByteView message, ByteView signature) const noexcept {
  if (!pkey_) return false;
  auto* pkey = static_cast<EVP_PKEY*>(pkey_.get());
  static const uint8_t kEmpty = 0;
  const uint8_t* msg = message.empty() ? &kEmpty : message.data();

  if (ed25519_) {
    if (signature.size() != kEd25519SigSize) return false;
    ensure_sodium();
    return crypto_sign_verify_detached(signature.data(), msg, message.size(), ed25519_->data()) == 0;
  }
  if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED448) {
    if (signature.size() != kEd448SigSize) return false;
    MdCtxPtr ctx(EVP_MD_CTX_new());
    const bool ok = ctx && EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pkey, nullptr) == 1 &&
                    EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), msg, message.size()) == 1;
    if (!ok) ERR_clear_error();
    return ok;
  }

  const EVP_MD* md = md_for_alg(alg_);
  if (md == nullptr || !pool_) return false;
  if (const EcParams* ec = ec_params_for_alg(alg_)) {
    if (!internal::ecdsa_der_is_strict(signature, order_for_alg(alg_), ec->max_der)) return false;
  } else if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(pkey))) {
    return false;  // RSA: exactly the modulus length
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (!internal::digest(md, message, digest, &digest_len)) return false;
  // A context of this key only, initialised once with the algorithm's digest, padding, PSS salt and MGF1.
  return pool_->verify(digest, digest_len, signature);
}

}  // namespace sigil::crypto
