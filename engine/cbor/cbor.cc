// Strict, bounded CBOR decoder (see cbor.h for the guarantees).
//
// Recursive descent over a bounded reader: every read checks the remaining length first, and every declared
// length or count is checked against the remaining input and the Limits before anything is reserved, so a
// short hostile header (e.g. 5a ffffffff) can never make us allocate. Recursion depth is bounded by
// Limits::max_depth.
//
// Why not libcbor (Debian's libcbor-dev): its decoder accepts indefinite lengths, tags, floats, duplicate
// and non-canonical map keys and non-shortest heads, and allocates a whole item tree before a caller could
// look at it; a wrapper enforcing the WebAuthn/CTAP2 profile would have to re-walk every item and re-encode
// keys to check their order, so it would be this reader plus libcbor. The subset is small (six major
// types, three simple values), and the reader is fuzzed (fuzz/cbor_fuzz.cc).
#include "engine/cbor/cbor.h"

#include <algorithm>
#include <limits>

namespace sigil::cbor {
namespace {

constexpr uint8_t kMajorUnsigned = 0;
constexpr uint8_t kMajorNegative = 1;
constexpr uint8_t kMajorBytes = 2;
constexpr uint8_t kMajorText = 3;
constexpr uint8_t kMajorArray = 4;
constexpr uint8_t kMajorMap = 5;
constexpr uint8_t kMajorTag = 6;
constexpr uint8_t kMajorSimple = 7;
constexpr uint8_t kSimpleFalse = 20;
constexpr uint8_t kSimpleTrue = 21;
constexpr uint8_t kSimpleNull = 22;

std::unexpected<Error> cbor_error(const char* reason) { return invalid_argument(std::string("CBOR: ") + reason); }

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(ByteView s) noexcept {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1Fu, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0Fu, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
      return false;  // continuation byte or 0xF8..0xFF as a lead byte
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const uint8_t cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// CTAP2 canonical key order: shorter encoding first, then bytewise.
bool key_less(const Bytes& a, const Bytes& b) noexcept {
  if (a.size() != b.size()) return a.size() < b.size();
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
}

}  // namespace

// Friend of Value: the only code that fills one in.
class Decoder {
 public:
  Decoder(ByteView in, const Limits& limits) noexcept : in_(in), limits_(limits) {}

  Result<Value> value(size_t depth) {
    const size_t start = pos_;
    if (++items_ > limits_.max_items) return cbor_error("too many items");
    SIGIL_ASSIGN_OR_RETURN(const uint8_t initial, byte());
    const auto major = static_cast<uint8_t>(initial >> 5);
    const auto info = static_cast<uint8_t>(initial & 0x1F);
    if (major == kMajorTag) return cbor_error("tags are not supported");
    if (info == 31) return cbor_error("indefinite lengths are not supported");
    if (info >= 28) return cbor_error("reserved additional information");

    Value v;
    if (major == kMajorSimple) {
      // Only false/true/null (encoded in the initial byte); floats, undefined and other simples refused.
      switch (info) {
        case kSimpleFalse: v.type_ = Value::Type::kBool; v.bool_ = false; break;
        case kSimpleTrue: v.type_ = Value::Type::kBool; v.bool_ = true; break;
        case kSimpleNull: v.type_ = Value::Type::kNull; break;
        default: return cbor_error("unsupported simple value or float");
      }
      return finish(std::move(v), start);
    }

    SIGIL_ASSIGN_OR_RETURN(const uint64_t arg, argument(info));
    switch (major) {
      case kMajorUnsigned:
        v.type_ = Value::Type::kUnsigned;
        v.uint_ = arg;
        break;
      case kMajorNegative:
        v.type_ = Value::Type::kNegative;
        v.uint_ = arg;
        break;
      case kMajorBytes: {
        SIGIL_ASSIGN_OR_RETURN(const ByteView s, string_bytes(arg));
        v.type_ = Value::Type::kBytes;
        v.bytes_.assign(s.begin(), s.end());
        break;
      }
      case kMajorText: {
        SIGIL_ASSIGN_OR_RETURN(const ByteView s, string_bytes(arg));
        if (!valid_utf8(s)) return cbor_error("text is not valid UTF-8");
        v.type_ = Value::Type::kText;
        v.text_.assign(as_chars(s));
        break;
      }
      case kMajorArray: {
        if (depth > limits_.max_depth) return cbor_error("nesting too deep");
        // Every item takes at least one byte: a count beyond the remaining input or item budget is refused
        // before reserving.
        if (arg > remaining() || arg > limits_.max_items - items_) return cbor_error("array too long");
        v.type_ = Value::Type::kArray;
        v.array_.reserve(static_cast<size_t>(arg));
        for (uint64_t i = 0; i < arg; ++i) {
          SIGIL_ASSIGN_OR_RETURN(Value item, value(depth + 1));
          v.array_.push_back(std::move(item));
        }
        break;
      }
      case kMajorMap: {
        if (depth > limits_.max_depth) return cbor_error("nesting too deep");
        if (arg > remaining() / 2 || arg > (limits_.max_items - items_) / 2) return cbor_error("map too long");
        v.type_ = Value::Type::kMap;
        v.map_.reserve(static_cast<size_t>(arg));
        for (uint64_t i = 0; i < arg; ++i) {
          SIGIL_ASSIGN_OR_RETURN(Value key, value(depth + 1));
          if (!key.is_int() && key.type_ != Value::Type::kText) return cbor_error("map key must be int or text");
          if (!v.map_.empty()) {
            const Bytes& prev = v.map_.back().first.encoded_;
            if (prev == key.encoded_) return cbor_error("duplicate map key");
            if (!key_less(prev, key.encoded_)) return cbor_error("map keys not in canonical order");
          }
          SIGIL_ASSIGN_OR_RETURN(Value val, value(depth + 1));
          v.map_.emplace_back(std::move(key), std::move(val));
        }
        break;
      }
      default:
        return cbor_error("unsupported major type");  // unreachable: majors 0-7 handled above
    }
    return finish(std::move(v), start);
  }

  [[nodiscard]] size_t pos() const noexcept { return pos_; }

 private:
  [[nodiscard]] size_t remaining() const noexcept { return in_.size() - pos_; }

  Result<uint8_t> byte() {
    if (remaining() < 1) return cbor_error("truncated input");
    return in_[pos_++];
  }

  Result<uint64_t> be(size_t n) {
    if (remaining() < n) return cbor_error("truncated input");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | in_[pos_ + i];
    pos_ += n;
    return v;
  }

  // The head's argument, in its shortest form only.
  Result<uint64_t> argument(uint8_t info) {
    if (info < 24) return uint64_t{info};
    uint64_t v = 0;
    uint64_t min = 0;
    switch (info) {
      case 24: { SIGIL_ASSIGN_OR_RETURN(v, be(1)); min = 24; break; }
      case 25: { SIGIL_ASSIGN_OR_RETURN(v, be(2)); min = 0x100; break; }
      case 26: { SIGIL_ASSIGN_OR_RETURN(v, be(4)); min = 0x10000; break; }
      case 27: { SIGIL_ASSIGN_OR_RETURN(v, be(8)); min = 0x100000000ULL; break; }
      default: return cbor_error("reserved additional information");
    }
    if (v < min) return cbor_error("integer or length not in shortest form");
    return v;
  }

  Result<ByteView> string_bytes(uint64_t len) {
    if (len > limits_.max_string_bytes) return cbor_error("string too long");
    if (len > remaining()) return cbor_error("truncated input");
    const ByteView s = in_.subspan(pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  Value finish(Value v, size_t start) {
    const ByteView enc = in_.subspan(start, pos_ - start);
    v.encoded_.assign(enc.begin(), enc.end());
    return v;
  }

  ByteView in_;
  const Limits& limits_;
  size_t pos_ = 0;
  size_t items_ = 0;
};

Result<int64_t> Value::as_int() const {
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (type_ == Type::kUnsigned) {
    if (uint_ > kMax) return cbor_error("integer out of range");
    return static_cast<int64_t>(uint_);
  }
  if (type_ == Type::kNegative) {
    if (uint_ > kMax) return cbor_error("integer out of range");
    return -1 - static_cast<int64_t>(uint_);
  }
  return cbor_error("not an integer");
}

const Value* Value::find(int64_t key) const noexcept {
  if (type_ != Type::kMap) return nullptr;
  const Type want = key >= 0 ? Type::kUnsigned : Type::kNegative;
  const uint64_t n = key >= 0 ? static_cast<uint64_t>(key) : static_cast<uint64_t>(-(key + 1));
  for (const auto& [k, v] : map_) {
    if (k.type_ == want && k.uint_ == n) return &v;
  }
  return nullptr;
}

const Value* Value::find(std::string_view key) const noexcept {
  if (type_ != Type::kMap) return nullptr;
  for (const auto& [k, v] : map_) {
    if (k.type_ == Type::kText && k.text_ == key) return &v;
  }
  return nullptr;
}

Result<Value> decode_prefix(ByteView in, size_t* consumed, const Limits& limits) {
  Decoder d(in, limits);
  SIGIL_ASSIGN_OR_RETURN(Value v, d.value(1));
  if (consumed != nullptr) *consumed = d.pos();
  return v;
}

Result<Value> decode(ByteView in, const Limits& limits) {
  size_t used = 0;
  SIGIL_ASSIGN_OR_RETURN(Value v, decode_prefix(in, &used, limits));
  if (used != in.size()) return cbor_error("trailing bytes");
  return v;
}

}  // namespace sigil::cbor
