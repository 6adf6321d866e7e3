// Fuzz target for the strict base64 codecs (engine/crypto/base64.h).
//
// Properties:
//  - strict codecs have exactly one encoding: whatever base64_decode / base64url_decode accepts
//    re-encodes to exactly the input;
//  - base64_any_decode accepts at most one spelling per alphabet and padding choice: what it accepts
//    re-encodes to the input in the detected alphabet (url if '-' or '_' occur, else standard), padded
//    exactly when the input was;
//  - every decoded length is at most 3/4 of the input length;
//  - encode -> decode round-trips the raw input bytes under every decoder that should accept it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/crypto/base64.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;
using sigil::ByteView;

bool equal(const Bytes& a, ByteView b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

// Standard padded encoding, moved to the url alphabet and/or stripped of padding.
std::string encode_as(ByteView bytes, bool url, bool padded) {
  std::string s = sigil::crypto::base64_encode(bytes);
  if (url) {
    for (char& c : s) {
      if (c == '+') c = '-';
      if (c == '/') c = '_';
    }
  }
  if (!padded) {
    while (!s.empty() && s.back() == '=') s.pop_back();
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace c = sigil::crypto;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ByteView raw(data, size);

  // 1. Decode the input as text.
  if (auto std_dec = c::base64_decode(text)) {
    FUZZ_CHECK(std_dec->size() * 4 <= size * 3, "base64_decode output larger than 3/4 of the input");
    FUZZ_CHECK(c::base64_encode(*std_dec) == text, "base64_decode accepted a non-canonical encoding");
  }
  if (auto url_dec = c::base64url_decode(text)) {
    FUZZ_CHECK(url_dec->size() * 4 <= size * 3, "base64url_decode output larger than 3/4 of the input");
    FUZZ_CHECK(c::base64url_encode(*url_dec) == text, "base64url_decode accepted a non-canonical encoding");
  }
  if (auto any_dec = c::base64_any_decode(text)) {
    FUZZ_CHECK(any_dec->size() * 4 <= size * 3, "base64_any_decode output larger than 3/4 of the input");
    const bool url = text.find_first_of("-_") != std::string_view::npos;
    const bool padded = !text.empty() && text.back() == '=';
    FUZZ_CHECK(text.find_first_of(url ? "+/" : "-_") == std::string_view::npos,
               "base64_any_decode accepted mixed alphabets");
    FUZZ_CHECK(encode_as(*any_dec, url, padded) == text,
               "base64_any_decode accepted a non-canonical encoding for its alphabet and padding");
    // The strict decoders agree with it where their rules apply.
    if (!url && (padded || size % 4 == 0)) {
      auto strict = c::base64_decode(text);
      FUZZ_CHECK(strict && *strict == *any_dec, "base64_any_decode and base64_decode disagree");
    }
    if (!padded) {
      auto strict = c::base64url_decode(text);
      if (!url && text.find_first_of("+/") != std::string_view::npos) {
        FUZZ_CHECK(!strict, "base64url_decode accepted '+' or '/'");
      } else {
        FUZZ_CHECK(strict && *strict == *any_dec, "base64_any_decode and base64url_decode disagree");
      }
    }
  }

  // 2. Encode the input as bytes; every spelling that should decode does, to the same bytes.
  const std::string std_enc = c::base64_encode(raw);
  const std::string url_enc = c::base64url_encode(raw);
  FUZZ_CHECK(std_enc.size() == (size + 2) / 3 * 4, "base64_encode length");
  FUZZ_CHECK(url_enc == encode_as(raw, /*url=*/true, /*padded=*/false), "base64url_encode differs from base64_encode");
  auto d1 = c::base64_decode(std_enc);
  FUZZ_CHECK(d1 && equal(*d1, raw), "base64 encode->decode round trip");
  auto d2 = c::base64url_decode(url_enc);
  FUZZ_CHECK(d2 && equal(*d2, raw), "base64url encode->decode round trip");
  for (bool url : {false, true}) {
    for (bool padded : {false, true}) {
      auto d3 = c::base64_any_decode(encode_as(raw, url, padded));
      FUZZ_CHECK(d3 && equal(*d3, raw), "base64_any encode->decode round trip");
    }
  }
  // Padding is required by the standard decoder and forbidden by the url one.
  if (size % 3 != 0) {
    FUZZ_CHECK(!c::base64_decode(encode_as(raw, false, false)), "base64_decode accepted missing padding");
    FUZZ_CHECK(!c::base64url_decode(encode_as(raw, true, true)), "base64url_decode accepted padding");
  }
  return 0;
}
