// Fuzz target for the strict CBOR reader (engine/cbor/cbor.h): decode and decode_prefix over the input.
//
// Properties:
//  - every error is kInvalidArgument;
//  - decode() success ⇒ the value's encoded() is the input, and a re-encoding of the decoded tree written
//    here (shortest-form heads, definite lengths) is the input byte for byte — at every node, so no
//    value, length or nesting can be misread;
//  - decode_prefix() success ⇒ 0 < consumed <= size, encoded() == input[0:consumed], and decode() of exactly
//    that prefix succeeds with the same encoded(); decode() of the whole input succeeds iff the prefix
//    decode does and consumed == size;
//  - maps: keys are int or text, unique and in CTAP2 canonical order (shorter encoding first, then
//    bytewise), and find() by each key returns that key's value; text is valid UTF-8 (simdjson's validator);
//  - the limits are exact: with Limits set to the document's own container depth, item count and longest
//    string, decode succeeds with the same encoded(); with any one of them one lower, it fails.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <simdjson.h>

#include "engine/cbor/cbor.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;
using sigil::ByteView;
using sigil::cbor::Limits;
using sigil::cbor::Value;

bool equal(ByteView a, ByteView b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

void put_head(Bytes& out, uint8_t major, uint64_t arg) {
  const auto m = static_cast<uint8_t>(major << 5);
  if (arg < 24) {
    out.push_back(static_cast<uint8_t>(m | arg));
    return;
  }
  size_t n = 8;
  uint8_t info = 27;
  if (arg <= 0xff) {
    n = 1, info = 24;
  } else if (arg <= 0xffff) {
    n = 2, info = 25;
  } else if (arg <= 0xffffffffULL) {
    n = 4, info = 26;
  }
  out.push_back(static_cast<uint8_t>(m | info));
  for (size_t i = n; i-- > 0;) out.push_back(static_cast<uint8_t>(arg >> (8 * i)));
}

struct Stats {
  size_t depth = 0;  // container nesting (a top-level array/map is 1; a scalar document 0)
  size_t items = 0;
  size_t max_string = 0;
  bool has_string = false;
};

// Writes the value's encoding from its decoded fields, checking each node against its encoded().
void reencode(const Value& v, Bytes& out, Stats& st, size_t level) {
  const size_t start = out.size();
  ++st.items;
  switch (v.type()) {
    case Value::Type::kUnsigned:
    case Value::Type::kNegative: {
      const bool neg = v.type() == Value::Type::kNegative;
      if (auto i = v.as_int()) {
        put_head(out, neg ? 1 : 0, neg ? static_cast<uint64_t>(-(*i + 1)) : static_cast<uint64_t>(*i));
      } else {
        // Outside int64_t: only a full 8-byte argument with the top bit set can get here.
        const Bytes& enc = v.encoded();
        FUZZ_CHECK(enc.size() == 9 && enc[0] == (neg ? 0x3b : 0x1b) && (enc[1] & 0x80) != 0,
                   "as_int failed on an integer inside int64_t");
        out.insert(out.end(), enc.begin(), enc.end());
      }
      break;
    }
    case Value::Type::kBytes:
      put_head(out, 2, v.bytes().size());
      out.insert(out.end(), v.bytes().begin(), v.bytes().end());
      st.max_string = std::max(st.max_string, v.bytes().size());
      st.has_string = true;
      break;
    case Value::Type::kText:
      FUZZ_CHECK(simdjson::validate_utf8(v.text().data(), v.text().size()), "text string is not valid UTF-8");
      put_head(out, 3, v.text().size());
      out.insert(out.end(), v.text().begin(), v.text().end());
      st.max_string = std::max(st.max_string, v.text().size());
      st.has_string = true;
      break;
    case Value::Type::kArray:
      st.depth = std::max(st.depth, level);
      put_head(out, 4, v.array().size());
      for (const Value& item : v.array()) reencode(item, out, st, level + 1);
      break;
    case Value::Type::kMap: {
      st.depth = std::max(st.depth, level);
      put_head(out, 5, v.map().size());
      const Bytes* prev = nullptr;
      for (const auto& [key, val] : v.map()) {
        FUZZ_CHECK(key.is_int() || key.type() == Value::Type::kText, "map key that is neither int nor text");
        const Bytes& k = key.encoded();
        if (prev != nullptr) {
          FUZZ_CHECK(*prev != k, "duplicate map key");
          const bool ordered = prev->size() < k.size() ||
                               (prev->size() == k.size() && std::lexicographical_compare(
                                                                prev->begin(), prev->end(), k.begin(), k.end()));
          FUZZ_CHECK(ordered, "map keys not in canonical order");
        }
        prev = &k;
        // find() by this key returns this entry's value (keys are unique).
        const Value* found = nullptr;
        if (key.type() == Value::Type::kText) {
          found = v.find(key.text());
          FUZZ_CHECK(found == &val, "find(text key) does not return the key's value");
        } else if (auto i = key.as_int()) {
          found = v.find(*i);
          FUZZ_CHECK(found == &val, "find(int key) does not return the key's value");
        }
        reencode(key, out, st, level + 1);
        reencode(val, out, st, level + 1);
      }
      break;
    }
    case Value::Type::kBool:
      out.push_back(v.boolean() ? 0xf5 : 0xf4);
      break;
    case Value::Type::kNull:
      out.push_back(0xf6);
      break;
  }
  FUZZ_CHECK(equal(ByteView(out).subspan(start), v.encoded()), "re-encoding of a node differs from its encoded()");
  if (v.type() != Value::Type::kMap) {
    FUZZ_CHECK(v.find(int64_t{1}) == nullptr && v.find("x") == nullptr, "find on a value that is not a map");
  }
}

void check_error(const sigil::Error& e) {
  FUZZ_CHECK(e.code == sigil::ErrorCode::kInvalidArgument, "CBOR error is not kInvalidArgument");
}

// The limits are exact: the document's own stats pass, one less in any dimension fails.
void check_limits(ByteView doc, const Stats& st) {
  const Limits defaults;
  FUZZ_CHECK(st.depth <= defaults.max_depth, "document deeper than the default max_depth decoded");
  FUZZ_CHECK(st.items <= defaults.max_items, "document with more items than max_items decoded");
  FUZZ_CHECK(st.max_string <= defaults.max_string_bytes, "string longer than max_string_bytes decoded");

  Limits exact;
  exact.max_depth = st.depth;
  exact.max_items = st.items;
  exact.max_string_bytes = st.max_string;
  auto ok = sigil::cbor::decode(doc, exact);
  FUZZ_CHECK(ok.has_value(), "document fails under limits equal to its own depth/items/strings");
  FUZZ_CHECK(equal(ok->encoded(), doc), "decode under exact limits differs");

  if (st.depth > 0) {
    Limits l = exact;
    l.max_depth = st.depth - 1;
    auto r = sigil::cbor::decode(doc, l);
    FUZZ_CHECK(!r.has_value(), "document decoded with max_depth below its depth");
    check_error(r.error());
  }
  {
    Limits l = exact;
    l.max_items = st.items - 1;
    auto r = sigil::cbor::decode(doc, l);
    FUZZ_CHECK(!r.has_value(), "document decoded with max_items below its item count");
    check_error(r.error());
  }
  if (st.has_string && st.max_string > 0) {
    Limits l = exact;
    l.max_string_bytes = st.max_string - 1;
    auto r = sigil::cbor::decode(doc, l);
    FUZZ_CHECK(!r.has_value(), "document decoded with max_string_bytes below its longest string");
    check_error(r.error());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView input(data, size);

  size_t consumed = 0;
  auto prefix = sigil::cbor::decode_prefix(input, &consumed);
  auto whole = sigil::cbor::decode(input);

  if (!prefix) check_error(prefix.error());
  if (!whole) check_error(whole.error());
  FUZZ_CHECK(whole.has_value() == (prefix.has_value() && consumed == size),
             "decode() disagrees with decode_prefix() consuming everything");

  if (prefix) {
    FUZZ_CHECK(consumed > 0 && consumed <= size, "decode_prefix consumed nothing or more than the input");
    const ByteView doc = input.first(consumed);
    FUZZ_CHECK(equal(prefix->encoded(), doc), "decode_prefix encoded() is not the consumed bytes");
    auto again = sigil::cbor::decode(doc);
    FUZZ_CHECK(again.has_value(), "decode() of the prefix decode_prefix consumed fails");
    FUZZ_CHECK(again->encoded() == prefix->encoded(), "decode() of the consumed prefix differs");

    Bytes out;
    Stats st;
    reencode(*again, out, st, 1);
    FUZZ_CHECK(equal(out, doc), "re-encoding of the decoded value differs from the input");
    check_limits(doc, st);
  }
  if (whole) {
    FUZZ_CHECK(equal(whole->encoded(), input), "decode() encoded() is not the input");
  }
  return 0;
}
