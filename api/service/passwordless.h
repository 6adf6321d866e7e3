// API.md 5.3, 5.4, 5.7: email one-time passcodes.
//
// Guarantees: OTPs are 6 CSPRNG digits stored only as a keyed hash, valid 10 minutes, at most 5 wrong
// attempts (then invalidated), one pending OTP per app and address (a new send replaces the old one),
// compared in constant time; sends are rate-limited per address (5 per 15 minutes, 429 beyond). A correct
// passcode yields a `result` URI carrying a one-time token (2 minutes, single use) whose GET redirects to
// the redirect_uri with an authorization code (or an ID token with response_type=id_token).
#pragma once

#include <string>

#include "api/auth/ephemeral.h"
#include "api/service/context.h"
#include "api/service/oidc.h"
#include "api/service/params.h"

namespace sigil::service {

class Passwordless {
 public:
  Passwordless(ServiceContext& ctx, Oidc& oidc);

  [[nodiscard]] Result<std::string> send_email_otp(const auth::Principal& caller, const Params& in);
  // Errors use the array-message shape (the router renders them so).
  [[nodiscard]] Result<std::string> validate_email_otp(const auth::Principal& caller, const Params& in);
  // GET /v1/auth/complete?t=...: the Location to redirect the browser to.
  [[nodiscard]] Result<std::string> complete(std::string_view token);

 private:
  struct PendingOtp {
    Bytes passcode_hash;
    int64_t expires_at_ms = 0;  // the map keeps the entry a while longer, to say "expired" / "locked"
    int attempts = 0;
    bool locked = false;
    PendingGrant grant;
  };
  struct Completion {
    PendingGrant grant;
    std::string response_type;  // "code" | "id_token"
  };

  [[nodiscard]] std::string keyed_hash(std::string_view purpose, std::string_view value) const;

  ServiceContext& ctx_;
  Oidc& oidc_;
  auth::EphemeralMap<PendingOtp> otps_;          // app_id \n email -> pending OTP
  auth::EphemeralMap<Completion> completions_;   // keyed hash of the one-time token
  auth::EphemeralMap<int> send_counts_;          // app_id \n email -> sends in the window
};

// Appends `name=value` query parameters to a URI (percent-encoded), keeping any query it has.
[[nodiscard]] std::string append_query(std::string uri,
                                       std::initializer_list<std::pair<std::string_view, std::string_view>> params);

}  // namespace sigil::service
