#include "api/server/router.h"

#include <algorithm>
#include <fmt/format.h>

#include "api/server/assets.h"
#include "api/server/hosted_pages.h"
#include "api/server/web.h"

#include "engine/base/json_writer.h"

namespace sigil::server {
namespace {

enum class ErrorStyle { kStandard, kArray, kOAuth };

http::Response json_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::Response error_response(const Error& e, ErrorStyle style_in) {
  ErrorStyle style = style_in;
  const int status = e.status();
  // The array shape is for validation failures; token and permission failures keep the string form
  // of API.md 0.2 on every endpoint.
  if (style == ErrorStyle::kArray && (status == 401 || status == 403)) style = ErrorStyle::kStandard;
  if (status >= 500 && style == ErrorStyle::kOAuth) {
    fmt::print(stderr, "sigild: {} error: {}\n", status, e.message);
    http::Response r = json_response(
        status, fmt::format(R"({{"error":"{}","error_description":"Try again later"}})",
                            status == 503 ? "temporarily_unavailable" : "server_error"));
    if (status == 503) r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  if (status >= 500) {
    // Never details on a 5xx (API.md 0.4); the cause goes to the log.
    fmt::print(stderr, "sigild: {} error: {}\n", status, e.message);
    std::string body = status == 503
                           ? R"({"message":"Service unavailable","error_code":503})"
                           : R"({"message":"Internal error","error_code":500})";
    http::Response r = json_response(status, std::move(body));
    if (status == 503) r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  JsonWriter w;
  w.begin_object();
  if (style == ErrorStyle::kOAuth) {
    // RFC 6749 5.2 codes only; anything else about the request is invalid_request.
    const std::string& t = e.ts_error_code;
    const bool oauth_code = t == "invalid_client" || t == "invalid_grant" || t == "unsupported_grant_type" ||
                            t == "invalid_scope" || t == "invalid_target" || t == "unauthorized_client";
    std::string code = oauth_code ? t : "invalid_request";
    w.key("error").string(code);
    w.key("error_description").string(e.message);
    w.end_object();
    http::Response r = json_response(status, std::move(w).str());
    r.headers.emplace_back("Pragma", "no-cache");
    return r;
  }
  w.key("message");
  if (style == ErrorStyle::kArray) w.begin_array().string(e.message).end_array();
  else w.string(e.message);
  if (!e.string_error_code.empty()) w.key("error_code").string(e.string_error_code);
  else w.key("error_code").number(status);
  if (!e.ts_error_code.empty() && e.ts_error_code != e.string_error_code) {
    w.key("ts_error_code").string(e.ts_error_code);
  }
  w.end_object();
  http::Response r = json_response(status, std::move(w).str());
  if (status == 429) r.headers.emplace_back("Retry-After", "60");
  return r;
}

// Lower-case media type without parameters.
std::string media_type(std::string_view content_type) {
  std::string out;
  for (char c : content_type) {
    if (c == ';') break;
    if (c == ' ' || c == '\t') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

Result<service::Params> parse_body(const http::Request& req) {
  const std::string type = media_type(req.header("content-type"));
  service::Params params;
  bool blank = true;
  for (char c : req.body) {
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
      blank = false;
      break;
    }
  }
  if (!blank) {
    if (type == "application/json" || (type.empty() && req.body.front() == '{')) {
      SIGIL_ASSIGN_OR_RETURN(params, service::Params::from_json(req.body));
    } else if (type == "application/x-www-form-urlencoded" || type.empty()) {
      SIGIL_ASSIGN_OR_RETURN(auto pairs, http::parse_form(req.body));
      SIGIL_ASSIGN_OR_RETURN(params, service::Params::from_pairs(std::move(pairs)));
    } else {
      return invalid_argument("Unsupported content type; use application/json or "
                              "application/x-www-form-urlencoded", "");
    }
  }
  // Query parameters fill in what the body lacks (API.md 2.4: DELETE bodies get dropped by some stacks).
  if (!req.query.empty()) {
    SIGIL_ASSIGN_OR_RETURN(auto pairs, http::parse_form(req.query));
    for (auto& [k, v] : pairs) {
      if (!params.has(k)) params.add(k, service::Param{service::Param::Kind::kString, std::move(v)});
    }
  }
  return params;
}

std::string openid_configuration(const std::string& issuer, const std::string& base) {
  JsonWriter w;
  w.begin_object();
  w.key("issuer").string(issuer);
  // Endpoints live where sigil is reached (public_url), which may differ from the issuer name.
  w.key("authorization_endpoint").string(base + "/oidc/auth");
  w.key("token_endpoint").string(base + "/oidc/token");
  w.key("userinfo_endpoint").string(base + "/oidc/userinfo");
  w.key("end_session_endpoint").string(base + "/oidc/logout");
  w.key("jwks_uri").string(base + "/cis/oidc/jwks");
  w.key("response_types_supported").begin_array().string("code").end_array();
  w.key("response_modes_supported").begin_array().string("query").end_array();
  w.key("subject_types_supported").begin_array().string("public").end_array();
  w.key("id_token_signing_alg_values_supported").begin_array().string("ES256").end_array();
  w.key("code_challenge_methods_supported").begin_array().string("S256").end_array();
  w.key("token_endpoint_auth_methods_supported")
      .begin_array().string("client_secret_post").string("client_secret_basic").string("none").end_array();
  w.key("grant_types_supported")
      .begin_array().string("authorization_code").string("refresh_token").string("client_credentials").end_array();
  w.key("scopes_supported").begin_array().string("openid").string("email").string("offline_access").end_array();
  w.key("prompt_values_supported").begin_array().string("none").string("login").end_array();
  w.key("ui_locales_supported").begin_array().string("en").string("fr").end_array();
  w.key("claims_parameter_supported").boolean(true);
  w.key("request_parameter_supported").boolean(false);
  w.key("request_uri_parameter_supported").boolean(false);
  w.key("claims_supported").begin_array();
  for (const char* c : {"sub", "iss", "aud", "exp", "iat", "auth_time", "amr", "acr", "nonce", "at_hash", "tid",
                        "sid", "approval_data", "new_user", "email", "email_verified", "webauthn",
                        "webauthn_username"}) {
    w.string(c);
  }
  w.end_array();
  w.end_object();
  return std::move(w).str();
}

}  // namespace

Router::Router(service::ServiceContext& ctx, std::string issuer)
    : Router(ctx, RouterOptions{std::move(issuer), std::nullopt}) {}

Router::Router(service::ServiceContext& ctx, RouterOptions options)
    : ctx_(ctx),
      issuer_(std::move(options.issuer)),
      mobile_(ctx),
      oidc_(ctx),
      passwordless_(ctx, oidc_),
      webauthn_(ctx),
      hosted_(ctx, oidc_, webauthn_),
      secure_cookies_(ctx.public_url.starts_with("https://")),
      cookie_name_(secure_cookies_ ? "__Host-sigil_session" : "sigil_session"),
      verifier_(options.verifier) {
  if (options.demo_rp) demo_ = std::make_unique<DemoRp>(ctx, oidc_, std::move(*options.demo_rp));
}

std::string Router::session_cookie(std::string_view value, int64_t max_age_s) const {
  // __Host- cookies must be Secure, Path=/ and carry no Domain (RFC 6265bis 4.1.3.2).
  return fmt::format("{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}", cookie_name_, value, max_age_s,
                     secure_cookies_ ? "; Secure" : "");
}

void Router::handle(http::Request&& req, const http::Responder& respond) {
  // Every /cis/v1/... route is also served at /v1/..., and /oidc/... also at /cis/oidc/... (API.md 0.1).
  std::string_view path = req.path;
  if (path.starts_with("/cis/")) path.remove_prefix(4);
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const std::string& method = req.method;

  auto reply = [&](const Result<std::string>& r, ErrorStyle style) {
    respond(r ? json_response(200, *r) : error_response(r.error(), style));
  };
  auto with_params = [&](ErrorStyle style, auto&& fn) {
    auto params = parse_body(req);
    if (!params) return respond(error_response(params.error(), style));
    reply(fn(*params), style);
  };
  // Bearer-protected endpoints: 401 {"message":"Invalid token","error_code":401} for every token failure.
  auto with_principal = [&](ErrorStyle style, auto&& fn) {
    auto principal = ctx_.tokens.authenticate_bearer(req.header("authorization"));
    if (!principal) {
      if (principal.error().code == ErrorCode::kUnauthenticated) {
        http::Response r = json_response(401, R"({"message":"Invalid token","error_code":401})");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return respond(std::move(r));
      }
      return respond(error_response(principal.error(), style));
    }
    with_params(style, [&](const service::Params& p) { return fn(*principal, p); });
  };
  auto method_is = [&](std::string_view m) { return method == m || (m == "GET" && method == "HEAD"); };
  // Login completions (DESIGN.md hot path): the bearer check and the body parse happen here; the rest —
  // challenge, signature, tokens — runs on the verifier's arena, so this I/O thread never blocks on
  // crypto, and the answer leaves from the store's writer once the login is durable. A full queue is a
  // 503 with Retry-After. Without a verifier (tests), the same work runs here, synchronously.
  auto login_completion = [&](auto start_login, auto sync_login) {
    if (verifier_ == nullptr) {
      return with_principal(ErrorStyle::kStandard,
                            [&](const auth::Principal& w, const service::Params& p) { return sync_login(w, p); });
    }
    auto principal = ctx_.tokens.authenticate_bearer(req.header("authorization"));
    if (!principal) {
      if (principal.error().code == ErrorCode::kUnauthenticated) {
        http::Response r = json_response(401, R"({"message":"Invalid token","error_code":401})");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return respond(std::move(r));
      }
      return respond(error_response(principal.error(), ErrorStyle::kStandard));
    }
    auto params = parse_body(req);
    if (!params) return respond(error_response(params.error(), ErrorStyle::kStandard));
    auto answer = [respond](Result<std::string> r) {
      respond(r ? json_response(200, std::move(*r)) : error_response(r.error(), ErrorStyle::kStandard));
    };
    // The task runs at most once, so it hands its copy of `answer` on; the callback's copy answers only when
    // the task was cancelled before it ran.
    auto on_cancel = [answer](Result<void> ran) {
      if (!ran) answer(std::unexpected(ran.error()));  // cancelled at shutdown: nobody else answers
    };
    auto queued = verifier_->run(
        [start_login, principal = std::move(*principal), params = std::move(*params),
         answer = std::move(answer)]() mutable -> Result<void> {
          start_login(principal, params, std::move(answer));
          return {};
        },
        std::move(on_cancel));
    if (!queued) respond(error_response(queued.error(), ErrorStyle::kStandard));
  };

  if (path == "/healthz" && method_is("GET")) return respond(json_response(200, R"({"status":"ok"})"));
  if (path == "/oidc/jwks" && method_is("GET")) {
    http::Response r = json_response(200, ctx_.tokens.keys().jwks_json());
    r.headers.clear();
    r.headers.emplace_back("Cache-Control", "public, max-age=300");
    return respond(std::move(r));
  }
  if (path == "/.well-known/openid-configuration" && method_is("GET")) {
    return respond(json_response(200, openid_configuration(issuer_, ctx_.public_url)));
  }
  if (path == "/oidc/token" && method == "POST") {
    const std::string basic(req.header("authorization"));
    auto params = parse_body(req);
    Result<std::string> r = params ? oidc_.token(*params, basic) : std::unexpected(params.error());
    if (r) return respond(json_response(200, *r));
    http::Response resp = error_response(r.error(), ErrorStyle::kOAuth);
    if (r.error().ts_error_code == "invalid_client" && !basic.empty()) {
      resp.headers.emplace_back("WWW-Authenticate", "Basic realm=\"sigil\"");
    }
    return respond(std::move(resp));
  }
  if (path == "/v1/token" && method == "POST") {
    return with_params(ErrorStyle::kArray, [&](const service::Params& p) { return oidc_.exchange_v1(p); });
  }
  if (path == "/v1/auth/logout" && method == "POST") {
    const std::string cookie = cookie_value(req.header("cookie"), cookie_name_);
    if (cookie.empty()) {
      return with_principal(ErrorStyle::kStandard,
                            [&](const auth::Principal& who, const service::Params&) { return oidc_.logout(who); });
    }
    // A browser calling with its session cookie: that browser session ends too, and the cookie goes.
    return with_principal(ErrorStyle::kStandard, [&](const auth::Principal& who, const service::Params&) -> Result<std::string> {
      auto out = oidc_.logout(who);
      if (out) SIGIL_TRY(hosted_.end_browser_session(cookie));
      return out;
    });
  }
  if (path == "/oidc/auth" || path == "/v1/auth/webauthn" || path == "/oidc/userinfo" || path == "/oidc/logout" ||
      path.starts_with("/hosted/") || path == "/demo" || path.starts_with("/demo/")) {
    return handle_hosted(req, path, respond);
  }
  if (path.starts_with("/v1/auth/mobile-biometrics/")) {
    const std::string_view op = path.substr(std::string_view("/v1/auth/mobile-biometrics/").size());
    using P = const service::Params&;
    using W = const auth::Principal&;
    if (op == "start" && method == "POST") {
      return with_principal(ErrorStyle::kStandard, [&](W w, P p) { return mobile_.start(w, p); });
    }
    if (op == "authenticate" && method == "POST") {
      return login_completion(
          [this](W w, P p, service::LoginDone done) { mobile_.authenticate_async(w, p, std::move(done)); },
          [this](W w, P p) { return mobile_.authenticate(w, p); });
    }
    if (op == "register" && method == "POST") {
      return with_principal(ErrorStyle::kStandard, [&](W w, P p) { return mobile_.register_key(w, p); });
    }
    if (op == "delete" && method == "DELETE") {
      return with_principal(ErrorStyle::kStandard, [&](W w, P p) { return mobile_.delete_key(w, p); });
    }
  }
  if (path.starts_with("/v1/auth/webauthn/")) {
    const std::string_view op = path.substr(std::string_view("/v1/auth/webauthn/").size());
    using P = const service::Params&;
    using W = const auth::Principal&;
    // Browser-called start endpoints: CORS for the app's configured origins (API.md 0.1, 3.2).
    if (op == "authenticate/start" || op == "register/start") {
      const std::string origin(req.header("origin"));
      auto cors = [&](http::Response& r, bool allowed) {
        r.headers.emplace_back("Vary", "Origin");
        if (!allowed) return;
        r.headers.emplace_back("Access-Control-Allow-Origin", origin);
        r.headers.emplace_back("Access-Control-Allow-Methods", "POST, OPTIONS");
        r.headers.emplace_back("Access-Control-Allow-Headers", "Content-Type");
        r.headers.emplace_back("Access-Control-Max-Age", "600");
      };
      if (method == "OPTIONS") {
        // A preflight carries no client_id: any origin some app allows may ask; the POST answer then
        // carries the header only for the origins of the app that client_id names.
        auto known = webauthn_.origin_known(origin);
        http::Response r;
        r.status = 204;
        r.content_type = "text/plain";
        cors(r, known && *known);
        return respond(std::move(r));
      }
      if (method == "POST") {
        auto params = parse_body(req);
        Result<service::StartReply> start = !params ? std::unexpected(params.error())
                                            : op == "authenticate/start" ? webauthn_.authenticate_start(*params)
                                                                         : webauthn_.register_start(*params);
        if (start) {
          http::Response r = json_response(200, std::move(start->body));
          const auto& o = start->cors_origins;
          cors(r, !origin.empty() && std::find(o.begin(), o.end(), origin) != o.end());
          return respond(std::move(r));
        }
        http::Response r = error_response(start.error(), ErrorStyle::kStandard);
        auto known = webauthn_.origin_known(origin);
        cors(r, known && *known);  // so the page can read why it failed
        return respond(std::move(r));
      }
    }
    if (op == "authenticate" && method == "POST") {
      return login_completion(
          [this](W w, P p, service::LoginDone done) { webauthn_.authenticate_async(w, p, std::move(done)); },
          [this](W w, P p) { return webauthn_.authenticate(w, p); });
    }
    if (op == "register" && method == "POST") {
      return with_principal(ErrorStyle::kStandard, [&](W w, P p) { return webauthn_.register_credential(w, p); });
    }
    if (op == "external/register" && method == "POST") {
      return with_principal(ErrorStyle::kStandard, [&](W w, P p) { return webauthn_.external_register(w, p); });
    }
    if (op == "external/register/hosted/hint" && method == "POST") {
      return with_principal(ErrorStyle::kStandard, [&](W w, P p) { return webauthn_.hosted_hint(w, p); });
    }
    if (op.starts_with("credentials/") && method == "DELETE") {
      const std::string id(op.substr(std::string_view("credentials/").size()));
      return with_principal(ErrorStyle::kStandard,
                            [&](W w, P) { return webauthn_.delete_credential(w, id); });
    }
  }
  if (path == "/v1/auth/otp/email" && method == "POST") {
    return with_principal(ErrorStyle::kStandard, [&](const auth::Principal& w, const service::Params& p) {
      return passwordless_.send_email_otp(w, p);
    });
  }
  if (path == "/v1/auth/otp/email/validation" && method == "POST") {
    return with_principal(ErrorStyle::kArray, [&](const auth::Principal& w, const service::Params& p) {
      return passwordless_.validate_email_otp(w, p);
    });
  }
  // GET only: a HEAD from a link scanner must not use up the one-time link.
  if (path == "/v1/auth/complete" && method == "GET") {
    auto params = parse_body(req);
    std::string token;
    if (params) {
      auto t = params->get_string("t", 128);
      if (t && *t) token = **t;
    }
    auto location = passwordless_.complete(token);
    if (!location) return respond(error_response(location.error(), ErrorStyle::kStandard));
    http::Response r;
    r.status = 302;
    r.headers.emplace_back("Location", *location);
    r.headers.emplace_back("Cache-Control", "no-store");
    r.content_type = "text/plain";
    return respond(std::move(r));
  }
  // Cross-device and session routes of the vendor SDK are outside the contract (API.md 0.1): 404.
  respond(json_response(404, R"({"message":"Not found","error_code":404})"));
}

void Router::handle_hosted(http::Request& req, std::string_view path, const http::Responder& respond) {
  const std::string& method = req.method;
  const std::string cookie = cookie_value(req.header("cookie"), cookie_name_);
  const std::string locale = service::pick_locale(req.header("accept-language"));
  auto error_page = [&](int status, std::string_view message) {
    return respond(html_response(status, render_error_page(locale, message)));
  };

  // GET /v1/auth/webauthn (API.md 4.1) and GET|POST /oidc/auth (OIDC Core 3.1.2.1).
  if ((path == "/v1/auth/webauthn" && (method == "GET" || method == "HEAD")) ||
      (path == "/oidc/auth" && (method == "GET" || method == "POST"))) {
    const bool oidc = path == "/oidc/auth";
    auto params = parse_body(req);
    Result<service::HostedStep> step =
        !params ? Result<service::HostedStep>(std::unexpected(Error{ErrorCode::kInvalidArgument, "Invalid redirect_uri", "", ""}))
                : hosted_.begin(*params, oidc ? service::HostedFlavor::kOidc : service::HostedFlavor::kHostedV1, cookie);
    if (step) return respond(redirect_response(std::move(step->location)));
    if (step.error().code == ErrorCode::kInvalidArgument) {
      // Unvetted client_id / redirect_uri: never a redirect.
      if (oidc) return error_page(400, "Invalid client_id or redirect_uri: this application is not allowed to sign in here.");
      return respond(json_response(400, R"({"message":"Invalid redirect_uri","error_code":400})"));
    }
    return respond(error_response(step.error(), ErrorStyle::kStandard));
  }

  // GET|POST /oidc/userinfo (OIDC Core 5.3): RFC 6750 errors.
  if (path == "/oidc/userinfo" && (method == "GET" || method == "POST")) {
    auto unauthorized = [&](std::string_view description) {
      JsonWriter w;
      w.begin_object().key("error").string("invalid_token").key("error_description").string(description).end_object();
      http::Response r = json_response(401, std::move(w).str());
      r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return respond(std::move(r));
    };
    auto principal = ctx_.tokens.authenticate_bearer(req.header("authorization"));
    if (!principal) {
      if (principal.error().code == ErrorCode::kUnauthenticated) return unauthorized("Invalid token");
      return respond(error_response(principal.error(), ErrorStyle::kOAuth));
    }
    if (!principal->is_user()) return unauthorized("A user access token is required");
    auto info = oidc_.userinfo(*principal);
    if (!info) {
      if (info.error().code == ErrorCode::kUnauthenticated) return unauthorized(info.error().message);
      return respond(error_response(info.error(), ErrorStyle::kOAuth));
    }
    return respond(json_response(200, *info));
  }

  // GET /oidc/logout (RP-initiated logout): ends the browser session and clears its cookie.
  if (path == "/oidc/logout" && (method == "GET" || method == "POST")) {
    auto params = parse_body(req);
    std::string client_id, post_logout, state;
    if (params) {
      if (auto v = params->get_string("client_id", 150); v && *v) client_id = **v;
      if (auto v = params->get_string("post_logout_redirect_uri", 2048); v && *v) post_logout = **v;
      if (auto v = params->get_string("state", 2048); v && *v) state = **v;
    }
    std::string location;
    if (!post_logout.empty()) {
      auto allowed = hosted_.logout_redirect_allowed(client_id, post_logout);
      if (!allowed) return respond(error_response(allowed.error(), ErrorStyle::kStandard));
      if (!*allowed) return error_page(400, "Invalid client_id or post_logout_redirect_uri.");
      location = state.empty() ? post_logout : service::append_query(post_logout, {{"state", state}});
    }
    if (!cookie.empty()) {
      auto ended = hosted_.end_browser_session(cookie);
      if (!ended) return respond(error_response(ended.error(), ErrorStyle::kStandard));
    }
    http::Response r = location.empty()
                           ? html_response(200, render_message_page(locale, hosted_string(locale, "signed_out_title"),
                                                                    hosted_string(locale, "signed_out")))
                           : redirect_response(location);
    r.headers.emplace_back("Set-Cookie", session_cookie("", 0));
    return respond(std::move(r));
  }

  // The hosted login page and its static files.
  if (path == "/hosted/login" && (method == "GET" || method == "HEAD")) {
    auto params = parse_body(req);
    std::string ticket;
    if (params) {
      if (auto t = params->get_string("ticket", 128); t && *t) ticket = **t;
    }
    auto view = hosted_.login_view(ticket);
    if (!view) {
      if (view.error().code == ErrorCode::kNotFound) return error_page(400, hosted_string(locale, "error_expired"));
      return respond(error_response(view.error(), ErrorStyle::kStandard));
    }
    return respond(html_response(200, render_login_page(*view, ticket)));
  }
  if (path == "/hosted/passkey/passkey-registration" && (method == "GET" || method == "HEAD")) {
    auto params = parse_body(req);
    std::string token;
    if (params) {
      if (auto t = params->get_string("register_webauthn_cred_token", 128); t && *t) token = **t;
    }
    auto view = hosted_.registration_view(token, req.header("accept-language"));
    if (!view) {
      if (view.error().code == ErrorCode::kNotFound) return error_page(400, hosted_string(locale, "reg_expired"));
      return respond(error_response(view.error(), ErrorStyle::kStandard));
    }
    return respond(html_response(200, render_registration_page(*view, token)));
  }
  if (path.starts_with("/hosted/assets/") && (method == "GET" || method == "HEAD")) {
    const std::string_view name = path.substr(std::string_view("/hosted/assets/").size());
    const EmbeddedAsset* asset = (name.ends_with(".css") || name.ends_with(".js")) ? find_asset(name) : nullptr;
    if (asset == nullptr) return respond(json_response(404, R"({"message":"Not found","error_code":404})"));
    http::Response r;
    r.status = 200;
    r.content_type = std::string(asset_content_type(name));
    r.body = std::string(asset->data);
    r.headers.emplace_back("Cache-Control", "public, max-age=300");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return respond(std::move(r));
  }

  // JSON endpoints of the hosted pages: same-origin only (a JSON content type forces a CORS preflight, which
  // these routes never grant).
  if (path.starts_with("/hosted/api/") && method == "POST") {
    const std::string_view op = path.substr(std::string_view("/hosted/api/").size());
    if (media_type(req.header("content-type")) != "application/json") {
      return respond(error_response(Error{ErrorCode::kInvalidArgument, "Use application/json", "", ""},
                                    ErrorStyle::kStandard));
    }
    auto params = parse_body(req);
    if (!params) return respond(error_response(params.error(), ErrorStyle::kStandard));
    auto field = [&](std::string_view name, size_t max) {
      auto v = params->get_string(name, max);
      return v && *v ? **v : std::string();
    };
    std::string credential;
    if (auto c = params->get_object("credential"); c && *c) credential = **c;
    const std::string ticket = field("ticket", 128);
    const std::string token = field("token", 128);
    auto step_reply = [&](const Result<service::HostedStep>& step) {
      if (!step) return respond(error_response(step.error(), ErrorStyle::kStandard));
      JsonWriter w;
      w.begin_object().key("location").string(step->location).end_object();
      http::Response r = json_response(200, std::move(w).str());
      if (!step->new_browser_session.empty()) {
        r.headers.emplace_back("Set-Cookie", session_cookie(step->new_browser_session, 24 * 3600));
      }
      return respond(std::move(r));
    };
    auto body_reply = [&](const Result<std::string>& body) {
      respond(body ? json_response(200, *body) : error_response(body.error(), ErrorStyle::kStandard));
    };
    if (op == "passkey/start") return body_reply(hosted_.passkey_start(ticket));
    if (op == "passkey/finish") return step_reply(hosted_.passkey_finish(ticket, credential));
    if (op == "identify") return body_reply(hosted_.identify(ticket, field("identifier", 320)));
    if (op == "otp/verify") return body_reply(hosted_.verify_otp(ticket, field("otp", 16)));
    if (op == "register/start") return body_reply(hosted_.register_start(ticket));
    if (op == "register/finish") return step_reply(hosted_.register_finish(ticket, credential));
    if (op == "cancel") return step_reply(hosted_.cancel(ticket));
    if (op == "registration/start") return body_reply(hosted_.registration_start(token));
    if (op == "registration/finish") return step_reply(hosted_.registration_finish(token, credential));
    if (op == "registration/cancel") return step_reply(hosted_.registration_cancel(token));
  }

  if (demo_ != nullptr && (path == "/demo" || path.starts_with("/demo/"))) {
    if (auto r = demo_->handle(req, path)) return respond(std::move(*r));
  }
  respond(json_response(404, R"({"message":"Not found","error_code":404})"));
}

}  // namespace sigil::server
