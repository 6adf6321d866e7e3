// Maps HTTP requests onto the service modules and service results onto the API's bodies (API.md 0.4).
// Thin: no business rules here, only transport (paths, media types, bearer extraction, error shapes).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "api/http/server.h"
#include "api/server/demo_rp.h"
#include "api/service/context.h"
#include "api/service/hosted.h"
#include "api/service/mobile_biometrics.h"
#include "api/service/oidc.h"
#include "api/service/passwordless.h"
#include "api/service/webauthn.h"
#include "engine/batch/batch_verifier.h"

namespace sigil::server {

struct RouterOptions {
  std::string issuer;
  // The demo relying party (/demo...) is served only when set (config demo_rp and a demo app).
  std::optional<DemoRpConfig> demo_rp;
  // When set, the login completions (mobile and WebAuthn authenticate) leave the I/O thread: verification
  // and token signing run on this arena, and the answer leaves from the store's writer after the commit.
  batch::BatchVerifier* verifier = nullptr;
};

class Router {
 public:
  Router(service::ServiceContext& ctx, std::string issuer);
  Router(service::ServiceContext& ctx, RouterOptions options);
  void handle(http::Request&& req, const http::Responder& respond);

  // The browser-session cookie: `__Host-sigil_session` (Secure) when public_url is https, else
  // `sigil_session`; HttpOnly, SameSite=Lax, Path=/, no Domain.
  [[nodiscard]] const std::string& session_cookie_name() const noexcept { return cookie_name_; }

 private:
  void handle_hosted(http::Request& req, std::string_view path, const http::Responder& respond);
  [[nodiscard]] std::string session_cookie(std::string_view value, int64_t max_age_s) const;

  service::ServiceContext& ctx_;
  std::string issuer_;
  service::MobileBiometrics mobile_;
  service::Oidc oidc_;
  service::Passwordless passwordless_;
  service::WebAuthn webauthn_;
  service::Hosted hosted_;
  std::unique_ptr<DemoRp> demo_;
  bool secure_cookies_;
  std::string cookie_name_;
  batch::BatchVerifier* verifier_;
};

}  // namespace sigil::server
