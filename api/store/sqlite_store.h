// The embedded SQLite backend of store::Store.
//
// Guarantees: WAL journal with synchronous=FULL, so a call that returns success has its writes on disk;
// every write runs in BEGIN IMMEDIATE ... COMMIT and is rolled back whole on any failure, so nothing
// half-written is ever visible. Constraint violations (duplicate ids, duplicate e-mail/phone in a tenant,
// duplicate mobile key, unknown parent row) return kConflict; every other SQLite failure (disk full,
// read-only file, I/O error, busy past the 5 s timeout, cannot open) returns kUnavailable
// "Storage unavailable" and the SQLite message goes to stderr (never a bound value, so never a secret).
// The schema is versioned: open() applies, each in its own transaction, the migrations a file lacks.
// Thread-safety: every method may be called from any thread. Writes go through one writer connection (group
// commit on a writer thread); reads use a pool of read-only connections and never wait for a write, its fsync
// included (WAL). A read that starts after a write returned sees it. Apps and clients are cached, checked
// on every read against a version that triggers move forward on any change of tenants, apps or clients, by
// any process (the sigil CLI included). An in-memory database has no pool: its reads share the writer's.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/store/store.h"
#include "engine/base/clock.h"
#include "engine/base/result.h"

namespace sigil::store {

// Outside the class so that `= {}` can be a default argument of SqliteStore::open.
struct SqliteOpenOptions {
  // Opens the file with SQLITE_OPEN_READONLY: no migrations, every write fails with kUnavailable.
  // Used to inspect a database, and by tests to exercise the storage-failure path even as root.
  bool read_only = false;
};

class SqliteStore final : public Store {
 public:
  using OpenOptions = SqliteOpenOptions;

  // Opens (creating it if absent, unless read_only) the database file at `path` and migrates it to the
  // current schema. `clock` stamps schema_migrations.applied_at and must outlive the store.
  [[nodiscard]] static Result<std::unique_ptr<SqliteStore>> open(const std::string& path, const Clock& clock,
                                                                 OpenOptions options = {});

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // The highest schema version this build knows (the number of migrations).
  [[nodiscard]] static int latest_schema_version() noexcept;

  Result<void> create_tenant(const Tenant& t) override;
  Result<std::optional<Tenant>> find_tenant(const std::string& id) override;
  Result<std::vector<Tenant>> list_tenants() override;
  Result<void> create_app(const App& app) override;
  Result<void> update_app(const App& app) override;
  Result<std::optional<App>> find_app(const std::string& app_id) override;
  Result<std::optional<App>> find_app_by_name(const std::string& tenant_id, const std::string& name) override;
  Result<std::vector<App>> list_apps() override;
  Result<void> create_client(const Client& c) override;
  Result<std::optional<Client>> find_client(const std::string& client_id) override;
  Result<std::vector<Client>> list_clients(const std::string& app_id) override;

  Result<void> create_user(const User& u) override;
  Result<std::optional<User>> find_user(const std::string& user_id) override;
  Result<std::optional<User>> find_user_by_email(const std::string& tenant_id, const std::string& email) override;
  Result<std::optional<User>> find_user_by_phone(const std::string& tenant_id, const std::string& phone) override;
  Result<void> set_email_verified(const std::string& user_id) override;
  Result<std::optional<User>> find_user_by_external_id(const std::string& tenant_id,
                                                      const std::string& external_id) override;

  Result<std::optional<WebAuthnAccount>> find_webauthn_account(const std::string& app_id,
                                                               const std::string& username) override;
  Result<std::optional<WebAuthnAccount>> find_webauthn_account_by_handle(const std::string& app_id,
                                                                         const Bytes& user_handle) override;
  Result<void> register_webauthn_credential(const std::optional<User>& new_user, const WebAuthnAccount& account,
                                            const WebAuthnCredential& cred) override;
  Result<std::optional<WebAuthnCredential>> find_webauthn_credential(const Bytes& credential_id) override;
  Result<std::vector<WebAuthnCredential>> list_webauthn_credentials(const std::string& app_id,
                                                                    const std::string& user_id) override;
  Result<std::vector<WebAuthnCredential>> list_webauthn_credentials_by_username(
      const std::string& app_id, const std::string& username) override;
  Result<bool> delete_webauthn_credential(const std::string& app_id, const std::string& user_id,
                                          const Bytes& credential_id) override;
  Result<void> flag_webauthn_credential(const Bytes& credential_id, int64_t now) override;

  Result<void> insert_mobile_key(const MobileKey& k) override;
  Result<std::optional<MobileKey>> find_mobile_key(const std::string& app_id, const std::string& key_id) override;
  Result<int> count_mobile_keys(const std::string& app_id, const std::string& user_id) override;
  Result<bool> delete_mobile_key(const std::string& app_id, const std::string& user_id,
                                 const std::string& key_id) override;

  Result<std::optional<Session>> find_session(const std::string& id) override;
  Result<bool> end_session(const std::string& id, int64_t now) override;

  Result<void> create_browser_session(const BrowserSession& s) override;
  Result<std::optional<BrowserSession>> find_browser_session(const Bytes& id_hash) override;
  Result<void> link_browser_session(const Bytes& id_hash, const std::string& session_id) override;
  Result<bool> end_browser_session(const Bytes& id_hash, int64_t now) override;
  Result<std::optional<Bytes>> browser_session_of(const std::string& session_id) override;

  Result<void> commit_login(const LoginWrite& w) override;
  void commit_login_async(LoginWrite w, std::function<void(Result<void>)> done) override;

  Result<std::optional<RefreshToken>> find_refresh_token(const Bytes& hash) override;
  Result<bool> rotate_refresh_token(const Bytes& old_hash, const RefreshToken& next, int64_t now) override;
  Result<void> revoke_refresh_family(const std::string& family_id, int64_t now) override;

  Result<void> insert_signing_key(const SigningKeyRow& k) override;
  Result<std::vector<SigningKeyRow>> list_signing_keys() override;

 private:
  struct Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sigil::store
