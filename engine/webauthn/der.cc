// Strict DER walker (see internal/der.h).
#include "engine/webauthn/internal/der.h"

namespace sigil::webauthn::internal {

bool DerReader::next(DerElement* out) noexcept {
  const size_t n = data_.size();
  size_t p = pos_;
  if (p >= n) return false;
  const uint8_t first = data_[p++];
  DerElement e;
  e.tag_class = static_cast<uint8_t>(first >> 6);
  e.constructed = (first & 0x20) != 0;
  uint32_t tag = first & 0x1f;
  if (tag == 0x1f) {
    // High tag number: base-128, minimal (no leading 0x80), at most 4 octets, value >= 31.
    tag = 0;
    for (int i = 0;; ++i) {
      if (p >= n || i == 4) return false;
      const uint8_t b = data_[p++];
      if (i == 0 && b == 0x80) return false;
      tag = (tag << 7) | (b & 0x7fu);
      if ((b & 0x80) == 0) break;
    }
    if (tag < 31) return false;
  }
  e.tag = tag;
  if (p >= n) return false;
  const uint8_t l0 = data_[p++];
  size_t len = 0;
  if (l0 < 0x80) {
    len = l0;
  } else {
    const size_t octets = l0 & 0x7fu;
    if (octets == 0 || octets > 4) return false;  // indefinite form or absurd length
    if (n - p < octets) return false;
    if (data_[p] == 0) return false;  // leading zero octet: not minimal
    for (size_t i = 0; i < octets; ++i) len = (len << 8) | data_[p++];
    if (len < 0x80) return false;  // long form for a short length: not minimal
  }
  if (n - p < len) return false;
  e.value = data_.subspan(p, len);
  pos_ = p + len;
  *out = e;
  return true;
}

bool DerReader::expect(uint32_t universal_tag, bool constructed, ByteView* value) noexcept {
  DerElement e;
  if (!next(&e)) return false;
  if (e.tag_class != kDerUniversal || e.tag != universal_tag || e.constructed != constructed) return false;
  *value = e.value;
  return true;
}

std::optional<int64_t> der_small_uint(ByteView body) noexcept {
  if (body.empty() || body.size() > 8) return std::nullopt;
  if (body[0] & 0x80) return std::nullopt;  // negative
  if (body.size() > 1 && body[0] == 0 && (body[1] & 0x80) == 0) return std::nullopt;  // not minimal
  int64_t v = 0;
  for (uint8_t b : body) v = (v << 8) | b;
  return v;
}

}  // namespace sigil::webauthn::internal
