// Fuzz target for the WebAuthn result the client backend forwards (api/service/webauthn.h):
// decode_encoded_result (webauthn_encoded_result: base64 of the SDK envelope or of the credential's
// toJSON() form) and parse_credential_json (the toJSON() text), both over the input.
//
// Properties:
//  - every error is kInvalidArgument;
//  - every parsed credential has a non-empty raw_id, type "public-key", a non-empty client_data_json, an
//    authenticatorAttachment of "", "platform" or "cross-platform", at most 8 transports of <= 32 bytes;
//  - decode_encoded_result success ⇒ the input is base64 (either alphabet) of <= 32 KiB of one JSON object;
//    in the envelope form (publicKeyCredential is an object) session_id is webauthnSessionId (1..128 bytes)
//    and the credential is parse_credential_json of that member's text; otherwise session_id is empty and
//    the credential is parse_credential_json of the decoded text; device_info_json is present iff deviceInfo
//    is an object, and is then {"publicKeyId": <its publicKeyId>};
//  - parse_credential_json success on a text with neither publicKeyCredential nor deviceInfo objects ⇒
//    its base64 (and base64url) decodes through decode_encoded_result to the same credential.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "api/service/webauthn.h"
#include "engine/crypto/base64.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;
using sigil::service::EncodedResult;
using sigil::service::ParsedCredential;

bool same(const ParsedCredential& a, const ParsedCredential& b) {
  return a.raw_id == b.raw_id && a.type == b.type && a.authenticator_attachment == b.authenticator_attachment &&
         a.client_data_json == b.client_data_json && a.authenticator_data == b.authenticator_data &&
         a.signature == b.signature && a.user_handle == b.user_handle &&
         a.attestation_object == b.attestation_object && a.transports == b.transports;
}

void check_error(const sigil::Error& e) {
  FUZZ_CHECK(e.code == sigil::ErrorCode::kInvalidArgument, "credential error is not kInvalidArgument");
}

void check_credential(const ParsedCredential& c) {
  FUZZ_CHECK(!c.raw_id.empty(), "credential without raw_id");
  FUZZ_CHECK(c.type == "public-key", "credential type is not public-key");
  FUZZ_CHECK(!c.client_data_json.empty(), "credential without clientDataJSON");
  FUZZ_CHECK(c.authenticator_attachment.empty() || c.authenticator_attachment == "platform" ||
                 c.authenticator_attachment == "cross-platform",
             "unknown authenticatorAttachment kept");
  FUZZ_CHECK(c.transports.size() <= 8, "more than 8 transports");
  for (const auto& t : c.transports) FUZZ_CHECK(t.size() <= 32, "transport longer than 32 bytes");
}

void check_encoded(std::string_view input, const EncodedResult& res) {
  check_credential(res.credential);
  FUZZ_CHECK(!input.empty() && input.size() <= 48 * 1024, "encoded result of impossible size accepted");
  auto decoded = sigil::crypto::base64_any_decode(input);
  FUZZ_CHECK(decoded.has_value() && decoded->size() <= 32 * 1024, "encoded result that is not base64 accepted");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  FUZZ_CHECK(parser.parse(reinterpret_cast<const char*>(decoded->data()), decoded->size()).get(root) ==
                 simdjson::SUCCESS,
             "encoded result that is not JSON accepted");
  simdjson::dom::object obj;
  FUZZ_CHECK(root.get_object().get(obj) == simdjson::SUCCESS, "encoded result that is not an object accepted");

  simdjson::dom::object pkc;
  if (obj["publicKeyCredential"].get_object().get(pkc) == simdjson::SUCCESS) {
    std::string_view sid;
    FUZZ_CHECK(obj["webauthnSessionId"].get_string().get(sid) == simdjson::SUCCESS && sid == res.session_id,
               "envelope session_id is not webauthnSessionId");
    FUZZ_CHECK(!sid.empty() && sid.size() <= 128, "webauthnSessionId of impossible length accepted");
    auto again = sigil::service::parse_credential_json(simdjson::minify(pkc));
    FUZZ_CHECK(again.has_value() && same(*again, res.credential),
               "envelope credential differs from parse_credential_json of its member");
  } else {
    FUZZ_CHECK(res.session_id.empty(), "toJSON() form with a session_id");
    auto again = sigil::service::parse_credential_json(
        std::string_view(reinterpret_cast<const char*>(decoded->data()), decoded->size()));
    FUZZ_CHECK(again.has_value() && same(*again, res.credential),
               "toJSON() credential differs from parse_credential_json of the decoded text");
  }

  simdjson::dom::object device_info;
  if (obj["deviceInfo"].get_object().get(device_info) == simdjson::SUCCESS) {
    std::string_view pk;
    FUZZ_CHECK(device_info["publicKeyId"].get_string().get(pk) == simdjson::SUCCESS && !pk.empty() &&
                   pk.size() <= 256,
               "deviceInfo without a valid publicKeyId accepted");
    simdjson::dom::parser p2;
    simdjson::dom::element di;
    FUZZ_CHECK(p2.parse(res.device_info_json).get(di) == simdjson::SUCCESS, "device_info_json is not JSON");
    simdjson::dom::object di_obj;
    std::string_view pk2;
    FUZZ_CHECK(di.get_object().get(di_obj) == simdjson::SUCCESS && di_obj.size() == 1 &&
                   di_obj["publicKeyId"].get_string().get(pk2) == simdjson::SUCCESS && pk2 == pk,
               "device_info_json is not {publicKeyId} of deviceInfo");
  } else {
    FUZZ_CHECK(res.device_info_json.empty(), "device_info_json without a deviceInfo object");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  auto enc = sigil::service::decode_encoded_result(input);
  if (enc) {
    check_encoded(input, *enc);
  } else {
    check_error(enc.error());
  }

  auto cred = sigil::service::parse_credential_json(input);
  if (!cred) {
    check_error(cred.error());
    return 0;
  }
  check_credential(*cred);
  if (size > 32 * 1024) return 0;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  FUZZ_CHECK(parser.parse(input.data(), input.size()).get(root) == simdjson::SUCCESS, "credential that is not JSON accepted");
  simdjson::dom::object obj;
  FUZZ_CHECK(root.get_object().get(obj) == simdjson::SUCCESS, "credential that is not a JSON object accepted");
  simdjson::dom::object member;
  if (obj["publicKeyCredential"].get_object().get(member) == simdjson::SUCCESS ||
      obj["deviceInfo"].get_object().get(member) == simdjson::SUCCESS) {
    return 0;
  }
  const Bytes text(input.begin(), input.end());
  for (const std::string& b64 : {sigil::crypto::base64_encode(text), sigil::crypto::base64url_encode(text)}) {
    if (b64.empty()) continue;
    auto wrapped = sigil::service::decode_encoded_result(b64);
    FUZZ_CHECK(wrapped.has_value(), "a credential JSON accepted alone is refused as webauthn_encoded_result");
    FUZZ_CHECK(wrapped->session_id.empty() && wrapped->device_info_json.empty(), "toJSON() form got envelope data");
    FUZZ_CHECK(same(wrapped->credential, *cred), "webauthn_encoded_result of a credential JSON differs");
  }
  return 0;
}
