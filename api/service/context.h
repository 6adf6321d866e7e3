// What every service module works with. Built once at start-up by api/server; services hold references.
#pragma once

#include <functional>
#include <string>

#include "api/auth/ephemeral.h"
#include "api/auth/tokens.h"
#include "api/service/outbox.h"
#include "api/store/store.h"
#include "engine/base/clock.h"
#include "engine/challenge/challenge_store.h"
#include "engine/crypto/bytes.h"

namespace sigil::service {

struct ServiceContext {
  store::Store& store;
  auth::TokenService& tokens;
  challenge::ChallengeStore& challenges;
  EmailSender& email;
  const Clock& clock;
  std::string public_url;  // external base URL, e.g. "http://localhost:8080" (links in `result`, emails)
  Bytes otp_key;           // key of the keyed hash that stores OTPs and one-time tokens
};

// A verified authentication, ready for TokenService::login / login_async. Heap-held so that login.app
// (a pointer to `app`) stays valid.
struct PreparedLogin {
  store::App app;
  auth::LoginRequest login;
};
// The backend token response (API.md 0.5) of a login, or its error; called once.
using LoginDone = std::function<void(Result<std::string>)>;

// The caller's app, from a verified principal. 401 if the app no longer exists.
[[nodiscard]] Result<store::App> app_of(ServiceContext& ctx, const auth::Principal& p);
[[nodiscard]] Result<void> require_client(const auth::Principal& p);
[[nodiscard]] Result<void> require_user(const auth::Principal& p);

// Lower-cases and checks an email address (one '@', non-empty parts, <= 254 chars, no spaces/controls).
[[nodiscard]] Result<std::string> normalize_email(std::string_view email);

}  // namespace sigil::service
