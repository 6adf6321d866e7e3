// Request fields, independent of how they arrived (JSON body, form body or query string).
//
// API.md 0.3: every POST/DELETE accepts JSON and form bodies; in the form encoding, object-valued fields
// are JSON text. Params unifies both: scalar fields keep their text, object/array fields keep their raw
// JSON. JSON bodies must be one object, at most kMaxDepth deep, with no duplicate keys and valid UTF-8.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/result.h"

namespace sigil::service {

struct Param {
  enum class Kind : uint8_t { kString, kNumber, kBool, kNull, kObject, kArray };
  Kind kind = Kind::kString;
  std::string text;  // decoded string for kString; JSON text otherwise
};

class Params {
 public:
  static constexpr size_t kMaxDepth = 8;

  [[nodiscard]] static Result<Params> from_json(std::string_view body);
  [[nodiscard]] static Result<Params> from_pairs(std::vector<std::pair<std::string, std::string>> pairs);

  [[nodiscard]] const Param* find(std::string_view name) const noexcept;
  [[nodiscard]] bool has(std::string_view name) const noexcept;

  // A string field of at most max_len bytes; nullopt when absent or JSON null. Numbers are not
  // strings (400).
  [[nodiscard]] Result<std::optional<std::string>> get_string(std::string_view name, size_t max_len) const;
  // Like get_string, but absence (or an empty string) is a 400 with ts_error_code "invalid_request".
  [[nodiscard]] Result<std::string> require_string(std::string_view name, size_t max_len) const;
  // Same, with the body documented for mobile-biometrics register/delete (API.md 2.3, 2.4): a string
  // error_code "invalid_request" and the vendor's message.
  [[nodiscard]] Result<std::string> require_property(std::string_view name, size_t max_len) const;
  [[nodiscard]] Result<std::optional<bool>> get_bool(std::string_view name) const;
  [[nodiscard]] Result<std::optional<int64_t>> get_int(std::string_view name) const;
  // An object field (a JSON object, or in form/query encoding a string holding one). Returns its JSON.
  [[nodiscard]] Result<std::optional<std::string>> get_object(std::string_view name) const;

  void add(std::string name, Param p) { fields_.emplace_back(std::move(name), std::move(p)); }

 private:
  std::vector<std::pair<std::string, Param>> fields_;
};

// The documented missing-property error (API.md 2.3, 2.4).
[[nodiscard]] Error missing_property_error();

// API.md 0.5 approval_data: object, <= 10 entries, string keys 1..64 and values 0..256 chars from
// [A-Za-z0-9_.:\- ]. Returns its canonical JSON (keys sorted by byte order, no whitespace).
[[nodiscard]] Result<std::string> canonical_approval_data(std::string_view object_json);

inline constexpr size_t kMaxObjectBytes = 4096;

// Validates a JSON object (claims, client_attributes) of at most kMaxObjectBytes and returns it
// re-serialised compactly.
[[nodiscard]] Result<std::string> validate_object_json(std::string_view object_json, std::string_view field);

}  // namespace sigil::service
