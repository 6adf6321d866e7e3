// Minimal strict DER walker for the few certificate extensions WebAuthn attestation formats define
// (Android key description, Apple nonce, FIDO AAGUID). Certificates themselves are parsed by OpenSSL.
//
// Guarantees: definite minimal lengths only (no indefinite form, no long form for lengths < 128, no
// leading zero length octets), high tag numbers in minimal base-128, every length checked against the
// remaining input. No allocation.
#pragma once

#include <cstdint>
#include <optional>

#include "engine/crypto/bytes.h"

namespace sigil::webauthn::internal {

inline constexpr uint8_t kDerUniversal = 0;
inline constexpr uint8_t kDerContext = 2;

inline constexpr uint32_t kDerInteger = 2;
inline constexpr uint32_t kDerOctetString = 4;
inline constexpr uint32_t kDerNull = 5;
inline constexpr uint32_t kDerEnumerated = 10;
inline constexpr uint32_t kDerSequence = 16;
inline constexpr uint32_t kDerSet = 17;

struct DerElement {
  uint8_t tag_class = 0;  // 0 universal, 1 application, 2 context-specific, 3 private
  bool constructed = false;
  uint32_t tag = 0;
  ByteView value;
};

class DerReader {
 public:
  explicit DerReader(ByteView data) noexcept : data_(data) {}
  [[nodiscard]] bool empty() const noexcept { return pos_ == data_.size(); }
  // Reads the next element; false on malformed input (the reader is then unusable).
  [[nodiscard]] bool next(DerElement* out) noexcept;
  // Reads the next element and requires the given universal tag.
  [[nodiscard]] bool expect(uint32_t universal_tag, bool constructed, ByteView* value) noexcept;

 private:
  ByteView data_;
  size_t pos_ = 0;
};

// A DER INTEGER/ENUMERATED body as a non-negative value that fits in 63 bits (minimal encoding
// required); nullopt otherwise.
[[nodiscard]] std::optional<int64_t> der_small_uint(ByteView body) noexcept;

}  // namespace sigil::webauthn::internal
