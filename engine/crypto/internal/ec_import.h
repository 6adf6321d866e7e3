// Import of EC public keys of the named NIST curves from an uncompressed point, shared by PublicKey and
// CoseKey; and the SubjectPublicKeyInfo DER of such a key without OpenSSL's encoder.
//
// Cost: EVP_PKEY_fromdata builds the curve's EC_GROUP from its name on every call (Montgomery set-up with a
// modular inverse: most of its ~15 us), and EVP_PKEY_public_check adds the n*Q = O scalar multiplication
// (~45 us). Here each thread keeps one template key per curve, made once with EVP_PKEY_fromdata;
// a new key is EVP_PKEY_dup of the template (copies the group) with the point replaced by
// EVP_PKEY_set1_encoded_public_key (EC_POINT_oct2point: coordinates below p, on the curve). The key then
// goes through EVP_PKEY_public_check_quick (OpenSSL 3.0, EVP_PKEY_check(3)): for EC it checks the point is
// not at infinity, its coordinates are in range and it is on the curve, and skips only the n*Q = O
// multiplication. P-256, P-384 and P-521 have cofactor 1, so every point on the curve other than infinity
// is in the prime-order group and that multiplication adds nothing.
//
// Thread-safety: the templates are thread_local and only read (EVP_PKEY_dup); the keys returned are new.
//
// Internal to engine/crypto: header-only so the component's source glob needs no change.
#pragma once

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/crypto/bytes.h"
#include "engine/crypto/internal/ossl_ptr.h"

namespace sigil::crypto::internal {

enum class EcCurve : uint8_t { kP256 = 0, kP384 = 1, kP521 = 2 };

// Coordinate size in bytes.
constexpr size_t ec_coord_size(EcCurve c) noexcept { return c == EcCurve::kP256 ? 32 : c == EcCurve::kP384 ? 48 : 66; }
// Size of the uncompressed point 04 || X || Y.
constexpr size_t ec_point_size(EcCurve c) noexcept { return 1 + 2 * ec_coord_size(c); }

// OpenSSL's group name (as EVP_PKEY_get_group_name reports it).
inline const char* ec_group_name(EcCurve c) noexcept {
  switch (c) {
    case EcCurve::kP256: return SN_X9_62_prime256v1;
    case EcCurve::kP384: return SN_secp384r1;
    case EcCurve::kP521: return SN_secp521r1;
  }
  return nullptr;
}

// The DER SubjectPublicKeyInfo of a named-curve key up to the uncompressed point:
// SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID curve }, BIT STRING (0 unused bits) 04 || X || Y }.
// tests/engine/crypto check these against i2d_PUBKEY.
inline ByteView ec_spki_prefix(EcCurve c) noexcept {
  static constexpr uint8_t kP256[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                                      0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
  static constexpr uint8_t kP384[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
                                      0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00};
  static constexpr uint8_t kP521[] = {0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                      0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00};
  switch (c) {
    case EcCurve::kP256: return ByteView(kP256);
    case EcCurve::kP384: return ByteView(kP384);
    case EcCurve::kP521: return ByteView(kP521);
  }
  return {};
}

// SubjectPublicKeyInfo DER of the key with uncompressed point `point` (which must be ec_point_size long).
inline Bytes ec_spki(EcCurve c, ByteView point) {
  const ByteView prefix = ec_spki_prefix(c);
  Bytes out;
  out.reserve(prefix.size() + point.size());
  out.insert(out.end(), prefix.begin(), prefix.end());
  out.insert(out.end(), point.begin(), point.end());
  return out;
}

namespace ec_detail {

inline int ec_nid(EcCurve c) noexcept {
  switch (c) {
    case EcCurve::kP256: return NID_X9_62_prime256v1;
    case EcCurve::kP384: return NID_secp384r1;
    case EcCurve::kP521: return NID_secp521r1;
  }
  return NID_undef;
}

// A public key of the curve from an uncompressed point with EVP_PKEY_fromdata (builds the group by name).
inline EVP_PKEY* from_data(EcCurve c, ByteView point) noexcept {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(ec_group_name(c)), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* out = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params) != 1) return nullptr;
  return out;
}

// This thread's template key of the curve (its point is the generator), made on first use; nullptr if
// OpenSSL cannot make it (then every import fails).
inline EVP_PKEY* thread_template(EcCurve c) noexcept {
  static thread_local std::array<PkeyPtr, 3> templates;
  auto& slot = templates[static_cast<size_t>(c)];
  if (!slot) {
    std::unique_ptr<EC_GROUP, decltype(&EC_GROUP_free)> group(EC_GROUP_new_by_curve_name(ec_nid(c)), EC_GROUP_free);
    uint8_t g[ec_point_size(EcCurve::kP521)];
    const size_t len = group ? EC_POINT_point2oct(group.get(), EC_GROUP_get0_generator(group.get()),
                                                  POINT_CONVERSION_UNCOMPRESSED, g, sizeof g, nullptr)
                             : 0;
    if (len == ec_point_size(c)) slot.reset(from_data(c, ByteView(g, len)));
    ERR_clear_error();
  }
  return slot.get();
}

}  // namespace ec_detail

// A checked public key of the curve from `point` (04 || X || Y, exactly ec_point_size bytes); nullptr (with
// OpenSSL's error queue cleared) when the encoding is wrong or the point is not a valid curve point.
[[nodiscard]] inline EVP_PKEY* ec_public_from_point(EcCurve c, ByteView point) noexcept {
  if (point.size() != ec_point_size(c) || point[0] != 0x04) return nullptr;
  EVP_PKEY* tmpl = ec_detail::thread_template(c);
  PkeyPtr key(tmpl != nullptr ? EVP_PKEY_dup(tmpl) : nullptr);
  bool ok = key != nullptr && EVP_PKEY_set1_encoded_public_key(key.get(), point.data(), point.size()) == 1;
  if (ok) {
    PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    ok = check != nullptr && EVP_PKEY_public_check_quick(check.get()) == 1;
  }
  if (!ok) {
    ERR_clear_error();
    return nullptr;
  }
  return key.release();
}

}  // namespace sigil::crypto::internal
