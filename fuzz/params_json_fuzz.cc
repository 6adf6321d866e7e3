// Fuzz target for request-body parsing (api/service/params.h): Params::from_json, the typed getters,
// canonical_approval_data and validate_object_json.
//
// Properties:
//  - from_json succeeds only on one JSON object (checked against simdjson's DOM parser, independently)
//    whose field names are unique; every top-level field is found with the right kind, and string fields
//    keep their decoded text;
//  - get_object on an object field returns JSON that from_json parses again; validate_object_json of it
//    is a fixed point (re-validating its output returns the same text);
//  - the typed getters never crash and refuse kinds they do not read;
//  - canonical_approval_data(input), when it succeeds, returns JSON that parses and canonicalises to itself;
//    so does canonical_approval_data of every object field.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "api/service/params.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::service::Param;
using sigil::service::Params;

Param::Kind kind_of(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::STRING: return Param::Kind::kString;
    case simdjson::dom::element_type::OBJECT: return Param::Kind::kObject;
    case simdjson::dom::element_type::ARRAY: return Param::Kind::kArray;
    case simdjson::dom::element_type::BOOL: return Param::Kind::kBool;
    case simdjson::dom::element_type::NULL_VALUE: return Param::Kind::kNull;
    default: return Param::Kind::kNumber;
  }
}

void check_canonical(std::string_view json) {
  auto canon = sigil::service::canonical_approval_data(json);
  if (!canon) {
    FUZZ_CHECK(canon.error().status() == 400, "canonical_approval_data error is not a 400");
    return;
  }
  auto reparsed = Params::from_json(*canon);
  FUZZ_CHECK(reparsed.has_value(), "canonical approval_data does not parse as a body");
  auto again = sigil::service::canonical_approval_data(*canon);
  FUZZ_CHECK(again.has_value() && *again == *canon, "canonical_approval_data is not idempotent");
}

void check_object_field(const Params& p, const std::string& name) {
  auto obj = p.get_object(name);
  FUZZ_CHECK(obj.has_value() && obj->has_value(), "get_object failed on an object field");
  auto reparsed = Params::from_json(**obj);
  FUZZ_CHECK(reparsed.has_value(), "get_object returned JSON that does not parse again");
  auto valid = sigil::service::validate_object_json(**obj, name);
  FUZZ_CHECK(valid.has_value(), "validate_object_json refused an object field");
  auto again = sigil::service::validate_object_json(*valid, name);
  FUZZ_CHECK(again.has_value() && *again == *valid, "validate_object_json is not a fixed point");
  check_canonical(**obj);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  check_canonical(body);

  auto params = Params::from_json(body);

  // The independent view: simdjson's DOM parser over the same bytes.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const bool dom_ok = !parser.parse(body.data(), body.size()).get(root);

  if (!params) {
    FUZZ_CHECK(params.error().status() == 400, "from_json error is not a 400");
    return 0;
  }
  FUZZ_CHECK(dom_ok && root.is_object(), "from_json accepted something that is not one JSON object");

  std::vector<std::string> names;
  for (auto field : simdjson::dom::object(root)) {
    const std::string name(field.key);
    names.push_back(name);
    const Param* found = params->find(name);
    FUZZ_CHECK(found != nullptr, "a field of the body is missing from Params");
    FUZZ_CHECK(found->kind == kind_of(field.value), "a field has the wrong kind");
    if (found->kind == Param::Kind::kString) {
      FUZZ_CHECK(found->text == std::string_view(field.value), "a string field lost its decoded text");
    }
    FUZZ_CHECK(params->has(name) == (found->kind != Param::Kind::kNull), "has() disagrees with the kind");

    // Typed getters: never crash; they refuse kinds they do not read.
    auto s = params->get_string(name, 1 << 20);
    FUZZ_CHECK(s.has_value() == (found->kind == Param::Kind::kString || found->kind == Param::Kind::kNull),
               "get_string accepted or refused the wrong kinds");
    (void)params->get_bool(name);
    (void)params->get_int(name);
    (void)params->require_string(name, 64);
    if (found->kind == Param::Kind::kObject) {
      check_object_field(*params, name);
    } else if (found->kind == Param::Kind::kString) {
      // A string holding JSON (form encoding): get_object accepts it only if it is an object.
      auto obj = params->get_object(name);
      if (obj && obj->has_value()) check_object_field(*params, name);
    } else if (found->kind == Param::Kind::kArray || found->kind == Param::Kind::kNumber ||
               found->kind == Param::Kind::kBool) {
      FUZZ_CHECK(!params->get_object(name).has_value(), "get_object accepted a non-object field");
    }
  }
  std::sort(names.begin(), names.end());
  FUZZ_CHECK(std::adjacent_find(names.begin(), names.end()) == names.end(), "from_json accepted duplicate keys");
  return 0;
}
