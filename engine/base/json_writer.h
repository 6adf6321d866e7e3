// A small streaming JSON writer for responses and token payloads.
//
// simdjson only reads; this writes. Strings are escaped per RFC 8259 (control characters as \u00XX,
// '/' left alone); invalid UTF-8 is the caller's responsibility (all inputs are validated before).
// Usage: JsonWriter w; w.begin_object(); w.key("a").string("b"); w.end_object(); w.str();
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace sigil {

class JsonWriter {
 public:
  JsonWriter& begin_object() { value_prefix(); out_ += '{'; first_.push_back(true); return *this; }
  JsonWriter& end_object() { out_ += '}'; first_.pop_back(); return *this; }
  JsonWriter& begin_array() { value_prefix(); out_ += '['; first_.push_back(true); return *this; }
  JsonWriter& end_array() { out_ += ']'; first_.pop_back(); return *this; }

  JsonWriter& key(std::string_view k) {
    if (!first_.empty()) {
      if (!first_.back()) out_ += ',';
      first_.back() = false;
    }
    append_string(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& string(std::string_view v) { value_prefix(); append_string(v); return *this; }
  JsonWriter& number(int64_t v) { value_prefix(); out_ += std::to_string(v); return *this; }
  JsonWriter& boolean(bool v) { value_prefix(); out_ += v ? "true" : "false"; return *this; }
  JsonWriter& null() { value_prefix(); out_ += "null"; return *this; }
  // Inserts already-serialised, already-validated JSON.
  JsonWriter& raw(std::string_view json) { value_prefix(); out_ += json; return *this; }

  [[nodiscard]] const std::string& str() const& noexcept { return out_; }
  [[nodiscard]] std::string str() && noexcept { return std::move(out_); }

  static std::string quote(std::string_view v) {
    JsonWriter w;
    w.append_string(v);
    return std::move(w).str();
  }

 private:
  void value_prefix() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_ += ',';
      first_.back() = false;
    }
  }
  // Runs of characters that need no escaping (the common case: tokens, ids, base64) are appended in one go.
  void append_string(std::string_view v) {
    out_.reserve(out_.size() + v.size() + 2);
    out_ += '"';
    size_t run = 0;  // start of the characters not yet copied
    for (size_t i = 0; i < v.size(); ++i) {
      const char c = v[i];
      if (static_cast<unsigned char>(c) >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(v.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        case '\b': out_ += "\\b"; break;
        case '\f': out_ += "\\f"; break;
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out_ += buf;
        }
      }
    }
    out_.append(v.data() + run, v.size() - run);
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace sigil
