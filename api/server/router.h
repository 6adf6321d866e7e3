// Maps HTTP requests onto the service modules and service results onto the API's bodies (API.md 0.4).
// Thin: no business rules here, only transport (paths, media types, bearer extraction, error shapes).
#pragma once

#include "api/http/server.h"
#include "api/service/context.h"
#include "api/service/mobile_biometrics.h"
#include "api/service/oidc.h"
#include "api/service/passwordless.h"
#include "api/service/webauthn.h"

namespace sigil::server {

class Router {
 public:
  Router(service::ServiceContext& ctx, std::string issuer);
  void handle(http::Request&& req, const http::Responder& respond);

 private:
  service::ServiceContext& ctx_;
  std::string issuer_;
  service::MobileBiometrics mobile_;
  service::Oidc oidc_;
  service::Passwordless passwordless_;
  service::WebAuthn webauthn_;
};

}  // namespace sigil::server
