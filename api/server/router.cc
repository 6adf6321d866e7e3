#include "api/server/router.h"

#include <algorithm>
#include <fmt/format.h>

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
  w.key("token_endpoint").string(base + "/oidc/token");
  w.key("jwks_uri").string(base + "/cis/oidc/jwks");
  w.key("response_types_supported").begin_array().string("code").end_array();
  w.key("subject_types_supported").begin_array().string("public").end_array();
  w.key("id_token_signing_alg_values_supported").begin_array().string("ES256").end_array();
  w.key("token_endpoint_auth_methods_supported")
      .begin_array().string("client_secret_post").string("client_secret_basic").end_array();
  w.key("grant_types_supported")
      .begin_array().string("authorization_code").string("refresh_token").string("client_credentials").end_array();
  w.key("scopes_supported").begin_array().string("openid").string("offline_access").end_array();
  w.key("claims_supported").begin_array();
  for (const char* c : {"sub", "iss", "aud", "exp", "iat", "auth_time", "amr", "acr", "nonce", "tid", "sid",
                        "approval_data", "new_user", "email", "email_verified"}) {
    w.string(c);
  }
  w.end_array();
  w.end_object();
  return std::move(w).str();
}

}  // namespace

Router::Router(service::ServiceContext& ctx, std::string issuer)
    : ctx_(ctx),
      issuer_(std::move(issuer)),
      mobile_(ctx),
      oidc_(ctx),
      passwordless_(ctx, oidc_),
      webauthn_(ctx) {}

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
    return with_principal(ErrorStyle::kStandard,
                          [&](const auth::Principal& who, const service::Params&) { return oidc_.logout(who); });
  }
  if (path.starts_with("/v1/auth/mobile-biometrics/")) {
    const std::string_view op = path.substr(std::string_view("/v1/auth/mobile-biometrics/").size());
    using P = const service::Params&;
    using W = const auth::Principal&;
    if (op == "start" && method == "POST") {
      return with_principal(ErrorStyle::kStandard, [&](W w, P p) { return mobile_.start(w, p); });
    }
    if (op == "authenticate" && method == "POST") {
      return with_principal(ErrorStyle::kStandard, [&](W w, P p) { return mobile_.authenticate(w, p); });
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
      return with_principal(ErrorStyle::kStandard, [&](W w, P p) { return webauthn_.authenticate(w, p); });
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

}  // namespace sigil::server
