#include "api/service/oidc.h"

#include <fmt/format.h>

#include "api/service/mobile_biometrics.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::service {
namespace {

constexpr int64_t kCodeTtlMs = 5 * 60 * 1000;
// Value of a redeemed-code entry whose code was presented again before its first redemption finished.
constexpr std::string_view kRedemptionReused = "!reused";

std::unexpected<Error> oauth_error(std::string code, std::string description) {
  ErrorCode status = code == "invalid_client" ? ErrorCode::kUnauthenticated : ErrorCode::kInvalidArgument;
  return make_error(status, std::move(description), std::move(code));
}

std::string code_key(std::string_view code) {
  return crypto::base64url_encode(crypto::sha256(as_bytes(code)));
}

// Decodes one application/x-www-form-urlencoded component (for Basic credentials).
std::optional<std::string> form_decode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

bool valid_pkce_text(std::string_view s) noexcept {
  if (s.size() < 43 || s.size() > 128) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~';
    if (!ok) return false;
  }
  return true;
}

bool pkce_s256_matches(std::string_view verifier, std::string_view challenge) noexcept {
  const std::string computed = crypto::base64url_encode(crypto::sha256(as_bytes(verifier)));
  return crypto::ct_equal(as_bytes(computed), as_bytes(challenge));
}

Result<std::pair<std::string, std::string>> parse_basic_credentials(std::string_view header) {
  constexpr std::string_view kPrefix = "Basic ";
  auto fail = [] { return oauth_error("invalid_client", "Invalid client credentials"); };
  if (header.size() <= kPrefix.size() || header.size() > 1024) return fail();
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(kPrefix[i]))) {
      return fail();
    }
  }
  auto decoded = crypto::base64_decode(header.substr(kPrefix.size()));
  if (!decoded) return fail();
  std::string_view text = as_chars(*decoded);
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return fail();
  auto id = form_decode(text.substr(0, colon));
  auto secret = form_decode(text.substr(colon + 1));
  if (!id || !secret) return fail();
  return std::make_pair(std::move(*id), std::move(*secret));
}

Oidc::Oidc(ServiceContext& ctx)
    : ctx_(ctx), codes_(ctx.clock, 1'000'000), redeemed_(ctx.clock, 1'000'000) {}

Result<std::string> Oidc::issue_code(PendingGrant grant) {
  std::string code = crypto::random_token(32);
  SIGIL_TRY(codes_.put(code_key(code), std::move(grant), kCodeTtlMs));
  return code;
}

Result<auth::TokenSet> Oidc::redeem(const PendingGrant& grant, bool* user_created) {
  SIGIL_ASSIGN_OR_RETURN(auto app, ctx_.store.find_app(grant.app_id));
  if (!app) return oauth_error("invalid_grant", "The application no longer exists");
  std::optional<store::User> user;
  if (!grant.user_id.empty()) {
    SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user(grant.user_id));
  } else if (!grant.email.empty()) {
    SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user_by_email(app->tenant_id, grant.email));
  }
  *user_created = false;
  if (!user) {
    if (!grant.create_new_user || grant.email.empty()) return oauth_error("invalid_grant", "User not found");
    // API.md 4.2: a user the flow said to create is created at exchange time.
    store::User u;
    u.id = crypto::random_token(16);
    u.tenant_id = app->tenant_id;
    u.email = grant.email;
    u.email_verified = true;
    u.created_at = ctx_.clock.now_s();
    auto created = ctx_.store.create_user(u);
    if (!created && created.error().code == ErrorCode::kConflict) {
      // Created concurrently by another exchange: use that user.
      SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user_by_email(app->tenant_id, grant.email));
      if (!user) return internal_error();
    } else {
      SIGIL_TRY(created);
      user = std::move(u);
      *user_created = true;
    }
  } else if (!grant.email.empty() && !user->email_verified) {
    SIGIL_TRY(ctx_.store.set_email_verified(user->id));
    user->email_verified = true;
  }
  auth::LoginRequest login;
  login.app = &*app;
  login.client_id = grant.client_id;
  login.user = std::move(*user);
  login.amr = grant.amr;
  login.resource = grant.resource;
  login.approval_data_json = grant.approval_data_json;
  login.claims_json = grant.claims_json;
  login.nonce = grant.nonce;
  login.client_attributes_json = grant.client_attributes_json;
  if (grant.new_user) *user_created = true;
  login.new_user = *user_created;
  login.auth_time = grant.auth_time;
  login.extra_id_claims = grant.extra_id_claims;
  if (!grant.browser_session.empty()) {
    // The code was minted by a browser session that has ended since (logout): nothing to redeem.
    SIGIL_ASSIGN_OR_RETURN(auto browser, ctx_.store.find_browser_session(grant.browser_session));
    if (!browser || browser->ended_at != 0) return oauth_error("invalid_grant", "The sign-in session has ended");
  }
  SIGIL_ASSIGN_OR_RETURN(auth::TokenSet tokens, ctx_.tokens.login(login));
  if (!grant.browser_session.empty()) SIGIL_TRY(ctx_.store.link_browser_session(grant.browser_session, tokens.session_id));
  return tokens;
}

Result<auth::TokenSet> Oidc::redeem_code(const store::Client& client, std::string_view code,
                                         std::string_view redirect_uri, bool check_redirect,
                                         std::string_view code_verifier, bool* user_created) {
  if (code.empty() || code.size() > 512) return oauth_error("invalid_grant", "Invalid code");
  const std::string key = code_key(code);
  auto grant = codes_.take(key);
  if (!grant) {
    // Reuse: revoke what the first redemption produced (RFC 6749 4.1.2). A reuse that arrives while the
    // first redemption is still committing marks it, and the first redemption revokes its own session.
    std::string session;
    const bool reused = redeemed_.update(key, [&](std::string& v, int64_t) {
      if (v.empty() || v == kRedemptionReused) v = kRedemptionReused;
      else session = v;
      return true;
    });
    if (!reused) return oauth_error("invalid_grant", "Invalid or expired code");
    if (!session.empty()) SIGIL_TRY(ctx_.tokens.revoke_session(session));
    return oauth_error("invalid_grant", "Code already used; the tokens it produced were revoked");
  }
  // Claimed: from here a second presentation of the code is detected as reuse.
  SIGIL_TRY(redeemed_.put(key, std::string(), kCodeTtlMs));
  if (grant->client_id != client.client_id) return oauth_error("invalid_grant", "Code was issued to another client");
  if (check_redirect && grant->redirect_uri != redirect_uri) {
    return oauth_error("invalid_grant", "redirect_uri does not match the authorization request");
  }
  // PKCE (RFC 7636 4.6). The code is used up either way: a wrong verifier gets no second try.
  if (!grant->code_challenge.empty()) {
    if (code_verifier.empty()) return oauth_error("invalid_grant", "code_verifier is required");
    if (!valid_pkce_text(code_verifier) || !pkce_s256_matches(code_verifier, grant->code_challenge)) {
      return oauth_error("invalid_grant", "code_verifier does not match the code_challenge");
    }
  } else if (!code_verifier.empty()) {
    return oauth_error("invalid_grant", "code_verifier sent for a code issued without code_challenge");
  } else if (client.public_client) {
    return oauth_error("invalid_grant", "Public clients must use PKCE");
  }
  SIGIL_ASSIGN_OR_RETURN(auth::TokenSet tokens, redeem(*grant, user_created));
  bool reused_meanwhile = false;
  redeemed_.update(key, [&](std::string& v, int64_t) {
    reused_meanwhile = v == kRedemptionReused;
    v = tokens.session_id;
    return true;
  });
  if (reused_meanwhile) {
    // The code was presented again while this redemption was committing. This redemption was first, so it
    // still answers (exactly one 200 per code), but what it produced is revoked at once, as for any reuse.
    SIGIL_TRY(ctx_.tokens.revoke_session(tokens.session_id));
  }
  return tokens;
}

Result<std::string> Oidc::token(const Params& in, std::string_view basic_authorization) {
  auto str = [&](std::string_view name, size_t max) -> Result<std::string> {
    auto v = in.get_string(name, max);
    if (!v) return oauth_error("invalid_request", fmt::format("'{}' is invalid", name));
    return v->value_or("");
  };
  SIGIL_ASSIGN_OR_RETURN(std::string grant_type, str("grant_type", 64));
  SIGIL_ASSIGN_OR_RETURN(std::string client_id, str("client_id", 150));
  SIGIL_ASSIGN_OR_RETURN(std::string client_secret, str("client_secret", 256));
  if (!basic_authorization.empty()) {
    SIGIL_ASSIGN_OR_RETURN(auto creds, parse_basic_credentials(basic_authorization));
    if (!client_id.empty() && client_id != creds.first) {
      return oauth_error("invalid_request", "client_id differs from the Basic credentials");
    }
    client_id = std::move(creds.first);
    client_secret = std::move(creds.second);
  }
  if (grant_type.empty()) return oauth_error("invalid_request", "grant_type is required");
  if (grant_type != "client_credentials" && grant_type != "authorization_code" &&
      grant_type != "refresh_token") {
    return oauth_error("unsupported_grant_type", "Unsupported grant_type");
  }
  if (client_id.empty()) return oauth_error("invalid_request", "client_id is required");
  SIGIL_ASSIGN_OR_RETURN(store::Client client, ctx_.tokens.authenticate_client(client_id, client_secret));
  SIGIL_ASSIGN_OR_RETURN(auto app, ctx_.store.find_app(client.app_id));
  if (!app) return oauth_error("invalid_client", "Invalid client credentials");

  auth::TokenSet tokens;
  if (client.public_client && grant_type == "client_credentials") {
    return oauth_error("unauthorized_client", "Public clients cannot use client_credentials");
  }
  if (grant_type == "client_credentials") {
    SIGIL_ASSIGN_OR_RETURN(std::string resource, str("resource", 2048));
    SIGIL_ASSIGN_OR_RETURN(std::string scope, str("scope", 1024));
    auto issued = ctx_.tokens.issue_client_token(client, *app, resource, scope);
    if (!issued && issued.error().ts_error_code == "invalid_resource") {
      return oauth_error("invalid_target", "resource is not configured for this application");
    }
    SIGIL_ASSIGN_OR_RETURN(tokens, std::move(issued));
  } else if (grant_type == "authorization_code") {
    SIGIL_ASSIGN_OR_RETURN(std::string code, str("code", 512));
    SIGIL_ASSIGN_OR_RETURN(std::string redirect_uri, str("redirect_uri", 2048));
    SIGIL_ASSIGN_OR_RETURN(std::string code_verifier, str("code_verifier", 256));
    if (code.empty() || redirect_uri.empty()) {
      return oauth_error("invalid_request", "code and redirect_uri are required");
    }
    bool created = false;
    SIGIL_ASSIGN_OR_RETURN(tokens, redeem_code(client, code, redirect_uri, true, code_verifier, &created));
  } else {
    SIGIL_ASSIGN_OR_RETURN(std::string refresh_token, str("refresh_token", 512));
    if (refresh_token.empty()) return oauth_error("invalid_request", "refresh_token is required");
    SIGIL_ASSIGN_OR_RETURN(tokens, ctx_.tokens.refresh(client, refresh_token));
  }
  JsonWriter w;
  w.begin_object();
  w.key("access_token").string(tokens.access_token);
  w.key("token_type").string("Bearer");
  w.key("expires_in").number(tokens.expires_in);
  w.key("scope").string(tokens.scope);
  if (!tokens.id_token.empty()) w.key("id_token").string(tokens.id_token);
  if (!tokens.refresh_token.empty()) w.key("refresh_token").string(tokens.refresh_token);
  w.end_object();
  return std::move(w).str();
}

Result<std::string> Oidc::exchange_v1(const Params& in) {
  auto bad = [](std::string message) { return invalid_argument(std::move(message), ""); };
  auto code = in.get_string("code", 512);
  auto client_id = in.get_string("client_id", 50);
  auto client_secret = in.get_string("client_secret", 50);
  if (!code || !client_id || !client_secret || !*code || !*client_id || !*client_secret) {
    return bad("Bad request");
  }
  auto client = ctx_.tokens.authenticate_client(**client_id, **client_secret);
  if (!client) {
    if (client.error().code == ErrorCode::kUnavailable) return std::unexpected(client.error());
    return bad("Invalid client credentials");
  }
  auto code_verifier = in.get_string("code_verifier", 256);
  if (!code_verifier) return bad("Bad request");
  bool created = false;
  auto tokens = redeem_code(*client, **code, "", false, code_verifier->value_or(""), &created);
  if (!tokens) {
    if (tokens.error().code == ErrorCode::kUnavailable || tokens.error().code == ErrorCode::kInternal) {
      return std::unexpected(tokens.error());
    }
    return bad(tokens.error().message);
  }
  JsonWriter w;
  w.begin_object();
  w.key("id_token").string(tokens->id_token);
  w.key("access_token").string(tokens->access_token);
  w.key("refresh_token").string(tokens->refresh_token);
  w.key("is_user_created").boolean(created);
  w.end_object();
  return std::move(w).str();
}

Result<std::string> Oidc::logout(const auth::Principal& caller) {
  SIGIL_ASSIGN_OR_RETURN(int ended, ctx_.tokens.logout(caller));
  if (caller.is_user()) {
    // The browser session that produced this login ends with it (and with it its other logins).
    SIGIL_ASSIGN_OR_RETURN(auto browser, ctx_.store.browser_session_of(caller.session_id));
    if (browser) SIGIL_TRY(ctx_.store.end_browser_session(*browser, ctx_.clock.now_s()));
  }
  return fmt::format(R"({{"sessions_count":{}}})", ended);
}

Result<std::string> Oidc::userinfo(const auth::Principal& caller) {
  if (!caller.is_user()) return make_error(ErrorCode::kUnauthenticated, "A user access token is required");
  SIGIL_ASSIGN_OR_RETURN(auto user, ctx_.store.find_user(caller.user_id));
  if (!user || user->tenant_id != caller.tenant_id) return make_error(ErrorCode::kUnauthenticated, "Invalid token");
  JsonWriter w;
  w.begin_object();
  w.key("sub").string(user->id);
  if (!user->email.empty()) {
    w.key("email").string(user->email);
    w.key("email_verified").boolean(user->email_verified);
  }
  if (!user->phone.empty()) w.key("phone_number").string(user->phone);
  if (!user->external_user_id.empty()) w.key("external_user_id").string(user->external_user_id);
  w.key("tid").string(user->tenant_id);
  w.end_object();
  return std::move(w).str();
}

}  // namespace sigil::service
