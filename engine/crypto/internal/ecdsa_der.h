// Strict ECDSA DER signature check shared by PublicKey (ES256) and CoseKey (ES256/384/512).
//
// A byte-level parser without allocation: it accepts exactly the inputs that d2i_ECDSA_SIG consumes whole
// and i2d_ECDSA_SIG re-encodes byte for byte (SEQUENCE { INTEGER r, INTEGER s } in DER: definite minimal
// lengths, minimal integers, nothing after s, nothing after the SEQUENCE), with r and s in [1, order-1].
// fuzz_der_signature checks that equivalence differentially against OpenSSL on its corpus.
//
// Internal to engine/crypto: header-only so the component's source glob needs no change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/crypto/bytes.h"

namespace sigil::crypto::internal {

// P-256 group order n, big-endian.
inline constexpr uint8_t kP256Order[32] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};

namespace der_detail {

// A DER length at in[pos]: the short form below 128, else 0x81 followed by a byte >= 128 (an ECDSA
// signature of the supported curves is under 256 bytes, so longer forms are never minimal here).
inline bool read_length(ByteView in, size_t& pos, size_t& len) noexcept {
  if (pos >= in.size()) return false;
  const uint8_t first = in[pos++];
  if (first < 0x80) {
    len = first;
    return true;
  }
  if (first != 0x81 || pos >= in.size()) return false;
  const uint8_t second = in[pos++];
  if (second < 0x80) return false;  // had to use the short form
  len = second;
  return true;
}

// A minimal DER INTEGER at in[pos] whose value lies in [1, order-1]. `order` is big-endian without
// leading zeros. On success *magnitude (when given) is the value without its sign byte.
inline bool read_scalar(ByteView in, size_t& pos, ByteView order, ByteView* magnitude = nullptr) noexcept {
  if (pos >= in.size() || in[pos++] != 0x02) return false;
  size_t len = 0;
  if (!read_length(in, pos, len) || len == 0 || len > in.size() - pos) return false;
  ByteView v = in.subspan(pos, len);
  pos += len;
  if ((v[0] & 0x80) != 0) return false;  // negative
  if (v[0] == 0) {
    if (v.size() == 1) return false;            // zero
    if ((v[1] & 0x80) == 0) return false;       // non-minimal leading zero
    v = v.subspan(1);
  }
  // v is the magnitude with a non-zero first byte: compare with the order as numbers.
  const bool below = v.size() != order.size() ? v.size() < order.size()
                                              : std::memcmp(v.data(), order.data(), v.size()) < 0;
  if (below && magnitude != nullptr) *magnitude = v;
  return below;
}

}  // namespace der_detail

// Strict ECDSA DER of at most `max_size` bytes with r, s in [1, order-1]; `order` big-endian, no leading
// zeros. Signatures are public: the check need not be constant-time.
[[nodiscard]] inline bool ecdsa_der_is_strict(ByteView sig, ByteView order, size_t max_size) noexcept {
  if (sig.empty() || sig.size() > max_size || order.empty()) return false;
  size_t pos = 0;
  if (sig[pos++] != 0x30) return false;
  size_t len = 0;
  if (!der_detail::read_length(sig, pos, len) || len != sig.size() - pos) return false;
  if (!der_detail::read_scalar(sig, pos, order) || !der_detail::read_scalar(sig, pos, order)) return false;
  return pos == sig.size();
}

// The strict DER signature `sig` (as ecdsa_der_is_strict) as r || s, each left-padded with zeros to
// order.size() bytes: the fixed-width form of JOSE (RFC 7518 §3.4) and IEEE P1363. `out` holds
// 2 * order.size() bytes. False (out untouched) when `sig` is not strict DER. Converts without the
// ECDSA_SIG and two BIGNUM allocations of d2i_ECDSA_SIG.
[[nodiscard]] inline bool ecdsa_der_to_fixed(ByteView sig, ByteView order, uint8_t* out) noexcept {
  if (sig.empty() || order.empty()) return false;
  size_t pos = 0;
  if (sig[pos++] != 0x30) return false;
  size_t len = 0;
  if (!der_detail::read_length(sig, pos, len) || len != sig.size() - pos) return false;
  ByteView r, s;
  if (!der_detail::read_scalar(sig, pos, order, &r) || !der_detail::read_scalar(sig, pos, order, &s) ||
      pos != sig.size()) {
    return false;
  }
  const size_t n = order.size();  // r, s < order: never longer than n
  std::memset(out, 0, 2 * n);
  std::memcpy(out + (n - r.size()), r.data(), r.size());
  std::memcpy(out + n + (n - s.size()), s.data(), s.size());
  return true;
}

}  // namespace sigil::crypto::internal
