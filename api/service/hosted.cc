#include "api/service/hosted.h"

#include <algorithm>
#include <fmt/format.h>

#include "api/service/passwordless.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::service {
namespace {

constexpr int64_t kOtpTtlMs = 10 * 60 * 1000;
constexpr int kMaxOtpAttempts = 5;
constexpr int kMaxOtpSendsPerTicket = 5;
constexpr int64_t kRateWindowMs = 15 * 60 * 1000;
constexpr int kMaxSendsPerWindow = 5;

std::unexpected<Error> ticket_expired() {
  return make_error(ErrorCode::kNotFound, "This sign-in request has expired. Go back to the application and start again.");
}
std::unexpected<Error> unvetted() { return invalid_argument("Invalid redirect_uri", ""); }

Bytes cookie_hash(std::string_view cookie) {
  const auto d = crypto::sha256(as_bytes(cookie));
  return Bytes(d.begin(), d.end());
}

bool has_word(std::string_view list, std::string_view word) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(' ', pos);
    if (end == std::string_view::npos) end = list.size();
    if (list.substr(pos, end - pos) == word) return true;
    pos = end + 1;
  }
  return false;
}

std::string location_json(const std::string& location) {
  JsonWriter w;
  w.begin_object().key("location").string(location).end_object();
  return std::move(w).str();
}

}  // namespace

std::string error_redirect(const std::string& redirect_uri, std::string_view error, std::string_view description,
                           std::string_view state) {
  if (state.empty()) return append_query(redirect_uri, {{"error", error}, {"error_description", description}});
  return append_query(redirect_uri, {{"error", error}, {"error_description", description}, {"state", state}});
}

std::string pick_locale(std::string_view ui_locales) {
  size_t pos = 0;
  while (pos < ui_locales.size()) {
    size_t end = ui_locales.find_first_of(" ,", pos);
    if (end == std::string_view::npos) end = ui_locales.size();
    std::string tag(ui_locales.substr(pos, end - pos));
    pos = end + 1;
    const size_t cut = tag.find_first_of("-_;");
    if (cut != std::string::npos) tag.resize(cut);
    for (char& c : tag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (tag == "fr" || tag == "en") return tag;
  }
  return "en";
}

Hosted::Hosted(ServiceContext& ctx, Oidc& oidc, WebAuthn& webauthn, HostedOptions options)
    : ctx_(ctx),
      oidc_(oidc),
      webauthn_(webauthn),
      options_(options),
      tickets_(ctx.clock, 1'000'000),
      send_counts_(ctx.clock, 1'000'000),
      registrations_(ctx.clock, 100'000) {}

std::string Hosted::keyed(std::string_view purpose, std::string_view value) const {
  const std::string material = fmt::format("hosted {}\n{}", purpose, value);
  return crypto::base64url_encode(crypto::hmac_sha256(ctx_.otp_key, as_bytes(material)));
}

Result<HostedStep> Hosted::begin(const Params& in, HostedFlavor flavor, std::string_view browser_cookie) {
  // 1. Vet client_id and redirect_uri: nothing below may redirect before both pass.
  auto client_id = in.get_string("client_id", 150);
  auto redirect_uri = in.get_string("redirect_uri", 2048);
  if (!client_id || !redirect_uri || !*client_id || !*redirect_uri) return unvetted();
  SIGIL_ASSIGN_OR_RETURN(auto client, ctx_.store.find_client(**client_id));
  if (!client) return unvetted();
  SIGIL_ASSIGN_OR_RETURN(auto app_row, ctx_.store.find_app(client->app_id));
  if (!app_row) return unvetted();
  const store::App& app = *app_row;
  const std::string& uri = **redirect_uri;
  if (std::find(app.redirect_uris.begin(), app.redirect_uris.end(), uri) == app.redirect_uris.end()) {
    return unvetted();
  }

  // 2. From here every problem goes back to the vetted URI.
  const std::string state = [&] {
    auto s = in.get_string("state", 2048);
    return s && *s ? **s : std::string();
  }();
  auto fail = [&](std::string_view error, std::string_view description) -> Result<HostedStep> {
    return HostedStep{error_redirect(uri, error, description, state), {}};
  };
  auto str = [&](std::string_view name, size_t max, std::string* out) -> bool {
    auto v = in.get_string(name, max);
    if (!v) return false;
    *out = v->value_or("");
    return true;
  };
  Ticket t;
  t.flavor = flavor;
  t.app_id = app.id;
  t.tenant_id = app.tenant_id;
  t.client_id = client->client_id;
  t.redirect_uri = uri;
  t.state = state;
  std::string ui_locales, verifications, org_id, prompt, claims, challenge, method, scope, response_type;
  std::string response_mode, max_age_text;
  if (!str("nonce", 512, &t.nonce) || !str("login_hint", 320, &t.login_hint) ||
      !str("custom_message", 512, &t.custom_message) || !str("ui_locales", 256, &ui_locales) ||
      !str("resource", 2048, &t.resource) || !str("verifications", 256, &verifications) ||
      !str("org_id", 128, &org_id) || !str("prompt", 128, &prompt) || !str("code_challenge", 256, &challenge) ||
      !str("code_challenge_method", 32, &method) || !str("scope", 1024, &scope) ||
      !str("response_type", 64, &response_type) || !str("response_mode", 32, &response_mode) ||
      !str("max_age", 12, &max_age_text)) {
    return fail("invalid_request", "A parameter is too long or malformed");
  }
  if (flavor == HostedFlavor::kOidc) {
    if (in.has("request")) return fail("request_not_supported", "Request objects are not supported");
    if (in.has("request_uri")) return fail("request_uri_not_supported", "request_uri is not supported");
    if (response_type.empty()) return fail("invalid_request", "response_type is required");
    if (response_type != "code") return fail("unsupported_response_type", "Only response_type=code is supported");
    if (!response_mode.empty() && response_mode != "query") {
      return fail("invalid_request", "Only response_mode=query is supported");
    }
    if (!has_word(scope, "openid")) return fail("invalid_scope", "scope must contain openid");
  }
  // PKCE (RFC 7636): S256 only; public clients must use it.
  if (!challenge.empty() || !method.empty()) {
    if (method != "S256") {
      return fail("invalid_request", method == "plain" || method.empty()
                                         ? "code_challenge_method must be S256 (plain is not accepted)"
                                         : "Unsupported code_challenge_method");
    }
    if (!valid_pkce_text(challenge)) return fail("invalid_request", "code_challenge is malformed");
    t.code_challenge = challenge;
  }
  if (client->public_client && t.code_challenge.empty()) {
    return fail("invalid_request", "code_challenge (PKCE S256) is required for public clients");
  }
  auto create_new_user = in.get_bool("create_new_user");
  auto require_mfa = in.get_bool("require_mfa");
  if (!create_new_user || !require_mfa) return fail("invalid_request", "create_new_user and require_mfa are booleans");
  t.create_new_user = create_new_user->value_or(true);
  // The second factor and phone verification arrive with the SMS issue; never silently ignored.
  if (require_mfa->value_or(false)) return fail("invalid_request", "require_mfa is not supported yet");
  if (has_word(verifications, "phone")) return fail("invalid_request", "phone verification is not supported yet");
  for (size_t pos = 0; pos < verifications.size();) {
    size_t end = verifications.find(' ', pos);
    if (end == std::string::npos) end = verifications.size();
    const std::string_view v = std::string_view(verifications).substr(pos, end - pos);
    if (!v.empty() && v != "email") return fail("invalid_request", "Unknown verification");
    pos = end + 1;
  }
  if (!org_id.empty()) return fail("invalid_request", "org_id is not supported yet");
  if (auto aud = ctx_.tokens.resolve_audience(app, t.resource); !aud) {
    return fail("invalid_target", "resource is not configured for this application");
  }
  auto claims_object = in.get_object("claims");
  if (!claims_object) return fail("invalid_request", "claims must be a JSON object");
  if (*claims_object) {
    auto valid = validate_object_json(**claims_object, "claims");
    if (!valid) return fail("invalid_request", "claims must be a JSON object");
    t.claims_json = std::move(*valid);
  }
  if (has_word(prompt, "none") && prompt != "none") return fail("invalid_request", "prompt=none cannot be combined");
  std::optional<int64_t> max_age;
  if (!max_age_text.empty()) {
    auto m = in.get_int("max_age");
    if (!m || !*m || **m < 0) return fail("invalid_request", "max_age must be a non-negative integer");
    max_age = **m;
  }
  t.locale = pick_locale(ui_locales);

  // 3. A live browser session of this tenant skips the ceremony.
  const int64_t now = ctx_.clock.now_s();
  if (!browser_cookie.empty() && browser_cookie.size() <= 128 && !has_word(prompt, "login")) {
    SIGIL_ASSIGN_OR_RETURN(auto session, ctx_.store.find_browser_session(cookie_hash(browser_cookie)));
    if (session && session->ended_at == 0 && session->expires_at > now && session->tenant_id == app.tenant_id &&
        (!max_age || now - session->auth_time <= *max_age)) {
      SIGIL_ASSIGN_OR_RETURN(auto user, ctx_.store.find_user(session->user_id));
      if (user && user->tenant_id == app.tenant_id) {
        PendingGrant g;
        g.client_id = t.client_id;
        g.app_id = t.app_id;
        g.redirect_uri = t.redirect_uri;
        g.user_id = user->id;
        g.amr = session->amr.empty() ? "webauthn" : session->amr.front();
        g.nonce = t.nonce;
        g.claims_json = t.claims_json;
        g.resource = t.resource;
        g.code_challenge = t.code_challenge;
        g.browser_session = session->id_hash;
        g.auth_time = session->auth_time;
        SIGIL_ASSIGN_OR_RETURN(std::string code, oidc_.issue_code(std::move(g)));
        if (state.empty()) return HostedStep{append_query(uri, {{"code", code}}), {}};
        return HostedStep{append_query(uri, {{"code", code}, {"state", state}}), {}};
      }
    }
  }
  if (prompt == "none") return fail("login_required", "The user is not signed in");

  // 4. A ticket for the login page.
  const std::string ticket = crypto::random_token(32);
  SIGIL_TRY(tickets_.put(keyed("ticket", ticket), std::move(t), options_.ticket_ttl_ms));
  return HostedStep{append_query(ctx_.public_url + "/cis/hosted/login", {{"ticket", ticket}}), {}};
}

Result<Hosted::Ticket> Hosted::peek(std::string_view ticket) {
  if (ticket.empty() || ticket.size() > 128) return ticket_expired();
  std::optional<Ticket> out;
  tickets_.update(keyed("ticket", ticket), [&](Ticket& t, int64_t) {
    out = t;
    return true;
  });
  if (!out) return ticket_expired();
  return std::move(*out);
}

void Hosted::store_back(std::string_view ticket, const Ticket& t) {
  // Progress only: the ticket keeps its original expiry (and is not revived once it is gone).
  tickets_.update(keyed("ticket", ticket), [&](Ticket& stored, int64_t) {
    stored = t;
    return true;
  });
}

Result<store::App> Hosted::app_of_ticket(const Ticket& t) {
  SIGIL_ASSIGN_OR_RETURN(auto app, ctx_.store.find_app(t.app_id));
  if (!app) return ticket_expired();
  return std::move(*app);
}

Result<LoginView> Hosted::login_view(std::string_view ticket) {
  SIGIL_ASSIGN_OR_RETURN(Ticket t, peek(ticket));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of_ticket(t));
  LoginView v;
  v.locale = t.locale;
  v.app_name = app.name;
  v.login_hint = t.login_hint;
  v.custom_message = t.custom_message;
  v.create_new_user = t.create_new_user && app.public_signup;
  return v;
}

Result<std::string> Hosted::passkey_start(std::string_view ticket) {
  SIGIL_ASSIGN_OR_RETURN(Ticket t, peek(ticket));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of_ticket(t));
  std::string ceremony_id;
  SIGIL_ASSIGN_OR_RETURN(std::string options, webauthn_.hosted_assertion_options(app, "", &ceremony_id));
  t.ceremony_id = ceremony_id;
  store_back(ticket, t);
  JsonWriter w;
  w.begin_object().key("publicKey").raw(options).end_object();
  return std::move(w).str();
}

Result<HostedStep> Hosted::passkey_finish(std::string_view ticket, std::string_view credential_json) {
  SIGIL_ASSIGN_OR_RETURN(Ticket t, peek(ticket));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of_ticket(t));
  if (t.ceremony_id.empty()) return invalid_argument("Start the passkey sign-in again", "");
  auto verified = webauthn_.hosted_finish_assertion(app, t.ceremony_id, credential_json);
  if (!verified) {
    if (verified.error().code == ErrorCode::kUnavailable || verified.error().code == ErrorCode::kInternal) {
      return std::unexpected(verified.error());
    }
    // The page may try again (a new ceremony); the ticket stays.
    return make_error(ErrorCode::kUnauthenticated, "This passkey was not accepted. Try again or use your email.",
                      "auth_webauthn_failed");
  }
  return complete(ticket, t, verified->user, "webauthn", std::move(verified->id_claims), false);
}

Result<std::string> Hosted::send_otp(std::string_view ticket_id, Ticket& t, const store::App& app) {
  if (t.otp_sends >= kMaxOtpSendsPerTicket) {
    return make_error(ErrorCode::kRateLimited, "Too many codes sent. Wait a few minutes and start again.",
                      "rate_limited");
  }
  const std::string address_key = fmt::format("{}\n{}", app.id, t.email);
  bool limited = false;
  if (!send_counts_.update(address_key, [&](int& n, int64_t) {
        if (n >= kMaxSendsPerWindow) limited = true;
        else ++n;
        return true;
      })) {
    SIGIL_TRY(send_counts_.put(address_key, 1, kRateWindowMs));
  }
  if (limited) {
    return make_error(ErrorCode::kRateLimited, "Too many codes sent. Wait a few minutes and start again.",
                      "rate_limited");
  }
  const std::string otp = crypto::random_digits(6);
  t.otp_hash = keyed("otp", otp);
  t.otp_expires_ms = ctx_.clock.now_ms() + kOtpTtlMs;
  t.otp_attempts = 0;
  ++t.otp_sends;
  t.email_verified = false;
  store_back(ticket_id, t);
  EmailMessage message;
  message.to = t.email;
  message.subject = fmt::format("Your {} sign-in code", app.name);
  message.text = fmt::format("Your {} sign-in code is {}. It expires in 10 minutes.\n"
                             "If you did not ask for it, ignore this email.",
                             app.name, otp);
  message.otp = otp;
  SIGIL_TRY(ctx_.email.send(message));
  return std::string(R"({"next":"otp"})");
}

Result<std::string> Hosted::identify(std::string_view ticket, std::string_view identifier) {
  SIGIL_ASSIGN_OR_RETURN(Ticket t, peek(ticket));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of_ticket(t));
  auto email = normalize_email(identifier);
  if (!email) return invalid_argument("Enter a valid email address", "");
  SIGIL_ASSIGN_OR_RETURN(auto user, ctx_.store.find_user_by_email(app.tenant_id, *email));
  t.email = *email;
  t.user_id = user ? user->id : "";
  t.email_verified = false;
  if (user) {
    std::string ceremony_id;
    auto options = webauthn_.hosted_assertion_options(app, user->id, &ceremony_id);
    if (options) {
      t.ceremony_id = ceremony_id;
      store_back(ticket, t);
      JsonWriter w;
      w.begin_object().key("next").string("passkey").key("publicKey").raw(*options).end_object();
      return std::move(w).str();
    }
    if (options.error().code != ErrorCode::kNotFound) return std::unexpected(options.error());
    // A user without a passkey proves the email, then registers one.
  } else if (!t.create_new_user || !app.public_signup) {
    return make_error(ErrorCode::kNotFound, "No account uses this email address.");
  }
  return send_otp(ticket, t, app);
}

Result<std::string> Hosted::verify_otp(std::string_view ticket, std::string_view otp) {
  SIGIL_ASSIGN_OR_RETURN(Ticket t, peek(ticket));
  if (t.otp_hash.empty()) return invalid_argument("Ask for a code first", "");
  if (ctx_.clock.now_ms() >= t.otp_expires_ms) {
    t.otp_hash.clear();
    store_back(ticket, t);
    return invalid_argument("This code has expired. Ask for a new one.", "auth_otp_passcode_expired");
  }
  if (otp.empty() || otp.size() > 16 || !crypto::ct_equal(as_bytes(keyed("otp", otp)), as_bytes(t.otp_hash))) {
    if (++t.otp_attempts >= kMaxOtpAttempts) {
      // The fifth wrong code ends the flow.
      if (!tickets_.take(keyed("ticket", ticket))) return ticket_expired();
      return location_json(error_redirect(t.redirect_uri, "access_denied", "Too many wrong codes", t.state));
    }
    store_back(ticket, t);
    return invalid_argument("This code is not correct.", "auth_invalid_credentials");
  }
  t.otp_hash.clear();
  t.email_verified = true;
  store_back(ticket, t);
  return std::string(R"({"next":"register"})");
}

Result<std::string> Hosted::register_start(std::string_view ticket) {
  SIGIL_ASSIGN_OR_RETURN(Ticket t, peek(ticket));
  if (!t.email_verified || t.email.empty()) return invalid_argument("Confirm your email address first", "");
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of_ticket(t));
  std::string ceremony_id;
  SIGIL_ASSIGN_OR_RETURN(std::string options, webauthn_.hosted_registration_options(app, t.email, t.email, &ceremony_id));
  t.ceremony_id = ceremony_id;
  store_back(ticket, t);
  JsonWriter w;
  w.begin_object().key("publicKey").raw(options).end_object();
  return std::move(w).str();
}

Result<HostedStep> Hosted::register_finish(std::string_view ticket, std::string_view credential_json) {
  SIGIL_ASSIGN_OR_RETURN(Ticket t, peek(ticket));
  if (!t.email_verified || t.email.empty() || t.ceremony_id.empty()) {
    return invalid_argument("Confirm your email address first", "");
  }
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of_ticket(t));
  store::User user;
  bool created = false;
  SIGIL_ASSIGN_OR_RETURN(auto existing, ctx_.store.find_user_by_email(app.tenant_id, t.email));
  if (existing) {
    user = std::move(*existing);
  } else {
    if (!t.create_new_user || !app.public_signup) return make_error(ErrorCode::kNotFound, "No account uses this email address.");
    user.id = crypto::random_token(16);
    user.tenant_id = app.tenant_id;
    user.email = t.email;
    user.email_verified = true;
    user.created_at = ctx_.clock.now_s();
    created = true;
  }
  auto registered = webauthn_.hosted_finish_registration(app, t.ceremony_id, user, created, credential_json);
  if (!registered) {
    const Error& e = registered.error();
    if (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kInternal) return std::unexpected(e);
    if (e.code == ErrorCode::kConflict && e.ts_error_code == "auth_credential_exists") {
      return make_error(ErrorCode::kConflict, "This passkey is already registered. Sign in with it instead.",
                        "auth_credential_exists");
    }
    return invalid_argument("The passkey could not be registered. Try again.", "auth_invalid_attestation");
  }
  if (!created && !user.email_verified) {
    SIGIL_TRY(ctx_.store.set_email_verified(user.id));
    user.email_verified = true;
  }
  std::vector<std::pair<std::string, std::string>> claims;
  claims.emplace_back("webauthn_username", JsonWriter::quote(t.email));
  return complete(ticket, t, user, "eotp", std::move(claims), created);
}

Result<HostedStep> Hosted::cancel(std::string_view ticket) {
  if (ticket.empty() || ticket.size() > 128) return ticket_expired();
  auto t = tickets_.take(keyed("ticket", ticket));
  if (!t) return ticket_expired();
  return HostedStep{error_redirect(t->redirect_uri, "access_denied", "The user cancelled the sign-in", t->state), {}};
}

Result<HostedStep> Hosted::complete(std::string_view ticket_id, const Ticket& t, const store::User& user,
                                    const std::string& amr, std::vector<std::pair<std::string, std::string>> claims,
                                    bool new_user) {
  // Single use: whoever takes the ticket completes it.
  if (!tickets_.take(keyed("ticket", ticket_id))) return ticket_expired();
  const int64_t now = ctx_.clock.now_s();
  const std::string cookie = crypto::random_token(32);
  store::BrowserSession session;
  session.id_hash = cookie_hash(cookie);
  session.tenant_id = user.tenant_id;
  session.user_id = user.id;
  session.amr = {amr};
  session.auth_time = now;
  session.created_at = now;
  session.expires_at = now + options_.browser_session_ttl_s;
  SIGIL_TRY(ctx_.store.create_browser_session(session));
  PendingGrant g;
  g.client_id = t.client_id;
  g.app_id = t.app_id;
  g.redirect_uri = t.redirect_uri;
  g.user_id = user.id;
  g.amr = amr;
  g.nonce = t.nonce;
  g.claims_json = t.claims_json;
  g.resource = t.resource;
  g.code_challenge = t.code_challenge;
  g.browser_session = session.id_hash;
  g.auth_time = now;
  g.new_user = new_user;
  g.extra_id_claims = std::move(claims);
  SIGIL_ASSIGN_OR_RETURN(std::string code, oidc_.issue_code(std::move(g)));
  std::string location = t.state.empty() ? append_query(t.redirect_uri, {{"code", code}})
                                          : append_query(t.redirect_uri, {{"code", code}, {"state", t.state}});
  return HostedStep{std::move(location), cookie};
}

Result<bool> Hosted::end_browser_session(std::string_view browser_cookie) {
  if (browser_cookie.empty() || browser_cookie.size() > 128) return false;
  return ctx_.store.end_browser_session(cookie_hash(browser_cookie), ctx_.clock.now_s());
}

Result<bool> Hosted::logout_redirect_allowed(std::string_view client_id, std::string_view uri) {
  if (client_id.empty() || client_id.size() > 150 || uri.empty()) return false;
  SIGIL_ASSIGN_OR_RETURN(auto client, ctx_.store.find_client(std::string(client_id)));
  if (!client) return false;
  SIGIL_ASSIGN_OR_RETURN(auto app, ctx_.store.find_app(client->app_id));
  if (!app) return false;
  return std::find(app->redirect_uris.begin(), app->redirect_uris.end(), uri) != app->redirect_uris.end();
}

// ---- hosted registration (API.md 3.7) -------------------------------------------------------------------

Result<RegistrationView> Hosted::registration_view(std::string_view token, std::string_view accept_language) {
  auto hint = webauthn_.peek_hosted_registration(token);
  if (!hint) return make_error(ErrorCode::kNotFound, "This registration link has expired or was already used.");
  SIGIL_ASSIGN_OR_RETURN(auto app, ctx_.store.find_app(hint->app_id));
  if (!app) return make_error(ErrorCode::kNotFound, "This registration link has expired or was already used.");
  RegistrationView v;
  v.locale = pick_locale(accept_language);
  v.app_name = app->name;
  v.identifier = hint->identifier;
  return v;
}

Result<std::string> Hosted::registration_start(std::string_view token) {
  auto hint = webauthn_.peek_hosted_registration(token);
  if (!hint) return make_error(ErrorCode::kNotFound, "This registration link has expired or was already used.");
  SIGIL_ASSIGN_OR_RETURN(auto app, ctx_.store.find_app(hint->app_id));
  if (!app) return make_error(ErrorCode::kNotFound, "This registration link has expired or was already used.");
  std::string ceremony_id;
  SIGIL_ASSIGN_OR_RETURN(std::string options, webauthn_.hosted_registration_options(*app, hint->identifier,
                                                                                    hint->display_name, &ceremony_id));
  SIGIL_TRY(registrations_.put(keyed("registration", token), ceremony_id, options_.ticket_ttl_ms));
  JsonWriter w;
  w.begin_object().key("publicKey").raw(options).end_object();
  return std::move(w).str();
}

Result<HostedStep> Hosted::registration_finish(std::string_view token, std::string_view credential_json) {
  if (token.empty() || token.size() > 128) {
    return make_error(ErrorCode::kNotFound, "This registration link has expired or was already used.");
  }
  auto ceremony_id = registrations_.take(keyed("registration", token));
  if (!ceremony_id) return invalid_argument("Start the registration again", "");
  auto hint = webauthn_.take_hosted_registration(token);
  if (!hint) return make_error(ErrorCode::kNotFound, "This registration link has expired or was already used.");
  auto fail = [&](std::string_view error, std::string_view description) -> Result<HostedStep> {
    return HostedStep{append_query(hint->redirect_uri, {{"error", error}, {"error_description", description}}), {}};
  };
  SIGIL_ASSIGN_OR_RETURN(auto app, ctx_.store.find_app(hint->app_id));
  if (!app) return fail("server_error", "The application no longer exists");
  // The user: by external id when given, else the account's owner, else a new one.
  std::optional<store::User> user;
  if (!hint->external_user_id.empty()) {
    SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user_by_external_id(app->tenant_id, hint->external_user_id));
  }
  if (!user) {
    SIGIL_ASSIGN_OR_RETURN(auto account, ctx_.store.find_webauthn_account(app->id, hint->identifier));
    if (account) {
      SIGIL_ASSIGN_OR_RETURN(user, ctx_.store.find_user(account->user_id));
      if (user && !hint->external_user_id.empty() && user->external_user_id != hint->external_user_id) {
        return fail("access_denied", "The identifier belongs to another user");
      }
    }
  }
  bool created = false;
  if (!user) {
    store::User u;
    u.id = crypto::random_token(16);
    u.tenant_id = app->tenant_id;
    u.external_user_id = hint->external_user_id;
    // An identifier that is an email address becomes the (unverified) email, unless another user has it.
    if (auto email = normalize_email(hint->identifier)) {
      SIGIL_ASSIGN_OR_RETURN(auto taken, ctx_.store.find_user_by_email(app->tenant_id, *email));
      if (!taken) u.email = *email;
    }
    u.created_at = ctx_.clock.now_s();
    user = std::move(u);
    created = true;
  }
  auto registered = webauthn_.hosted_finish_registration(*app, *ceremony_id, *user, created, credential_json);
  if (!registered) {
    const Error& e = registered.error();
    if (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kInternal) return fail("server_error", "Try again later");
    return fail("access_denied", e.message);
  }
  return HostedStep{append_query(hint->redirect_uri, {{"user_identifier", hint->identifier},
                                                      {"external_user_id", hint->external_user_id},
                                                      {"credential_id", *registered},
                                                      {"register_webauthn_cred_token", token}}),
                    {}};
}

Result<HostedStep> Hosted::registration_cancel(std::string_view token) {
  (void)registrations_.take(keyed("registration", token));
  auto hint = webauthn_.take_hosted_registration(token);
  if (!hint) return make_error(ErrorCode::kNotFound, "This registration link has expired or was already used.");
  return HostedStep{append_query(hint->redirect_uri,
                                 {{"error", "access_denied"}, {"error_description", "The user cancelled the registration"}}),
                    {}};
}

}  // namespace sigil::service
