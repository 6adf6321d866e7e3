// Strict base64 (RFC 4648 §4) and base64url (§5) codecs.
//
// Guarantees: decoders reject any character outside the alphabet, whitespace, misplaced or wrong
// padding, and non-zero trailing bits (so every accepted input has exactly one encoding).
// Output is bounded by the input; no decoder allocates more than 3/4 of the input length.
#pragma once

#include <string>
#include <string_view>

#include "engine/base/result.h"
#include "engine/crypto/bytes.h"

namespace sigil::crypto {

// Standard alphabet, padding required (length a multiple of 4).
[[nodiscard]] Result<Bytes> base64_decode(std::string_view in);
// URL-safe alphabet, no padding (WebAuthn, JOSE).
[[nodiscard]] Result<Bytes> base64url_decode(std::string_view in);
// Either alphabet (not mixed), padding optional but correct when present. For API fields documented as
// "standard base64, base64url also accepted" (API.md 2.2, 2.3).
[[nodiscard]] Result<Bytes> base64_any_decode(std::string_view in);

[[nodiscard]] std::string base64_encode(ByteView in);     // padded
[[nodiscard]] std::string base64url_encode(ByteView in);  // unpadded

}  // namespace sigil::crypto
