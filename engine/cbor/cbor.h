// A strict, bounded CBOR (RFC 8949) reader for the WebAuthn/CTAP2 subset.
//
// Guarantees: definite lengths only; major types 0-5 and the simple values false/true/null (no tags,
// no floats, no undefined, no indefinite lengths); nesting depth, item count and every length are
// checked against Limits BEFORE anything is allocated; map keys must be unique and in CTAP2 canonical
// order (shorter encoding first, then bytewise); integers use their shortest encoding; text strings are
// valid UTF-8; decode() refuses trailing bytes. Values own their data (copies), so they outlive the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/result.h"
#include "engine/crypto/bytes.h"

namespace sigil::cbor {

struct Limits {
  size_t max_depth = 5;          // nesting of arrays/maps; the top-level value is depth 1
  size_t max_items = 1024;       // total values in the document
  size_t max_string_bytes = 16 * 1024;
};

class Value {
 public:
  enum class Type : uint8_t { kUnsigned, kNegative, kBytes, kText, kArray, kMap, kBool, kNull };

  [[nodiscard]] Type type() const noexcept { return type_; }
  [[nodiscard]] bool is_int() const noexcept { return type_ == Type::kUnsigned || type_ == Type::kNegative; }
  // Integer value when it fits in int64_t (kUnsigned <= INT64_MAX, kNegative >= INT64_MIN).
  [[nodiscard]] Result<int64_t> as_int() const;
  [[nodiscard]] const Bytes& bytes() const noexcept { return bytes_; }       // kBytes
  [[nodiscard]] const std::string& text() const noexcept { return text_; }   // kText
  [[nodiscard]] bool boolean() const noexcept { return bool_; }              // kBool
  [[nodiscard]] const std::vector<Value>& array() const noexcept { return array_; }  // kArray
  [[nodiscard]] const std::vector<std::pair<Value, Value>>& map() const noexcept { return map_; }  // kMap

  // Map lookups by integer or text key; nullptr when absent or when this is not a map.
  [[nodiscard]] const Value* find(int64_t key) const noexcept;
  [[nodiscard]] const Value* find(std::string_view key) const noexcept;

  // The exact bytes this value was decoded from (for signatures over CBOR, e.g. credentialPublicKey).
  [[nodiscard]] const Bytes& encoded() const noexcept { return encoded_; }

 private:
  friend class Decoder;
  Type type_ = Type::kNull;
  uint64_t uint_ = 0;  // kUnsigned: the value; kNegative: n where the value is -1 - n
  bool bool_ = false;
  Bytes bytes_;
  std::string text_;
  std::vector<Value> array_;
  std::vector<std::pair<Value, Value>> map_;
  Bytes encoded_;
};

// Decodes exactly one value spanning all of `in`. Errors are kInvalidArgument with a short reason.
[[nodiscard]] Result<Value> decode(ByteView in, const Limits& limits = {});
// Decodes one value from the front of `in` and reports how many bytes it used (authenticatorData holds a
// COSE key followed by extensions).
[[nodiscard]] Result<Value> decode_prefix(ByteView in, size_t* consumed, const Limits& limits = {});

}  // namespace sigil::cbor
