#include "api/server/demo_rp.h"

#include <fmt/format.h>
#include <simdjson.h>

#include "api/auth/jwt.h"
#include "api/http/server.h"
#include "api/server/assets.h"
#include "api/server/web.h"
#include "api/service/passwordless.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::server {
namespace {

constexpr int64_t kPendingTtlMs = 10 * 60 * 1000;

std::string cookie_key(std::string_view cookie) { return crypto::base64url_encode(crypto::sha256(as_bytes(cookie))); }

// Indents compact JSON for display (strings are copied verbatim, escapes included).
std::string pretty_json(std::string_view json) {
  std::string out;
  int depth = 0;
  bool in_string = false;
  auto newline = [&] { out += '\n'; out.append(static_cast<size_t>(depth) * 2, ' '); };
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < json.size()) out += json[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; out += c; break;
      case '{': case '[':
        out += c;
        if (i + 1 < json.size() && (json[i + 1] == '}' || json[i + 1] == ']')) break;
        ++depth;
        newline();
        break;
      case '}': case ']':
        if (i > 0 && json[i - 1] != '{' && json[i - 1] != '[') {
          --depth;
          newline();
        }
        out += c;
        break;
      case ',': out += c; newline(); break;
      case ':': out += ": "; break;
      default: out += c;
    }
  }
  return out;
}

std::string json_member(const std::string& json, std::string_view name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return {};
  simdjson::dom::element e;
  if (root[name].get(e)) return {};
  std::string_view s;
  if (!e.get_string().get(s)) return std::string(s);
  return simdjson::minify(e);
}

std::string asset_text(std::string_view name) {
  const EmbeddedAsset* a = find_asset(name);
  return a == nullptr ? std::string() : std::string(a->data);
}

}  // namespace

DemoRp::DemoRp(service::ServiceContext& ctx, service::Oidc& oidc, DemoRpConfig config)
    : ctx_(ctx),
      oidc_(oidc),
      config_(std::move(config)),
      secure_(config_.public_url.starts_with("https://")),
      pending_(ctx.clock, 100'000) {}

std::optional<http::Response> DemoRp::handle(const http::Request& req, std::string_view path) {
  if (req.method != "GET" && req.method != "HEAD") return std::nullopt;
  if (path == "/demo") return html_response(200, asset_text("demo.html"));
  if (path == "/demo/login" && req.method == "GET") {
    Pending p;
    p.state = crypto::random_token(16);
    p.nonce = crypto::random_token(16);
    p.verifier = crypto::random_token(32);  // 43 characters of base64url: a valid RFC 7636 verifier
    const std::string challenge = crypto::base64url_encode(crypto::sha256(as_bytes(p.verifier)));
    const std::string cookie = crypto::random_token(32);
    const std::string location = service::append_query(
        config_.public_url + "/oidc/auth",
        {{"response_type", "code"},
         {"client_id", config_.client_id},
         {"redirect_uri", redirect_uri()},
         {"scope", "openid email"},
         {"state", p.state},
         {"nonce", p.nonce},
         {"code_challenge", challenge},
         {"code_challenge_method", "S256"},
         {"claims", R"({"id_token":{"email":null,"email_verified":null}})"}});
    auto put = pending_.put(cookie_key(cookie), std::move(p), kPendingTtlMs);
    if (!put) return html_response(503, "<!doctype html><title>Busy</title><p>Try again later.</p>");
    http::Response r = redirect_response(location);
    r.headers.emplace_back("Set-Cookie", fmt::format("sigil_demo={}; Path=/demo; Max-Age=600; HttpOnly; SameSite=Lax{}",
                                                     cookie, secure_ ? "; Secure" : ""));
    return r;
  }
  if (path == "/demo/callback" && req.method == "GET") return callback(req);
  return std::nullopt;
}

http::Response DemoRp::callback(const http::Request& req) {
  std::vector<std::pair<std::string, std::string>> values = {
      {"client_id", config_.client_id}, {"logout_uri", logout_uri()}, {"user_hidden", " hidden"}, {"error_hidden", ""}};
  auto page = [&](int status, std::string heading, std::string error) {
    values.emplace_back("heading", std::move(heading));
    values.emplace_back("error", std::move(error));
    http::Response r = html_response(status, render_template(asset_text("demo-result.html"), values));
    r.headers.emplace_back("Set-Cookie", fmt::format("sigil_demo=; Path=/demo; Max-Age=0; HttpOnly; SameSite=Lax{}",
                                                     secure_ ? "; Secure" : ""));
    return r;
  };
  auto query = http::parse_form(req.query);
  if (!query) return page(400, "Sign-in failed", "The callback's query string is malformed.");
  std::string code, state, error, description;
  for (const auto& [k, v] : *query) {
    if (k == "code") code = v;
    else if (k == "state") state = v;
    else if (k == "error") error = v;
    else if (k == "error_description") description = v;
  }
  const std::string cookie = cookie_value(req.header("cookie"), "sigil_demo");
  auto pending = cookie.empty() || cookie.size() > 128 ? std::nullopt : pending_.take(cookie_key(cookie));
  if (!pending) return page(400, "Sign-in failed", "No sign-in is in progress in this browser (it expired?). Start again.");
  if (!crypto::ct_equal(as_bytes(state), as_bytes(pending->state))) {
    return page(400, "Sign-in failed", "The state does not match: this response was not meant for this browser.");
  }
  if (!error.empty()) return page(400, "Sign-in failed", fmt::format("{}: {}", error, description));
  if (code.empty()) return page(400, "Sign-in failed", "The callback carries no code.");

  // The code exchange, in process, exactly as a backend would post it to /oidc/token.
  auto params = service::Params::from_pairs({{"grant_type", "authorization_code"},
                                             {"code", code},
                                             {"redirect_uri", redirect_uri()},
                                             {"code_verifier", pending->verifier},
                                             {"client_id", config_.client_id},
                                             {"client_secret", config_.client_secret}});
  if (!params) return page(500, "Sign-in failed", "Internal error");
  auto tokens = oidc_.token(*params, "");
  if (!tokens) return page(400, "Sign-in failed", fmt::format("Token exchange refused: {}", tokens.error().message));
  const std::string id_token = json_member(*tokens, "id_token");
  const std::string access_token = json_member(*tokens, "access_token");
  auto verified = auth::verify_jwt(ctx_.tokens.keys(), id_token, config_.issuer, "JWT", ctx_.clock.now_s());
  if (!verified) return page(400, "Sign-in failed", "The ID token did not verify.");
  const std::string& claims = verified->payload_json();
  if (json_member(claims, "aud") != config_.client_id) return page(400, "Sign-in failed", "The ID token is for another client.");
  if (!crypto::ct_equal(as_bytes(json_member(claims, "nonce")), as_bytes(pending->nonce))) {
    return page(400, "Sign-in failed", "The ID token's nonce does not match.");
  }
  const auto digest = crypto::sha256(as_bytes(access_token));
  if (json_member(claims, "at_hash") != crypto::base64url_encode(ByteView(digest.data(), digest.size() / 2))) {
    return page(400, "Sign-in failed", "The ID token's at_hash does not match the access token.");
  }
  std::string userinfo = "(unavailable)";
  if (auto who = ctx_.tokens.authenticate_bearer("Bearer " + access_token)) {
    if (auto info = oidc_.userinfo(*who)) userinfo = pretty_json(*info);
  }
  values = {{"client_id", config_.client_id}, {"logout_uri", logout_uri()}, {"user_hidden", ""},
            {"error_hidden", " hidden"},      {"sub", json_member(claims, "sub")},
            {"email", json_member(claims, "email")}, {"amr", json_member(claims, "amr")},
            {"claims", pretty_json(claims)},  {"userinfo", userinfo}};
  return page(200, "You are signed in", "");
}

}  // namespace sigil::server
