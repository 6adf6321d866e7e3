// Hosted login (API.md 4.1, GET /v1/auth/webauthn), the standard OpenID Provider front door (GET /oidc/auth)
// and the hosted passkey registration page (API.md 3.7): the transport-free part. The router renders the
// pages and maps these results onto redirects, cookies and JSON.
//
// Guarantees:
// - client_id and redirect_uri are vetted first (exact string match with a URI registered for the client's
//   app); until both pass, nothing redirects (the caller answers 400). Every later failure redirects to the
//   vetted URI with error, error_description and the state.
// - A ticket (random 256-bit id, stored under a keyed hash) holds every request parameter for 10 minutes;
//   it is used up when the flow completes (success, cancel, or a failure that ends it). The WebAuthn
//   ceremonies and the email code it runs never leave the server: the page only holds the ticket.
// - Codes are issued through Oidc::issue_code, bound to client, redirect_uri, user, browser session, nonce,
//   claims, resource and the PKCE challenge (S256 only; required for public clients).
// - A browser session (cookie value random 256-bit, stored as SHA-256, 24 h) lets a later request of any app
//   of the same tenant skip the ceremony unless prompt=login or max_age says otherwise.
// - Email codes: 6 CSPRNG digits stored as a keyed hash, 10 minutes, 5 wrong attempts end the flow; at most
//   5 sends per ticket and per address in 15 minutes.
// - require_mfa and verifications=phone are refused with invalid_request until the SMS work lands.
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth/ephemeral.h"
#include "api/service/context.h"
#include "api/service/oidc.h"
#include "api/service/params.h"
#include "api/service/webauthn.h"

namespace sigil::service {

struct HostedOptions {
  int64_t ticket_ttl_ms = 10 * 60 * 1000;
  int64_t browser_session_ttl_s = 24 * 3600;
};

// Which front door a request came through.
enum class HostedFlavor { kHostedV1, kOidc };

// Where the browser goes next, and a browser session to set when one was created.
struct HostedStep {
  std::string location;                 // 302 target (begin) or the page's next navigation (API)
  std::string new_browser_session;      // cookie value to set; empty = none
};

// What the login page shows.
struct LoginView {
  std::string locale;          // "en" | "fr"
  std::string app_name;
  std::string login_hint;
  std::string custom_message;
  bool create_new_user = true;
};

// What the hosted registration page shows.
struct RegistrationView {
  std::string locale;
  std::string app_name;
  std::string identifier;
};

// The UI language from a space-separated list of RFC 5646 tags (first supported wins; default "en").
[[nodiscard]] std::string pick_locale(std::string_view ui_locales);

class Hosted {
 public:
  Hosted(ServiceContext& ctx, Oidc& oidc, WebAuthn& webauthn, HostedOptions options = {});

  // GET /v1/auth/webauthn and GET /oidc/auth. `browser_cookie`: the session cookie's value, or empty.
  // Error = the request could not be vetted (400, never a redirect); message "Invalid redirect_uri" (or the
  // store's 503). Otherwise the Location: the login page, the redirect_uri with a code (a live browser
  // session), or the redirect_uri with an error.
  [[nodiscard]] Result<HostedStep> begin(const Params& in, HostedFlavor flavor, std::string_view browser_cookie);

  // The login page for a ticket; kNotFound when unknown or expired.
  [[nodiscard]] Result<LoginView> login_view(std::string_view ticket);

  // JSON endpoints of the login page (all bound to the ticket). Bodies are JSON objects; a `location` member
  // tells the page to navigate there (success, or a failure that ended the flow).
  // {"publicKey":{...}}: a usernameless assertion (also used for conditional mediation).
  [[nodiscard]] Result<std::string> passkey_start(std::string_view ticket);
  [[nodiscard]] Result<HostedStep> passkey_finish(std::string_view ticket, std::string_view credential_json);
  // {"next":"passkey","publicKey":{...}} for a user with passkeys, else {"next":"otp"} after sending a code.
  [[nodiscard]] Result<std::string> identify(std::string_view ticket, std::string_view identifier);
  // {"next":"register"} once the code matches; {"location":...} when too many attempts ended the flow.
  [[nodiscard]] Result<std::string> verify_otp(std::string_view ticket, std::string_view otp);
  [[nodiscard]] Result<std::string> register_start(std::string_view ticket);
  [[nodiscard]] Result<HostedStep> register_finish(std::string_view ticket, std::string_view credential_json);
  [[nodiscard]] Result<HostedStep> cancel(std::string_view ticket);

  // Hosted registration (API.md 3.7), keyed by the register_webauthn_cred_token. The token is used up at
  // finish or cancel; the page can be reloaded until then.
  [[nodiscard]] Result<RegistrationView> registration_view(std::string_view token, std::string_view accept_language);
  [[nodiscard]] Result<std::string> registration_start(std::string_view token);
  [[nodiscard]] Result<HostedStep> registration_finish(std::string_view token, std::string_view credential_json);
  [[nodiscard]] Result<HostedStep> registration_cancel(std::string_view token);

  // Ends the browser session behind a cookie value (GET /oidc/logout); false when there was none.
  [[nodiscard]] Result<bool> end_browser_session(std::string_view browser_cookie);

  // GET /oidc/logout: vets post_logout_redirect_uri against the client's registered redirect URIs.
  [[nodiscard]] Result<bool> logout_redirect_allowed(std::string_view client_id, std::string_view uri);

 private:
  struct Ticket {
    HostedFlavor flavor = HostedFlavor::kHostedV1;
    std::string app_id, tenant_id, client_id, redirect_uri, state, nonce;
    std::string login_hint, custom_message, locale, claims_json, resource, code_challenge;
    bool create_new_user = true;
    // Progress.
    std::string ceremony_id;        // the current WebAuthn ceremony
    std::string email;              // identifier entered (normalised)
    std::string user_id;            // the user with that email, when one exists
    std::string otp_hash;           // keyed hash of the pending code
    int64_t otp_expires_ms = 0;
    int otp_attempts = 0;
    int otp_sends = 0;
    bool email_verified = false;
  };

  [[nodiscard]] std::string keyed(std::string_view purpose, std::string_view value) const;
  [[nodiscard]] Result<Ticket> peek(std::string_view ticket);
  void store_back(std::string_view ticket, const Ticket& t);
  // Issues the code (and a browser session) and ends the ticket.
  [[nodiscard]] Result<HostedStep> complete(std::string_view ticket_id, const Ticket& t, const store::User& user,
                                            const std::string& amr,
                                            std::vector<std::pair<std::string, std::string>> claims, bool new_user);
  [[nodiscard]] Result<std::string> send_otp(std::string_view ticket_id, Ticket& t, const store::App& app);
  [[nodiscard]] Result<store::App> app_of_ticket(const Ticket& t);

  ServiceContext& ctx_;
  Oidc& oidc_;
  WebAuthn& webauthn_;
  HostedOptions options_;
  auth::EphemeralMap<Ticket> tickets_;                 // keyed hash of the ticket id
  auth::EphemeralMap<int> send_counts_;                // app \n email -> code sends in the window
  auth::EphemeralMap<std::string> registrations_;      // keyed hash of a 3.7 token -> ceremony id
};

// Appends error, error_description and (when non-empty) state to a vetted redirect URI.
[[nodiscard]] std::string error_redirect(const std::string& redirect_uri, std::string_view error,
                                         std::string_view description, std::string_view state);

}  // namespace sigil::service
