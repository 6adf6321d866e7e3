// Bounded big-endian reader over untrusted bytes (authenticatorData, TPM structures).
//
// Every read checks the remaining length first; a failed read leaves the reader unchanged.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/crypto/bytes.h"

namespace sigil::webauthn::internal {

class ByteReader {
 public:
  explicit ByteReader(ByteView data) noexcept : data_(data) {}

  [[nodiscard]] size_t remaining() const noexcept { return data_.size() - pos_; }
  [[nodiscard]] bool empty() const noexcept { return remaining() == 0; }
  [[nodiscard]] ByteView rest() const noexcept { return data_.subspan(pos_); }

  [[nodiscard]] bool bytes(size_t n, ByteView* out) noexcept {
    if (n > remaining()) return false;
    *out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  [[nodiscard]] bool skip(size_t n) noexcept {
    if (n > remaining()) return false;
    pos_ += n;
    return true;
  }
  [[nodiscard]] bool u8(uint8_t* out) noexcept {
    if (remaining() < 1) return false;
    *out = data_[pos_++];
    return true;
  }
  [[nodiscard]] bool u16(uint16_t* out) noexcept {
    if (remaining() < 2) return false;
    *out = static_cast<uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  [[nodiscard]] bool u32(uint32_t* out) noexcept {
    if (remaining() < 4) return false;
    *out = (uint32_t{data_[pos_]} << 24) | (uint32_t{data_[pos_ + 1]} << 16) |
           (uint32_t{data_[pos_ + 2]} << 8) | uint32_t{data_[pos_ + 3]};
    pos_ += 4;
    return true;
  }
  // TPM2B_*: a 16-bit big-endian size followed by that many bytes.
  [[nodiscard]] bool sized16(ByteView* out) noexcept {
    const size_t save = pos_;
    uint16_t n = 0;
    if (!u16(&n) || !bytes(n, out)) {
      pos_ = save;
      return false;
    }
    return true;
  }

 private:
  ByteView data_;
  size_t pos_ = 0;
};

}  // namespace sigil::webauthn::internal
