#include "api/service/params.h"

#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <unordered_set>
#include <simdjson.h>

#include "engine/base/json_writer.h"

namespace sigil::service {
namespace {

std::unexpected<Error> bad_json(std::string_view why) {
  return invalid_argument(fmt::format("Malformed JSON body: {}", why));
}

bool valid_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

// Duplicate keys anywhere are refused: two parsers could otherwise read two different requests.
bool has_duplicate_keys(simdjson::dom::element e) {
  if (e.is_object()) {
    std::vector<std::string_view> keys;
    for (auto field : simdjson::dom::object(e)) {
      keys.push_back(field.key);
      if (has_duplicate_keys(field.value)) return true;
    }
    std::sort(keys.begin(), keys.end());
    return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
  }
  if (e.is_array()) {
    for (auto child : simdjson::dom::array(e)) {
      if (has_duplicate_keys(child)) return true;
    }
  }
  return false;
}

// Parses `text` as one JSON object. The DOM parser validates the whole input (UTF-8, structure, depth,
// trailing content) before anything is read; bodies are capped at 64 KiB, so the tree stays small.
Result<std::vector<std::pair<std::string, Param>>> parse_object(std::string_view text) {
  if (text.empty()) return bad_json("empty");  // an empty view may carry a null pointer: never pass it on
  // One parser per thread (CONVENTIONS.md): its buffers are reused across requests. Nothing of a parse
  // outlives this function (fields are copied out), so the next parse may overwrite it.
  thread_local simdjson::dom::parser parser;
  // simdjson's max_depth counts one level more than the nesting of the document itself (its depth-N
  // limit refuses N nested containers), so N+1 lets exactly kMaxDepth levels through.
  if (parser.capacity() < text.size() + 1 || parser.max_depth() != Params::kMaxDepth + 1) {
    if (parser.allocate(std::max<size_t>(text.size() + 1, 64 * 1024), Params::kMaxDepth + 1)) {
      return bad_json("too large");
    }
  }
  simdjson::dom::element root;
  auto err = parser.parse(text.data(), text.size()).get(root);
  if (err == simdjson::DEPTH_ERROR) return bad_json("nested too deeply");
  if (err == simdjson::UTF8_ERROR) return bad_json("invalid UTF-8");
  if (err) return bad_json("not valid JSON");
  if (!root.is_object()) return bad_json("not an object");
  if (has_duplicate_keys(root)) return bad_json("duplicate key");
  std::vector<std::pair<std::string, Param>> out;
  for (auto field : simdjson::dom::object(root)) {
    Param p;
    switch (field.value.type()) {
      case simdjson::dom::element_type::STRING:
        p.kind = Param::Kind::kString;
        p.text = std::string(std::string_view(field.value));
        break;
      case simdjson::dom::element_type::OBJECT: p.kind = Param::Kind::kObject; break;
      case simdjson::dom::element_type::ARRAY: p.kind = Param::Kind::kArray; break;
      case simdjson::dom::element_type::BOOL: p.kind = Param::Kind::kBool; break;
      case simdjson::dom::element_type::NULL_VALUE: p.kind = Param::Kind::kNull; break;
      default: p.kind = Param::Kind::kNumber; break;
    }
    if (p.kind != Param::Kind::kString) p.text = simdjson::minify(field.value);
    out.emplace_back(std::string(field.key), std::move(p));
  }
  return out;
}

bool approval_char_ok(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-' || c == ' ';
}

}  // namespace

Error missing_property_error() {
  Error e{ErrorCode::kInvalidArgument, "Invalid request: property should not be null or undefined",
          "invalid_request", "invalid_request"};
  return e;
}

Result<Params> Params::from_json(std::string_view body) {
  SIGIL_ASSIGN_OR_RETURN(auto fields, parse_object(body));
  Params p;
  p.fields_ = std::move(fields);
  return p;
}

Result<Params> Params::from_pairs(std::vector<std::pair<std::string, std::string>> pairs) {
  Params p;
  std::unordered_set<std::string_view> seen;  // a hash set keeps many-field bodies linear
  seen.reserve(pairs.size());
  for (auto& [k, v] : pairs) {
    if (!valid_utf8(k) || !valid_utf8(v)) return invalid_argument("Malformed form body: invalid UTF-8");
    if (!seen.insert(k).second) return invalid_argument(fmt::format("Duplicate parameter '{}'", k));
  }
  for (auto& [k, v] : pairs) p.fields_.emplace_back(std::move(k), Param{Param::Kind::kString, std::move(v)});
  return p;
}

const Param* Params::find(std::string_view name) const noexcept {
  for (const auto& [k, v] : fields_) {
    if (k == name) return &v;
  }
  return nullptr;
}

bool Params::has(std::string_view name) const noexcept {
  const Param* p = find(name);
  return p != nullptr && p->kind != Param::Kind::kNull;
}

Result<std::optional<std::string>> Params::get_string(std::string_view name, size_t max_len) const {
  const Param* p = find(name);
  if (p == nullptr || p->kind == Param::Kind::kNull) return std::optional<std::string>();
  if (p->kind != Param::Kind::kString) return invalid_argument(fmt::format("'{}' must be a string", name));
  if (p->text.size() > max_len) return invalid_argument(fmt::format("'{}' is too long", name));
  return std::optional<std::string>(p->text);
}

Result<std::string> Params::require_string(std::string_view name, size_t max_len) const {
  SIGIL_ASSIGN_OR_RETURN(auto v, get_string(name, max_len));
  if (!v || v->empty()) return invalid_argument(fmt::format("'{}' is required", name), "invalid_request");
  return std::move(*v);
}

Result<std::string> Params::require_property(std::string_view name, size_t max_len) const {
  SIGIL_ASSIGN_OR_RETURN(auto v, get_string(name, max_len));
  if (!v || v->empty()) return std::unexpected(missing_property_error());
  return std::move(*v);
}

Result<std::optional<bool>> Params::get_bool(std::string_view name) const {
  const Param* p = find(name);
  if (p == nullptr || p->kind == Param::Kind::kNull) return std::optional<bool>();
  if (p->text == "true") return std::optional<bool>(true);
  if (p->text == "false") return std::optional<bool>(false);
  return invalid_argument(fmt::format("'{}' must be a boolean", name));
}

Result<std::optional<int64_t>> Params::get_int(std::string_view name) const {
  const Param* p = find(name);
  if (p == nullptr || p->kind == Param::Kind::kNull) return std::optional<int64_t>();
  const std::string& t = p->text;
  if (t.empty() || t.size() > 12) return invalid_argument(fmt::format("'{}' must be an integer", name));
  int64_t v = 0;
  size_t i = 0;
  bool neg = false;
  if (t[0] == '-') {
    neg = true;
    i = 1;
  }
  if (i == t.size()) return invalid_argument(fmt::format("'{}' must be an integer", name));
  for (; i < t.size(); ++i) {
    if (t[i] < '0' || t[i] > '9') return invalid_argument(fmt::format("'{}' must be an integer", name));
    v = v * 10 + (t[i] - '0');
  }
  return std::optional<int64_t>(neg ? -v : v);
}

Result<std::optional<std::string>> Params::get_object(std::string_view name) const {
  const Param* p = find(name);
  if (p == nullptr || p->kind == Param::Kind::kNull) return std::optional<std::string>();
  if (p->kind == Param::Kind::kObject) return std::optional<std::string>(p->text);
  if (p->kind == Param::Kind::kString) {
    // Form and query encodings carry objects as JSON text (API.md 0.3).
    auto fields = parse_object(p->text);
    if (!fields) return invalid_argument(fmt::format("'{}' must be a JSON object", name));
    return std::optional<std::string>(p->text);
  }
  return invalid_argument(fmt::format("'{}' must be an object", name));
}

Result<std::string> canonical_approval_data(std::string_view object_json) {
  auto fields = parse_object(object_json);
  if (!fields) return invalid_argument("approval_data must be an object", "system_invalid_input");
  if (fields->size() > 10) return invalid_argument("approval_data has more than 10 entries");
  std::map<std::string, std::string> sorted;  // std::map orders keys by byte value
  for (auto& [k, v] : *fields) {
    if (v.kind != Param::Kind::kString) return invalid_argument("approval_data values must be strings");
    if (k.empty() || k.size() > 64 || v.text.size() > 256) {
      return invalid_argument("approval_data key or value has an invalid length");
    }
    if (!std::all_of(k.begin(), k.end(), approval_char_ok) ||
        !std::all_of(v.text.begin(), v.text.end(), approval_char_ok)) {
      return invalid_argument("approval_data contains characters outside [A-Za-z0-9_.:- ]");
    }
    sorted.emplace(k, std::move(v.text));
  }
  JsonWriter w;
  w.begin_object();
  for (const auto& [k, v] : sorted) w.key(k).string(v);
  w.end_object();
  return std::move(w).str();
}

Result<std::string> validate_object_json(std::string_view object_json, std::string_view field) {
  // Such objects are carried by pending grants in memory; keep each small.
  if (object_json.size() > kMaxObjectBytes) return invalid_argument(fmt::format("'{}' is too large", field));
  auto fields = parse_object(object_json);
  if (!fields) return invalid_argument(fmt::format("'{}' must be a JSON object", field));
  JsonWriter w;
  w.begin_object();
  for (const auto& [k, v] : *fields) {
    w.key(k);
    if (v.kind == Param::Kind::kString) w.string(v.text);
    else w.raw(v.text);
  }
  w.end_object();
  return std::move(w).str();
}

}  // namespace sigil::service
