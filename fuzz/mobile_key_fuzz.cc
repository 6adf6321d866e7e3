// Fuzz target for device-key registration input (engine/mobile/mobile_verify.h, parse_device_key).
//
// Input layout: byte 0 chooses encryptionType (0: absent, 1: "ec", 2: "rsa", 3: "dsa", modulo 4); the
// rest is the publicKey field text. Properties:
//  - every error is a 400 carrying ts_error_code auth_invalid_key_encoding or auth_invalid_key_type;
//    "dsa" is always auth_invalid_key_type; an empty or over-long field is auth_invalid_key_encoding;
//  - on success the key's type matches a given encryptionType; the field decoded with base64_any_decode
//    and PublicKey::parse_any gives the same key; and the canonical SPKI, re-encoded in standard
//    base64, registers again to the same key (what a client re-sending the stored key gets);
//  - verify_device_signature with the field itself as the signature is false.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/crypto/base64.h"
#include "engine/mobile/mobile_verify.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr std::optional<std::string_view> kTypes[] = {std::nullopt, "ec", "rsa", "dsa"};
  const std::optional<std::string_view> type = kTypes[data[0] % 4];
  const std::string_view field(reinterpret_cast<const char*>(data + 1), size - 1);

  auto key = sigil::mobile::parse_device_key(field, type);
  if (!key) {
    const auto& e = key.error();
    FUZZ_CHECK(e.status() == 400, "parse_device_key error is not a 400");
    FUZZ_CHECK(e.ts_error_code == "auth_invalid_key_encoding" || e.ts_error_code == "auth_invalid_key_type",
               "parse_device_key error without a key ts_error_code");
    if (type == "dsa") FUZZ_CHECK(e.ts_error_code == "auth_invalid_key_type", "'dsa' is not a key-type error");
    if (type != "dsa" && (field.empty() || field.size() > sigil::mobile::kMaxEncodedKeyChars)) {
      FUZZ_CHECK(e.ts_error_code == "auth_invalid_key_encoding", "empty/over-long key is not an encoding error");
    }
    return 0;
  }

  FUZZ_CHECK(type != "dsa", "parse_device_key accepted encryptionType 'dsa'");
  FUZZ_CHECK(!field.empty() && field.size() <= sigil::mobile::kMaxEncodedKeyChars, "accepted an empty/over-long key");
  const std::string_view name = sigil::mobile::key_type_name(*key);
  FUZZ_CHECK(name == "ec" || name == "rsa", "key_type_name");
  if (type) FUZZ_CHECK(name == *type, "the key's type differs from encryptionType");

  auto der = sigil::crypto::base64_any_decode(field);
  FUZZ_CHECK(der.has_value(), "accepted a key field that base64_any_decode refuses");
  auto direct = sigil::crypto::PublicKey::parse_any(*der);
  FUZZ_CHECK(direct.has_value() && direct->spki_der() == key->spki_der(), "differs from PublicKey::parse_any");

  const std::string canonical_b64 = sigil::crypto::base64_encode(key->spki_der());
  auto again = sigil::mobile::parse_device_key(canonical_b64, name);
  FUZZ_CHECK(again.has_value() && again->spki_der() == key->spki_der(), "the stored key does not register again");

  FUZZ_CHECK(!sigil::mobile::verify_device_signature(*key, "challenge", field), "the key verified as a signature");
  return 0;
}
