#include "api/service/webauthn.h"

#include <algorithm>
#include <fcntl.h>
#include <fmt/format.h>
#include <simdjson.h>
#include <unistd.h>

#include "api/service/mobile_biometrics.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/cose_key.h"
#include "engine/crypto/digest.h"
#include "engine/crypto/pem.h"

namespace sigil::service {
namespace {

constexpr int64_t kDefaultTimeoutS = 300;
constexpr int64_t kGraceMs = 30 * 1000;         // for the backend call after the browser finished
constexpr size_t kMaxEncodedResult = 48 * 1024;  // base64 of the 32 KiB cap
constexpr size_t kMaxDecodedResult = 32 * 1024;
constexpr int64_t kHostedTokenTtlMs = 10 * 60 * 1000;
constexpr size_t kMaxUsername = 64;
// pubKeyCredParams, in this order (API.md 3.1); registration accepts exactly these (§7.1 step 20).
constexpr int64_t kOfferedAlgs[] = {crypto::cose_alg::kES256, crypto::cose_alg::kEdDSA, crypto::cose_alg::kES384,
                                    crypto::cose_alg::kPS256, crypto::cose_alg::kRS256};

std::unexpected<Error> auth_failed() {
  return make_error(ErrorCode::kUnauthenticated, "Authentication failed", "auth_webauthn_failed");
}
std::unexpected<Error> bad_attestation(std::string message) {
  return invalid_argument(std::move(message), "auth_invalid_attestation");
}

// Random bytes whose base64url holds only [A-Za-z0-9], so the text is the same in both alphabets and
// needs no padding on either side (API.md 3.1). Drawn one 6-bit group of the encoding at a time: each full
// group uniform over the 62 alphanumeric values (rejection on a random byte's low 6 bits), the last partial
// group (8n mod 6 bits, zero-padded, always alphanumeric) uniform over its values. That is exactly the
// distribution of drawing whole n-byte strings until one encodes alphanumerically, with one call to the
// CSPRNG instead of about four (and no encoding per draw).
Bytes alnum_random(size_t n) {
  const size_t full = 8 * n / 6;
  const size_t rest = 8 * n % 6;  // 0, 2 or 4 bits
  Bytes pool = crypto::random_bytes(full + full / 8 + 8);
  size_t used = 0;
  auto draw = [&]() -> uint32_t {
    if (used == pool.size()) {
      pool = crypto::random_bytes(16);
      used = 0;
    }
    return pool[used++];
  };
  Bytes out;
  out.reserve(n);
  uint32_t acc = 0;
  size_t acc_bits = 0;
  auto put = [&](uint32_t value, size_t width) {
    acc = (acc << width) | value;
    acc_bits += width;
    while (acc_bits >= 8) {
      acc_bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> acc_bits));
      acc &= (1u << acc_bits) - 1;
    }
  };
  for (size_t i = 0; i < full; ++i) {
    uint32_t v = draw() & 63u;
    while (v >= 62) v = draw() & 63u;  // '-' and '_'
    put(v, 6);
  }
  if (rest != 0) put(draw() & ((1u << rest) - 1), rest);
  crypto::wipe(pool);
  return out;
}
bool alnum_only(const Bytes& b) {
  return crypto::base64url_encode(b).find_first_of("-_") == std::string::npos;
}

std::string b64url(ByteView b) { return crypto::base64url_encode(b); }

webauthn::UserVerification uv_policy(const store::App& app) {
  if (app.user_verification == "required") return webauthn::UserVerification::kRequired;
  if (app.user_verification == "discouraged") return webauthn::UserVerification::kDiscouraged;
  return webauthn::UserVerification::kPreferred;
}

webauthn::RelyingParty relying_party(const store::App& app) {
  webauthn::RelyingParty rp;
  rp.rp_id = app.rp_id;
  rp.origins = app.origins;
  rp.top_origins = app.top_origins;
  rp.allow_cross_origin = !app.top_origins.empty();
  return rp;
}

// Reads a JSON string member into bytes, accepting either base64 alphabet, padded or not.
Result<Bytes> binary_member(simdjson::dom::object obj, std::string_view name, bool required) {
  simdjson::dom::element e;
  if (obj.at_key(name).get(e)) {
    if (required) return invalid_argument(fmt::format("credential.{} is missing", name));
    return Bytes();
  }
  if (e.is_null()) {
    if (required) return invalid_argument(fmt::format("credential.{} is missing", name));
    return Bytes();
  }
  std::string_view s;
  if (e.get_string().get(s)) return invalid_argument(fmt::format("credential.{} must be a string", name));
  if (s.empty()) {
    if (required) return invalid_argument(fmt::format("credential.{} is empty", name));
    return Bytes();
  }
  auto decoded = crypto::base64_any_decode(s);
  if (!decoded) return invalid_argument(fmt::format("credential.{} is not base64", name));
  return std::move(*decoded);
}

Result<ParsedCredential> parse_credential(simdjson::dom::object obj) {
  ParsedCredential c;
  SIGIL_ASSIGN_OR_RETURN(c.raw_id, binary_member(obj, "rawId", false));
  SIGIL_ASSIGN_OR_RETURN(Bytes id, binary_member(obj, "id", false));
  if (c.raw_id.empty()) c.raw_id = std::move(id);
  else if (!id.empty() && id != c.raw_id) return invalid_argument("credential id and rawId differ");
  if (c.raw_id.empty()) return invalid_argument("credential id is missing");
  std::string_view s;
  if (!obj["type"].get_string().get(s)) c.type = std::string(s);
  if (c.type != "public-key") return invalid_argument("credential.type must be 'public-key'");
  if (!obj["authenticatorAttachment"].get_string().get(s)) c.authenticator_attachment = std::string(s);
  if (c.authenticator_attachment != "" && c.authenticator_attachment != "platform" &&
      c.authenticator_attachment != "cross-platform") {
    c.authenticator_attachment.clear();
  }
  simdjson::dom::object response;
  if (obj["response"].get_object().get(response)) return invalid_argument("credential.response is missing");
  SIGIL_ASSIGN_OR_RETURN(c.client_data_json, binary_member(response, "clientDataJSON", true));
  SIGIL_ASSIGN_OR_RETURN(c.authenticator_data, binary_member(response, "authenticatorData", false));
  SIGIL_ASSIGN_OR_RETURN(c.signature, binary_member(response, "signature", false));
  SIGIL_ASSIGN_OR_RETURN(c.user_handle, binary_member(response, "userHandle", false));
  SIGIL_ASSIGN_OR_RETURN(c.attestation_object, binary_member(response, "attestationObject", false));
  simdjson::dom::array transports;
  if (!response["transports"].get_array().get(transports)) {
    for (auto t : transports) {
      std::string_view v;
      if (t.get_string().get(v) || v.size() > 32 || c.transports.size() >= 8) {
        return invalid_argument("credential.response.transports is malformed");
      }
      c.transports.emplace_back(v);
    }
  }
  return c;
}

std::string write_string_array(const std::vector<std::string>& v) {
  JsonWriter w;
  w.begin_array();
  for (const auto& s : v) w.string(s);
  w.end_array();
  return std::move(w).str();
}

Result<std::vector<Bytes>> load_anchors(const store::App& app) {
  std::vector<Bytes> anchors;
  for (const auto& path : app.trust_anchor_files) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(ErrorCode::kUnavailable, fmt::format("cannot read trust anchors {}", path));
    std::string pem;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && pem.size() < 1024 * 1024) pem.append(buf, static_cast<size_t>(n));
    ::close(fd);
    auto der = crypto::pem_certificates_to_der(pem);
    if (!der) return make_error(ErrorCode::kUnavailable, fmt::format("trust anchors {}: {}", path, der.error().message));
    anchors.insert(anchors.end(), der->begin(), der->end());
  }
  return anchors;
}

}  // namespace

Result<ParsedCredential> parse_credential_json(std::string_view json) {
  // simdjson copies the input with memcpy, which must not see a null pointer (an empty view may carry one).
  if (json.empty()) return invalid_argument("credential is not valid JSON");
  thread_local simdjson::dom::parser parser;  // one per thread; nothing of a parse outlives this call
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) return invalid_argument("credential is not valid JSON");
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return invalid_argument("credential must be a JSON object");
  return parse_credential(obj);
}

Result<EncodedResult> decode_encoded_result(std::string_view encoded) {
  if (encoded.empty() || encoded.size() > kMaxEncodedResult) {
    return invalid_argument("webauthn_encoded_result is empty or too large");
  }
  auto decoded = crypto::base64_any_decode(encoded);
  if (!decoded) return invalid_argument("webauthn_encoded_result is not base64");
  if (decoded->size() > kMaxDecodedResult) return invalid_argument("webauthn_encoded_result is too large");
  thread_local simdjson::dom::parser parser;  // one per thread; the credential is copied out before return
  simdjson::dom::element root;
  if (parser.parse(reinterpret_cast<const char*>(decoded->data()), decoded->size()).get(root)) {
    return invalid_argument("webauthn_encoded_result is not JSON");
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return invalid_argument("webauthn_encoded_result must hold a JSON object");
  EncodedResult out;
  simdjson::dom::object credential;
  if (!obj["publicKeyCredential"].get_object().get(credential)) {
    // The vendor SDK's envelope.
    std::string_view sid;
    if (obj["webauthnSessionId"].get_string().get(sid) || sid.empty() || sid.size() > 128) {
      return invalid_argument("webauthnSessionId is missing");
    }
    out.session_id = std::string(sid);
    SIGIL_ASSIGN_OR_RETURN(out.credential, parse_credential(credential));
  } else {
    // The credential's own toJSON() form; the ceremony is found by its challenge.
    SIGIL_ASSIGN_OR_RETURN(out.credential, parse_credential(obj));
  }
  simdjson::dom::object device_info;
  if (!obj["deviceInfo"].get_object().get(device_info)) {
    std::string_view pk_id;
    if (device_info["publicKeyId"].get_string().get(pk_id) || pk_id.empty() || pk_id.size() > 256) {
      return invalid_argument("deviceInfo.publicKeyId is missing");
    }
    JsonWriter w;
    w.begin_object().key("publicKeyId").string(pk_id).end_object();
    out.device_info_json = std::move(w).str();
  }
  return out;
}

WebAuthn::WebAuthn(ServiceContext& ctx)
    : ctx_(ctx),
      // Ceremonies are challenges too: bounded by the same configured capacity (503 beyond).
      ceremonies_(ctx.clock, ctx.challenges.capacity()),
      by_challenge_(ctx.clock, ctx.challenges.capacity()),
      hosted_(ctx.clock, 100'000),
      keys_(1'000'000) {}

Result<store::App> WebAuthn::app_for_client_id(const Params& in) {
  SIGIL_ASSIGN_OR_RETURN(std::string client_id, in.require_string("client_id", 150));
  SIGIL_ASSIGN_OR_RETURN(auto client, ctx_.store.find_client(client_id));
  if (!client) return make_error(ErrorCode::kNotFound, "Client not found", "client_not_exist");
  SIGIL_ASSIGN_OR_RETURN(auto app, ctx_.store.find_app(client->app_id));
  if (!app) return make_error(ErrorCode::kNotFound, "Client not found", "client_not_exist");
  return std::move(*app);
}

Result<bool> WebAuthn::origin_known(std::string_view origin) {
  if (origin.empty()) return false;
  SIGIL_ASSIGN_OR_RETURN(auto apps, ctx_.store.list_apps());
  for (const auto& app : apps) {
    if (std::find(app.origins.begin(), app.origins.end(), origin) != app.origins.end()) return true;
  }
  return false;
}

Result<StartReply> WebAuthn::authenticate_start(const Params& in) {
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_for_client_id(in));
  SIGIL_ASSIGN_OR_RETURN(auto timeout, in.get_int("timeout"));
  SIGIL_ASSIGN_OR_RETURN(auto username, in.get_string("username", kMaxUsername));
  SIGIL_ASSIGN_OR_RETURN(auto identifier, in.get_string("identifier", 320));
  SIGIL_ASSIGN_OR_RETURN(auto identifier_type, in.get_string("identifier_type", 32));
  SIGIL_ASSIGN_OR_RETURN(auto approval, in.get_object("approval_data"));
  const int64_t timeout_s = timeout.value_or(kDefaultTimeoutS);
  if (timeout_s < 30 || timeout_s > 600) return invalid_argument("timeout must be 30..600 seconds");
  if (username && username->empty()) return invalid_argument("username must be 1..64 characters");
  if (identifier.has_value() != identifier_type.has_value()) {
    return invalid_argument("identifier and identifier_type go together", "invalid_request");
  }
  if (username && identifier) return invalid_argument("Give either username or identifier");

  Ceremony ceremony;
  ceremony.app_id = app.id;
  std::string lookup_name;    // what unknown-account credential ids are derived from
  std::vector<store::WebAuthnCredential> creds;
  // Transports of each allowed credential, by position (flagged ones are skipped; decoys have none).
  std::vector<std::vector<std::string>> allowed_transports;
  if (username) {
    ceremony.username = *username;
    lookup_name = *username;
    SIGIL_ASSIGN_OR_RETURN(creds, ctx_.store.list_webauthn_credentials_by_username(app.id, *username));
  } else if (identifier) {
    std::optional<store::User> user;
    if (*identifier_type == "email") {
      SIGIL_ASSIGN_OR_RETURN(std::string email, normalize_email(*identifier));
      SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user_by_email(app.tenant_id, email));
    } else if (*identifier_type == "phone_number") {
      SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user_by_phone(app.tenant_id, *identifier));
    } else if (*identifier_type == "user_id") {
      SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user(*identifier));
      if (user && user->tenant_id != app.tenant_id) user.reset();
    } else if (*identifier_type == "username") {
      if (identifier->empty() || identifier->size() > kMaxUsername) {
        return invalid_argument("username must be 1..64 characters");
      }
      ceremony.username = *identifier;
      SIGIL_ASSIGN_OR_RETURN(creds, ctx_.store.list_webauthn_credentials_by_username(app.id, *identifier));
    } else {
      Error e{ErrorCode::kInvalidArgument, "Unknown identifier_type", "user_unknown_identifier_type",
              "user_unknown_identifier_type"};
      return std::unexpected(std::move(e));
    }
    lookup_name = fmt::format("{}:{}", *identifier_type, *identifier);
    if (user) {
      ceremony.user_id = user->id;
      SIGIL_ASSIGN_OR_RETURN(creds, ctx_.store.list_webauthn_credentials(app.id, user->id));
    }
  }
  for (const auto& c : creds) {
    if (c.flagged_at != 0) continue;
    ceremony.allowed_credentials.push_back(c.credential_id);
    allowed_transports.push_back(c.transports);
  }
  if (!lookup_name.empty() && ceremony.allowed_credentials.empty()) {
    // Unknown account (or one without credentials): answer like a real one, deterministically, so the
    // response reveals nothing (CVE-2024-39912 was an empty list). The completion then fails.
    const auto seed = crypto::hmac_sha256(ctx_.otp_key, as_bytes(fmt::format("webauthn-decoy\n{}\n{}", app.id, lookup_name)));
    const size_t count = 1 + seed[0] % 3;
    for (size_t i = 0; i < count; ++i) {
      const auto id = crypto::hmac_sha256(seed, as_bytes(fmt::format("credential {}", i)));
      ceremony.allowed_credentials.emplace_back(id.begin(), id.end());
    }
    if (ceremony.username.empty() && ceremony.user_id.empty()) ceremony.user_id = "\n";  // matches no user
  }

  Bytes raw;
  if (approval) {
    SIGIL_ASSIGN_OR_RETURN(ceremony.approval_data_json, canonical_approval_data(*approval));
    // challenge = SHA-256(rawChallenge || canonical JSON); both must encode alphanumerically (API.md 3.1).
    for (;;) {
      raw = alnum_random(32);
      Bytes material = raw;
      material.insert(material.end(), ceremony.approval_data_json.begin(), ceremony.approval_data_json.end());
      const auto digest = crypto::sha256(material);
      Bytes bound(digest.begin(), digest.end());
      if (alnum_only(bound)) {
        ceremony.challenge = std::move(bound);
        break;
      }
    }
  } else {
    ceremony.challenge = alnum_random(32);
  }

  ceremony.id = b64url(crypto::random_bytes(16));
  const std::string session_id = ceremony.id;
  const std::string challenge_text = b64url(ceremony.challenge);
  const int64_t ttl = timeout_s * 1000 + kGraceMs;

  JsonWriter w;
  w.begin_object();
  w.key("webauthn_session_id").string(session_id);
  w.key("credential_request_options").begin_object();
  w.key("challenge").string(challenge_text);
  if (!raw.empty()) w.key("rawChallenge").string(b64url(raw));
  w.key("allowCredentials").begin_array();
  for (size_t i = 0; i < ceremony.allowed_credentials.size(); ++i) {
    w.begin_object().key("type").string("public-key");
    w.key("id").string(crypto::base64_encode(ceremony.allowed_credentials[i]));
    if (i < allowed_transports.size() && !allowed_transports[i].empty()) {
      w.key("transports").raw(write_string_array(allowed_transports[i]));
    }
    w.end_object();
  }
  w.end_array();
  w.key("timeout").number(timeout_s * 1000);
  w.key("rpId").string(app.rp_id);
  w.key("attestation").string("none");
  w.key("userVerification").string(app.user_verification);
  w.key("extensions").begin_object().end_object();
  w.end_object();
  w.end_object();

  SIGIL_TRY(by_challenge_.put(challenge_text, session_id, ttl));
  SIGIL_TRY(ceremonies_.put(session_id, std::move(ceremony), ttl));
  return StartReply{std::move(w).str(), app.origins};
}

Result<StartReply> WebAuthn::register_start(const Params& in) {
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_for_client_id(in));
  SIGIL_ASSIGN_OR_RETURN(std::string username, in.require_string("username", kMaxUsername));
  SIGIL_ASSIGN_OR_RETURN(auto display_name, in.get_string("display_name", 64));
  SIGIL_ASSIGN_OR_RETURN(auto timeout, in.get_int("timeout"));
  SIGIL_ASSIGN_OR_RETURN(auto single, in.get_bool("limit_single_credential_to_device"));
  const int64_t timeout_s = timeout.value_or(kDefaultTimeoutS);
  if (timeout_s < 30 || timeout_s > 600) return invalid_argument("timeout must be 30..600 seconds");

  Ceremony ceremony;
  ceremony.registration = true;
  ceremony.app_id = app.id;
  ceremony.username = username;
  ceremony.display_name = display_name && !display_name->empty() ? *display_name : username;
  SIGIL_ASSIGN_OR_RETURN(auto account, ctx_.store.find_webauthn_account(app.id, username));
  // The account's stable handle, or a fresh one remembered in the ceremony (no user is created here).
  ceremony.user_handle = account ? account->user_handle : alnum_random(32);
  std::vector<Bytes> exclude;
  if (single.value_or(false)) {
    SIGIL_ASSIGN_OR_RETURN(auto creds, ctx_.store.list_webauthn_credentials_by_username(app.id, username));
    for (const auto& c : creds) exclude.push_back(c.credential_id);
  }
  ceremony.challenge = alnum_random(32);

  ceremony.id = b64url(crypto::random_bytes(16));
  const std::string session_id = ceremony.id;
  const std::string challenge_text = b64url(ceremony.challenge);
  const int64_t ttl = timeout_s * 1000 + kGraceMs;
  JsonWriter w;
  w.begin_object();
  w.key("webauthn_session_id").string(session_id);
  w.key("credential_creation_options").begin_object();
  w.key("rp").begin_object().key("id").string(app.rp_id).key("name").string(app.name).end_object();
  w.key("user").begin_object();
  w.key("id").string(b64url(ceremony.user_handle));
  w.key("name").string(username);
  w.key("displayName").string(ceremony.display_name);
  w.end_object();
  w.key("challenge").string(challenge_text);
  w.key("pubKeyCredParams").begin_array();
  for (int64_t alg : kOfferedAlgs) {
    w.begin_object().key("type").string("public-key").key("alg").number(alg).end_object();
  }
  w.end_array();
  w.key("timeout").number(timeout_s * 1000);
  w.key("attestation").string("none");
  w.key("authenticatorSelection").begin_object();
  w.key("residentKey").string("preferred");
  w.key("requireResidentKey").boolean(false);
  w.key("userVerification").string(app.user_verification);
  w.end_object();
  w.key("excludeCredentials").begin_array();
  for (const auto& id : exclude) {
    w.begin_object().key("type").string("public-key").key("id").string(crypto::base64_encode(id)).end_object();
  }
  w.end_array();
  w.key("extensions").begin_object().key("credProps").boolean(true).end_object();
  w.end_object();
  w.end_object();

  SIGIL_TRY(by_challenge_.put(challenge_text, session_id, ttl));
  SIGIL_TRY(ceremonies_.put(session_id, std::move(ceremony), ttl));
  return StartReply{std::move(w).str(), app.origins};
}

Result<WebAuthn::Ceremony> WebAuthn::take_ceremony(const EncodedResult& result, bool registration) {
  auto fail = [&]() -> std::unexpected<Error> {
    return registration ? bad_attestation("Unknown, expired or used WebAuthn session") : auth_failed();
  };
  std::string session_id = result.session_id;
  if (session_id.empty()) {
    auto client_data = webauthn::parse_client_data(result.credential.client_data_json);
    if (!client_data) return fail();
    auto id = by_challenge_.take(b64url(client_data->challenge));
    if (!id) return fail();
    session_id = std::move(*id);
  }
  // Taken: one attempt per ceremony, whatever the outcome.
  auto ceremony = ceremonies_.take(session_id);
  if (!ceremony) return fail();
  (void)by_challenge_.take(b64url(ceremony->challenge));
  if (ceremony->registration != registration || ceremony->hosted) return fail();
  return std::move(*ceremony);
}

Result<WebAuthn::AssertionOutcome> WebAuthn::verify_assertion_for(const store::App& app, const Ceremony& ceremony,
                                                                  const ParsedCredential& cred_in,
                                                                  const webauthn::RelyingParty& rp) {
  if (cred_in.authenticator_data.empty() || cred_in.signature.empty()) {
    return invalid_argument("The result is not an assertion");
  }
  SIGIL_ASSIGN_OR_RETURN(auto stored, ctx_.store.find_webauthn_credential(cred_in.raw_id));
  // The credential must exist in this app, be unflagged, belong to the user the ceremony named, and be
  // one of the credentials it allowed.
  if (!stored || stored->app_id != app.id || stored->flagged_at != 0) return auth_failed();
  if (!ceremony.username.empty() && stored->username != ceremony.username) return auth_failed();
  if (!ceremony.user_id.empty() && stored->user_id != ceremony.user_id) return auth_failed();
  if (!ceremony.allowed_credentials.empty() &&
      std::none_of(ceremony.allowed_credentials.begin(), ceremony.allowed_credentials.end(),
                   [&](const Bytes& id) { return crypto::ct_equal(id, cred_in.raw_id); })) {
    return auth_failed();
  }
  const auto cose_hash = crypto::sha256(stored->public_key_cose);
  const std::string cache_key(reinterpret_cast<const char*>(cose_hash.data()), cose_hash.size());
  std::shared_ptr<const crypto::CoseKey> key = keys_.find(cache_key);
  if (!key) {
    auto parsed = crypto::CoseKey::decode(stored->public_key_cose);
    if (!parsed) return internal_error("stored credential key does not parse");
    key = std::make_shared<const crypto::CoseKey>(std::move(*parsed));
    keys_.put(cache_key, key);
  }
  webauthn::StoredCredential sc;
  sc.credential_id = stored->credential_id;
  sc.public_key = key.get();
  sc.sign_count = static_cast<uint32_t>(stored->sign_count);
  sc.user_handle = stored->user_handle;
  sc.backup_eligible = stored->backup_eligible;
  webauthn::AssertionInput input;
  input.credential_id = cred_in.raw_id;
  input.client_data_json = cred_in.client_data_json;
  input.authenticator_data = cred_in.authenticator_data;
  input.signature = cred_in.signature;
  input.user_handle = cred_in.user_handle;
  input.expected_challenge = ceremony.challenge;
  input.rp = &rp;
  input.user_verification = uv_policy(app);
  input.credential = &sc;
  auto verified = webauthn::verify_assertion(input);
  if (!verified) {
    if (verified.error().ts_error_code == "webauthn_sign_count_regression") {
      // A cloned authenticator is the likely cause: refuse this credential from now on (§6.1.1).
      fmt::print(stderr, "sigild: webauthn credential flagged after a sign-count regression\n");
      SIGIL_TRY(ctx_.store.flag_webauthn_credential(stored->credential_id, ctx_.clock.now_s()));
    }
    return auth_failed();
  }
  SIGIL_ASSIGN_OR_RETURN(auto user, ctx_.store.find_user(stored->user_id));
  if (!user || user->tenant_id != app.tenant_id) return auth_failed();

  const int64_t now = ctx_.clock.now_s();
  JsonWriter claim;
  claim.begin_object();
  claim.key("credential_id").string(b64url(stored->credential_id));
  std::array<uint8_t, 16> aaguid{};
  std::copy_n(stored->aaguid.begin(), std::min<size_t>(16, stored->aaguid.size()), aaguid.begin());
  claim.key("aaguid").string(webauthn::aaguid_string(aaguid));
  claim.key("authenticator_attachment")
      .string(stored->attachment.empty() ? "cross-platform" : stored->attachment);
  claim.key("first_used").number(stored->created_at);
  claim.key("last_used").number(now);
  claim.key("last_login").number(stored->last_used_at);
  claim.end_object();

  AssertionOutcome out;
  out.credential = std::move(*stored);
  out.user = std::move(*user);
  out.claim = std::move(claim).str();
  out.sign_count = verified->sign_count;
  out.flags = verified->flags;
  return out;
}

Result<std::string> WebAuthn::authenticate(const auth::Principal& caller, const Params& in) {
  return complete_login(ctx_.tokens, prepare_authentication(caller, in));
}

void WebAuthn::authenticate_async(const auth::Principal& caller, const Params& in, LoginDone done) {
  complete_login_async(ctx_.tokens, prepare_authentication(caller, in), std::move(done));
}

Result<std::unique_ptr<PreparedLogin>> WebAuthn::prepare_authentication(const auth::Principal& caller,
                                                                         const Params& in) {
  SIGIL_TRY(require_client(caller));
  auto out = std::make_unique<PreparedLogin>();
  SIGIL_ASSIGN_OR_RETURN(out->app, app_of(ctx_, caller));
  const store::App& app = out->app;
  SIGIL_ASSIGN_OR_RETURN(std::string encoded, in.require_string("webauthn_encoded_result", kMaxEncodedResult));
  SIGIL_ASSIGN_OR_RETURN(auto resource, in.get_string("resource", 2048));
  SIGIL_ASSIGN_OR_RETURN(auto claims, in.get_object("claims"));
  SIGIL_ASSIGN_OR_RETURN(auto org_id, in.get_string("org_id", 128));
  SIGIL_ASSIGN_OR_RETURN(auto attributes, in.get_object("client_attributes"));
  SIGIL_ASSIGN_OR_RETURN(auto device_id, in.get_string("device_id", 256));
  SIGIL_ASSIGN_OR_RETURN(auto session_id, in.get_string("session_id", 128));
  (void)device_id;
  std::string resource_s = resource.value_or("");
  SIGIL_TRY(ctx_.tokens.resolve_audience(app, resource_s));
  std::string claims_json, attributes_json;
  if (claims) {
    SIGIL_ASSIGN_OR_RETURN(claims_json, validate_object_json(*claims, "claims"));
  }
  if (attributes) {
    SIGIL_ASSIGN_OR_RETURN(attributes_json, validate_object_json(*attributes, "client_attributes"));
  }
  if (org_id) return make_error(ErrorCode::kPermissionDenied, "User is not a member of the organization");
  SIGIL_ASSIGN_OR_RETURN(EncodedResult result, decode_encoded_result(encoded));
  const ParsedCredential& cred_in = result.credential;
  if (cred_in.authenticator_data.empty() || cred_in.signature.empty()) {
    return invalid_argument("The result is not an assertion");
  }

  SIGIL_ASSIGN_OR_RETURN(Ceremony ceremony, take_ceremony(result, false));
  if (ceremony.app_id != app.id) {
    return make_error(ErrorCode::kPermissionDenied, "The WebAuthn session belongs to another application");
  }
  SIGIL_ASSIGN_OR_RETURN(AssertionOutcome outcome, verify_assertion_for(app, ceremony, cred_in, relying_party(app)));
  auto& stored = outcome.credential;
  auto& user = outcome.user;
  auto& claim = outcome.claim;
  auto& verified = outcome;

  auth::LoginRequest& login = out->login;
  login.app = &app;
  login.client_id = caller.client_id;
  login.user = std::move(user);
  login.amr = "webauthn";
  login.join_session_id = session_id.value_or("");
  login.client_attributes_json = attributes_json;
  login.resource = resource_s;
  login.approval_data_json = ceremony.approval_data_json;
  login.claims_json = claims_json;
  login.webauthn_credential_id = stored.credential_id;
  login.webauthn_sign_count = verified.sign_count;
  login.webauthn_backup_state = (verified.flags & webauthn::kFlagBS) != 0;
  login.extra_id_claims.emplace_back("webauthn", std::move(claim));
  login.extra_id_claims.emplace_back("webauthn_username", JsonWriter::quote(stored.username));
  if (!stored.device_info_json.empty()) {
    login.extra_id_claims.emplace_back("device_keys", "[" + stored.device_info_json + "]");
  }
  return out;
}

Result<std::string> WebAuthn::finish_registration(const auth::Principal& caller, const store::App& app,
                                                  const store::User& user, bool user_created,
                                                  const EncodedResult& result, const Ceremony& ceremony,
                                                  const std::string& external_user_id,
                                                  const webauthn::RelyingParty* rp_override,
                                                  std::string* credential_id_out) {
  (void)caller;
  const ParsedCredential& cred_in = result.credential;
  const webauthn::RelyingParty rp = rp_override != nullptr ? *rp_override : relying_party(app);
  webauthn::TrustPolicy trust;
  if (app.attestation_trust == "direct") {
    trust.mode = webauthn::TrustPolicy::Mode::kDirect;
    SIGIL_ASSIGN_OR_RETURN(trust.anchors_der, load_anchors(app));
  }
  webauthn::RegistrationInput input;
  input.client_data_json = cred_in.client_data_json;
  input.attestation_object = cred_in.attestation_object;
  input.expected_challenge = ceremony.challenge;
  input.rp = &rp;
  input.user_verification = uv_policy(app);
  input.trust = &trust;
  input.allowed_algs.assign(std::begin(kOfferedAlgs), std::end(kOfferedAlgs));
  input.now_s = ctx_.clock.now_s();
  auto verified = webauthn::verify_registration(input);
  if (!verified) {
    fmt::print(stderr, "sigild: webauthn registration refused: {}\n", verified.error().message);
    return bad_attestation(verified.error().message);
  }
  // The key must parse into a handle now, so that a login never meets a key it cannot use.
  if (!crypto::CoseKey::decode(verified->credential_public_key)) {
    return bad_attestation("credential public key is not supported");
  }
  const int64_t now = ctx_.clock.now_s();
  store::WebAuthnAccount account;
  account.app_id = app.id;
  account.username = ceremony.username;
  account.user_id = user.id;
  account.user_handle = ceremony.user_handle;
  account.display_name = ceremony.display_name;
  account.created_at = now;
  store::WebAuthnCredential cred;
  cred.credential_id = verified->credential_id;
  cred.app_id = app.id;
  cred.user_id = user.id;
  cred.username = ceremony.username;
  cred.user_handle = ceremony.user_handle;
  cred.public_key_cose = verified->credential_public_key;
  cred.alg = verified->alg;
  cred.sign_count = verified->sign_count;
  cred.aaguid.assign(verified->aaguid.begin(), verified->aaguid.end());
  cred.transports = cred_in.transports;
  cred.attachment = cred_in.authenticator_attachment;
  cred.backup_eligible = (verified->flags & webauthn::kFlagBE) != 0;
  cred.backup_state = (verified->flags & webauthn::kFlagBS) != 0;
  cred.fmt = verified->fmt;
  cred.attestation_type = verified->attestation_type;
  cred.device_info_json = result.device_info_json;
  cred.created_at = now;
  cred.last_used_at = 0;
  std::optional<store::User> new_user;
  if (user_created) new_user = user;
  auto stored = ctx_.store.register_webauthn_credential(new_user, account, cred);
  if (!stored) {
    const Error& e = stored.error();
    if (e.code == ErrorCode::kConflict && e.ts_error_code.empty()) {
      return make_error(ErrorCode::kConflict, "A user with this email or external id exists", "");
    }
    return std::unexpected(e);
  }
  if (credential_id_out != nullptr) *credential_id_out = b64url(cred.credential_id);
  JsonWriter w;
  w.begin_object();
  w.key("webauthn_session_id").string(ceremony.id);
  w.key("user_id").string(user.id);
  w.key("webauthn_username").string(ceremony.username);
  w.key("credential_id").string(b64url(cred.credential_id));
  w.key("authenticator_attachment").string(cred.attachment.empty() ? "cross-platform" : cred.attachment);
  w.key("aaguid").string(webauthn::aaguid_string(verified->aaguid));
  if (!external_user_id.empty()) {
    w.key("external_user_id").string(external_user_id);
    w.key("is_user_created").boolean(user_created);
  }
  w.end_object();
  return std::move(w).str();
}

Result<std::string> WebAuthn::register_credential(const auth::Principal& caller, const Params& in) {
  SIGIL_TRY(require_user(caller));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of(ctx_, caller));
  SIGIL_ASSIGN_OR_RETURN(std::string encoded, in.require_string("webauthn_encoded_result", kMaxEncodedResult));
  SIGIL_ASSIGN_OR_RETURN(EncodedResult result, decode_encoded_result(encoded));
  if (result.credential.attestation_object.empty()) return bad_attestation("The result is not an attestation");
  SIGIL_ASSIGN_OR_RETURN(Ceremony ceremony, take_ceremony(result, true));
  if (ceremony.app_id != app.id) {
    return make_error(ErrorCode::kPermissionDenied, "The WebAuthn session belongs to another application");
  }
  SIGIL_ASSIGN_OR_RETURN(auto user, ctx_.store.find_user(caller.user_id));
  if (!user) return make_error(ErrorCode::kUnauthenticated, "Invalid token");
  return finish_registration(caller, app, *user, false, result, ceremony, "");
}

Result<std::string> WebAuthn::external_register(const auth::Principal& caller, const Params& in) {
  SIGIL_TRY(require_client(caller));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of(ctx_, caller));
  SIGIL_ASSIGN_OR_RETURN(std::string encoded, in.require_string("webauthn_encoded_result", kMaxEncodedResult));
  SIGIL_ASSIGN_OR_RETURN(std::string external_id, in.require_string("external_user_id", 256));
  SIGIL_ASSIGN_OR_RETURN(auto email_in, in.get_string("user_email", 254));
  SIGIL_ASSIGN_OR_RETURN(auto device_id, in.get_string("device_id", 256));
  (void)device_id;
  std::string email;
  if (email_in && !email_in->empty()) {
    SIGIL_ASSIGN_OR_RETURN(email, normalize_email(*email_in));
  }
  SIGIL_ASSIGN_OR_RETURN(EncodedResult result, decode_encoded_result(encoded));
  if (result.credential.attestation_object.empty()) return bad_attestation("The result is not an attestation");
  SIGIL_ASSIGN_OR_RETURN(Ceremony ceremony, take_ceremony(result, true));
  if (ceremony.app_id != app.id) {
    return make_error(ErrorCode::kPermissionDenied, "The WebAuthn session belongs to another application");
  }
  SIGIL_ASSIGN_OR_RETURN(auto user, ctx_.store.find_user_by_external_id(app.tenant_id, external_id));
  bool created = false;
  if (!user) {
    // API.md 3.6: the user is created, with user_email as its primary, unverified email.
    store::User u;
    u.id = crypto::random_token(16);
    u.tenant_id = app.tenant_id;
    u.email = email;
    u.external_user_id = external_id;
    u.created_at = ctx_.clock.now_s();
    user = std::move(u);
    created = true;
  }
  return finish_registration(caller, app, *user, created, result, ceremony, external_id);
}

Result<std::string> WebAuthn::hosted_hint(const auth::Principal& caller, const Params& in) {
  SIGIL_TRY(require_client(caller));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of(ctx_, caller));
  auto identifier = in.get_string("webauthn_identifier", kMaxUsername);
  if (!identifier || !*identifier || (*identifier)->empty()) {
    Error e{ErrorCode::kInvalidArgument, "webauthn_identifier must be 1..64 characters",
            "user_unknown_identifier_type", "user_unknown_identifier_type"};
    return std::unexpected(std::move(e));
  }
  SIGIL_ASSIGN_OR_RETURN(auto display_name, in.get_string("webauthn_display_name", 64));
  SIGIL_ASSIGN_OR_RETURN(auto external_id, in.get_string("external_user_id", 256));
  SIGIL_ASSIGN_OR_RETURN(std::string redirect_uri, in.require_string("redirect_uri", 2048));
  if (std::find(app.redirect_uris.begin(), app.redirect_uris.end(), redirect_uri) == app.redirect_uris.end()) {
    return invalid_argument("Invalid redirect_uri", "");
  }
  HostedRegistration h;
  h.app_id = app.id;
  h.identifier = **identifier;
  h.display_name = display_name && !display_name->empty() ? *display_name : **identifier;
  h.external_user_id = external_id.value_or("");
  h.redirect_uri = redirect_uri;
  const std::string token = crypto::random_token(32);
  // Stored under a keyed hash: the token is a bearer secret for the hosted page.
  const std::string key = hosted_token_key(token);
  SIGIL_TRY(hosted_.put(key, std::move(h), kHostedTokenTtlMs));
  JsonWriter w;
  w.begin_object().key("register_webauthn_cred_token").string(token).end_object();
  return std::move(w).str();
}

// ---- ceremonies of the hosted pages -------------------------------------------------------------------

webauthn::RelyingParty WebAuthn::hosted_relying_party(const store::App& app) const {
  // The hosted pages run at sigil's own origin; the app's rpId must be sigil's host or a registrable suffix
  // of it (the browser enforces that), so the app's own origins stay valid as well.
  webauthn::RelyingParty rp = relying_party(app);
  if (std::find(rp.origins.begin(), rp.origins.end(), ctx_.public_url) == rp.origins.end()) {
    rp.origins.push_back(ctx_.public_url);
  }
  return rp;
}

Result<std::string> WebAuthn::hosted_assertion_options(const store::App& app, const std::string& user_id,
                                                       std::string* ceremony_id) {
  Ceremony ceremony;
  ceremony.hosted = true;
  ceremony.app_id = app.id;
  ceremony.user_id = user_id;
  std::vector<std::vector<std::string>> transports;
  if (!user_id.empty()) {
    SIGIL_ASSIGN_OR_RETURN(auto creds, ctx_.store.list_webauthn_credentials(app.id, user_id));
    for (const auto& c : creds) {
      if (c.flagged_at != 0) continue;
      ceremony.allowed_credentials.push_back(c.credential_id);
      transports.push_back(c.transports);
    }
    if (ceremony.allowed_credentials.empty()) return make_error(ErrorCode::kNotFound, "No passkey", "auth_no_registered_authenticator");
  }
  ceremony.challenge = alnum_random(32);
  ceremony.id = b64url(crypto::random_bytes(16));
  JsonWriter w;
  w.begin_object();
  w.key("challenge").string(b64url(ceremony.challenge));
  w.key("rpId").string(app.rp_id);
  w.key("timeout").number(kDefaultTimeoutS * 1000);
  w.key("userVerification").string(app.user_verification);
  w.key("allowCredentials").begin_array();
  for (size_t i = 0; i < ceremony.allowed_credentials.size(); ++i) {
    w.begin_object().key("type").string("public-key").key("id").string(b64url(ceremony.allowed_credentials[i]));
    if (!transports[i].empty()) w.key("transports").raw(write_string_array(transports[i]));
    w.end_object();
  }
  w.end_array();
  w.end_object();
  *ceremony_id = ceremony.id;
  const std::string id = ceremony.id;
  SIGIL_TRY(ceremonies_.put(id, std::move(ceremony), kDefaultTimeoutS * 1000 + kGraceMs));
  return std::move(w).str();
}

Result<WebAuthn::HostedAssertion> WebAuthn::hosted_finish_assertion(const store::App& app,
                                                                    const std::string& ceremony_id,
                                                                    std::string_view credential_json) {
  // Taken first: one attempt per ceremony, whatever the outcome.
  auto ceremony = ceremonies_.take(ceremony_id);
  if (!ceremony || !ceremony->hosted || ceremony->registration || ceremony->app_id != app.id) return auth_failed();
  if (credential_json.size() > kMaxDecodedResult) return invalid_argument("credential is too large");
  SIGIL_ASSIGN_OR_RETURN(ParsedCredential cred_in, parse_credential_json(credential_json));
  SIGIL_ASSIGN_OR_RETURN(AssertionOutcome outcome,
                         verify_assertion_for(app, *ceremony, cred_in, hosted_relying_party(app)));
  // The authenticator's counter moves now, not when the code is exchanged (maybe never).
  store::LoginWrite touch;
  touch.webauthn_credential_id = outcome.credential.credential_id;
  touch.webauthn_sign_count = outcome.sign_count;
  touch.webauthn_backup_state = (outcome.flags & webauthn::kFlagBS) != 0;
  touch.used_at = ctx_.clock.now_s();
  SIGIL_TRY(ctx_.store.commit_login(touch));
  HostedAssertion out;
  out.user = std::move(outcome.user);
  out.id_claims.emplace_back("webauthn", std::move(outcome.claim));
  out.id_claims.emplace_back("webauthn_username", JsonWriter::quote(outcome.credential.username));
  out.credential = std::move(outcome.credential);
  return out;
}

Result<std::string> WebAuthn::hosted_registration_options(const store::App& app, const std::string& username,
                                                          const std::string& display_name,
                                                          std::string* ceremony_id) {
  if (username.empty() || username.size() > 320) return invalid_argument("username is invalid");
  Ceremony ceremony;
  ceremony.hosted = true;
  ceremony.registration = true;
  ceremony.app_id = app.id;
  ceremony.username = username;
  ceremony.display_name = display_name.empty() ? username : display_name;
  SIGIL_ASSIGN_OR_RETURN(auto account, ctx_.store.find_webauthn_account(app.id, username));
  ceremony.user_handle = account ? account->user_handle : alnum_random(32);
  SIGIL_ASSIGN_OR_RETURN(auto existing, ctx_.store.list_webauthn_credentials_by_username(app.id, username));
  ceremony.challenge = alnum_random(32);
  ceremony.id = b64url(crypto::random_bytes(16));
  JsonWriter w;
  w.begin_object();
  w.key("rp").begin_object().key("id").string(app.rp_id).key("name").string(app.name).end_object();
  w.key("user").begin_object();
  w.key("id").string(b64url(ceremony.user_handle));
  w.key("name").string(username);
  w.key("displayName").string(ceremony.display_name);
  w.end_object();
  w.key("challenge").string(b64url(ceremony.challenge));
  w.key("pubKeyCredParams").begin_array();
  for (int64_t alg : kOfferedAlgs) {
    w.begin_object().key("type").string("public-key").key("alg").number(alg).end_object();
  }
  w.end_array();
  w.key("timeout").number(kDefaultTimeoutS * 1000);
  w.key("attestation").string("none");
  w.key("authenticatorSelection").begin_object();
  // Discoverable, so that the next sign-in can be usernameless.
  w.key("residentKey").string("required");
  w.key("requireResidentKey").boolean(true);
  w.key("userVerification").string(app.user_verification);
  w.end_object();
  // The same authenticator twice for one account is refused by the browser, not after the ceremony.
  w.key("excludeCredentials").begin_array();
  for (const auto& c : existing) {
    w.begin_object().key("type").string("public-key").key("id").string(b64url(c.credential_id)).end_object();
  }
  w.end_array();
  w.key("extensions").begin_object().key("credProps").boolean(true).end_object();
  w.end_object();
  *ceremony_id = ceremony.id;
  const std::string id = ceremony.id;
  SIGIL_TRY(ceremonies_.put(id, std::move(ceremony), kDefaultTimeoutS * 1000 + kGraceMs));
  return std::move(w).str();
}

Result<std::string> WebAuthn::hosted_finish_registration(const store::App& app, const std::string& ceremony_id,
                                                         const store::User& user, bool user_created,
                                                         std::string_view credential_json) {
  auto ceremony = ceremonies_.take(ceremony_id);
  if (!ceremony || !ceremony->hosted || !ceremony->registration || ceremony->app_id != app.id) {
    return bad_attestation("Unknown, expired or used WebAuthn session");
  }
  if (credential_json.size() > kMaxDecodedResult) return invalid_argument("credential is too large");
  EncodedResult result;
  SIGIL_ASSIGN_OR_RETURN(result.credential, parse_credential_json(credential_json));
  if (result.credential.attestation_object.empty()) return bad_attestation("The result is not an attestation");
  const webauthn::RelyingParty rp = hosted_relying_party(app);
  std::string credential_id;
  SIGIL_TRY(finish_registration(auth::Principal{}, app, user, user_created, result, *ceremony, "", &rp,
                                &credential_id));
  return credential_id;
}

std::string WebAuthn::hosted_token_key(std::string_view token) const {
  return b64url(crypto::hmac_sha256(ctx_.otp_key, as_bytes("hosted-registration\n" + std::string(token))));
}

std::optional<WebAuthn::HostedRegistration> WebAuthn::peek_hosted_registration(std::string_view token) {
  if (token.empty() || token.size() > 128) return std::nullopt;
  std::optional<HostedRegistration> out;
  hosted_.update(hosted_token_key(token), [&](HostedRegistration& h, int64_t) {
    out = h;
    return true;
  });
  return out;
}

std::optional<WebAuthn::HostedRegistration> WebAuthn::take_hosted_registration(std::string_view token) {
  if (token.empty() || token.size() > 128) return std::nullopt;
  return hosted_.take(hosted_token_key(token));
}


Result<std::string> WebAuthn::delete_credential(const auth::Principal& caller, std::string_view id) {
  SIGIL_TRY(require_user(caller));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of(ctx_, caller));
  auto raw = crypto::base64_any_decode(id);
  if (!raw || raw->empty() || raw->size() > webauthn::kMaxCredentialIdBytes) {
    return make_error(ErrorCode::kNotFound, "Credential not found");
  }
  SIGIL_ASSIGN_OR_RETURN(bool deleted, ctx_.store.delete_webauthn_credential(app.id, caller.user_id, *raw));
  if (!deleted) return make_error(ErrorCode::kNotFound, "Credential not found");
  return std::string(R"({"message":"Credential deleted"})");
}

}  // namespace sigil::service
