#include "api/service/mobile_biometrics.h"

#include <fmt/format.h>

#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"
#include "engine/mobile/mobile_verify.h"

namespace sigil::service {
namespace {

constexpr int64_t kDefaultTimeoutS = 300;
constexpr int kMaxKeysPerUser = 10;
constexpr int64_t kReplayWindowMs = 24LL * 3600 * 1000;

std::unexpected<Error> auth_failed() {
  return make_error(ErrorCode::kUnauthenticated, "Authentication failed", "auth_invalid_signature");
}
std::unexpected<Error> user_not_found() { return make_error(ErrorCode::kNotFound, "User not found"); }

// The challenge's context: what /start bound it to. Fields never contain '\n' (validated).
struct ChallengeContext {
  std::string app_id, user_id, device_id, approval_data_json;
  [[nodiscard]] std::string encode() const {
    return fmt::format("{}\n{}\n{}\n{}", app_id, user_id, device_id, approval_data_json);
  }
  static std::optional<ChallengeContext> decode(const std::string& s) {
    ChallengeContext c;
    std::string* parts[] = {&c.app_id, &c.user_id, &c.device_id};
    size_t pos = 0;
    for (std::string* part : parts) {
      const size_t nl = s.find('\n', pos);
      if (nl == std::string::npos) return std::nullopt;
      *part = s.substr(pos, nl - pos);
      pos = nl + 1;
    }
    c.approval_data_json = s.substr(pos);
    return c;
  }
};

bool has_newline(std::string_view s) { return s.find('\n') != std::string_view::npos; }

}  // namespace

std::string token_response_json(const auth::TokenSet& t) {
  JsonWriter w;
  w.begin_object();
  w.key("access_token").string(t.access_token);
  w.key("id_token").string(t.id_token);
  w.key("refresh_token").string(t.refresh_token);
  w.key("token_type").string("Bearer");
  w.key("expires_in").number(t.expires_in);
  w.key("session_id").string(t.session_id);
  w.end_object();
  return std::move(w).str();
}

MobileBiometrics::MobileBiometrics(ServiceContext& ctx)
    : ctx_(ctx), client_challenge_replay_(ctx.clock, 1'000'000), keys_(1'000'000) {}

Result<std::string> MobileBiometrics::start(const auth::Principal& caller, const Params& in) {
  SIGIL_TRY(require_client(caller));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of(ctx_, caller));
  SIGIL_ASSIGN_OR_RETURN(auto identifier, in.get_string("identifier", 320));
  SIGIL_ASSIGN_OR_RETURN(auto identifier_type, in.get_string("identifier_type", 32));
  SIGIL_ASSIGN_OR_RETURN(auto user_id, in.get_string("user_id", 128));
  SIGIL_ASSIGN_OR_RETURN(auto device_id, in.get_string("device_id", 256));
  SIGIL_ASSIGN_OR_RETURN(auto approval, in.get_object("approval_data"));
  SIGIL_ASSIGN_OR_RETURN(auto timeout, in.get_int("timeout"));

  const bool form_a = identifier.has_value() || identifier_type.has_value();
  if (form_a == user_id.has_value()) {
    return invalid_argument("Give either identifier and identifier_type, or user_id");
  }
  if (form_a && (!identifier || !identifier_type || identifier->empty())) {
    return invalid_argument("identifier and identifier_type go together", "invalid_request");
  }
  const int64_t timeout_s = timeout.value_or(kDefaultTimeoutS);
  if (timeout_s < 30 || timeout_s > 600) return invalid_argument("timeout must be 30..600 seconds");
  if (device_id && has_newline(*device_id)) return invalid_argument("Invalid device_id");

  std::optional<store::User> user;
  if (user_id) {
    SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user(*user_id));
  } else if (*identifier_type == "email") {
    SIGIL_ASSIGN_OR_RETURN(std::string email, normalize_email(*identifier));
    SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user_by_email(app.tenant_id, email));
  } else if (*identifier_type == "phone_number") {
    SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user_by_phone(app.tenant_id, *identifier));
  } else if (*identifier_type == "user_id") {
    SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user(*identifier));
  } else if (*identifier_type == "username") {
    // Usernames belong to WebAuthn credentials (API.md 3); no mobile user is found by one yet.
    user.reset();
  } else {
    Error e{ErrorCode::kInvalidArgument, "Unknown identifier_type", "user_unknown_identifier_type",
            "user_unknown_identifier_type"};
    return std::unexpected(std::move(e));
  }
  if (!user || user->tenant_id != app.tenant_id) return user_not_found();
  SIGIL_ASSIGN_OR_RETURN(int keys, ctx_.store.count_mobile_keys(app.id, user->id));
  if (keys == 0) {
    return make_error(ErrorCode::kNotFound, "No registered key for this user",
                      "auth_no_registered_authenticator");
  }

  ChallengeContext context{app.id, user->id, device_id.value_or(""), ""};
  challenge::Challenge value;
  if (approval) {
    SIGIL_ASSIGN_OR_RETURN(context.approval_data_json, canonical_approval_data(*approval));
    // challenge = SHA-256(nonce32 || canonical_json(approval_data)) binds the transaction (API.md 2.1).
    Bytes material = crypto::random_bytes(32);
    material.insert(material.end(), context.approval_data_json.begin(), context.approval_data_json.end());
    value = crypto::sha256(material);
    SIGIL_TRY(ctx_.challenges.insert(value, context.encode(), timeout_s * 1000));
  } else {
    SIGIL_ASSIGN_OR_RETURN(value, ctx_.challenges.issue(context.encode(), timeout_s * 1000));
  }
  JsonWriter w;
  w.begin_object().key("challenge").string(crypto::base64url_encode(value)).end_object();
  return std::move(w).str();
}

Result<std::string> complete_login(auth::TokenService& tokens, Result<std::unique_ptr<PreparedLogin>> prepared) {
  if (!prepared) return std::unexpected(std::move(prepared).error());
  SIGIL_ASSIGN_OR_RETURN(auth::TokenSet issued, tokens.login((*prepared)->login));
  return token_response_json(issued);
}

void complete_login_async(auth::TokenService& tokens, Result<std::unique_ptr<PreparedLogin>> prepared,
                          LoginDone done) {
  if (!prepared) return done(std::unexpected(std::move(prepared).error()));
  tokens.login_async((*prepared)->login, [done = std::move(done)](Result<auth::TokenSet> issued) {
    if (!issued) return done(std::unexpected(std::move(issued).error()));
    done(token_response_json(*issued));
  });
}

Result<std::string> MobileBiometrics::authenticate(const auth::Principal& caller, const Params& in) {
  return complete_login(ctx_.tokens, prepare_authentication(caller, in));
}

void MobileBiometrics::authenticate_async(const auth::Principal& caller, const Params& in, LoginDone done) {
  complete_login_async(ctx_.tokens, prepare_authentication(caller, in), std::move(done));
}

Result<std::unique_ptr<PreparedLogin>> MobileBiometrics::prepare_authentication(const auth::Principal& caller,
                                                                                 const Params& in) {
  SIGIL_TRY(require_client(caller));
  auto out = std::make_unique<PreparedLogin>();
  SIGIL_ASSIGN_OR_RETURN(out->app, app_of(ctx_, caller));
  const store::App& app = out->app;
  SIGIL_ASSIGN_OR_RETURN(std::string user_id, in.require_string("user_id", 128));
  SIGIL_ASSIGN_OR_RETURN(std::string key_id, in.require_string("key_id", 256));
  SIGIL_ASSIGN_OR_RETURN(std::string challenge, in.require_string("challenge", 512));
  SIGIL_ASSIGN_OR_RETURN(std::string signature, in.require_string("signature", 2048));
  SIGIL_ASSIGN_OR_RETURN(auto resource, in.get_string("resource", 2048));
  SIGIL_ASSIGN_OR_RETURN(auto claims, in.get_object("claims"));
  SIGIL_ASSIGN_OR_RETURN(auto org_id, in.get_string("org_id", 128));
  SIGIL_ASSIGN_OR_RETURN(auto attributes, in.get_object("client_attributes"));
  SIGIL_ASSIGN_OR_RETURN(auto session_id, in.get_string("session_id", 128));
  SIGIL_ASSIGN_OR_RETURN(auto device_id, in.get_string("device_id", 256));
  std::string resource_s = resource.value_or("");
  SIGIL_TRY(ctx_.tokens.resolve_audience(app, resource_s));
  std::string claims_json, attributes_json;
  if (claims) {
    SIGIL_ASSIGN_OR_RETURN(claims_json, validate_object_json(*claims, "claims"));
  }
  if (attributes) {
    SIGIL_ASSIGN_OR_RETURN(attributes_json, validate_object_json(*attributes, "client_attributes"));
  }
  if (org_id) {
    // Organizations (B2B) are not modelled yet, so no user is a member of one (API.md 0.5: 403).
    return make_error(ErrorCode::kPermissionDenied, "User is not a member of the organization");
  }

  SIGIL_ASSIGN_OR_RETURN(auto user, ctx_.store.find_user(user_id));
  if (!user || user->tenant_id != app.tenant_id) return user_not_found();

  // Consume first: a /start challenge allows one attempt, whatever the outcome.
  std::optional<ChallengeContext> started;
  auto decoded = crypto::base64url_decode(challenge);
  if (decoded && decoded->size() == 32) {
    if (auto context_text = ctx_.challenges.consume(*decoded)) {
      started = ChallengeContext::decode(*context_text);
      if (!started) return auth_failed();
    }
  }
  if (started && (started->app_id != app.id || started->user_id != user->id ||
                  (!started->device_id.empty() && started->device_id != device_id.value_or("")))) {
    return auth_failed();
  }
  // Legacy clients that never call /start (API.md 2.2): only when the app allows it, and never for a value
  // in the server's own format — a consumed or expired /start challenge must not come back this way.
  const bool server_format = decoded && decoded->size() == 32;
  if (!started && (!app.allow_client_challenges || challenge.size() < 16 || server_format)) {
    return auth_failed();
  }

  SIGIL_ASSIGN_OR_RETURN(auto key, ctx_.store.find_mobile_key(app.id, key_id));
  if (!key || key->user_id != user->id) return auth_failed();
  if (!started) {
    // A client-made challenge is accepted once per key in 24 h; claimed before the signature check so
    // two concurrent replays cannot both pass.
    const std::string replay_key = crypto::base64url_encode(
        crypto::sha256(as_bytes(fmt::format("{}\n{}\n{}", app.id, key_id, challenge))));
    SIGIL_ASSIGN_OR_RETURN(bool fresh, client_challenge_replay_.put_if_absent(replay_key, true, kReplayWindowMs));
    if (!fresh) return auth_failed();
  }
  const auto spki_hash = crypto::sha256(key->spki_der);
  const std::string cache_key(reinterpret_cast<const char*>(spki_hash.data()), spki_hash.size());
  std::shared_ptr<const crypto::PublicKey> public_key = keys_.find(cache_key);
  if (!public_key) {
    auto parsed = crypto::PublicKey::from_spki_der(key->spki_der);
    if (!parsed) return internal_error("stored device key does not parse");
    public_key = std::make_shared<const crypto::PublicKey>(std::move(*parsed));
    keys_.put(cache_key, public_key);
  }
  if (!mobile::verify_device_signature(*public_key, challenge, signature)) return auth_failed();

  auth::LoginRequest& login = out->login;
  login.app = &app;
  login.client_id = caller.client_id;
  login.user = std::move(*user);
  login.amr = "mobile_biometrics";
  login.join_session_id = session_id.value_or("");
  login.client_attributes_json = attributes_json;
  login.resource = resource_s;
  login.approval_data_json = started ? started->approval_data_json : std::string();
  login.claims_json = claims_json;
  login.mobile_key_id = key_id;
  return out;
}

Result<std::string> MobileBiometrics::register_key(const auth::Principal& caller, const Params& in) {
  SIGIL_TRY(require_user(caller));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of(ctx_, caller));
  SIGIL_ASSIGN_OR_RETURN(std::string public_key, in.require_property("publicKey", mobile::kMaxEncodedKeyChars));
  SIGIL_ASSIGN_OR_RETURN(std::string key_id, in.require_property("publicKeyId", 256));
  SIGIL_ASSIGN_OR_RETURN(std::string os, in.require_property("os", 32));
  SIGIL_ASSIGN_OR_RETURN(auto encryption_type, in.get_string("encryptionType", 16));
  SIGIL_ASSIGN_OR_RETURN(auto device_id, in.get_string("device_id", 256));
  SIGIL_ASSIGN_OR_RETURN(auto display_name, in.get_string("displayName", 64));
  SIGIL_ASSIGN_OR_RETURN(auto challenge, in.get_string("challenge", 512));
  SIGIL_ASSIGN_OR_RETURN(auto attestation, in.get_string("attestation_encoded_result", 32 * 1024));

  SIGIL_ASSIGN_OR_RETURN(crypto::PublicKey key, mobile::parse_device_key(public_key, encryption_type));
  if (attestation) {
    // API.md 2.3: an attestation needs its challenge and must decode. Verifying Android key-attestation
    // chains comes with the attestation work (x5c, trust anchors); until then a decodable attestation
    // is accepted on the strength of the user token, exactly as a registration without one.
    if (!challenge || challenge->empty()) {
      return invalid_argument("attestation_encoded_result needs its challenge", "auth_invalid_attestation");
    }
    if (!crypto::base64_any_decode(*attestation)) {
      return invalid_argument("attestation_encoded_result does not decode", "auth_invalid_attestation");
    }
  }
  SIGIL_ASSIGN_OR_RETURN(int count, ctx_.store.count_mobile_keys(app.id, caller.user_id));
  if (count >= kMaxKeysPerUser) {
    return invalid_argument("The user has the maximum number of keys",
                            "auth_max_authenticators_count_exceeded");
  }
  store::MobileKey row;
  row.app_id = app.id;
  row.key_id = key_id;
  row.user_id = caller.user_id;
  row.spki_der = key.spki_der();
  row.key_type = std::string(mobile::key_type_name(key));
  row.os = os;
  row.device_id = device_id.value_or("");
  row.display_name = display_name.value_or("");
  row.created_at = ctx_.clock.now_s();
  auto inserted = ctx_.store.insert_mobile_key(row);
  if (!inserted) {
    if (inserted.error().code == ErrorCode::kConflict) {
      return make_error(ErrorCode::kConflict, "Key already registered");
    }
    return std::unexpected(inserted.error());
  }
  JsonWriter w;
  w.begin_object().key("message").string("Key registered").key("publicKeyId").string(key_id).end_object();
  return std::move(w).str();
}

Result<std::string> MobileBiometrics::delete_key(const auth::Principal& caller, const Params& in) {
  SIGIL_TRY(require_user(caller));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of(ctx_, caller));
  SIGIL_ASSIGN_OR_RETURN(std::string key_id, in.require_property("publicKeyId", 256));
  SIGIL_ASSIGN_OR_RETURN(bool deleted, ctx_.store.delete_mobile_key(app.id, caller.user_id, key_id));
  if (!deleted) return make_error(ErrorCode::kNotFound, "Key not found");
  return std::string(R"({"message":"Key deleted"})");
}

}  // namespace sigil::service
