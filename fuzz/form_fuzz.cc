// Fuzz target for form bodies and query strings (api/http/server.h): parse_form, percent_decode,
// percent_encode.
//
// Properties:
//  - parse_form, on success, yields keys and values without NUL; percent-encoding each key and value and
//    joining them with '=' and '&' parses back to exactly the same pairs;
//  - percent_decode (both '+' modes), on success, never grows the input and has no NUL; percent_encode of
//    its output uses only unreserved characters and %XX and decodes back to it;
//  - percent_encode -> percent_decode round-trips any byte string without NUL.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http/server.h"
#include "fuzz/fuzz_check.h"

namespace {

bool encoded_shape_ok(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) continue;
    if (c != '%' || s.size() - i < 3) return false;
    for (char h : s.substr(i + 1, 2)) {
      if (!((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'))) return false;
    }
    i += 2;
  }
  return true;
}

void check_decoded(std::string_view in, bool plus_is_space) {
  auto d = sigil::http::percent_decode(in, plus_is_space);
  if (!d) {
    FUZZ_CHECK(d.error().status() == 400, "percent_decode error is not a 400");
    return;
  }
  FUZZ_CHECK(d->size() <= in.size(), "percent_decode grew the input");
  FUZZ_CHECK(d->find('\0') == std::string::npos, "percent_decode produced a NUL");
  if (in.find('%') == std::string_view::npos && (!plus_is_space || in.find('+') == std::string_view::npos)) {
    FUZZ_CHECK(*d == in, "percent_decode changed a string without escapes");
  }
  const std::string e = sigil::http::percent_encode(*d);
  FUZZ_CHECK(encoded_shape_ok(e), "percent_encode output is not unreserved/%XX only");
  for (bool plus : {false, true}) {
    auto back = sigil::http::percent_decode(e, plus);
    FUZZ_CHECK(back && *back == *d, "percent_encode -> percent_decode round trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  check_decoded(in, false);
  check_decoded(in, true);

  // Raw bytes (without NUL) survive encode -> decode.
  if (in.find('\0') == std::string_view::npos) {
    const std::string e = sigil::http::percent_encode(in);
    FUZZ_CHECK(encoded_shape_ok(e), "percent_encode output is not unreserved/%XX only");
    auto back = sigil::http::percent_decode(e, true);
    FUZZ_CHECK(back && *back == in, "raw percent_encode -> percent_decode round trip");
  }

  auto pairs = sigil::http::parse_form(in);
  if (!pairs) {
    FUZZ_CHECK(pairs.error().status() == 400, "parse_form error is not a 400");
    return 0;
  }
  FUZZ_CHECK(pairs->size() <= size, "parse_form produced more pairs than input bytes");
  std::string rebuilt;
  for (const auto& [k, v] : *pairs) {
    FUZZ_CHECK(k.find('\0') == std::string::npos && v.find('\0') == std::string::npos, "parse_form produced a NUL");
    if (!rebuilt.empty()) rebuilt += '&';
    rebuilt += sigil::http::percent_encode(k);
    rebuilt += '=';
    rebuilt += sigil::http::percent_encode(v);
  }
  auto again = sigil::http::parse_form(rebuilt);
  FUZZ_CHECK(again.has_value(), "re-encoded form does not parse");
  FUZZ_CHECK(*again == *pairs, "re-encoded form parses to other pairs");
  // A form with no '&' and no '=' is one key; with no escapes it is the input itself.
  if (in.find_first_of("&=%+") == std::string_view::npos && !in.empty()) {
    FUZZ_CHECK(pairs->size() == 1 && (*pairs)[0].first == in && (*pairs)[0].second.empty(),
               "a plain word is not one key with an empty value");
  }
  return 0;
}
