// Public-key handles: parsed and validated once, immutable, safe to share across threads.
//
// Accepted encodings: X.509 SubjectPublicKeyInfo DER (EC P-256 or RSA), PKCS#1 RSAPublicKey DER, and a raw
// uncompressed X9.62 P-256 point (04 || X || Y, 65 bytes). Rejected: trailing bytes, points not on the
// curve, EC curves other than P-256, RSA moduli outside 2048..4096 bits or with an even/small exponent,
// any other key type.
//
// Verification (no algorithm confusion: the algorithm is fixed by the key's type):
//   EC P-256: ECDSA with SHA-256, signature in strict DER (BER forms, trailing bytes, r or s out of
//             [1, n-1] are rejected; high-S is accepted).
//   RSA:      RSASSA-PKCS1-v1_5 with SHA-256, signature exactly the modulus length.
// Each key keeps its own pre-initialised verify contexts (internal/pkey_ctx_pool.h), never shared with or
// re-pointed at another key, so one thread interleaving keys can never verify under a previous key (the
// OpenSSL 3.0 EVP_MD_CTX re-init pitfall in CONVENTIONS.md).
#pragma once

#include <memory>
#include <string>

#include "engine/base/result.h"
#include "engine/crypto/bytes.h"

namespace sigil::crypto {

namespace internal {
class PkeyCtxPool;
}

enum class KeyType : uint8_t { kEcP256, kRsa };

class PublicKey {
 public:
  [[nodiscard]] static Result<PublicKey> from_spki_der(ByteView der);
  [[nodiscard]] static Result<PublicKey> from_pkcs1_rsa_der(ByteView der);
  [[nodiscard]] static Result<PublicKey> from_x962_p256(ByteView point);
  // Tries SPKI, then PKCS#1, then the raw point. Errors carry ts_error_code
  // "auth_invalid_key_encoding" (undecodable) or "auth_invalid_key_type" (decodable but unsupported:
  // another curve, RSA size out of range, another algorithm).
  [[nodiscard]] static Result<PublicKey> parse_any(ByteView der_or_point);

  [[nodiscard]] KeyType type() const noexcept { return type_; }
  [[nodiscard]] int bits() const noexcept { return bits_; }
  // Canonical SubjectPublicKeyInfo DER; what the store persists.
  [[nodiscard]] const Bytes& spki_der() const noexcept { return *spki_; }

  // Verifies `sig` over `message` (the message is hashed with SHA-256 here).
  [[nodiscard]] bool verify(ByteView message, ByteView sig) const noexcept;
  // Same, over a precomputed SHA-256 digest.
  [[nodiscard]] bool verify_digest(ByteView sha256_digest, ByteView sig) const noexcept;

  // Opaque OpenSSL handle (EVP_PKEY*), for sibling engine code only.
  [[nodiscard]] void* native_handle() const noexcept { return pkey_.get(); }

 private:
  // Takes ownership of an EVP_PKEY, checks its type and parameters, and builds the handle (public_key.cc).
  [[nodiscard]] static Result<PublicKey> from_owned_pkey(void* evp_pkey);
  // Takes ownership of a P-256 EVP_PKEY already checked by internal::ec_public_from_point.
  [[nodiscard]] static Result<PublicKey> from_checked_p256(void* evp_pkey, Bytes spki);

  PublicKey(std::shared_ptr<void> pkey, std::shared_ptr<internal::PkeyCtxPool> pool, KeyType type, int bits,
            std::shared_ptr<const Bytes> spki)
      : pkey_(std::move(pkey)), pool_(std::move(pool)), type_(type), bits_(bits), spki_(std::move(spki)) {}

  std::shared_ptr<void> pkey_;                   // EVP_PKEY, freed with EVP_PKEY_free
  std::shared_ptr<internal::PkeyCtxPool> pool_;  // this key's verify contexts (internally locked)
  KeyType type_;
  int bits_;
  std::shared_ptr<const Bytes> spki_;
};

}  // namespace sigil::crypto
