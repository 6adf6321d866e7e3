// API.md 1.1 (POST /oidc/token), 4.2 (POST /v1/token), 4.3 (logout): the OAuth side of sigil.
//
// Authorization codes: 256-bit random, stored by hash, 5 minutes, single use, bound to the client and
// redirect_uri they were issued for, and to the user, browser session, nonce, claims and resource of the
// authentication. A second redemption fails with invalid_grant and ends the session the first one created
// (so every token minted from the code stops working). PKCE (RFC 7636): a code issued with a
// code_challenge (S256 only) is redeemed only with the matching code_verifier; a verifier presented for a
// code issued without a challenge is refused too (downgrade); public clients always need PKCE.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/auth/ephemeral.h"
#include "api/auth/tokens.h"
#include "api/service/context.h"
#include "api/service/params.h"

namespace sigil::service {

// What a finished authentication grants, waiting to be exchanged.
struct PendingGrant {
  std::string client_id;
  std::string app_id;
  std::string redirect_uri;
  std::string user_id;       // empty when the user is to be created at exchange (email below)
  std::string email;         // verified by this flow
  bool create_new_user = false;
  std::string amr;           // "eotp", ...
  std::string nonce, claims_json, resource, approval_data_json;
  std::string client_attributes_json;  // stored on the session (API.md 0.5)
  std::string code_challenge;          // PKCE S256 challenge; empty = none
  Bytes browser_session;               // hosted login: SHA-256 of the browser session cookie; empty = none
  int64_t auth_time = 0;               // when the user authenticated; 0 = at exchange
  bool new_user = false;               // the flow created the user already (hosted passkey registration)
  std::vector<std::pair<std::string, std::string>> extra_id_claims;  // e.g. the `webauthn` object
};

// RFC 7636 4.1: 43..128 characters of [A-Za-z0-9-._~] (the same syntax for a S256 challenge's text).
[[nodiscard]] bool valid_pkce_text(std::string_view s) noexcept;
// BASE64URL(SHA256(verifier)) == challenge, compared in constant time.
[[nodiscard]] bool pkce_s256_matches(std::string_view verifier, std::string_view challenge) noexcept;

class Oidc {
 public:
  explicit Oidc(ServiceContext& ctx);

  // Stores the grant under a fresh code and returns the code.
  [[nodiscard]] Result<std::string> issue_code(PendingGrant grant);

  // POST /oidc/token. `basic_authorization` is the Authorization header (client_secret_basic) or empty.
  // Errors carry the OAuth error code in ts_error_code (invalid_request, invalid_client, invalid_grant,
  // unsupported_grant_type, invalid_target).
  [[nodiscard]] Result<std::string> token(const Params& in, std::string_view basic_authorization);
  // POST /v1/token (4.2): {"id_token","access_token","refresh_token","is_user_created"}.
  [[nodiscard]] Result<std::string> exchange_v1(const Params& in);
  // POST /v1/auth/logout (4.3). Also ends the browser session the token session came from, if any.
  [[nodiscard]] Result<std::string> logout(const auth::Principal& caller);
  // GET/POST /oidc/userinfo (OIDC Core 5.3): a user access token's subject. kUnauthenticated for client
  // tokens (the router answers 401 invalid_token).
  [[nodiscard]] Result<std::string> userinfo(const auth::Principal& caller);

  // Redeems a grant into a user login (creating the user when the grant says so). Used by the code
  // exchange and by flows that hand out an ID token directly.
  [[nodiscard]] Result<auth::TokenSet> redeem(const PendingGrant& grant, bool* user_created);

 private:
  [[nodiscard]] Result<auth::TokenSet> redeem_code(const store::Client& client, std::string_view code,
                                                   std::string_view redirect_uri, bool check_redirect,
                                                   std::string_view code_verifier, bool* user_created);

  ServiceContext& ctx_;
  auth::EphemeralMap<PendingGrant> codes_;       // code hash -> grant
  auth::EphemeralMap<std::string> redeemed_;     // code hash -> session id, for reuse detection
};

// `Authorization: Basic base64(id:secret)` (RFC 6749 2.3.1: both parts form-urlencoded).
[[nodiscard]] Result<std::pair<std::string, std::string>> parse_basic_credentials(std::string_view header);

}  // namespace sigil::service
