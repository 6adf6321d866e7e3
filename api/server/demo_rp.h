// The demo relying party (config `demo_rp`): a small OpenID Connect client served by sigild itself for the
// demo app, so that a newcomer who ran tools/run can open /demo and sign in with a passkey.
//
// GET /demo explains sigil; GET /demo/login starts /oidc/auth with a random state and nonce and a PKCE S256
// verifier kept server-side behind a `sigil_demo` cookie (Path=/demo, HttpOnly, SameSite=Lax, single use);
// GET /demo/callback checks the state, exchanges the code in process (service::Oidc with the demo client's
// credentials from <data_dir>/demo-app.json), verifies the ID token (signature, iss, aud, nonce, at_hash) and
// shows the user, the claims, /oidc/userinfo's answer and a logout button (GET /oidc/logout).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "api/auth/ephemeral.h"
#include "api/http/server.h"
#include "api/service/context.h"
#include "api/service/oidc.h"

namespace sigil::server {

struct DemoRpConfig {
  std::string client_id, client_secret;
  std::string public_url;  // base of /demo, /demo/callback and /oidc/auth
  std::string issuer;
};

class DemoRp {
 public:
  DemoRp(service::ServiceContext& ctx, service::Oidc& oidc, DemoRpConfig config);
  // A response for /demo and /demo/...; nullopt for any other path.
  [[nodiscard]] std::optional<http::Response> handle(const http::Request& req, std::string_view path);

  [[nodiscard]] std::string redirect_uri() const { return config_.public_url + "/demo/callback"; }
  [[nodiscard]] std::string logout_uri() const { return config_.public_url + "/demo"; }

 private:
  struct Pending {
    std::string state, nonce, verifier;
  };
  [[nodiscard]] http::Response callback(const http::Request& req);

  service::ServiceContext& ctx_;
  service::Oidc& oidc_;
  DemoRpConfig config_;
  bool secure_;
  auth::EphemeralMap<Pending> pending_;  // SHA-256 of the demo cookie -> the request in flight
};

}  // namespace sigil::server
