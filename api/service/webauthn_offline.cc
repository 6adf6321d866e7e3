#include "api/service/webauthn_offline.h"

#include <simdjson.h>

#include "api/service/webauthn.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/cose_key.h"
#include "engine/webauthn/webauthn.h"

namespace sigil::service {
namespace {

std::string failure(std::string_view reason) {
  JsonWriter w;
  w.begin_object().key("ok").boolean(false).key("error").string(reason).end_object();
  return std::move(w).str();
}

Result<std::vector<std::string>> string_array(simdjson::dom::object obj, std::string_view name, bool required) {
  std::vector<std::string> out;
  simdjson::dom::array arr;
  if (obj[name].get_array().get(arr)) {
    if (required) return invalid_argument(std::string(name) + " must be an array of strings");
    return out;
  }
  for (auto e : arr) {
    std::string_view s;
    if (e.get_string().get(s)) return invalid_argument(std::string(name) + " must be an array of strings");
    out.emplace_back(s);
  }
  return out;
}

}  // namespace

std::string verify_offline_line(std::string_view line, int64_t now_s) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(line.data(), line.size()).get(root)) return failure("input is not JSON");
  simdjson::dom::object in;
  if (root.get_object().get(in)) return failure("input must be a JSON object");
  std::string_view ceremony, rp_id, challenge_text, uv_text = "preferred";
  if (in["ceremony"].get_string().get(ceremony) || (ceremony != "create" && ceremony != "get")) {
    return failure("ceremony must be \"create\" or \"get\"");
  }
  if (in["rp_id"].get_string().get(rp_id) || rp_id.empty()) return failure("rp_id is required");
  if (in["challenge"].get_string().get(challenge_text)) return failure("challenge is required");
  if (in["user_verification"].get_string().get(uv_text)) uv_text = "preferred";  // absent: the default
  webauthn::UserVerification uv = webauthn::UserVerification::kPreferred;
  if (uv_text == "required") uv = webauthn::UserVerification::kRequired;
  else if (uv_text == "discouraged") uv = webauthn::UserVerification::kDiscouraged;
  else if (uv_text != "preferred") return failure("user_verification must be required, preferred or discouraged");
  auto challenge = crypto::base64_any_decode(challenge_text);
  if (!challenge || challenge->empty()) return failure("challenge is not base64url");
  webauthn::RelyingParty rp;
  rp.rp_id = std::string(rp_id);
  auto origins = string_array(in, "origins", true);
  if (!origins) return failure(origins.error().message);
  rp.origins = std::move(*origins);
  auto top = string_array(in, "top_origins", false);
  if (!top) return failure(top.error().message);
  rp.top_origins = std::move(*top);
  rp.allow_cross_origin = !rp.top_origins.empty();
  simdjson::dom::element credential_json;
  if (in["credential"].get(credential_json) || !credential_json.is_object()) return failure("credential is required");
  auto credential = parse_credential_json(simdjson::minify(credential_json));
  if (!credential) return failure(credential.error().message);

  JsonWriter w;
  if (ceremony == "create") {
    webauthn::TrustPolicy trust;
    webauthn::RegistrationInput input;
    input.client_data_json = credential->client_data_json;
    input.attestation_object = credential->attestation_object;
    input.expected_challenge = *challenge;
    input.rp = &rp;
    input.user_verification = uv;
    input.trust = &trust;
    // Offline, every algorithm the engine verifies is acceptable (there were no pubKeyCredParams).
    input.allowed_algs = {crypto::cose_alg::kES256, crypto::cose_alg::kEdDSA, crypto::cose_alg::kES384,
                          crypto::cose_alg::kES512, crypto::cose_alg::kPS256, crypto::cose_alg::kRS256,
                          crypto::cose_alg::kEd25519, crypto::cose_alg::kEd448};
    input.now_s = now_s;
    auto verified = webauthn::verify_registration(input);
    if (!verified) return failure(verified.error().message);
    w.begin_object().key("ok").boolean(true);
    w.key("credential_id").string(crypto::base64url_encode(verified->credential_id));
    w.key("public_key").string(crypto::base64url_encode(verified->credential_public_key));
    w.key("alg").number(verified->alg);
    w.key("aaguid").string(webauthn::aaguid_string(verified->aaguid));
    w.key("fmt").string(verified->fmt);
    w.key("attestation_type").string(verified->attestation_type);
    w.key("sign_count").number(verified->sign_count);
    w.key("flags").number(verified->flags);
    w.end_object();
    return std::move(w).str();
  }
  std::string_view public_key_text;
  int64_t alg = 0, sign_count = 0;
  if (in["public_key"].get_string().get(public_key_text)) return failure("public_key is required for get");
  if (in["alg"].get_int64().get(alg)) return failure("alg is required for get");
  if (in["sign_count"].get_int64().get(sign_count) || sign_count < 0 || sign_count > UINT32_MAX) {
    return failure("sign_count must be a 32-bit unsigned integer");
  }
  auto cose = crypto::base64_any_decode(public_key_text);
  if (!cose) return failure("public_key is not base64url");
  auto key = crypto::CoseKey::decode(*cose);
  if (!key) return failure(key.error().message);
  if (key->alg() != alg) return failure("alg does not match the public key");
  webauthn::StoredCredential stored;
  stored.credential_id = credential->raw_id;
  stored.public_key = &*key;
  stored.sign_count = static_cast<uint32_t>(sign_count);
  // The line carries no stored user handle: the assertion's own is accepted as is.
  stored.user_handle = credential->user_handle;
  webauthn::AssertionInput input;
  input.credential_id = credential->raw_id;
  input.client_data_json = credential->client_data_json;
  input.authenticator_data = credential->authenticator_data;
  input.signature = credential->signature;
  input.user_handle = credential->user_handle;
  input.expected_challenge = *challenge;
  input.rp = &rp;
  input.user_verification = uv;
  input.credential = &stored;
  // Backup eligibility is not part of the line: take it from the assertion itself.
  if (auto ad = webauthn::parse_authenticator_data(credential->authenticator_data)) {
    stored.backup_eligible = (ad->flags & webauthn::kFlagBE) != 0;
  }
  auto verified = webauthn::verify_assertion(input);
  if (!verified) return failure(verified.error().message);
  w.begin_object().key("ok").boolean(true);
  w.key("sign_count").number(verified->sign_count);
  w.key("flags").number(verified->flags);
  w.end_object();
  return std::move(w).str();
}

}  // namespace sigil::service
