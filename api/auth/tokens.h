// The token and session layer: signing keys, client authentication, access/ID tokens, sessions,
// refresh-token rotation with reuse detection, bearer-token authentication and logout.
//
// Guarantees: every token is an ES256 JWT with `kid` and `typ` (at+jwt / JWT) signed by the active key;
// user access tokens carry `sid` and are refused (401) once their session has ended; refresh tokens are
// opaque 256-bit strings stored as SHA-256 hashes, rotated on every use, and a rotated token presented
// again revokes its whole family and its session; a login's session, refresh token and authenticator
// update are committed durably before any token is returned.
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth/ephemeral.h"
#include "api/auth/jwt.h"
#include "api/store/store.h"
#include "engine/base/clock.h"
#include "engine/base/result.h"

namespace sigil::auth {

struct AuthConfig {
  std::string issuer;                       // `iss` of every token
  int64_t access_ttl_s = 3600;
  int64_t refresh_ttl_s = 14 * 24 * 3600;   // API.md 1.5
  int64_t refresh_family_max_s = 365 * 24 * 3600;
  std::string default_audience = "userid-api";
};

// Loads the key-encryption key: $SIGIL_KEK (base64 of 32 bytes) if set, else `<data_dir>/kek`, created
// with mode 0600 on first run. kUnavailable when it cannot be read or created.
[[nodiscard]] Result<Bytes> load_or_create_kek(const std::string& data_dir);

// Unseals every stored signing key; creates (and stores, sealed) a P-256 key when there is none.
[[nodiscard]] Result<std::shared_ptr<const KeySet>> load_or_create_signing_keys(store::Store& store,
                                                                               ByteView kek,
                                                                               const Clock& clock);

// Who called: from a verified bearer token.
struct Principal {
  enum class Kind { kClient, kUser };
  Kind kind = Kind::kClient;
  std::string client_id;
  std::string app_id;
  std::string tenant_id;
  std::string user_id;     // kUser only
  std::string session_id;  // kUser only
  [[nodiscard]] bool is_user() const noexcept { return kind == Kind::kUser; }
};

struct TokenSet {
  std::string access_token;
  std::string id_token;       // empty for client tokens
  std::string refresh_token;  // empty for client tokens
  std::string scope;
  std::string session_id;
  int64_t expires_in = 0;
};

// Everything a successful authentication contributes to tokens.
struct LoginRequest {
  const store::App* app = nullptr;
  std::string client_id;
  store::User user;
  std::string amr;                        // method of this authentication, e.g. "mobile_biometrics"
  std::string join_session_id;            // API.md 0.5 session_id; empty = new session
  std::string client_attributes_json;     // "{}" when none
  std::string resource;                   // validated audience; empty = default
  std::string approval_data_json;         // flat object, or empty
  std::string claims_json;                // OIDC claims request, or empty
  std::string nonce;
  bool new_user = false;
  // When the user actually authenticated (a browser session reused by the hosted login); 0 = now.
  int64_t auth_time = 0;
  // Touch this mobile key's last-use in the same transaction.
  std::string mobile_key_id;
  // Or update this WebAuthn credential's sign count, backup state and last use.
  Bytes webauthn_credential_id;
  int64_t webauthn_sign_count = 0;
  bool webauthn_backup_state = false;
  // Extra ID-token claims: name -> serialised JSON value (e.g. the `webauthn` object).
  std::vector<std::pair<std::string, std::string>> extra_id_claims;
};

class TokenService {
 public:
  TokenService(store::Store& store, const Clock& clock, AuthConfig config,
               std::shared_ptr<const KeySet> keys);

  [[nodiscard]] const AuthConfig& config() const noexcept { return config_; }
  [[nodiscard]] const KeySet& keys() const noexcept { return *keys_; }

  // client_secret_post / client_secret_basic. One generic failure (kUnauthenticated) for unknown client
  // and wrong secret; the comparison is constant-time. A public client (no secret) authenticates with an
  // empty secret only; the caller must then demand PKCE (it proves nothing else).
  [[nodiscard]] Result<store::Client> authenticate_client(std::string_view client_id,
                                                          std::string_view client_secret);

  // `resource` must be configured for the app (else 400 invalid_resource); empty = default audience.
  [[nodiscard]] Result<std::string> resolve_audience(const store::App& app, std::string_view resource) const;

  [[nodiscard]] Result<TokenSet> issue_client_token(const store::Client& client, const store::App& app,
                                                    std::string_view resource, std::string_view scope);

  // Creates or joins the session, stores the refresh token, then signs access + ID tokens.
  [[nodiscard]] Result<TokenSet> login(const LoginRequest& req);
  // The same without blocking on the store: `done` runs on the store's writer thread once the login is
  // durable (or failed); the tokens never reach `done` before their session is committed.
  void login_async(const LoginRequest& req, std::function<void(Result<TokenSet>)> done);

  // grant_type=refresh_token. Failures are kInvalidArgument with ts_error_code "invalid_grant".
  [[nodiscard]] Result<TokenSet> refresh(const store::Client& client, std::string_view refresh_token);

  // Verifies `Authorization: Bearer <jwt>`; user tokens must belong to an active session.
  [[nodiscard]] Result<Principal> authenticate_bearer(std::string_view authorization_header);

  // Ends the principal's session; returns how many sessions were ended (0 or 1).
  [[nodiscard]] Result<int> logout(const Principal& user);

  // Ends a session (code reuse): its refresh tokens die and its access tokens stop verifying.
  [[nodiscard]] Result<void> revoke_session(const std::string& session_id);

 private:
  struct PreparedLogin {
    store::LoginWrite write;
    TokenSet tokens;
  };
  [[nodiscard]] Result<PreparedLogin> prepare_login(const LoginRequest& req);
  [[nodiscard]] Result<TokenSet> sign_user_tokens(const store::App& app, const std::string& client_id,
                                                  const store::User& user, const store::Session& session,
                                                  const std::string& audience, const std::string& scope,
                                                  const LoginRequest* login, std::string refresh_token);

  store::Store& store_;
  const Clock& clock_;
  AuthConfig config_;
  std::shared_ptr<const KeySet> keys_;
  // Access tokens already verified, by SHA-256 of the token, until their `exp` (bounded).
  EphemeralMap<Principal> verified_;
};

}  // namespace sigil::auth
