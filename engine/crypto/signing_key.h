// ES256 signing keys (token signing) and authenticated encryption of secrets at rest.
//
// Thread-safety: a SigningKey is immutable after construction and may sign from many threads at once.
#pragma once

#include <memory>
#include <string>

#include "engine/base/result.h"
#include "engine/crypto/bytes.h"
#include "engine/crypto/public_key.h"

namespace sigil::crypto {
namespace internal {
class PkeyCtxPool;
}  // namespace internal

class SigningKey {
 public:
  [[nodiscard]] static Result<SigningKey> generate_p256();
  // PKCS#8 PrivateKeyInfo DER of a P-256 key.
  [[nodiscard]] static Result<SigningKey> from_pkcs8_der(ByteView der);

  // Secret: wipe it after use.
  [[nodiscard]] Bytes pkcs8_der() const;
  [[nodiscard]] const PublicKey& public_key() const noexcept { return *public_key_; }
  // Affine coordinates, 32 bytes each, for the JWK (`x`, `y`).
  [[nodiscard]] const Bytes& x() const noexcept { return *x_; }
  [[nodiscard]] const Bytes& y() const noexcept { return *y_; }

  // ECDSA P-256 / SHA-256 over `message`, returned in JOSE form (r || s, 64 bytes).
  [[nodiscard]] Result<Bytes> sign_es256_jose(ByteView message) const;
  // Same, DER-encoded (tests sign challenges with it).
  [[nodiscard]] Result<Bytes> sign_es256_der(ByteView message) const;

 private:
  SigningKey() = default;
  std::shared_ptr<void> pkey_;  // EVP_PKEY
  // Pre-initialised sign contexts of this key (internal/pkey_ctx_pool.h), shared by copies of the key.
  std::shared_ptr<internal::PkeyCtxPool> sign_pool_;
  std::shared_ptr<const PublicKey> public_key_;
  std::shared_ptr<const Bytes> x_, y_;
};

// XChaCha20-Poly1305 (libsodium) with a 32-byte key. `aad` binds context (e.g. the kid).
// Output: nonce (24) || ciphertext || tag (16).
[[nodiscard]] Bytes seal(ByteView key32, ByteView plaintext, ByteView aad);
[[nodiscard]] Result<Bytes> open(ByteView key32, ByteView sealed, ByteView aad);

}  // namespace sigil::crypto
