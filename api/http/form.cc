// Percent-encoding and application/x-www-form-urlencoded parsing for sigil::http.
//
// Strict on purpose: a '%' not followed by two hex digits, and any NUL (raw or decoded), is an error
// rather than being passed through, so later layers never see ambiguous or truncated strings.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http/server.h"

namespace sigil::http {
namespace {

// -1 when `c` is not a hex digit.
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

}  // namespace

Result<std::string> percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (in.size() - i < 3) return invalid_argument("Malformed percent-encoding");
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return invalid_argument("Malformed percent-encoding");
      c = static_cast<char>(static_cast<unsigned char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return invalid_argument("Malformed percent-encoding");
    out.push_back(c);
  }
  return out;
}

std::string percent_encode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0F]);
    }
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_form(std::string_view in) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!in.empty()) {
    const size_t amp = in.find('&');
    const std::string_view pair = in.substr(0, amp);
    in = amp == std::string_view::npos ? std::string_view{} : in.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string_view raw_key = pair.substr(0, eq);
    const std::string_view raw_value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    auto key = percent_decode(raw_key, /*plus_is_space=*/true);
    auto value = percent_decode(raw_value, /*plus_is_space=*/true);
    if (!key || !value) return invalid_argument("Malformed form body");
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

}  // namespace sigil::http
