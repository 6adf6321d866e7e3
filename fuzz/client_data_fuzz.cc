// Fuzz target for clientDataJSON parsing (engine/webauthn/webauthn.h, parse_client_data), cross-checked
// against an independent reading of the same text with simdjson's DOM parser.
//
// Properties:
//  - every error is kInvalidArgument (ts_error_code system_invalid_input);
//  - success ⇒ the input is at most 8 KiB and one JSON object with unique member names; type and origin are
//    that object's string members, byte for byte; the challenge is non-empty and base64url_encode of it is
//    the JSON's challenge string exactly (strict unpadded base64url); crossOrigin is the JSON boolean (false
//    when absent); topOrigin the JSON's non-empty string (empty when absent);
//  - completeness: an input that meets all of those conditions is accepted.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "engine/crypto/base64.h"
#include "engine/webauthn/webauthn.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::ByteView;
namespace wa = sigil::webauthn;

// What the JSON says, read independently of the parser under test.
struct Expected {
  bool acceptable = false;
  std::string type, origin, challenge_text, top_origin;
  bool cross_origin = false;
};

Expected read_expected(std::string_view text) {
  Expected e;
  if (text.empty() || text.size() > 8 * 1024) return e;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return e;
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) return e;
  std::vector<std::string> names;
  bool type = false, challenge = false, origin = false;
  for (auto field : obj) {
    const std::string name(field.key);
    if (std::find(names.begin(), names.end(), name) != names.end()) return e;  // duplicate member
    names.push_back(name);
    std::string_view s;
    if (name == "type" || name == "origin" || name == "challenge" || name == "topOrigin") {
      if (field.value.get_string().get(s) != simdjson::SUCCESS) return e;
      if (name == "type") e.type = std::string(s), type = true;
      if (name == "origin") e.origin = std::string(s), origin = true;
      if (name == "challenge") e.challenge_text = std::string(s), challenge = true;
      if (name == "topOrigin") {
        if (s.empty()) return e;
        e.top_origin = std::string(s);
      }
    } else if (name == "crossOrigin") {
      if (field.value.get_bool().get(e.cross_origin) != simdjson::SUCCESS) return e;
    }
  }
  if (!type || !challenge || !origin) return e;
  auto decoded = sigil::crypto::base64url_decode(e.challenge_text);
  if (!decoded || decoded->empty()) return e;
  e.acceptable = true;
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView input(data, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = wa::parse_client_data(input);
  const Expected e = read_expected(text);
  if (!r) {
    FUZZ_CHECK(r.error().code == sigil::ErrorCode::kInvalidArgument, "clientDataJSON error is not kInvalidArgument");
    FUZZ_CHECK(r.error().ts_error_code == "system_invalid_input", "clientDataJSON error without its ts code");
    FUZZ_CHECK(!e.acceptable, "a well-formed clientDataJSON was refused");
    return 0;
  }
  FUZZ_CHECK(e.acceptable, "parse_client_data accepted what the DOM reading refuses");
  FUZZ_CHECK(r->type == e.type, "type differs from the JSON's type string");
  FUZZ_CHECK(r->origin == e.origin, "origin differs from the JSON's origin string");
  FUZZ_CHECK(!r->challenge.empty(), "empty challenge accepted");
  FUZZ_CHECK(sigil::crypto::base64url_encode(r->challenge) == e.challenge_text,
             "the challenge does not re-encode to the JSON's challenge string");
  FUZZ_CHECK(r->cross_origin == e.cross_origin, "crossOrigin differs from the JSON");
  FUZZ_CHECK(r->top_origin == e.top_origin, "topOrigin differs from the JSON");
  return 0;
}
