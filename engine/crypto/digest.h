// Digests, MACs, constant-time comparison and the CSPRNG.
//
// Thread-safety: every function is safe to call concurrently. Algorithms are fetched once
// (EVP_MD_fetch / EVP_MAC_fetch) and reused: the implicit lookups take locks that stop scaling.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "engine/crypto/bytes.h"

namespace sigil::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

[[nodiscard]] Sha256Digest sha256(ByteView data) noexcept;
[[nodiscard]] Sha256Digest hmac_sha256(ByteView key, ByteView data) noexcept;

// Constant-time equality: time depends only on the lengths, never on the contents.
[[nodiscard]] bool ct_equal(ByteView a, ByteView b) noexcept;

// OS CSPRNG (libsodium randombytes_buf). Aborts if the generator cannot be initialised.
void random_fill(std::span<uint8_t> out) noexcept;
[[nodiscard]] Bytes random_bytes(size_t n);
// base64url of n random bytes: identifiers, opaque tokens.
[[nodiscard]] std::string random_token(size_t n_bytes = 32);
// Uniform decimal string of `digits` digits (OTPs), without modulo bias.
[[nodiscard]] std::string random_digits(size_t digits);

// Overwrites a secret buffer in a way the compiler cannot elide.
void wipe(std::span<uint8_t> secret) noexcept;

}  // namespace sigil::crypto
