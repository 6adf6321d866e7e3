// Fuzz target for authenticatorData parsing (engine/webauthn/webauthn.h, parse_authenticator_data).
//
// Properties:
//  - every error is kInvalidArgument (ts_error_code system_invalid_input); inputs over 16 KiB fail;
//  - success ⇒ the parse is exact: rebuilding the bytes from the struct (rpIdHash ‖ flags ‖ signCount BE ‖
//    [aaguid ‖ credentialIdLength BE ‖ credentialId ‖ credentialPublicKey] ‖ [extensions]) gives the input;
//  - AT flag ⇔ attested data present; ED flag ⇔ extensions non-empty; BS ⇒ BE;
//  - the credential id is at most 1023 bytes; credentialPublicKey and extensions are each exactly one CBOR
//    map (cbor::decode, no trailing bytes).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/cbor/cbor.h"
#include "engine/webauthn/webauthn.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;
using sigil::ByteView;
namespace wa = sigil::webauthn;

bool equal(ByteView a, ByteView b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

bool is_cbor_map(ByteView b) {
  auto v = sigil::cbor::decode(b);
  return v.has_value() && v->type() == sigil::cbor::Value::Type::kMap;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView input(data, size);
  auto r = wa::parse_authenticator_data(input);
  if (!r) {
    FUZZ_CHECK(r.error().code == sigil::ErrorCode::kInvalidArgument, "authenticatorData error is not kInvalidArgument");
    FUZZ_CHECK(r.error().ts_error_code == "system_invalid_input", "authenticatorData error without its ts code");
    return 0;
  }
  const wa::AuthenticatorData& ad = *r;
  FUZZ_CHECK(size >= 37 && size <= 16 * 1024, "authenticatorData of impossible size parsed");
  FUZZ_CHECK(((ad.flags & wa::kFlagAT) != 0) == ad.attested.has_value(), "AT flag and attested data disagree");
  FUZZ_CHECK(((ad.flags & wa::kFlagED) != 0) == !ad.extensions.empty(), "ED flag and extensions disagree");
  FUZZ_CHECK((ad.flags & wa::kFlagBS) == 0 || (ad.flags & wa::kFlagBE) != 0, "BS without BE parsed");

  Bytes rebuilt(ad.rp_id_hash.begin(), ad.rp_id_hash.end());
  rebuilt.push_back(ad.flags);
  for (int shift = 24; shift >= 0; shift -= 8) rebuilt.push_back(static_cast<uint8_t>(ad.sign_count >> shift));
  if (ad.attested) {
    const wa::AttestedCredentialData& att = *ad.attested;
    FUZZ_CHECK(att.credential_id.size() <= wa::kMaxCredentialIdBytes, "credential id over 1023 bytes parsed");
    FUZZ_CHECK(is_cbor_map(att.credential_public_key), "credentialPublicKey is not exactly one CBOR map");
    rebuilt.insert(rebuilt.end(), att.aaguid.begin(), att.aaguid.end());
    rebuilt.push_back(static_cast<uint8_t>(att.credential_id.size() >> 8));
    rebuilt.push_back(static_cast<uint8_t>(att.credential_id.size()));
    rebuilt.insert(rebuilt.end(), att.credential_id.begin(), att.credential_id.end());
    rebuilt.insert(rebuilt.end(), att.credential_public_key.begin(), att.credential_public_key.end());
  }
  if (!ad.extensions.empty()) {
    FUZZ_CHECK(is_cbor_map(ad.extensions), "extensions are not exactly one CBOR map");
    rebuilt.insert(rebuilt.end(), ad.extensions.begin(), ad.extensions.end());
  }
  FUZZ_CHECK(equal(rebuilt, input), "authenticatorData rebuilt from the parse differs from the input");
  return 0;
}
