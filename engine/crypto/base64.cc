// Strict RFC 4648 base64 / base64url. Hand-written table codec (base64 is an encoding, not a crypto
// primitive): OpenSSL's decoders accept whitespace and do not reject non-zero trailing bits.
#include "engine/crypto/base64.h"

#include <array>
#include <cstdint>

namespace sigil::crypto {
namespace {

constexpr std::string_view kStdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr uint8_t kInvalid = 0xFF;

using DecodeTable = std::array<uint8_t, 256>;

constexpr DecodeTable make_table(std::string_view alphabet) {
  DecodeTable t{};
  for (auto& v : t) v = kInvalid;
  for (size_t i = 0; i < alphabet.size(); ++i) t[static_cast<uint8_t>(alphabet[i])] = static_cast<uint8_t>(i);
  return t;
}

constexpr DecodeTable kStdTable = make_table(kStdAlphabet);
constexpr DecodeTable kUrlTable = make_table(kUrlAlphabet);

enum class Padding { kRequired, kForbidden, kOptional };

std::unexpected<Error> bad_base64() { return invalid_argument("Invalid base64"); }

Result<Bytes> decode(std::string_view in, const DecodeTable& table, Padding padding) {
  size_t pad = 0;
  while (pad < in.size() && pad < 3 && in[in.size() - 1 - pad] == '=') ++pad;
  if (pad > 2) return bad_base64();
  if (pad > 0 && padding == Padding::kForbidden) return bad_base64();
  if (padding == Padding::kRequired && in.size() % 4 != 0) return bad_base64();
  // Padding, when present, must complete the last quantum exactly.
  if (pad > 0 && in.size() % 4 != 0) return bad_base64();

  const std::string_view data = in.substr(0, in.size() - pad);
  const size_t rem = data.size() % 4;
  if (rem == 1) return bad_base64();
  if (pad > 0 && pad != 4 - rem) return bad_base64();  // "AAAA==" or "AA=" style mismatches

  Bytes out;
  out.reserve(data.size() / 4 * 3 + (rem == 0 ? 0 : rem - 1));
  uint32_t acc = 0;
  size_t n = 0;
  for (char c : data) {
    const uint8_t v = table[static_cast<uint8_t>(c)];
    if (v == kInvalid) return bad_base64();  // also rejects '=' inside the data and whitespace
    acc = (acc << 6) | v;
    if (++n == 4) {
      out.push_back(static_cast<uint8_t>(acc >> 16));
      out.push_back(static_cast<uint8_t>(acc >> 8));
      out.push_back(static_cast<uint8_t>(acc));
      acc = 0;
      n = 0;
    }
  }
  if (rem == 2) {
    if ((acc & 0x0F) != 0) return bad_base64();  // non-zero trailing bits: a second encoding of the same bytes
    out.push_back(static_cast<uint8_t>(acc >> 4));
  } else if (rem == 3) {
    if ((acc & 0x03) != 0) return bad_base64();
    out.push_back(static_cast<uint8_t>(acc >> 10));
    out.push_back(static_cast<uint8_t>(acc >> 2));
  }
  return out;
}

std::string encode(ByteView in, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const size_t rem = in.size() - i;
  if (rem == 1) {
    const uint32_t v = uint32_t{in[i]} << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (rem == 2) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

}  // namespace

Result<Bytes> base64_decode(std::string_view in) { return decode(in, kStdTable, Padding::kRequired); }

Result<Bytes> base64url_decode(std::string_view in) { return decode(in, kUrlTable, Padding::kForbidden); }

Result<Bytes> base64_any_decode(std::string_view in) {
  bool has_std = false;
  bool has_url = false;
  for (char c : in) {
    has_std = has_std || c == '+' || c == '/';
    has_url = has_url || c == '-' || c == '_';
  }
  if (has_std && has_url) return bad_base64();  // mixed alphabets
  return decode(in, has_url ? kUrlTable : kStdTable, Padding::kOptional);
}

std::string base64_encode(ByteView in) { return encode(in, kStdAlphabet, true); }

std::string base64url_encode(ByteView in) { return encode(in, kUrlAlphabet, false); }

}  // namespace sigil::crypto
