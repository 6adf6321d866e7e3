// The durable store interface. Backends: sqlite (embedded default); postgres later.
//
// Guarantees (DESIGN.md "Durability"): a call that returns success has committed its writes durably (for
// SQLite: WAL with synchronous=FULL). Failures of the storage itself return kUnavailable (503), never a
// half-applied write. Lookups of absent rows return std::nullopt, not an error.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/store/model.h"
#include "engine/base/result.h"

namespace sigil::store {

class Store {
 public:
  virtual ~Store() = default;

  // Tenants, apps, clients.
  [[nodiscard]] virtual Result<void> create_tenant(const Tenant& t) = 0;
  [[nodiscard]] virtual Result<std::optional<Tenant>> find_tenant(const std::string& id) = 0;
  [[nodiscard]] virtual Result<std::vector<Tenant>> list_tenants() = 0;
  [[nodiscard]] virtual Result<void> create_app(const App& app) = 0;
  [[nodiscard]] virtual Result<void> update_app(const App& app) = 0;
  [[nodiscard]] virtual Result<std::optional<App>> find_app(const std::string& app_id) = 0;
  [[nodiscard]] virtual Result<std::optional<App>> find_app_by_name(const std::string& tenant_id,
                                                                   const std::string& name) = 0;
  [[nodiscard]] virtual Result<std::vector<App>> list_apps() = 0;
  [[nodiscard]] virtual Result<void> create_client(const Client& c) = 0;
  [[nodiscard]] virtual Result<std::optional<Client>> find_client(const std::string& client_id) = 0;
  [[nodiscard]] virtual Result<std::vector<Client>> list_clients(const std::string& app_id) = 0;

  // Users (per tenant). Email unique per tenant (kConflict on duplicates).
  [[nodiscard]] virtual Result<void> create_user(const User& u) = 0;
  [[nodiscard]] virtual Result<std::optional<User>> find_user(const std::string& user_id) = 0;
  [[nodiscard]] virtual Result<std::optional<User>> find_user_by_email(const std::string& tenant_id,
                                                                      const std::string& email) = 0;
  [[nodiscard]] virtual Result<std::optional<User>> find_user_by_phone(const std::string& tenant_id,
                                                                      const std::string& phone) = 0;
  [[nodiscard]] virtual Result<void> set_email_verified(const std::string& user_id) = 0;
  [[nodiscard]] virtual Result<std::optional<User>> find_user_by_external_id(const std::string& tenant_id,
                                                                            const std::string& external_id) = 0;

  // WebAuthn accounts and credentials (API.md 3). Credential ids are unique across all apps.
  [[nodiscard]] virtual Result<std::optional<WebAuthnAccount>> find_webauthn_account(
      const std::string& app_id, const std::string& username) = 0;
  [[nodiscard]] virtual Result<std::optional<WebAuthnAccount>> find_webauthn_account_by_handle(
      const std::string& app_id, const Bytes& user_handle) = 0;
  // One transaction: creates `new_user` when given; creates the account when it does not exist, or checks
  // that it belongs to cred.user_id (kConflict, ts_error_code "auth_username_taken"); inserts the
  // credential (kConflict, ts_error_code "auth_credential_exists" when its id exists).
  [[nodiscard]] virtual Result<void> register_webauthn_credential(const std::optional<User>& new_user,
                                                                  const WebAuthnAccount& account,
                                                                  const WebAuthnCredential& cred) = 0;
  [[nodiscard]] virtual Result<std::optional<WebAuthnCredential>> find_webauthn_credential(
      const Bytes& credential_id) = 0;
  [[nodiscard]] virtual Result<std::vector<WebAuthnCredential>> list_webauthn_credentials(
      const std::string& app_id, const std::string& user_id) = 0;
  [[nodiscard]] virtual Result<std::vector<WebAuthnCredential>> list_webauthn_credentials_by_username(
      const std::string& app_id, const std::string& username) = 0;
  // Deletes only the caller's own credential; returns whether a row was deleted.
  [[nodiscard]] virtual Result<bool> delete_webauthn_credential(const std::string& app_id,
                                                                const std::string& user_id,
                                                                const Bytes& credential_id) = 0;
  [[nodiscard]] virtual Result<void> flag_webauthn_credential(const Bytes& credential_id, int64_t now) = 0;

  // Mobile-biometric keys, keyed by (app_id, key_id). insert: kConflict when the id exists in the app.
  [[nodiscard]] virtual Result<void> insert_mobile_key(const MobileKey& k) = 0;
  [[nodiscard]] virtual Result<std::optional<MobileKey>> find_mobile_key(const std::string& app_id,
                                                                        const std::string& key_id) = 0;
  [[nodiscard]] virtual Result<int> count_mobile_keys(const std::string& app_id,
                                                      const std::string& user_id) = 0;
  // Deletes the key only if it belongs to user_id; returns whether a row was deleted.
  [[nodiscard]] virtual Result<bool> delete_mobile_key(const std::string& app_id,
                                                       const std::string& user_id,
                                                       const std::string& key_id) = 0;

  // Sessions.
  [[nodiscard]] virtual Result<std::optional<Session>> find_session(const std::string& id) = 0;
  // Ends the session and revokes its refresh tokens in one transaction; returns false if it was
  // unknown or already ended.
  [[nodiscard]] virtual Result<bool> end_session(const std::string& id, int64_t now) = 0;

  // Browser sessions of the hosted pages (keyed by the SHA-256 of the cookie value).
  [[nodiscard]] virtual Result<void> create_browser_session(const BrowserSession& s) = 0;
  [[nodiscard]] virtual Result<std::optional<BrowserSession>> find_browser_session(const Bytes& id_hash) = 0;
  // Records that token session `session_id` was minted from a code of the browser session.
  [[nodiscard]] virtual Result<void> link_browser_session(const Bytes& id_hash, const std::string& session_id) = 0;
  // Ends the browser session and every token session linked to it (their refresh tokens are revoked), in
  // one transaction; returns false when it was unknown or already ended.
  [[nodiscard]] virtual Result<bool> end_browser_session(const Bytes& id_hash, int64_t now) = 0;
  // The browser session a token session was minted from, if any.
  [[nodiscard]] virtual Result<std::optional<Bytes>> browser_session_of(const std::string& session_id) = 0;

  // Login: session + refresh token + authenticator last-use, atomically.
  [[nodiscard]] virtual Result<void> commit_login(const LoginWrite& w) = 0;
  // The same without blocking the caller: `done` runs on a store thread once the write is durable (or
  // failed). Backends without their own writer thread complete it inline.
  virtual void commit_login_async(LoginWrite w, std::function<void(Result<void>)> done) { done(commit_login(w)); }

  // Refresh tokens.
  [[nodiscard]] virtual Result<std::optional<RefreshToken>> find_refresh_token(const Bytes& hash) = 0;
  // Marks `old_hash` rotated at `now` and inserts `next`, atomically, only if `old_hash` is still current
  // (not rotated, not revoked); returns false (writing nothing) otherwise.
  [[nodiscard]] virtual Result<bool> rotate_refresh_token(const Bytes& old_hash, const RefreshToken& next,
                                                          int64_t now) = 0;
  // Reuse detected: revokes every token of the family and ends their session, atomically.
  [[nodiscard]] virtual Result<void> revoke_refresh_family(const std::string& family_id, int64_t now) = 0;

  // Signing keys.
  [[nodiscard]] virtual Result<void> insert_signing_key(const SigningKeyRow& k) = 0;
  [[nodiscard]] virtual Result<std::vector<SigningKeyRow>> list_signing_keys() = 0;
};

}  // namespace sigil::store
