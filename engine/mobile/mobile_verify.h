// Mobile-biometric device keys and signatures (API.md 2.2, 2.3).
//
// Keys: base64 (or base64url) of SPKI DER, PKCS#1 RSAPublicKey DER or a raw X9.62 P-256 point, parsed once
// into an immutable crypto::PublicKey. Signatures: base64 (or base64url) of the raw signature over the
// UTF-8 bytes of the challenge string: ECDSA P-256/SHA-256 in strict DER, or RSASSA-PKCS1-v1_5/SHA-256.
#pragma once

#include <optional>
#include <string_view>

#include "engine/base/result.h"
#include "engine/crypto/public_key.h"

namespace sigil::mobile {

inline constexpr size_t kMaxEncodedKeyChars = 8 * 1024;
inline constexpr size_t kMaxEncodedSignatureChars = 2048;

// encryption_type: "ec" | "rsa" | nullopt (inferred). Errors: 400 with ts_error_code
// auth_invalid_key_encoding (undecodable) or auth_invalid_key_type (mismatch, unsupported curve/size).
[[nodiscard]] Result<crypto::PublicKey> parse_device_key(std::string_view public_key_b64,
                                                         std::optional<std::string_view> encryption_type);

// "ec" or "rsa".
[[nodiscard]] std::string_view key_type_name(const crypto::PublicKey& key) noexcept;

// True only when `signature_b64` decodes and verifies over `challenge` under `key`.
[[nodiscard]] bool verify_device_signature(const crypto::PublicKey& key, std::string_view challenge,
                                           std::string_view signature_b64) noexcept;

}  // namespace sigil::mobile
