// WebAuthn relying-party verification (see webauthn.h). Steps are numbered as in W3C WebAuthn Level 3
// §7.1 (registration) and §7.2 (authentication); docs/WEBAUTHN_CHECKS.md maps each step to a test.
#include "engine/webauthn/webauthn.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "engine/cbor/cbor.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"
#include "engine/webauthn/internal/attestation.h"
#include "engine/webauthn/internal/reader.h"
#include "engine/webauthn/internal/x509.h"

namespace sigil::webauthn {
namespace {

constexpr size_t kMaxClientDataBytes = 8 * 1024;
constexpr size_t kMaxAttestationObjectBytes = 64 * 1024;
constexpr size_t kMaxAuthenticatorDataBytes = 16 * 1024;
constexpr size_t kMaxSignatureBytes = 1024;

std::unexpected<Error> parse_error(std::string message) {
  return invalid_argument(std::move(message), "system_invalid_input");
}
std::unexpected<Error> reg_error(std::string message) { return internal::attestation_error(std::move(message)); }
std::unexpected<Error> auth_error(std::string message) {
  return make_error(ErrorCode::kUnauthenticated, std::move(message), "auth_webauthn_failed");
}

// Re-labels a parse error for the ceremony that hit it (the message keeps naming the check).
template <typename T>
Result<T> as_registration(Result<T> r) {
  if (!r) return reg_error(std::move(r.error().message));
  return r;
}
template <typename T>
Result<T> as_assertion(Result<T> r) {
  if (!r) return auth_error(std::move(r.error().message));
  return r;
}

bool contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// §7.1 steps 9-11 / §7.2 steps 12-14. Origins are compared as exact strings (the configured values
// are serialised origins: scheme://host[:port], no trailing slash).
Result<void> check_origins(const CollectedClientData& c, const RelyingParty& rp) {
  if (!contains(rp.origins, c.origin)) return parse_error("origin is not an expected origin");
  if (c.cross_origin) {
    if (!rp.allow_cross_origin) return parse_error("crossOrigin is true but cross-origin use is not allowed");
    // A client that reports crossOrigin:true without topOrigin (Level 2 clients) is accepted when
    // cross-origin use is allowed; when topOrigin is reported it must be an allowed top origin.
    if (!c.top_origin.empty() && !contains(rp.top_origins, c.top_origin)) {
      return parse_error("topOrigin is not an expected top origin");
    }
  } else if (!c.top_origin.empty()) {
    return parse_error("topOrigin present but crossOrigin is not true");
  }
  return {};
}

bool user_verification_required(UserVerification uv) { return uv == UserVerification::kRequired; }

}  // namespace

// ---- authenticatorData (§6.1) ------------------------------------------------------------------------

Result<AuthenticatorData> parse_authenticator_data(ByteView data) {
  if (data.size() > kMaxAuthenticatorDataBytes) return parse_error("authenticatorData too large");
  internal::ByteReader r(data);
  AuthenticatorData out;
  ByteView rp_id_hash;
  if (!r.bytes(32, &rp_id_hash) || !r.u8(&out.flags) || !r.u32(&out.sign_count)) {
    return parse_error("authenticatorData shorter than 37 bytes");
  }
  std::memcpy(out.rp_id_hash.data(), rp_id_hash.data(), 32);
  if ((out.flags & kFlagBS) != 0 && (out.flags & kFlagBE) == 0) {
    return parse_error("authenticatorData BS flag set without BE");
  }
  if ((out.flags & kFlagAT) != 0) {
    AttestedCredentialData att;
    ByteView aaguid, cred_id;
    uint16_t cred_id_len = 0;
    if (!r.bytes(16, &aaguid) || !r.u16(&cred_id_len)) return parse_error("attested credential data truncated");
    if (cred_id_len > kMaxCredentialIdBytes) return parse_error("credential id longer than 1023 bytes");
    if (!r.bytes(cred_id_len, &cred_id)) return parse_error("attested credential data truncated");
    std::memcpy(att.aaguid.data(), aaguid.data(), 16);
    att.credential_id.assign(cred_id.begin(), cred_id.end());
    size_t used = 0;
    auto key = cbor::decode_prefix(r.rest(), &used);
    if (!key) return parse_error("credentialPublicKey is not valid CBOR");
    if (key->type() != cbor::Value::Type::kMap) return parse_error("credentialPublicKey is not a map");
    ByteView key_bytes;
    if (used == 0 || !r.bytes(used, &key_bytes)) return parse_error("credentialPublicKey truncated");
    att.credential_public_key.assign(key_bytes.begin(), key_bytes.end());
    out.attested = std::move(att);
  }
  if ((out.flags & kFlagED) != 0) {
    size_t used = 0;
    auto ext = cbor::decode_prefix(r.rest(), &used);
    if (!ext) return parse_error("authenticator extensions are not valid CBOR");
    if (ext->type() != cbor::Value::Type::kMap) return parse_error("authenticator extensions are not a map");
    ByteView ext_bytes;
    if (used == 0 || !r.bytes(used, &ext_bytes)) return parse_error("authenticator extensions truncated");
    out.extensions.assign(ext_bytes.begin(), ext_bytes.end());
  }
  if (!r.empty()) return parse_error("trailing bytes after authenticatorData");
  return out;
}

// ---- clientDataJSON (§5.8.1) ---------------------------------------------------------------------------

Result<CollectedClientData> parse_client_data(ByteView json) {
  if (json.empty()) return parse_error("clientDataJSON empty");
  if (json.size() > kMaxClientDataBytes) return parse_error("clientDataJSON larger than 8 KiB");
  // One DOM parser per thread (simdjson parsers are not thread-safe; reuse keeps the buffers).
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(reinterpret_cast<const char*>(json.data()), json.size()).get(root) != simdjson::SUCCESS) {
    return parse_error("clientDataJSON is not valid JSON");
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) return parse_error("clientDataJSON is not an object");
  CollectedClientData out;
  bool have_type = false, have_challenge = false, have_origin = false;
  std::vector<std::string_view> seen;
  for (auto field : obj) {
    const std::string_view key = field.key;
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      return parse_error("clientDataJSON has a duplicate member");
    }
    seen.push_back(key);
    std::string_view s;
    if (key == "type") {
      if (field.value.get_string().get(s) != simdjson::SUCCESS) return parse_error("clientDataJSON type is not a string");
      out.type = std::string(s);
      have_type = true;
    } else if (key == "challenge") {
      if (field.value.get_string().get(s) != simdjson::SUCCESS) {
        return parse_error("clientDataJSON challenge is not a string");
      }
      auto decoded = crypto::base64url_decode(s);
      if (!decoded || decoded->empty()) return parse_error("clientDataJSON challenge is not base64url");
      out.challenge = std::move(*decoded);
      have_challenge = true;
    } else if (key == "origin") {
      if (field.value.get_string().get(s) != simdjson::SUCCESS) return parse_error("clientDataJSON origin is not a string");
      out.origin = std::string(s);
      have_origin = true;
    } else if (key == "crossOrigin") {
      bool b = false;
      if (field.value.get_bool().get(b) != simdjson::SUCCESS) {
        return parse_error("clientDataJSON crossOrigin is not a boolean");
      }
      out.cross_origin = b;
    } else if (key == "topOrigin") {
      if (field.value.get_string().get(s) != simdjson::SUCCESS || s.empty()) {
        return parse_error("clientDataJSON topOrigin is not a non-empty string");
      }
      out.top_origin = std::string(s);
    }
    // Other members (tokenBinding, extraData, future fields) are ignored as §5.8.1 requires.
  }
  if (!have_type) return parse_error("clientDataJSON type missing");
  if (!have_challenge) return parse_error("clientDataJSON challenge missing");
  if (!have_origin) return parse_error("clientDataJSON origin missing");
  return out;
}

// ---- §7.1 Registering a New Credential -------------------------------------------------------------------

Result<VerifiedRegistration> verify_registration(const RegistrationInput& in) {
  SIGIL_CHECK(in.rp != nullptr);
  static const TrustPolicy kDefaultTrust;
  const TrustPolicy& trust = in.trust != nullptr ? *in.trust : kDefaultTrust;
  const RelyingParty& rp = *in.rp;
  if (in.attestation_object.size() > kMaxAttestationObjectBytes) return reg_error("attestationObject too large");

  // Steps 5-6: decode and parse clientDataJSON.
  SIGIL_ASSIGN_OR_RETURN(CollectedClientData client, as_registration(parse_client_data(in.client_data_json)));
  // Step 7.
  if (client.type != "webauthn.create") return reg_error("clientDataJSON type is not webauthn.create");
  // Step 8.
  if (in.expected_challenge.empty() || !crypto::ct_equal(client.challenge, in.expected_challenge)) {
    return reg_error("challenge does not match");
  }
  // Steps 9-11.
  SIGIL_TRY(as_registration(check_origins(client, rp)));
  // Step 12.
  const crypto::Sha256Digest client_data_hash = crypto::sha256(in.client_data_json);
  // Step 13: attestationObject = {fmt: text, attStmt: map, authData: bytes}.
  cbor::Limits limits;
  limits.max_depth = 4;  // attObj → attStmt → x5c → certificate
  auto att_obj = cbor::decode(in.attestation_object, limits);
  if (!att_obj) return reg_error("attestationObject is not valid CBOR");
  if (att_obj->type() != cbor::Value::Type::kMap || att_obj->map().size() != 3) {
    return reg_error("attestationObject must be a map of fmt, attStmt, authData");
  }
  const cbor::Value* fmt = att_obj->find("fmt");
  const cbor::Value* att_stmt = att_obj->find("attStmt");
  const cbor::Value* auth_data_v = att_obj->find("authData");
  if (fmt == nullptr || fmt->type() != cbor::Value::Type::kText || att_stmt == nullptr ||
      att_stmt->type() != cbor::Value::Type::kMap || auth_data_v == nullptr ||
      auth_data_v->type() != cbor::Value::Type::kBytes) {
    return reg_error("attestationObject must be a map of fmt, attStmt, authData");
  }
  const Bytes& auth_data_bytes = auth_data_v->bytes();
  SIGIL_ASSIGN_OR_RETURN(AuthenticatorData auth_data, as_registration(parse_authenticator_data(auth_data_bytes)));
  // Step 14.
  const crypto::Sha256Digest rp_id_hash = crypto::sha256(as_bytes(rp.rp_id));
  if (!crypto::ct_equal(auth_data.rp_id_hash, rp_id_hash)) return reg_error("rpIdHash does not match the RP ID");
  // Step 15 (no conditional mediation for registration here: UP always required).
  if ((auth_data.flags & kFlagUP) == 0) return reg_error("user presence flag not set");
  // Step 16.
  if (user_verification_required(in.user_verification) && (auth_data.flags & kFlagUV) == 0) {
    return reg_error("user verification required but UV flag not set");
  }
  // Step 17 (also refused by parse_authenticator_data).
  if ((auth_data.flags & kFlagBS) != 0 && (auth_data.flags & kFlagBE) == 0) return reg_error("BS set without BE");
  // Attested credential data must be present for a registration.
  if (!auth_data.attested) return reg_error("attested credential data missing (AT flag not set)");
  const AttestedCredentialData& attested = *auth_data.attested;
  // Step 20: the credential key's alg is one of pubKeyCredParams.
  auto key = crypto::CoseKey::decode(attested.credential_public_key);
  if (!key) return reg_error("credentialPublicKey is not a supported COSE key");
  static const std::vector<int64_t> kDefaultAlgs = {crypto::cose_alg::kES256, crypto::cose_alg::kEdDSA,
                                                    crypto::cose_alg::kES384, crypto::cose_alg::kES512,
                                                    crypto::cose_alg::kPS256, crypto::cose_alg::kRS256};
  const std::vector<int64_t>& algs = in.allowed_algs.empty() ? kDefaultAlgs : in.allowed_algs;
  if (std::find(algs.begin(), algs.end(), key->alg()) == algs.end()) {
    return reg_error("credential key algorithm was not offered");
  }
  // Steps 21-22: the statement's verification procedure.
  internal::StatementInput stmt_in;
  stmt_in.fmt = fmt->text();
  stmt_in.att_stmt = att_stmt;
  stmt_in.auth_data = auth_data_bytes;
  stmt_in.parsed = &auth_data;
  stmt_in.credential_key = &*key;
  stmt_in.client_data_hash = &client_data_hash;
  SIGIL_ASSIGN_OR_RETURN(internal::StatementResult stmt, internal::verify_statement(stmt_in));
  // Steps 23-24, 29: trust. Under kDirect the x5c chain must reach an anchor; none/self cannot.
  bool trusted = false;
  if (trust.mode == TrustPolicy::Mode::kDirect) {
    if (stmt.trust_path.empty()) return reg_error("trust: attestation type " + stmt.attestation_type + " is not accepted");
    SIGIL_TRY(internal::verify_chain(stmt.trust_path, trust.anchors_der, in.now_s));
    trusted = true;
  } else if (!stmt.trust_path.empty() && !trust.anchors_der.empty()) {
    trusted = internal::verify_chain(stmt.trust_path, trust.anchors_der, in.now_s).has_value();
  }
  // Step 25 (also refused by parse_authenticator_data).
  if (attested.credential_id.size() > kMaxCredentialIdBytes || attested.credential_id.empty()) {
    return reg_error("credential id must be 1..1023 bytes");
  }

  VerifiedRegistration out;
  out.fmt = fmt->text();
  out.attestation_type = std::move(stmt.attestation_type);
  out.trusted = trusted;
  out.credential_id = attested.credential_id;
  out.credential_public_key = attested.credential_public_key;
  out.alg = key->alg();
  out.aaguid = attested.aaguid;
  out.sign_count = auth_data.sign_count;
  out.flags = auth_data.flags;
  out.client_data = std::move(client);
  return out;
}

// ---- §7.2 Verifying an Authentication Assertion --------------------------------------------------------

Result<VerifiedAssertion> verify_assertion(const AssertionInput& in) {
  SIGIL_CHECK(in.rp != nullptr && in.credential != nullptr && in.credential->public_key != nullptr);
  const RelyingParty& rp = *in.rp;
  const StoredCredential& cred = *in.credential;
  // Steps 5-6 (the part without storage): the credential presented is the one looked up, and the
  // user handle, when the authenticator returned one, is the credential's user's.
  if (in.credential_id.empty() || !crypto::ct_equal(in.credential_id, cred.credential_id)) {
    return auth_error("credential id does not match the stored credential");
  }
  if (!in.user_handle.empty() && !crypto::ct_equal(in.user_handle, cred.user_handle)) {
    return auth_error("userHandle does not match the credential's user");
  }
  if (in.signature.empty() || in.signature.size() > kMaxSignatureBytes) return auth_error("signature missing or too large");
  // Steps 8-9.
  SIGIL_ASSIGN_OR_RETURN(CollectedClientData client, as_assertion(parse_client_data(in.client_data_json)));
  // Step 10.
  if (client.type != "webauthn.get") return auth_error("clientDataJSON type is not webauthn.get");
  // Step 11.
  if (in.expected_challenge.empty() || !crypto::ct_equal(client.challenge, in.expected_challenge)) {
    return auth_error("challenge does not match");
  }
  // Steps 12-14.
  SIGIL_TRY(as_assertion(check_origins(client, rp)));
  SIGIL_ASSIGN_OR_RETURN(AuthenticatorData auth_data, as_assertion(parse_authenticator_data(in.authenticator_data)));
  if (auth_data.attested) return auth_error("attested credential data present in an assertion");
  // Step 15.
  const crypto::Sha256Digest rp_id_hash = crypto::sha256(as_bytes(rp.rp_id));
  if (!crypto::ct_equal(auth_data.rp_id_hash, rp_id_hash)) return auth_error("rpIdHash does not match the RP ID");
  // Step 16.
  if ((auth_data.flags & kFlagUP) == 0) return auth_error("user presence flag not set");
  // Step 17.
  if (user_verification_required(in.user_verification) && (auth_data.flags & kFlagUV) == 0) {
    return auth_error("user verification required but UV flag not set");
  }
  // Step 18 (also refused by parse_authenticator_data).
  if ((auth_data.flags & kFlagBS) != 0 && (auth_data.flags & kFlagBE) == 0) return auth_error("BS set without BE");
  // Step 19: backup eligibility is fixed at creation.
  if (((auth_data.flags & kFlagBE) != 0) != cred.backup_eligible) {
    return auth_error("backup eligibility differs from the registered credential");
  }
  // Step 20.
  const crypto::Sha256Digest hash = crypto::sha256(in.client_data_json);
  // Step 21.
  Bytes signed_data;
  signed_data.reserve(in.authenticator_data.size() + hash.size());
  signed_data.insert(signed_data.end(), in.authenticator_data.begin(), in.authenticator_data.end());
  signed_data.insert(signed_data.end(), hash.begin(), hash.end());
  if (!cred.public_key->verify(signed_data, in.signature)) return auth_error("signature invalid");
  // Step 22: only after the signature verified, so a forged count cannot flag a credential.
  if ((auth_data.sign_count != 0 || cred.sign_count != 0) && auth_data.sign_count <= cred.sign_count) {
    return make_error(ErrorCode::kUnauthenticated, "signature counter did not increase",
                      "webauthn_sign_count_regression");
  }
  VerifiedAssertion out;
  out.sign_count = auth_data.sign_count;
  out.flags = auth_data.flags;
  out.client_data = std::move(client);
  return out;
}

std::string aaguid_string(const std::array<uint8_t, 16>& aaguid) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[aaguid[i] >> 4]);
    out.push_back(kHex[aaguid[i] & 0x0f]);
  }
  return out;
}

}  // namespace sigil::webauthn
