#include "api/auth/tokens.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <simdjson.h>

#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::auth {
namespace {

std::unexpected<Error> invalid_token(std::string reason = {}) {
  return make_error(ErrorCode::kUnauthenticated, "Invalid token", std::move(reason));
}
std::unexpected<Error> invalid_grant(std::string description) {
  return make_error(ErrorCode::kInvalidArgument, std::move(description), "invalid_grant");
}

Bytes hash_refresh_token(std::string_view token) {
  auto d = crypto::sha256(as_bytes(token));
  return Bytes(d.begin(), d.end());
}

void write_string_array(JsonWriter& w, const std::vector<std::string>& v) {
  w.begin_array();
  for (const auto& s : v) w.string(s);
  w.end_array();
}

// Reads a file fully; nullopt if absent.
std::optional<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Reads the claims we rely on from a verified access token's payload.
struct AccessClaims {
  std::string sub, client_id, app_id, tid, sid, aud;
  int64_t exp = 0;
};
Result<AccessClaims> read_access_claims(const std::string& payload) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(payload);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return invalid_token("payload");
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return invalid_token("payload");
  AccessClaims c;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return invalid_token("payload");
    std::string* dst = nullptr;
    if (key == "sub") dst = &c.sub;
    else if (key == "client_id") dst = &c.client_id;
    else if (key == "app_id") dst = &c.app_id;
    else if (key == "tid") dst = &c.tid;
    else if (key == "sid") dst = &c.sid;
    else if (key == "aud") dst = &c.aud;
    if (key == "exp") {
      double exp = 0;
      if (field.value().get_double().get(exp)) return invalid_token("claim type");
      c.exp = static_cast<int64_t>(exp);
      continue;
    }
    if (dst == nullptr) continue;
    std::string_view v;
    if (field.value().get_string().get(v)) return invalid_token("claim type");
    *dst = std::string(v);
  }
  if (c.sub.empty() || c.client_id.empty() || c.app_id.empty()) return invalid_token("claims missing");
  return c;
}

}  // namespace

Result<Bytes> load_or_create_kek(const std::string& data_dir) {
  if (const char* env = std::getenv("SIGIL_KEK"); env != nullptr && *env != '\0') {
    auto kek = crypto::base64_decode(env);
    if (!kek || kek->size() != 32) {
      return make_error(ErrorCode::kUnavailable, "SIGIL_KEK must be base64 of 32 bytes");
    }
    return *kek;
  }
  const std::string path = data_dir + "/kek";
  if (auto text = read_file(path)) {
    auto kek = crypto::base64_decode(trim(*text));
    if (!kek || kek->size() != 32) {
      return make_error(ErrorCode::kUnavailable, fmt::format("{} is not base64 of 32 bytes", path));
    }
    return *kek;
  }
  Bytes kek = crypto::random_bytes(32);
  const std::string encoded = crypto::base64_encode(kek) + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  }
  const bool ok = ::write(fd, encoded.data(), encoded.size()) == static_cast<ssize_t>(encoded.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return make_error(ErrorCode::kUnavailable, fmt::format("cannot write {}", path));
  return kek;
}

Result<std::shared_ptr<const KeySet>> load_or_create_signing_keys(store::Store& store, ByteView kek,
                                                                 const Clock& clock) {
  SIGIL_ASSIGN_OR_RETURN(auto rows, store.list_signing_keys());
  if (rows.empty()) {
    SIGIL_ASSIGN_OR_RETURN(auto key, crypto::SigningKey::generate_p256());
    store::SigningKeyRow row;
    row.kid = crypto::random_token(12);
    row.alg = "ES256";
    Bytes pkcs8 = key.pkcs8_der();
    row.sealed_private = crypto::seal(kek, pkcs8, as_bytes(row.kid));
    crypto::wipe(pkcs8);
    row.created_at = clock.now_s();
    SIGIL_TRY(store.insert_signing_key(row));
    SIGIL_ASSIGN_OR_RETURN(rows, store.list_signing_keys());
  }
  std::vector<JwtKey> keys;
  // Newest active key signs; retired keys still verify tokens they signed until those expire.
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.created_at > b.created_at; });
  for (const auto& row : rows) {
    auto pkcs8 = crypto::open(kek, row.sealed_private, as_bytes(row.kid));
    if (!pkcs8) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("signing key {} does not open with this key-encryption key", row.kid));
    }
    auto key = crypto::SigningKey::from_pkcs8_der(*pkcs8);
    crypto::wipe(*pkcs8);
    if (!key) return make_error(ErrorCode::kUnavailable, "stored signing key is corrupt");
    keys.push_back(JwtKey{row.kid, std::move(*key), row.retired_at == 0});
  }
  return std::make_shared<const KeySet>(std::move(keys));
}

TokenService::TokenService(store::Store& store, const Clock& clock, AuthConfig config,
                           std::shared_ptr<const KeySet> keys)
    : store_(store), clock_(clock), config_(std::move(config)), keys_(std::move(keys)), verified_(clock, 100'000) {}

Result<store::Client> TokenService::authenticate_client(std::string_view client_id,
                                                        std::string_view client_secret) {
  auto fail = [] { return make_error(ErrorCode::kUnauthenticated, "Invalid client credentials",
                                     "invalid_client"); };
  if (client_id.empty() || client_id.size() > 150 || client_secret.size() > 256) return fail();
  SIGIL_ASSIGN_OR_RETURN(auto client, store_.find_client(std::string(client_id)));
  // Hash even when the client is unknown, so both failures take the same time.
  const auto presented = crypto::sha256(as_bytes(client_secret));
  if (!client) return fail();
  if (client->public_client) {
    // No secret to check; a secret sent anyway means a confused client: refuse rather than ignore it.
    if (!client_secret.empty()) return fail();
    return std::move(*client);
  }
  if (!crypto::ct_equal(presented, client->secret_hash)) return fail();
  return std::move(*client);
}

Result<std::string> TokenService::resolve_audience(const store::App& app, std::string_view resource) const {
  if (resource.empty()) return config_.default_audience;
  for (const auto& r : app.resources) {
    if (r == resource) return r;
  }
  return invalid_argument("Invalid resource", "invalid_resource");
}

Result<TokenSet> TokenService::issue_client_token(const store::Client& client, const store::App& app,
                                                  std::string_view resource, std::string_view scope) {
  SIGIL_ASSIGN_OR_RETURN(std::string aud, resolve_audience(app, resource));
  const int64_t now = clock_.now_s();
  // Every client holds exactly these permissions (API.md 0.2); a request may narrow them, never widen.
  const std::string allowed[] = {"apps:execute", fmt::format("{}:execute", app.id), "auth:execute"};
  std::string granted;
  if (scope.empty()) {
    granted = fmt::format("{} {} {}", allowed[0], allowed[1], allowed[2]);
  } else {
    size_t pos = 0;
    while (pos < scope.size()) {
      size_t end = scope.find(' ', pos);
      if (end == std::string_view::npos) end = scope.size();
      std::string_view item = scope.substr(pos, end - pos);
      pos = end + 1;
      if (item.empty()) continue;
      if (std::find(std::begin(allowed), std::end(allowed), item) == std::end(allowed)) {
        return invalid_argument("Requested scope is not granted to this client", "invalid_scope");
      }
      if (!granted.empty()) granted += ' ';
      granted += item;
    }
    if (granted.empty()) return invalid_argument("Requested scope is empty", "invalid_scope");
  }
  JsonWriter w;
  w.begin_object();
  w.key("iss").string(config_.issuer);
  w.key("sub").string(client.client_id);
  w.key("aud").string(aud);
  w.key("iat").number(now);
  w.key("exp").number(now + config_.access_ttl_s);
  w.key("jti").string(crypto::random_token(16));
  w.key("scope").string(granted);
  w.key("roles").begin_array().end_array();
  w.key("client_id").string(client.client_id);
  w.key("app_name").string(app.name);
  w.key("app_id").string(app.id);
  w.key("tid").string(app.tenant_id);
  w.end_object();
  const JwtKey* key = keys_->signing_key();
  if (key == nullptr) return internal_error();
  SIGIL_ASSIGN_OR_RETURN(std::string jwt, sign_jwt(*key, "at+jwt", w.str()));
  TokenSet out;
  out.access_token = std::move(jwt);
  out.scope = std::move(granted);
  out.expires_in = config_.access_ttl_s;
  return out;
}

Result<TokenSet> TokenService::sign_user_tokens(const store::App& app, const std::string& client_id,
                                                const store::User& user, const store::Session& session,
                                                const std::string& audience, const std::string& scope,
                                                const LoginRequest* login, std::string refresh_token) {
  const JwtKey* key = keys_->signing_key();
  if (key == nullptr) return internal_error();
  const int64_t now = clock_.now_s();

  JsonWriter at;
  at.begin_object();
  at.key("iss").string(config_.issuer);
  at.key("sub").string(user.id);
  at.key("aud").string(audience);
  at.key("iat").number(now);
  at.key("exp").number(now + config_.access_ttl_s);
  at.key("jti").string(crypto::random_token(16));
  at.key("scope").string(scope);
  at.key("roles").begin_array().end_array();
  at.key("tid").string(app.tenant_id);
  at.key("client_id").string(client_id);
  at.key("app_id").string(app.id);
  at.key("sid").string(session.id);
  at.key("auth_time").number(session.auth_time);
  at.key("amr");
  write_string_array(at, session.amr);
  at.end_object();
  SIGIL_ASSIGN_OR_RETURN(std::string access, sign_jwt(*key, "at+jwt", at.str()));
  // OIDC Core 3.1.3.6: at_hash = base64url of the left half of SHA-256 over the access token's ASCII.
  const auto access_digest = crypto::sha256(as_bytes(access));
  const std::string at_hash = crypto::base64url_encode(ByteView(access_digest.data(), access_digest.size() / 2));

  JsonWriter id;
  id.begin_object();
  id.key("iss").string(config_.issuer);
  id.key("sub").string(user.id);
  id.key("aud").string(client_id);
  id.key("iat").number(now);
  id.key("exp").number(now + config_.access_ttl_s);
  id.key("tid").string(app.tenant_id);
  id.key("sid").string(session.id);
  id.key("auth_time").number(session.auth_time);
  id.key("at_hash").string(at_hash);
  id.key("amr");
  write_string_array(id, session.amr);
  // acr lists what was verified about the user (API.md 1.4); omitted when nothing was.
  if (user.email_verified) id.key("acr").string("urn:sigil:verified:email");
  if (login != nullptr) {
    if (!login->nonce.empty()) id.key("nonce").string(login->nonce);
    if (!login->approval_data_json.empty()) id.key("approval_data").raw(login->approval_data_json);
    if (login->new_user) id.key("new_user").boolean(true);
    for (const auto& [name, json] : login->extra_id_claims) id.key(name).raw(json);
    // Requested claims (API.md 1.4): those sigil holds a value for; others are omitted.
    if (!login->claims_json.empty()) {
      simdjson::ondemand::parser parser;
      simdjson::padded_string padded(login->claims_json);
      simdjson::ondemand::document doc;
      simdjson::ondemand::object idt;
      if (!parser.iterate(padded).get(doc) && !doc["id_token"].get_object().get(idt)) {
        for (auto field : idt) {
          std::string_view name;
          if (field.unescaped_key().get(name)) break;
          if (name == "email" && !user.email.empty()) id.key("email").string(user.email);
          else if (name == "email_verified") id.key("email_verified").boolean(user.email_verified);
          else if (name == "phone_number" && !user.phone.empty()) id.key("phone_number").string(user.phone);
          else if (name == "roles") id.key("roles").begin_array().end_array();
        }
      }
    }
  }
  id.end_object();
  SIGIL_ASSIGN_OR_RETURN(std::string id_token, sign_jwt(*key, "JWT", id.str()));

  TokenSet out;
  out.access_token = std::move(access);
  out.id_token = std::move(id_token);
  out.refresh_token = std::move(refresh_token);
  out.scope = scope;
  out.session_id = session.id;
  out.expires_in = config_.access_ttl_s;
  return out;
}

Result<TokenSet> TokenService::login(const LoginRequest& req) {
  SIGIL_ASSIGN_OR_RETURN(PreparedLogin prepared, prepare_login(req));
  // Durable before any token leaves (DESIGN.md durability rule).
  auto committed = store_.commit_login(prepared.write);
  if (!committed && committed.error().code == ErrorCode::kNotFound) {
    // The joined session ended between the check and the commit.
    return invalid_argument("Invalid session", "auth_invalid_session");
  }
  SIGIL_TRY(committed);
  return std::move(prepared.tokens);
}

void TokenService::login_async(const LoginRequest& req, std::function<void(Result<TokenSet>)> done) {
  auto prepared = prepare_login(req);
  if (!prepared) return done(std::unexpected(std::move(prepared).error()));
  // The tokens are signed now but handed out only from the store's callback, after the commit.
  store_.commit_login_async(
      std::move(prepared->write),
      [tokens = std::move(prepared->tokens), done = std::move(done)](Result<void> committed) mutable {
        if (!committed && committed.error().code == ErrorCode::kNotFound) {
          return done(invalid_argument("Invalid session", "auth_invalid_session"));
        }
        if (!committed) return done(std::unexpected(std::move(committed).error()));
        done(std::move(tokens));
      });
}

Result<TokenService::PreparedLogin> TokenService::prepare_login(const LoginRequest& req) {
  if (req.app == nullptr) return internal_error();
  const store::App& app = *req.app;
  SIGIL_ASSIGN_OR_RETURN(std::string audience, resolve_audience(app, req.resource));
  const int64_t now = clock_.now_s();

  const int64_t auth_time = req.auth_time > 0 && req.auth_time <= now ? req.auth_time : now;
  store::Session session;
  store::LoginWrite write;
  write.amr = {req.amr};
  write.auth_time = auth_time;
  write.used_at = now;
  if (!req.join_session_id.empty()) {
    SIGIL_ASSIGN_OR_RETURN(auto existing, store_.find_session(req.join_session_id));
    if (!existing || existing->ended_at != 0 || existing->app_id != app.id ||
        existing->user_id != req.user.id) {
      return invalid_argument("Invalid session", "auth_invalid_session");
    }
    session = std::move(*existing);
    if (std::find(session.amr.begin(), session.amr.end(), req.amr) == session.amr.end()) {
      session.amr.push_back(req.amr);
    }
    // Two different methods in one session make it multi-factor (API.md 0.5).
    size_t methods = std::count_if(session.amr.begin(), session.amr.end(),
                                   [](const std::string& m) { return m != "mfa"; });
    if (methods >= 2 && std::find(session.amr.begin(), session.amr.end(), "mfa") == session.amr.end()) {
      session.amr.push_back("mfa");
    }
    session.auth_time = auth_time;
    write.join_session_id = session.id;
    write.amr = session.amr;
  } else {
    session.id = crypto::random_token(16);
    session.app_id = app.id;
    session.user_id = req.user.id;
    session.client_id = req.client_id;
    session.created_at = now;
    session.auth_time = auth_time;
    session.amr = {req.amr};
    session.client_attributes_json =
        req.client_attributes_json.empty() ? "{}" : req.client_attributes_json;
    write.new_session = session;
  }

  std::string refresh = crypto::random_token(32);
  store::RefreshToken rt;
  rt.token_hash = hash_refresh_token(refresh);
  rt.family_id = crypto::random_token(16);
  rt.session_id = session.id;
  rt.client_id = req.client_id;
  rt.app_id = app.id;
  rt.user_id = req.user.id;
  rt.scope = "openid offline_access";
  rt.resource = req.resource;
  rt.created_at = now;
  rt.family_expires_at = now + config_.refresh_family_max_s;
  rt.expires_at = std::min(now + config_.refresh_ttl_s, rt.family_expires_at);
  write.refresh_token = rt;
  if (!req.mobile_key_id.empty()) {
    write.mobile_app_id = app.id;
    write.mobile_key_id = req.mobile_key_id;
  }
  write.webauthn_credential_id = req.webauthn_credential_id;
  write.webauthn_sign_count = req.webauthn_sign_count;
  write.webauthn_backup_state = req.webauthn_backup_state;
  SIGIL_ASSIGN_OR_RETURN(TokenSet tokens, sign_user_tokens(app, req.client_id, req.user, session, audience,
                                                           rt.scope, &req, std::move(refresh)));
  return PreparedLogin{std::move(write), std::move(tokens)};
}

Result<TokenSet> TokenService::refresh(const store::Client& client, std::string_view refresh_token) {
  if (refresh_token.empty() || refresh_token.size() > 512) return invalid_grant("Invalid refresh token");
  const Bytes hash = hash_refresh_token(refresh_token);
  SIGIL_ASSIGN_OR_RETURN(auto found, store_.find_refresh_token(hash));
  if (!found || found->client_id != client.client_id) return invalid_grant("Invalid refresh token");
  store::RefreshToken old = std::move(*found);
  const int64_t now = clock_.now_s();
  if (old.revoked_at != 0) return invalid_grant("Refresh token revoked");
  if (old.rotated_at != 0) {
    // A rotated token presented again: treat as theft (API.md 1.5).
    SIGIL_TRY(store_.revoke_refresh_family(old.family_id, now));
    return invalid_grant("Refresh token reuse detected; the session was revoked");
  }
  if (old.expires_at <= now) return invalid_grant("Refresh token expired");
  SIGIL_ASSIGN_OR_RETURN(auto session, store_.find_session(old.session_id));
  if (!session || session->ended_at != 0) return invalid_grant("Session ended");
  SIGIL_ASSIGN_OR_RETURN(auto app, store_.find_app(old.app_id));
  SIGIL_ASSIGN_OR_RETURN(auto user, store_.find_user(old.user_id));
  if (!app || !user) return invalid_grant("Invalid refresh token");
  SIGIL_ASSIGN_OR_RETURN(std::string audience, resolve_audience(*app, old.resource));

  std::string next_token = crypto::random_token(32);
  store::RefreshToken next = old;
  next.token_hash = hash_refresh_token(next_token);
  next.created_at = now;
  next.expires_at = std::min(now + config_.refresh_ttl_s, old.family_expires_at);
  next.rotated_at = 0;
  next.revoked_at = 0;
  SIGIL_ASSIGN_OR_RETURN(bool rotated, store_.rotate_refresh_token(old.token_hash, next, now));
  if (!rotated) {
    // Lost a race with another use of the same token: that is reuse too.
    SIGIL_TRY(store_.revoke_refresh_family(old.family_id, now));
    return invalid_grant("Refresh token reuse detected; the session was revoked");
  }
  return sign_user_tokens(*app, client.client_id, *user, *session, audience, old.scope, nullptr,
                          std::move(next_token));
}

Result<Principal> TokenService::authenticate_bearer(std::string_view authorization_header) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (authorization_header.size() <= kPrefix.size() || authorization_header.size() > 8192) {
    return invalid_token("missing");
  }
  // The scheme is case-insensitive (RFC 7235).
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization_header[i])) !=
        std::tolower(static_cast<unsigned char>(kPrefix[i]))) {
      return invalid_token("scheme");
    }
  }
  std::string_view token = authorization_header.substr(kPrefix.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  // A token that verified once is the same string until it expires: skip the ES256 verify for it (the
  // whole token is the cache key, hashed; the session check below is never cached).
  const auto digest = crypto::sha256(as_bytes(token));
  const std::string cache_key(reinterpret_cast<const char*>(digest.data()), digest.size());
  Principal p;
  if (auto cached = verified_.peek(cache_key)) {
    p = std::move(*cached);
  } else {
    SIGIL_ASSIGN_OR_RETURN(VerifiedJwt jwt,
                           verify_jwt(*keys_, token, config_.issuer, "at+jwt", clock_.now_s()));
    SIGIL_ASSIGN_OR_RETURN(AccessClaims claims, read_access_claims(jwt.payload_json()));
    // Only tokens minted for sigil's own API authorize calls to it; a token for another resource server
    // (API.md 0.5 `resource`) must not be replayable here.
    if (claims.aud != config_.default_audience) return invalid_token("audience");
    p.client_id = claims.client_id;
    p.app_id = claims.app_id;
    p.tenant_id = claims.tid;
    if (claims.sid.empty()) {
      if (claims.sub != claims.client_id) return invalid_token("client token sub");
      p.kind = Principal::Kind::kClient;
    } else {
      p.kind = Principal::Kind::kUser;
      p.user_id = claims.sub;
      p.session_id = claims.sid;
    }
    const int64_t ttl_ms = claims.exp * 1000 - clock_.now_ms();
    if (ttl_ms > 0) (void)verified_.put(cache_key, p, ttl_ms);  // a full cache only costs a verify
  }
  if (!p.is_user()) return p;
  SIGIL_ASSIGN_OR_RETURN(auto session, store_.find_session(p.session_id));
  if (!session || session->ended_at != 0 || session->user_id != p.user_id) {
    return invalid_token("session ended");
  }
  return p;
}

Result<int> TokenService::logout(const Principal& user) {
  if (!user.is_user()) return make_error(ErrorCode::kPermissionDenied, "A user access token is required");
  SIGIL_ASSIGN_OR_RETURN(bool ended, store_.end_session(user.session_id, clock_.now_s()));
  return ended ? 1 : 0;
}

Result<void> TokenService::revoke_session(const std::string& session_id) {
  SIGIL_ASSIGN_OR_RETURN(bool ended, store_.end_session(session_id, clock_.now_s()));
  (void)ended;
  return {};
}

}  // namespace sigil::auth
