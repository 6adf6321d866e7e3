// COSE_Key (RFC 9052/9053) public keys for WebAuthn credentials and attestation certificates.
//
// Guarantees: parsed and validated once into an immutable handle, safe to share across threads.
// kty/crv/alg must be consistent: EC2 P-256/ES256, P-384/ES384, P-521/ES512; OKP Ed25519/EdDSA,
// Ed448/EdDSA; RSA with RS256, PS256 or RS1 (TPM/legacy attestation only), modulus >= 2048 bits.
// EC points must be on the curve; Ed25519 keys of small order are refused (libsodium semantics).
// verify() uses exactly the key's algorithm (no confusion): ECDSA signatures in strict DER (WebAuthn
// format), EdDSA raw (64 / 114 bytes; Ed25519 through libsodium, which refuses non-canonical S and
// small-order points), RSA PKCS#1 v1.5 or PSS (salt = digest length, MGF1 with the same hash).
#pragma once

#include <cstdint>
#include <memory>

#include "engine/base/result.h"
#include "engine/crypto/bytes.h"

namespace sigil::cbor {
class Value;
}

namespace sigil::crypto {

namespace internal {
class PkeyCtxPool;
}

// COSE algorithm identifiers (IANA).
namespace cose_alg {
inline constexpr int64_t kES256 = -7;
inline constexpr int64_t kEdDSA = -8;
inline constexpr int64_t kES384 = -35;
inline constexpr int64_t kES512 = -36;
inline constexpr int64_t kPS256 = -37;
inline constexpr int64_t kRS256 = -257;
inline constexpr int64_t kRS1 = -65535;
// Fully-specified EdDSA identifiers (RFC 9864): Ed25519 and Ed448.
inline constexpr int64_t kEd25519 = -19;
inline constexpr int64_t kEd448 = -53;
}  // namespace cose_alg

class CoseKey {
 public:
  // From a decoded COSE_Key map. Errors: kInvalidArgument.
  [[nodiscard]] static Result<CoseKey> parse(const cbor::Value& map);
  // From COSE_Key bytes (exactly one CBOR map, no trailing bytes).
  [[nodiscard]] static Result<CoseKey> decode(ByteView cose);
  // From an X.509 SubjectPublicKeyInfo (attestation certificates) with the algorithm the statement
  // declares; the key type must fit the algorithm.
  [[nodiscard]] static Result<CoseKey> from_spki(ByteView spki_der, int64_t alg);

  [[nodiscard]] int64_t alg() const noexcept { return alg_; }
  // The COSE_Key bytes as received (what the store keeps). Empty for keys made by from_spki.
  [[nodiscard]] const Bytes& cose_bytes() const noexcept { return *cose_; }
  // SubjectPublicKeyInfo DER of the key (compare with a certificate's key).
  [[nodiscard]] const Bytes& spki_der() const noexcept { return *spki_; }

  [[nodiscard]] bool verify(ByteView message, ByteView signature) const noexcept;

 private:
  CoseKey() = default;
  // Builds the handle from a checked key (takes ownership of the EVP_PKEY) and its parts.
  static CoseKey make(void* evp_pkey, int64_t alg, Bytes spki, Bytes ed25519, Bytes cose);
  int64_t alg_ = 0;
  std::shared_ptr<void> pkey_;              // EVP_PKEY (all types)
  std::shared_ptr<internal::PkeyCtxPool> pool_;  // pre-initialised verify contexts of this key (EC, RSA)
  std::shared_ptr<const Bytes> ed25519_;    // raw 32-byte key for libsodium, when Ed25519
  std::shared_ptr<const Bytes> cose_;
  std::shared_ptr<const Bytes> spki_;
};

}  // namespace sigil::crypto
