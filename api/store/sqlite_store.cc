// SqliteStore: the raw sqlite3 C API; one writer connection and a pool of reader connections, each with its
// own prepared statements.
//
// Every write goes through Impl::write(): the writer connection, BEGIN IMMEDIATE (or a SAVEPOINT of the group
// commit's transaction), body, COMMIT; any error on the way rolls the write back before the connection is
// released, so a failed call leaves no trace and the next call starts on a clean connection. Reads go through
// Impl::read(): a reader connection of the pool, one statement each (or statements held open together, which
// share one read transaction), so each sees one consistent snapshot. See "concurrency and group commit" in Impl.
#include "api/store/sqlite_store.h"

#include <sqlite3.h>

#include <fmt/core.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "engine/base/json_writer.h"

namespace sigil::store {
namespace {

// Schema migrations, applied in order, each once, each in its own transaction; schema_migrations records
// the versions applied (version N = kMigrations[N - 1]). Never edit a released entry: append a new one.
//
// Foreign keys cover ownership only (app -> tenant, client -> app, user -> tenant, mobile key -> app).
// Sessions and refresh tokens carry ids without foreign keys: a session may name a client or user that the
// service layer manages elsewhere, and a login must not fail on that.
constexpr std::string_view kMigrations[] = {
    // 1: initial schema.
    R"sql(
CREATE TABLE tenants (
  id         TEXT PRIMARY KEY NOT NULL,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE apps (
  id                      TEXT PRIMARY KEY NOT NULL,
  tenant_id               TEXT NOT NULL REFERENCES tenants(id),
  name                    TEXT NOT NULL,
  redirect_uris           TEXT NOT NULL,  -- JSON array of strings
  origins                 TEXT NOT NULL,  -- JSON array of strings
  rp_id                   TEXT NOT NULL,
  resources               TEXT NOT NULL,  -- JSON array of strings
  allow_client_challenges INTEGER NOT NULL,
  public_signup           INTEGER NOT NULL,
  created_at              INTEGER NOT NULL
) STRICT;
CREATE INDEX apps_by_tenant_name ON apps(tenant_id, name);

CREATE TABLE clients (
  client_id   TEXT PRIMARY KEY NOT NULL,
  app_id      TEXT NOT NULL REFERENCES apps(id),
  tenant_id   TEXT NOT NULL,
  secret_hash BLOB NOT NULL,
  name        TEXT NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX clients_by_app ON clients(app_id);

CREATE TABLE users (
  id             TEXT PRIMARY KEY NOT NULL,
  tenant_id      TEXT NOT NULL REFERENCES tenants(id),
  email          TEXT NOT NULL,
  phone          TEXT NOT NULL,
  email_verified INTEGER NOT NULL,
  created_at     INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_email ON users(tenant_id, email) WHERE email != '';
CREATE UNIQUE INDEX users_phone ON users(tenant_id, phone) WHERE phone != '';

CREATE TABLE mobile_keys (
  app_id       TEXT NOT NULL REFERENCES apps(id),
  key_id       TEXT NOT NULL,
  user_id      TEXT NOT NULL,
  spki         BLOB NOT NULL,
  key_type     TEXT NOT NULL,
  os           TEXT NOT NULL,
  device_id    TEXT NOT NULL,
  display_name TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL,
  PRIMARY KEY (app_id, key_id)
) STRICT;
CREATE INDEX mobile_keys_by_user ON mobile_keys(app_id, user_id);

CREATE TABLE sessions (
  id                TEXT PRIMARY KEY NOT NULL,
  app_id            TEXT NOT NULL,
  user_id           TEXT NOT NULL,
  client_id         TEXT NOT NULL,
  created_at        INTEGER NOT NULL,
  auth_time         INTEGER NOT NULL,
  amr               TEXT NOT NULL,  -- JSON array of strings
  client_attributes TEXT NOT NULL,  -- JSON object
  ended_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE refresh_tokens (
  token_hash        BLOB PRIMARY KEY NOT NULL,
  family_id         TEXT NOT NULL,
  session_id        TEXT NOT NULL,
  client_id         TEXT NOT NULL,
  app_id            TEXT NOT NULL,
  user_id           TEXT NOT NULL,
  scope             TEXT NOT NULL,
  resource          TEXT NOT NULL,
  created_at        INTEGER NOT NULL,
  expires_at        INTEGER NOT NULL,
  family_expires_at INTEGER NOT NULL,
  rotated_at        INTEGER NOT NULL,
  revoked_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id);

CREATE TABLE signing_keys (
  kid            TEXT PRIMARY KEY NOT NULL,
  alg            TEXT NOT NULL,
  sealed_private BLOB NOT NULL,
  created_at     INTEGER NOT NULL,
  retired_at     INTEGER NOT NULL
) STRICT;
)sql",
    // 2: WebAuthn accounts and credentials; external user ids (API.md 3).
    R"sql(
ALTER TABLE users ADD COLUMN external_user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN user_verification TEXT NOT NULL DEFAULT 'preferred';
ALTER TABLE apps ADD COLUMN attestation_trust TEXT NOT NULL DEFAULT 'none';
ALTER TABLE apps ADD COLUMN trust_anchor_files TEXT NOT NULL DEFAULT '[]';  -- JSON array of strings
ALTER TABLE apps ADD COLUMN top_origins TEXT NOT NULL DEFAULT '[]';         -- JSON array of strings
CREATE UNIQUE INDEX users_external_id ON users(tenant_id, external_user_id) WHERE external_user_id != '';

CREATE TABLE webauthn_accounts (
  app_id       TEXT NOT NULL REFERENCES apps(id),
  username     TEXT NOT NULL,
  user_id      TEXT NOT NULL,
  user_handle  BLOB NOT NULL,
  display_name TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (app_id, username)
) STRICT;
CREATE UNIQUE INDEX webauthn_accounts_by_handle ON webauthn_accounts(app_id, user_handle);

CREATE TABLE webauthn_credentials (
  credential_id    BLOB PRIMARY KEY NOT NULL,
  app_id           TEXT NOT NULL REFERENCES apps(id),
  user_id          TEXT NOT NULL,
  username         TEXT NOT NULL,
  user_handle      BLOB NOT NULL,
  public_key_cose  BLOB NOT NULL,
  alg              INTEGER NOT NULL,
  sign_count       INTEGER NOT NULL,
  aaguid           BLOB NOT NULL,
  transports       TEXT NOT NULL,  -- JSON array of strings
  attachment       TEXT NOT NULL,
  backup_eligible  INTEGER NOT NULL,
  backup_state     INTEGER NOT NULL,
  fmt              TEXT NOT NULL,
  attestation_type TEXT NOT NULL,
  device_info      TEXT NOT NULL,
  created_at       INTEGER NOT NULL,
  last_used_at     INTEGER NOT NULL,
  flagged_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX webauthn_credentials_by_user ON webauthn_credentials(app_id, user_id);
CREATE INDEX webauthn_credentials_by_username ON webauthn_credentials(app_id, username);
)sql",
    // 3: public clients (PKCE, no secret); browser sessions of the hosted login pages.
    R"sql(
ALTER TABLE clients ADD COLUMN public_client INTEGER NOT NULL DEFAULT 0;

CREATE TABLE browser_sessions (
  id_hash    BLOB PRIMARY KEY NOT NULL,  -- SHA-256 of the cookie value
  tenant_id  TEXT NOT NULL,
  user_id    TEXT NOT NULL,
  amr        TEXT NOT NULL,              -- JSON array of strings
  auth_time  INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  ended_at   INTEGER NOT NULL
) STRICT;

-- Token sessions minted from a browser session's codes: logging out of either ends both.
CREATE TABLE browser_session_logins (
  session_id      TEXT PRIMARY KEY NOT NULL,
  browser_session BLOB NOT NULL
) STRICT;
CREATE INDEX browser_session_logins_by_browser ON browser_session_logins(browser_session);
)sql",
    // 4: a version number of the configuration (tenants, apps, clients), moved forward by triggers on every
    // change whoever makes it (sigild, the sigil CLI, a manual edit): the store caches apps and clients and
    // uses the cache only while the version it reads is the one the cache was filled at.
    R"sql(
CREATE TABLE config_version (
  id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
  version INTEGER NOT NULL
) STRICT;
INSERT INTO config_version (id, version) VALUES (1, 1);

CREATE TRIGGER tenants_insert_config_version AFTER INSERT ON tenants
  BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_update_config_version AFTER UPDATE ON tenants
  BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_delete_config_version AFTER DELETE ON tenants
  BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER apps_insert_config_version AFTER INSERT ON apps
  BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER apps_update_config_version AFTER UPDATE ON apps
  BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER apps_delete_config_version AFTER DELETE ON apps
  BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER clients_insert_config_version AFTER INSERT ON clients
  BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER clients_update_config_version AFTER UPDATE ON clients
  BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER clients_delete_config_version AFTER DELETE ON clients
  BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
)sql",
};

constexpr int kBusyTimeoutMs = 5000;

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

struct CachedStmt {
  StmtPtr stmt;
  bool in_use = false;
};

// One use of a cached prepared statement. Binds positionally (1, 2, ...) in call order; a failed bind is
// remembered and reported by step(). Reset and unbound on destruction, so the next user starts clean.
class Query {
 public:
  explicit Query(CachedStmt& cached) noexcept : cached_(&cached), stmt_(cached.stmt.get()) { cached.in_use = true; }
  Query(Query&& o) noexcept
      : cached_(std::exchange(o.cached_, nullptr)), stmt_(std::exchange(o.stmt_, nullptr)), next_(o.next_),
        rc_(o.rc_) {}
  Query& operator=(Query&&) = delete;
  ~Query() {
    if (stmt_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    cached_->in_use = false;
  }

  Query& text(std::string_view v) {
    // A null pointer would bind SQL NULL; an empty string is "".
    return check(sqlite3_bind_text64(stmt_, ++next_, v.data() != nullptr ? v.data() : "", v.size(),
                                     SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Query& integer(int64_t v) { return check(sqlite3_bind_int64(stmt_, ++next_, v)); }
  Query& boolean(bool v) { return integer(v ? 1 : 0); }
  Query& blob(ByteView v) {
    // sqlite3_bind_blob with a null pointer binds NULL; an empty value must stay an empty blob.
    if (v.empty()) return check(sqlite3_bind_zeroblob(stmt_, ++next_, 0));
    return check(sqlite3_bind_blob64(stmt_, ++next_, v.data(), v.size(), SQLITE_TRANSIENT));
  }

  // SQLITE_ROW, SQLITE_DONE or an (extended) error code.
  [[nodiscard]] int step() noexcept { return rc_ != SQLITE_OK ? rc_ : sqlite3_step(stmt_); }

  [[nodiscard]] std::string column_text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    const int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string() : std::string(p, static_cast<size_t>(n));
  }
  [[nodiscard]] int64_t column_int(int col) const noexcept { return sqlite3_column_int64(stmt_, col); }
  [[nodiscard]] bool column_bool(int col) const noexcept { return column_int(col) != 0; }
  [[nodiscard]] Bytes column_blob(int col) const {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
    const int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? Bytes() : Bytes(p, p + n);
  }

 private:
  Query& check(int rc) noexcept {
    if (rc != SQLITE_OK && rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }

  CachedStmt* cached_;
  sqlite3_stmt* stmt_;
  int next_ = 0;
  int rc_ = SQLITE_OK;
};

std::string json_string_array(const std::vector<std::string>& values) {
  JsonWriter w;
  w.begin_array();
  for (const std::string& v : values) w.string(v);
  w.end_array();
  return std::move(w).str();
}

// Union of `base` and `extra`, order kept, duplicates dropped.
std::vector<std::string> merge_amr(std::vector<std::string> base, const std::vector<std::string>& extra) {
  for (const std::string& m : extra) {
    if (std::find(base.begin(), base.end(), m) == base.end()) base.push_back(m);
  }
  return base;
}

Error unavailable() { return Error{ErrorCode::kUnavailable, "Storage unavailable", {}, {}}; }

// SELECT column lists; the readers below take columns in exactly this order.
#define SIGIL_TENANT_COLS "id, name, created_at"
#define SIGIL_APP_COLS                                                                                 \
  "id, tenant_id, name, redirect_uris, origins, rp_id, resources, allow_client_challenges, public_signup, " \
  "created_at, user_verification, attestation_trust, trust_anchor_files, top_origins"
#define SIGIL_CLIENT_COLS "client_id, app_id, tenant_id, secret_hash, name, created_at, public_client"
#define SIGIL_BROWSER_SESSION_COLS "id_hash, tenant_id, user_id, amr, auth_time, created_at, expires_at, ended_at"
#define SIGIL_USER_COLS "id, tenant_id, email, phone, email_verified, created_at, external_user_id"
#define SIGIL_WA_ACCOUNT_COLS "app_id, username, user_id, user_handle, display_name, created_at"
#define SIGIL_WA_CRED_COLS                                                                                    \
  "credential_id, app_id, user_id, username, user_handle, public_key_cose, alg, sign_count, aaguid, "        \
  "transports, attachment, backup_eligible, backup_state, fmt, attestation_type, device_info, created_at, " \
  "last_used_at, flagged_at"
#define SIGIL_MOBILE_KEY_COLS \
  "app_id, key_id, user_id, spki, key_type, os, device_id, display_name, created_at, last_used_at"
#define SIGIL_SESSION_COLS \
  "id, app_id, user_id, client_id, created_at, auth_time, amr, client_attributes, ended_at"
#define SIGIL_REFRESH_COLS                                                                               \
  "token_hash, family_id, session_id, client_id, app_id, user_id, scope, resource, created_at, expires_at, " \
  "family_expires_at, rotated_at, revoked_at"
#define SIGIL_SIGNING_KEY_COLS "kid, alg, sealed_private, created_at, retired_at"


// One SQLite connection with its own prepared statements and JSON parser, and the helpers that use them.
// Not thread-safe: one thread at a time uses it (the writer connection under Impl::mu; a reader connection
// while it is leased from the pool).
struct Conn {
  explicit Conn(sqlite3* handle) noexcept : db(handle) {}
  ~Conn() {
    stmts.clear();  // statements are finalized before the connection closes
    sqlite3_close_v2(db);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // ---- errors -------------------------------------------------------------------------------------------

  // Maps a failed SQLite call to the API's error. Only the SQLite message and the operation name are logged:
  // messages name tables and columns, never bound values.
  Error fail(int rc, std::string_view what) const {
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
      if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return Error{ErrorCode::kConflict, "Referenced entity does not exist", {}, {}};
      }
      return Error{ErrorCode::kConflict, "Already exists", {}, {}};
    }
    fmt::print(stderr, "sigil: sqlite: {} failed: {} (code {}: {})\n", what,
               db != nullptr ? sqlite3_errmsg(db) : "no connection", rc, sqlite3_errstr(rc));
    return unavailable();
  }
  static Error corrupt(std::string_view what) {
    fmt::print(stderr, "sigil: sqlite: {}: stored JSON is malformed\n", what);
    return unavailable();
  }

  // ---- statements ---------------------------------------------------------------------------------------

  // The cached statement for `sql` (a string literal: the cache keys on the view).
  Result<Query> query(std::string_view sql) {
    auto it = stmts.find(sql);
    if (it == stmts.end()) {
      sqlite3_stmt* raw = nullptr;
      const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                        &raw, nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(raw);
        return std::unexpected(fail(rc, "prepare"));
      }
      it = stmts.emplace(sql, CachedStmt{StmtPtr(raw), false}).first;
    }
    // A statement is never used twice at once: every Query is scoped inside one store call.
    SIGIL_CHECK(!it->second.in_use);
    return Query(it->second);
  }

  // Runs a statement that returns no rows.
  Result<void> run(Query& q, std::string_view what) {
    const int rc = q.step();
    if (rc != SQLITE_DONE) return std::unexpected(fail(rc, what));
    return {};
  }
  Result<void> run(std::string_view sql, std::string_view what) {
    SIGIL_ASSIGN_OR_RETURN(Query q, query(sql));
    return run(q, what);
  }

  // Runs a multi-statement script (migrations, pragmas).
  Result<void> exec(const std::string& sql, std::string_view what) {
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return std::unexpected(fail(rc, what));
    return {};
  }

  // One row into `read`, or nullopt when there is none.
  template <typename Read>
  auto find_one(Query& q, std::string_view what, Read read)
      -> Result<std::optional<typename decltype(read(q))::value_type>> {
    const int rc = q.step();
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) return std::unexpected(fail(rc, what));
    auto row = read(q);
    if (!row) return std::unexpected(std::move(row).error());
    return std::move(*row);
  }
  template <typename Read>
  auto find_all(Query& q, std::string_view what, Read read)
      -> Result<std::vector<typename decltype(read(q))::value_type>> {
    std::vector<typename decltype(read(q))::value_type> out;
    for (;;) {
      const int rc = q.step();
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return std::unexpected(fail(rc, what));
      auto row = read(q);
      if (!row) return std::unexpected(std::move(row).error());
      out.push_back(std::move(*row));
    }
  }

  // The configuration version (migration 4). The returned query holds its row, and with it the read
  // transaction, until it is destroyed: reads made meanwhile on this connection see the same snapshot.
  Result<Query> config_version(int64_t& version) {
    SIGIL_ASSIGN_OR_RETURN(Query q, query("SELECT version FROM config_version WHERE id = 1"));
    const int rc = q.step();
    if (rc == SQLITE_DONE) {
      fmt::print(stderr, "sigil: sqlite: config_version has no row\n");
      return std::unexpected(unavailable());
    }
    if (rc != SQLITE_ROW) return std::unexpected(fail(rc, "read config version"));
    version = q.column_int(0);
    return q;
  }

  // ---- transactions -------------------------------------------------------------------------------------

  // Rolls back the open transaction, if any (SQLite may already have rolled it back after some errors).
  void rollback() noexcept {
    if (sqlite3_get_autocommit(db) != 0) return;
    const int rc = sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      fmt::print(stderr, "sigil: sqlite: rollback failed: {} (code {})\n", sqlite3_errmsg(db), rc);
    }
  }
  void rollback_savepoint() noexcept {
    if (sqlite3_get_autocommit(db) != 0) return;  // the whole transaction is already gone
    const int rc = sqlite3_exec(db, "ROLLBACK TO sigil_write", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      fmt::print(stderr, "sigil: sqlite: rollback to savepoint failed: {} (code {})\n", sqlite3_errmsg(db), rc);
    }
  }

  // ---- JSON columns -------------------------------------------------------------------------------------

  Result<std::vector<std::string>> parse_string_array(const std::string& text, std::string_view what) {
    simdjson::padded_string padded(text);
    simdjson::ondemand::document doc;
    if (json.iterate(padded).get(doc) != simdjson::SUCCESS) return std::unexpected(corrupt(what));
    simdjson::ondemand::array array;
    if (doc.get_array().get(array) != simdjson::SUCCESS) return std::unexpected(corrupt(what));
    std::vector<std::string> out;
    for (auto item : array) {
      std::string_view s;
      if (item.get_string().get(s) != simdjson::SUCCESS) return std::unexpected(corrupt(what));
      out.emplace_back(s);
    }
    return out;
  }

  // ---- row readers (column order: the SIGIL_*_COLS lists) ------------------------------------------------

  static Result<Tenant> read_tenant(const Query& q) {
    return Tenant{q.column_text(0), q.column_text(1), q.column_int(2)};
  }
  Result<App> read_app(const Query& q) {
    App a;
    a.id = q.column_text(0);
    a.tenant_id = q.column_text(1);
    a.name = q.column_text(2);
    SIGIL_ASSIGN_OR_RETURN(a.redirect_uris, parse_string_array(q.column_text(3), "apps.redirect_uris"));
    SIGIL_ASSIGN_OR_RETURN(a.origins, parse_string_array(q.column_text(4), "apps.origins"));
    a.rp_id = q.column_text(5);
    SIGIL_ASSIGN_OR_RETURN(a.resources, parse_string_array(q.column_text(6), "apps.resources"));
    a.allow_client_challenges = q.column_bool(7);
    a.public_signup = q.column_bool(8);
    a.created_at = q.column_int(9);
    a.user_verification = q.column_text(10);
    a.attestation_trust = q.column_text(11);
    SIGIL_ASSIGN_OR_RETURN(a.trust_anchor_files, parse_string_array(q.column_text(12), "apps.trust_anchor_files"));
    SIGIL_ASSIGN_OR_RETURN(a.top_origins, parse_string_array(q.column_text(13), "apps.top_origins"));
    return a;
  }
  static Result<Client> read_client(const Query& q) {
    return Client{q.column_text(0), q.column_text(1), q.column_text(2),
                  q.column_blob(3), q.column_text(4), q.column_int(5), q.column_bool(6)};
  }
  static Result<User> read_user(const Query& q) {
    return User{q.column_text(0), q.column_text(1), q.column_text(2), q.column_text(3),
                q.column_bool(4), q.column_int(5),  q.column_text(6)};
  }
  static Result<WebAuthnAccount> read_wa_account(const Query& q) {
    return WebAuthnAccount{q.column_text(0), q.column_text(1), q.column_text(2),
                           q.column_blob(3), q.column_text(4), q.column_int(5)};
  }
  Result<WebAuthnCredential> read_wa_credential(const Query& q) {
    WebAuthnCredential c;
    c.credential_id = q.column_blob(0);
    c.app_id = q.column_text(1);
    c.user_id = q.column_text(2);
    c.username = q.column_text(3);
    c.user_handle = q.column_blob(4);
    c.public_key_cose = q.column_blob(5);
    c.alg = q.column_int(6);
    c.sign_count = q.column_int(7);
    c.aaguid = q.column_blob(8);
    SIGIL_ASSIGN_OR_RETURN(c.transports, parse_string_array(q.column_text(9), "webauthn_credentials.transports"));
    c.attachment = q.column_text(10);
    c.backup_eligible = q.column_bool(11);
    c.backup_state = q.column_bool(12);
    c.fmt = q.column_text(13);
    c.attestation_type = q.column_text(14);
    c.device_info_json = q.column_text(15);
    c.created_at = q.column_int(16);
    c.last_used_at = q.column_int(17);
    c.flagged_at = q.column_int(18);
    return c;
  }
  static Result<MobileKey> read_mobile_key(const Query& q) {
    return MobileKey{q.column_text(0), q.column_text(1), q.column_text(2), q.column_blob(3), q.column_text(4),
                     q.column_text(5), q.column_text(6), q.column_text(7), q.column_int(8), q.column_int(9)};
  }
  Result<Session> read_session(const Query& q) {
    Session s;
    s.id = q.column_text(0);
    s.app_id = q.column_text(1);
    s.user_id = q.column_text(2);
    s.client_id = q.column_text(3);
    s.created_at = q.column_int(4);
    s.auth_time = q.column_int(5);
    SIGIL_ASSIGN_OR_RETURN(s.amr, parse_string_array(q.column_text(6), "sessions.amr"));
    s.client_attributes_json = q.column_text(7);
    s.ended_at = q.column_int(8);
    return s;
  }
  Result<BrowserSession> read_browser_session(const Query& q) {
    BrowserSession s;
    s.id_hash = q.column_blob(0);
    s.tenant_id = q.column_text(1);
    s.user_id = q.column_text(2);
    SIGIL_ASSIGN_OR_RETURN(s.amr, parse_string_array(q.column_text(3), "browser_sessions.amr"));
    s.auth_time = q.column_int(4);
    s.created_at = q.column_int(5);
    s.expires_at = q.column_int(6);
    s.ended_at = q.column_int(7);
    return s;
  }
  static Result<RefreshToken> read_refresh_token(const Query& q) {
    RefreshToken t;
    t.token_hash = q.column_blob(0);
    t.family_id = q.column_text(1);
    t.session_id = q.column_text(2);
    t.client_id = q.column_text(3);
    t.app_id = q.column_text(4);
    t.user_id = q.column_text(5);
    t.scope = q.column_text(6);
    t.resource = q.column_text(7);
    t.created_at = q.column_int(8);
    t.expires_at = q.column_int(9);
    t.family_expires_at = q.column_int(10);
    t.rotated_at = q.column_int(11);
    t.revoked_at = q.column_int(12);
    return t;
  }
  static Result<SigningKeyRow> read_signing_key(const Query& q) {
    return SigningKeyRow{q.column_text(0), q.column_text(1), q.column_blob(2), q.column_int(3), q.column_int(4)};
  }

  sqlite3* db;
  std::unordered_map<std::string_view, CachedStmt> stmts;
  simdjson::ondemand::parser json;
};

// Apps and clients as of one configuration version (migration 4), shared by every thread. Entries are
// immutable and shared: a hit copies a pointer under the lock and the value outside it. Exact: an entry is
// only used by a read that saw the same version in its own snapshot as the read that filled it, and every
// change of tenants, apps or clients, by any process, moves the version forward in the transaction that
// makes the change. Any other version empties the cache, an older one too (a reader on a snapshot from
// before the latest change, briefly; or a config_version row that was reset by hand).
class ConfigCache {
 public:
  // Bounds the entries (apps + clients + the app list); past it the cache starts over. Deployments have a
  // handful of apps and clients; the bound only stops unbounded growth.
  static constexpr size_t kMaxEntries = 1024;

  std::shared_ptr<const App> app(int64_t version, const std::string& id) { return get(version, apps_, id); }
  std::shared_ptr<const Client> client(int64_t version, const std::string& id) {
    return get(version, clients_, id);
  }
  std::shared_ptr<const std::vector<App>> app_list(int64_t version) {
    std::lock_guard lock(mu_);
    at(version);
    return app_list_;
  }

  void put_app(int64_t version, const App& a) { put(version, apps_, a.id, a); }
  void put_client(int64_t version, const Client& c) { put(version, clients_, c.client_id, c); }
  void put_app_list(int64_t version, const std::vector<App>& list) {
    auto value = std::make_shared<const std::vector<App>>(list);
    std::lock_guard lock(mu_);
    at(version);
    make_room();
    app_list_ = std::move(value);
  }

 private:
  template <typename T>
  using Map = std::unordered_map<std::string, std::shared_ptr<const T>>;

  // Brings the cache to `version` (caller holds mu_), empty unless it is the version it holds.
  void at(int64_t version) {
    if (version == version_) return;
    clear();
    version_ = version;
  }
  void clear() {
    apps_.clear();
    clients_.clear();
    app_list_.reset();
  }
  void make_room() {
    if (apps_.size() + clients_.size() + (app_list_ ? 1 : 0) >= kMaxEntries) clear();
  }
  template <typename T>
  std::shared_ptr<const T> get(int64_t version, Map<T>& map, const std::string& key) {
    std::lock_guard lock(mu_);
    at(version);
    auto it = map.find(key);
    return it == map.end() ? nullptr : it->second;
  }
  template <typename T>
  void put(int64_t version, Map<T>& map, const std::string& key, const T& value) {
    auto shared = std::make_shared<const T>(value);
    std::lock_guard lock(mu_);
    at(version);
    make_room();
    map.insert_or_assign(key, std::move(shared));
  }

  std::mutex mu_;  // guards everything below
  int64_t version_ = -1;
  Map<App> apps_;
  Map<Client> clients_;
  std::shared_ptr<const std::vector<App>> app_list_;
};

}  // namespace

struct SqliteStore::Impl {
  Impl(const Clock& c, sqlite3* handle) : clock(c), writer(handle) {}
  ~Impl() {
    stop_writer();
    // The readers close first: the writer connection, closing last, checkpoints and removes the WAL.
    idle_readers.clear();
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // ---- the writer connection (callers hold mu, or run on the writer thread inside a group) ---------------

  Result<Query> query(std::string_view sql) { return writer.query(sql); }
  Result<void> run(Query& q, std::string_view what) { return writer.run(q, what); }
  Result<void> run(std::string_view sql, std::string_view what) { return writer.run(sql, what); }
  Error fail(int rc, std::string_view what) const { return writer.fail(rc, what); }
  int changes() const noexcept { return sqlite3_changes(writer.db); }

  // ---- reads --------------------------------------------------------------------------------------------

  // A reader connection leased from the pool; back to the pool when it goes out of scope.
  class Lease {
   public:
    Lease(Impl& impl, std::unique_ptr<Conn> conn) noexcept : impl_(&impl), conn_(std::move(conn)) {}
    Lease(Lease&&) = delete;
    ~Lease() {
      if (conn_) impl_->release_reader(std::move(conn_));
    }
    explicit operator bool() const noexcept { return conn_ != nullptr; }
    Conn& operator*() const noexcept { return *conn_; }

   private:
    Impl* impl_;
    std::unique_ptr<Conn> conn_;
  };

  // f(conn) on a reader connection of the pool, or on the writer connection under mu for a database that
  // other connections cannot open (in-memory, temporary) or when a reader cannot be opened. Never waits for
  // the writer: WAL readers run beside the write transaction, each on the last committed snapshot.
  template <typename F>
  auto read(F&& f) -> std::invoke_result_t<F&, Conn&> {
    if (!path.empty() && !readers_failed.load(std::memory_order_relaxed)) {
      Lease lease(*this, acquire_reader());
      if (lease) return f(*lease);
    }
    std::lock_guard lock(mu);
    return f(writer);
  }

  std::unique_ptr<Conn> acquire_reader() {
    {
      std::unique_lock lock(pool_mu);
      pool_cv.wait(lock, [&] { return !idle_readers.empty() || readers_open < kMaxReaders; });
      if (!idle_readers.empty()) {
        std::unique_ptr<Conn> c = std::move(idle_readers.back());  // the most recently used: warmest cache
        idle_readers.pop_back();
        return c;
      }
      ++readers_open;  // this thread opens one, outside the lock
    }
    std::unique_ptr<Conn> c = open_reader();
    if (!c) {
      std::lock_guard lock(pool_mu);
      --readers_open;
      pool_cv.notify_one();
    }
    return c;
  }

  void release_reader(std::unique_ptr<Conn> c) {
    {
      std::lock_guard lock(pool_mu);
      idle_readers.push_back(std::move(c));
    }
    pool_cv.notify_one();
  }

  // A reader: read-only in both the open flags and query_only, the writer's busy timeout. When one cannot
  // be opened (a message goes to stderr) reads use the writer connection from then on, as a database without
  // a pool does.
  std::unique_ptr<Conn> open_reader() {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                   SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
    auto c = std::make_unique<Conn>(raw);  // owns the handle even when open failed
    if (rc != SQLITE_OK) {
      (void)c->fail(rc, "open reader");
      readers_failed.store(true, std::memory_order_relaxed);
      return nullptr;
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, kBusyTimeoutMs);
    if (!c->exec("PRAGMA query_only = ON", "pragma query_only")) {
      readers_failed.store(true, std::memory_order_relaxed);
      return nullptr;
    }
    return c;
  }

  // ---- transactions -------------------------------------------------------------------------------------

  // The transaction of one write call, on the writer connection: rolled back unless committed. Inside a
  // group commit it is a SAVEPOINT of the batch's transaction: rollback() undoes only this write, commit()
  // keeps it for the batch's COMMIT.
  class Transaction {
   public:
    explicit Transaction(Conn& conn, bool savepoint = false) noexcept : conn_(&conn), savepoint_(savepoint) {}
    Transaction(Transaction&& o) noexcept : conn_(std::exchange(o.conn_, nullptr)), savepoint_(o.savepoint_) {}
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction() { rollback(); }

    void rollback() noexcept {
      Conn* conn = std::exchange(conn_, nullptr);
      if (conn == nullptr) return;
      if (savepoint_) conn->rollback_savepoint();
      else conn->rollback();
    }
    [[nodiscard]] bool active() const noexcept { return conn_ != nullptr; }
    Result<void> commit() {
      Conn* conn = std::exchange(conn_, nullptr);
      if (savepoint_) return {};  // made durable by the batch's COMMIT
      auto r = conn->run("COMMIT", "commit");
      if (!r) conn->rollback();
      return r;
    }

   private:
    Conn* conn_;
    bool savepoint_;
  };

  Result<Transaction> begin() {
    SIGIL_TRY(run("BEGIN IMMEDIATE", "begin"));
    return Transaction(writer);
  }

  // The writes of one login (Store::commit_login): session, refresh token, authenticator use.
  Result<void> commit_login_body(const LoginWrite& w) {
    if (w.new_session) {
      Session s = *w.new_session;
      s.amr = merge_amr(std::move(s.amr), w.amr);
      SIGIL_TRY(insert_session(s));
    } else if (!w.join_session_id.empty()) {
      std::vector<std::string> amr;
      {
        SIGIL_ASSIGN_OR_RETURN(Query q, query("SELECT amr FROM sessions WHERE id = ? AND ended_at = 0"));
        q.text(w.join_session_id);
        const int rc = q.step();
        if (rc == SQLITE_DONE) return make_error(ErrorCode::kNotFound, "Session not found");
        if (rc != SQLITE_ROW) return std::unexpected(fail(rc, "load session"));
        SIGIL_ASSIGN_OR_RETURN(amr, writer.parse_string_array(q.column_text(0), "sessions.amr"));
      }
      SIGIL_ASSIGN_OR_RETURN(Query q, query("UPDATE sessions SET amr = ?, auth_time = ? WHERE id = ?"));
      q.text(json_string_array(merge_amr(std::move(amr), w.amr))).integer(w.auth_time).text(w.join_session_id);
      SIGIL_TRY(run(q, "join session"));
    }
    if (w.refresh_token) SIGIL_TRY(insert_refresh_token(*w.refresh_token));
    if (!w.webauthn_credential_id.empty()) {
      // Sign counts only move forward, also when two assertions of one credential race.
      SIGIL_ASSIGN_OR_RETURN(Query q, query(
          "UPDATE webauthn_credentials SET sign_count = MAX(sign_count, ?), backup_state = ?, "
          "last_used_at = ? WHERE credential_id = ?"));
      q.integer(w.webauthn_sign_count).boolean(w.webauthn_backup_state).integer(w.used_at);
      q.blob(w.webauthn_credential_id);
      SIGIL_TRY(run(q, "touch webauthn credential"));
    }
    if (!w.mobile_key_id.empty()) {
      // A key deleted meanwhile is not an error: the login itself was verified before.
      SIGIL_ASSIGN_OR_RETURN(Query q, query(
          "UPDATE mobile_keys SET last_used_at = ? WHERE app_id = ? AND key_id = ?"));
      q.integer(w.used_at).text(w.mobile_app_id).text(w.mobile_key_id);
      SIGIL_TRY(run(q, "touch mobile key"));
    }
    return {};
  }

  // ---- concurrency and group commit ---------------------------------------------------------------------
  //
  // Connections. One writer connection (`writer`, guarded by `mu`) makes every write; a pool of reader
  // connections serves every read. WAL lets the readers run beside the writer's transaction, its COMMIT and
  // fsync included: a read never waits for a write group (before, one connection under `mu` made every read
  // on every I/O and arena thread queue behind the group's fsync), and the writer never waits for reads.
  // Each reader is used by one thread at a time (leased from `idle_readers`, the most recently used first;
  // opened lazily when all are busy, at most kMaxReaders), with its own prepared statements and JSON parser.
  // A read runs in autocommit mode: its first statement's first step opens a read transaction on the last
  // committed snapshot, and the Query destructors reset every statement before the connection goes back to
  // the pool, which ends it: no reader keeps an old snapshot, and a read that starts after a write returned
  // sees that write. Statements held open together in one read share its snapshot (config_version). Reads
  // inside a write body use the writer connection (they must see the transaction's own changes), through
  // Impl::query. A database no other connection can open (in-memory, temporary) has no pool: its reads take
  // `mu` and the writer connection, as every read does once a reader connection could not be opened.
  //
  // Group commit. Every write goes through one writer thread. It takes whatever writes are queued (up to
  // kMaxGroup), runs each in its own SAVEPOINT of one BEGIN IMMEDIATE transaction — so one failing write
  // undoes only itself — and makes them all durable with one COMMIT: one fsync for many writes (DESIGN.md hot
  // path, step 6). The writer thread holds `mu` for the whole group; no read needs it. A write's caller
  // learns its outcome only after that COMMIT, so "a 2xx means committed" still holds; the callbacks run
  // after `mu` is released, so a callback may read (on a reader connection) or write (a plain transaction on
  // the writer connection, as before the writer thread starts). Checkpoints: see configure().
  //
  // Apps and clients, read on every request, are cached in `config` (ConfigCache): a cached read reads the
  // configuration version (migration 4) first, on its reader connection, and uses an entry only when it was
  // filled at that version; a miss reads the row in the same snapshot and fills the cache at that version.

  static constexpr size_t kMaxGroup = 256;
  static constexpr size_t kMaxReaders = 64;

  struct WriteItem {
    std::function<bool(Transaction&)> run;   // runs the body; true = keep its changes
    std::function<void(const Error*)> done;  // after the batch's COMMIT; nullptr = durable
  };

  void start_writer() {
    writer_thread = std::thread([this] { writer_loop(); });
    writer_id = writer_thread.get_id();
  }

  void stop_writer() noexcept {
    {
      std::lock_guard lock(queue_mu);
      stopping = true;
    }
    queue_cv.notify_all();
    if (writer_thread.joinable()) writer_thread.join();
  }

  void enqueue(WriteItem item) {
    {
      std::lock_guard lock(queue_mu);
      if (!stopping) {
        queue.push_back(std::move(item));
        queue_cv.notify_one();
        return;
      }
    }
    const Error e = unavailable();
    item.done(&e);
  }

  void writer_loop() {
    std::vector<WriteItem> batch;
    for (;;) {
      {
        std::unique_lock lock(queue_mu);
        queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping and drained
        while (!queue.empty() && batch.size() < kMaxGroup) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      run_group(batch);
      batch.clear();
    }
  }

  // Runs one group and reports every outcome after the locks are released (a callback may use the store).
  void run_group(std::vector<WriteItem>& batch) {
    std::vector<std::optional<Error>> outcome(batch.size());
    {
      std::lock_guard lock(mu);
      size_t first = 0;  // first item of the current transaction
      bool open = false;
      auto fail_open = [&](size_t end, const Error& e) {
        for (size_t j = first; j < end; ++j) {
          if (!outcome[j]) outcome[j] = e;
        }
      };
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!open) {
          first = i;
          auto begun = run("BEGIN IMMEDIATE", "begin");
          if (!begun) {
            outcome[i] = begun.error();
            continue;
          }
          open = true;
        }
        auto sp = run("SAVEPOINT sigil_write", "savepoint");
        if (!sp) {
          outcome[i] = sp.error();
          continue;
        }
        bool keep = false;
        {
          Transaction txn(writer, /*savepoint=*/true);
          keep = batch[i].run(txn);
          if (keep) {
            (void)txn.commit();  // savepoint: kept for the batch's COMMIT
          } else {
            txn.rollback();
          }
        }
        if (sqlite3_get_autocommit(writer.db) != 0) {
          // SQLite rolled the whole transaction back (I/O error, disk full): every write of it is lost.
          fail_open(i + 1, unavailable());
          open = false;
          continue;
        }
        auto released = run("RELEASE sigil_write", "release savepoint");
        if (!released) {
          writer.rollback();
          fail_open(i + 1, released.error());
          open = false;
        }
      }
      if (open) {
        auto committed = run("COMMIT", "commit");
        if (!committed) {
          writer.rollback();
          fail_open(batch.size(), committed.error());
        }
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(outcome[i] ? &*outcome[i] : nullptr);
  }

  // body(txn) in its own transaction, durable on return. The body returns Result<T>; an error (or a body
  // that rolled txn back itself) commits nothing. Blocks the caller until the group's COMMIT.
  template <typename Body>
  auto write(Body body) -> decltype(body(std::declval<Transaction&>())) {
    using R = decltype(body(std::declval<Transaction&>()));
    if (!writer_thread.joinable() || std::this_thread::get_id() == writer_id) {
      // Before the writer starts (migrations), or from a completion callback: a plain transaction.
      std::lock_guard lock(mu);
      SIGIL_ASSIGN_OR_RETURN(Transaction txn, begin());
      auto result = body(txn);
      if (!result) return result;  // txn's destructor rolls back
      if (txn.active()) SIGIL_TRY(txn.commit());
      return result;
    }
    std::optional<R> result;
    std::optional<Error> commit_error;
    std::mutex m;
    std::condition_variable cv;
    bool finished = false;
    enqueue(WriteItem{[&](Transaction& txn) {
                        result.emplace(body(txn));
                        return result->has_value() && txn.active();
                      },
                      [&](const Error* e) {
                        std::lock_guard lock(m);
                        if (e != nullptr) commit_error = *e;
                        finished = true;
                        cv.notify_one();
                      }});
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return finished; });
    if (result && !result->has_value()) return std::move(*result);  // the body's own error
    if (commit_error) return std::unexpected(std::move(*commit_error));
    if (!result) return std::unexpected(unavailable());
    return std::move(*result);
  }

  // The same, without blocking: `done` runs on the writer thread once the write is durable or failed.
  template <typename Body>
  void write_async(Body body, std::function<void(Result<void>)> done) {
    auto body_error = std::make_shared<std::optional<Error>>();
    enqueue(WriteItem{[body = std::move(body), body_error](Transaction& txn) mutable {
                        Result<void> r = body(txn);
                        if (!r) *body_error = r.error();
                        return r.has_value() && txn.active();
                      },
                      [done = std::move(done), body_error](const Error* e) {
                        if (*body_error) return done(std::unexpected(**body_error));
                        if (e != nullptr) return done(std::unexpected(*e));
                        done({});
                      }});
  }

  // ---- shared write steps (on the writer connection, inside a transaction) -------------------------------
  //
  // sessions and refresh_tokens stay rowid tables: as WITHOUT ROWID tables (measured) a login writes more
  // WAL frames, not fewer (5.1 -> 5.6 per login at groups of 32): their keys are random, whole rows in the
  // key's b-tree split its leaves several times as often as the small autoindex entries do, and secondary
  // indexes carry the key instead of the rowid. The rowid tables' own pages are appended to in order, shared
  // by the whole group.

  Result<void> insert_session(const Session& s) {
    SIGIL_ASSIGN_OR_RETURN(Query q, query("INSERT INTO sessions (" SIGIL_SESSION_COLS
                                          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    q.text(s.id).text(s.app_id).text(s.user_id).text(s.client_id).integer(s.created_at).integer(s.auth_time);
    q.text(json_string_array(s.amr)).text(s.client_attributes_json).integer(s.ended_at);
    return run(q, "insert session");
  }
  Result<void> insert_refresh_token(const RefreshToken& t) {
    SIGIL_ASSIGN_OR_RETURN(Query q, query("INSERT INTO refresh_tokens (" SIGIL_REFRESH_COLS
                                          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    q.blob(t.token_hash).text(t.family_id).text(t.session_id).text(t.client_id).text(t.app_id).text(t.user_id);
    q.text(t.scope).text(t.resource).integer(t.created_at).integer(t.expires_at).integer(t.family_expires_at);
    q.integer(t.rotated_at).integer(t.revoked_at);
    return run(q, "insert refresh token");
  }

  // ---- open ---------------------------------------------------------------------------------------------

  Result<void> configure(bool read_only) {
    sqlite3_extended_result_codes(writer.db, 1);
    sqlite3_busy_timeout(writer.db, kBusyTimeoutMs);
    SIGIL_TRY(writer.exec("PRAGMA foreign_keys = ON", "pragma foreign_keys"));
    SIGIL_TRY(writer.exec("PRAGMA synchronous = FULL", "pragma synchronous"));
    // The file's name for the readers; empty for an in-memory or temporary database (no pool).
    const char* file = sqlite3_db_filename(writer.db, "main");
    path = file != nullptr ? file : "";
    // WAL is persistent in the file; a read-only connection uses whatever mode the file has.
    if (read_only) return {};
    std::lock_guard lock(mu);
    SIGIL_ASSIGN_OR_RETURN(Query q, query("PRAGMA journal_mode = WAL"));
    const int rc = q.step();
    if (rc != SQLITE_ROW) return std::unexpected(fail(rc, "pragma journal_mode"));
    if (q.column_text(0) != "wal") {
      // An in-memory database has no WAL (journal_mode "memory"); it has no other connection either.
      if (path.empty()) return {};
      fmt::print(stderr, "sigil: sqlite: journal_mode is '{}', WAL is required\n", q.column_text(0));
      return std::unexpected(unavailable());
    }
    // Checkpoints: SQLite's automatic checkpoint runs in the COMMIT that leaves kCheckpointFrames or more in
    // the WAL, copies every page the WAL holds into the database file and fsyncs it; the next transaction
    // starts the WAL over. The default (1000 frames, 4 MiB) copies a hot page (index interior pages, table
    // tails, the credentials a login touches) again every few hundred logins. At 15000 frames a login writes
    // ~3 syscalls and ~13 KB less (16 -> 13 pwrites, 42 -> 29 KB at groups of 8: ~5 WAL frames of 4 KiB, two
    // pwrites each, plus its share of checkpoint copies), and the server spends ~10% less CPU per login under
    // sigil-loadgen. The WAL file stays below ~64 MiB: the checkpoint starts after the commit that crossed
    // the mark (a group adds at most a few thousand frames), and journal_size_limit cuts a WAL file that grew
    // past it (readers in the middle of a read can hold a restart back) when it starts over. Durability does
    // not depend on checkpoints: every COMMIT is fsynced in the WAL (synchronous = FULL). A checkpointer
    // thread of its own (PASSIVE, beside the writer) was measured too: no better, and a WAL appended to while
    // it copies never restarts unless the writer finishes the copy itself.
    sqlite3_wal_autocheckpoint(writer.db, kCheckpointFrames);
    SIGIL_TRY(writer.exec(fmt::format("PRAGMA journal_size_limit = {}", kWalSizeLimit), "pragma journal_size_limit"));
    return {};
  }

  static constexpr int kCheckpointFrames = 15000;       // ~59 MiB of WAL (4 KiB pages + frame headers)
  static constexpr int64_t kWalSizeLimit = 64ll << 20;

  Result<int64_t> schema_version() {
    SIGIL_ASSIGN_OR_RETURN(Query q, query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    const int rc = q.step();
    if (rc != SQLITE_ROW) return std::unexpected(fail(rc, "read schema version"));
    return q.column_int(0);
  }

  Result<void> migrate(bool read_only) {
    const auto latest = static_cast<int64_t>(std::size(kMigrations));
    std::lock_guard lock(mu);
    if (!read_only) {
      SIGIL_TRY(writer.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                            "version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL) STRICT",
                            "create schema_migrations"));
      for (int64_t version = 1; version <= latest; ++version) {
        SIGIL_ASSIGN_OR_RETURN(Transaction txn, begin());
        // Read inside the write transaction: another process may have migrated since the last look.
        SIGIL_ASSIGN_OR_RETURN(int64_t current, schema_version());
        if (current >= version) continue;  // txn rolls back: nothing was written
        if (current != version - 1) {
          fmt::print(stderr, "sigil: sqlite: schema version {} has gaps\n", current);
          return std::unexpected(unavailable());
        }
        SIGIL_TRY(writer.exec(std::string(kMigrations[version - 1]), "migration"));
        {
          SIGIL_ASSIGN_OR_RETURN(Query q,
                                 query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"));
          q.integer(version).integer(clock.now_s());
          SIGIL_TRY(run(q, "record migration"));
        }
        SIGIL_TRY(txn.commit());
      }
    }
    SIGIL_ASSIGN_OR_RETURN(int64_t current, schema_version());
    if (current != latest) {
      // Newer than this build (a downgrade), or a read-only file that was never migrated.
      fmt::print(stderr, "sigil: sqlite: schema version {} but this build needs {}\n", current, latest);
      return std::unexpected(unavailable());
    }
    return {};
  }

  const Clock& clock;
  std::string path;  // the database file the readers open; empty: no reader pool

  // The reader pool (closed before the writer connection: see ~Impl).
  std::mutex pool_mu;  // guards idle_readers and readers_open
  std::condition_variable pool_cv;
  std::vector<std::unique_ptr<Conn>> idle_readers;
  size_t readers_open = 0;  // idle and leased
  std::atomic<bool> readers_failed{false};  // a reader could not be opened: reads use the writer connection

  Conn writer;
  std::mutex mu;  // guards writer (its statements and parser included)

  std::mutex queue_mu;  // guards queue and stopping
  std::condition_variable queue_cv;
  std::deque<WriteItem> queue;
  bool stopping = false;
  std::thread writer_thread;
  std::thread::id writer_id;

  ConfigCache config;
};

// ---- open / lifetime ----------------------------------------------------------------------------------

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path, const Clock& clock,
                                                       OpenOptions options) {
  // Each connection is used by one thread at a time (see Impl), so SQLite's own connection mutex is not needed.
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  auto impl = std::make_unique<Impl>(clock, raw);  // owns the handle even when open failed
  if (rc != SQLITE_OK) {
    fmt::print(stderr, "sigil: sqlite: cannot open '{}'\n", path);
    return std::unexpected(impl->fail(rc, "open"));
  }
  SIGIL_TRY(impl->configure(options.read_only));
  SIGIL_TRY(impl->migrate(options.read_only));
  impl->start_writer();
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteStore::~SqliteStore() = default;

int SqliteStore::latest_schema_version() noexcept { return static_cast<int>(std::size(kMigrations)); }

// ---- tenants, apps, clients ---------------------------------------------------------------------------

Result<void> SqliteStore::create_tenant(const Tenant& t) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query("INSERT INTO tenants (" SIGIL_TENANT_COLS ") VALUES (?, ?, ?)"));
    q.text(t.id).text(t.name).integer(t.created_at);
    return impl_->run(q, "insert tenant");
  });
}

Result<std::optional<Tenant>> SqliteStore::find_tenant(const std::string& id) {
  return impl_->read([&](Conn& c) -> Result<std::optional<Tenant>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_TENANT_COLS " FROM tenants WHERE id = ?"));
    q.text(id);
    return c.find_one(q, "find tenant", Conn::read_tenant);
  });
}

Result<std::vector<Tenant>> SqliteStore::list_tenants() {
  return impl_->read([&](Conn& c) -> Result<std::vector<Tenant>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_TENANT_COLS " FROM tenants ORDER BY created_at, id"));
    return c.find_all(q, "list tenants", Conn::read_tenant);
  });
}

Result<void> SqliteStore::create_app(const App& app) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query("INSERT INTO apps (" SIGIL_APP_COLS
                                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    q.text(app.id).text(app.tenant_id).text(app.name).text(json_string_array(app.redirect_uris));
    q.text(json_string_array(app.origins)).text(app.rp_id).text(json_string_array(app.resources));
    q.boolean(app.allow_client_challenges).boolean(app.public_signup).integer(app.created_at);
    q.text(app.user_verification).text(app.attestation_trust).text(json_string_array(app.trust_anchor_files));
    q.text(json_string_array(app.top_origins));
    return impl_->run(q, "insert app");
  });
}

Result<void> SqliteStore::update_app(const App& app) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    // id, tenant_id and created_at are fixed at creation.
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
        "UPDATE apps SET name = ?, redirect_uris = ?, origins = ?, rp_id = ?, resources = ?, "
        "allow_client_challenges = ?, public_signup = ?, user_verification = ?, attestation_trust = ?, "
        "trust_anchor_files = ?, top_origins = ? WHERE id = ?"));
    q.text(app.name).text(json_string_array(app.redirect_uris)).text(json_string_array(app.origins));
    q.text(app.rp_id).text(json_string_array(app.resources)).boolean(app.allow_client_challenges);
    q.boolean(app.public_signup).text(app.user_verification).text(app.attestation_trust);
    q.text(json_string_array(app.trust_anchor_files)).text(json_string_array(app.top_origins)).text(app.id);
    SIGIL_TRY(impl_->run(q, "update app"));
    if (impl_->changes() == 0) return make_error(ErrorCode::kNotFound, "App not found");
    return {};
  });
}

// find_app, find_client and list_apps go through the configuration cache: the version is read first and
// its statement held, so the row read on a miss belongs to the same snapshot as the version it is cached
// under. Absent rows are not cached (a miss reads the table every time, as before).
Result<std::optional<App>> SqliteStore::find_app(const std::string& app_id) {
  return impl_->read([&](Conn& c) -> Result<std::optional<App>> {
    int64_t version = 0;
    SIGIL_ASSIGN_OR_RETURN(Query snapshot, c.config_version(version));
    if (auto hit = impl_->config.app(version, app_id)) return *hit;
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_APP_COLS " FROM apps WHERE id = ?"));
    q.text(app_id);
    SIGIL_ASSIGN_OR_RETURN(auto app, c.find_one(q, "find app", [&](const Query& row) { return c.read_app(row); }));
    if (app) impl_->config.put_app(version, *app);
    return app;
  });
}

Result<std::optional<App>> SqliteStore::find_app_by_name(const std::string& tenant_id, const std::string& name) {
  return impl_->read([&](Conn& c) -> Result<std::optional<App>> {
    // Names are not unique; the oldest app of that name wins.
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_APP_COLS " FROM apps WHERE tenant_id = ? AND "
                                            "name = ? ORDER BY created_at, id LIMIT 1"));
    q.text(tenant_id).text(name);
    return c.find_one(q, "find app by name", [&](const Query& row) { return c.read_app(row); });
  });
}

Result<std::vector<App>> SqliteStore::list_apps() {
  return impl_->read([&](Conn& c) -> Result<std::vector<App>> {
    int64_t version = 0;
    SIGIL_ASSIGN_OR_RETURN(Query snapshot, c.config_version(version));
    if (auto hit = impl_->config.app_list(version)) return *hit;
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_APP_COLS " FROM apps ORDER BY created_at, id"));
    SIGIL_ASSIGN_OR_RETURN(auto apps, c.find_all(q, "list apps", [&](const Query& row) { return c.read_app(row); }));
    impl_->config.put_app_list(version, apps);
    return apps;
  });
}

Result<void> SqliteStore::create_client(const Client& c) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q,
                           impl_->query("INSERT INTO clients (" SIGIL_CLIENT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)"));
    q.text(c.client_id).text(c.app_id).text(c.tenant_id).blob(c.secret_hash).text(c.name).integer(c.created_at);
    q.boolean(c.public_client);
    return impl_->run(q, "insert client");
  });
}

Result<std::optional<Client>> SqliteStore::find_client(const std::string& client_id) {
  return impl_->read([&](Conn& c) -> Result<std::optional<Client>> {
    int64_t version = 0;
    SIGIL_ASSIGN_OR_RETURN(Query snapshot, c.config_version(version));
    if (auto hit = impl_->config.client(version, client_id)) return *hit;
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_CLIENT_COLS " FROM clients WHERE client_id = ?"));
    q.text(client_id);
    SIGIL_ASSIGN_OR_RETURN(auto client, c.find_one(q, "find client", Conn::read_client));
    if (client) impl_->config.put_client(version, *client);
    return client;
  });
}

Result<std::vector<Client>> SqliteStore::list_clients(const std::string& app_id) {
  return impl_->read([&](Conn& c) -> Result<std::vector<Client>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_CLIENT_COLS
                                            " FROM clients WHERE app_id = ? ORDER BY created_at, client_id"));
    q.text(app_id);
    return c.find_all(q, "list clients", Conn::read_client);
  });
}

// ---- users ----------------------------------------------------------------------------------------------

Result<void> SqliteStore::create_user(const User& u) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q,
                           impl_->query("INSERT INTO users (" SIGIL_USER_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)"));
    q.text(u.id).text(u.tenant_id).text(u.email).text(u.phone).boolean(u.email_verified).integer(u.created_at);
    q.text(u.external_user_id);
    return impl_->run(q, "insert user");
  });
}

Result<std::optional<User>> SqliteStore::find_user(const std::string& user_id) {
  return impl_->read([&](Conn& c) -> Result<std::optional<User>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_USER_COLS " FROM users WHERE id = ?"));
    q.text(user_id);
    return c.find_one(q, "find user", Conn::read_user);
  });
}

// `email != ''` / `phone != ''` let the planner use the partial unique indexes, and make an empty
// identifier match nobody.
Result<std::optional<User>> SqliteStore::find_user_by_email(const std::string& tenant_id, const std::string& email) {
  return impl_->read([&](Conn& c) -> Result<std::optional<User>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_USER_COLS
                                            " FROM users WHERE tenant_id = ? AND email = ? AND email != ''"));
    q.text(tenant_id).text(email);
    return c.find_one(q, "find user by email", Conn::read_user);
  });
}

Result<std::optional<User>> SqliteStore::find_user_by_phone(const std::string& tenant_id, const std::string& phone) {
  return impl_->read([&](Conn& c) -> Result<std::optional<User>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_USER_COLS
                                            " FROM users WHERE tenant_id = ? AND phone = ? AND phone != ''"));
    q.text(tenant_id).text(phone);
    return c.find_one(q, "find user by phone", Conn::read_user);
  });
}

Result<void> SqliteStore::set_email_verified(const std::string& user_id) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query("UPDATE users SET email_verified = 1 WHERE id = ?"));
    q.text(user_id);
    SIGIL_TRY(impl_->run(q, "set email verified"));
    if (impl_->changes() == 0) return make_error(ErrorCode::kNotFound, "User not found");
    return {};
  });
}

Result<std::optional<User>> SqliteStore::find_user_by_external_id(const std::string& tenant_id,
                                                                  const std::string& external_id) {
  return impl_->read([&](Conn& c) -> Result<std::optional<User>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_USER_COLS " FROM users WHERE tenant_id = ? AND "
                                            "external_user_id = ? AND external_user_id != ''"));
    q.text(tenant_id).text(external_id);
    return c.find_one(q, "find user by external id", Conn::read_user);
  });
}

// ---- webauthn -------------------------------------------------------------------------------------------

Result<std::optional<WebAuthnAccount>> SqliteStore::find_webauthn_account(const std::string& app_id,
                                                                          const std::string& username) {
  return impl_->read([&](Conn& c) -> Result<std::optional<WebAuthnAccount>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_WA_ACCOUNT_COLS
                                            " FROM webauthn_accounts WHERE app_id = ? AND username = ?"));
    q.text(app_id).text(username);
    return c.find_one(q, "find webauthn account", Conn::read_wa_account);
  });
}

Result<std::optional<WebAuthnAccount>> SqliteStore::find_webauthn_account_by_handle(const std::string& app_id,
                                                                                    const Bytes& user_handle) {
  return impl_->read([&](Conn& c) -> Result<std::optional<WebAuthnAccount>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_WA_ACCOUNT_COLS
                                            " FROM webauthn_accounts WHERE app_id = ? AND user_handle = ?"));
    q.text(app_id).blob(user_handle);
    return c.find_one(q, "find webauthn account by handle", Conn::read_wa_account);
  });
}

Result<void> SqliteStore::register_webauthn_credential(const std::optional<User>& new_user,
                                                       const WebAuthnAccount& account,
                                                       const WebAuthnCredential& c) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    if (new_user) {
      SIGIL_ASSIGN_OR_RETURN(Query q,
                             impl_->query("INSERT INTO users (" SIGIL_USER_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)"));
      const User& u = *new_user;
      q.text(u.id).text(u.tenant_id).text(u.email).text(u.phone).boolean(u.email_verified).integer(u.created_at);
      q.text(u.external_user_id);
      SIGIL_TRY(impl_->run(q, "insert user"));
    }
    {
      SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
          "SELECT user_id FROM webauthn_accounts WHERE app_id = ? AND username = ?"));
      q.text(account.app_id).text(account.username);
      const int rc = q.step();
      if (rc == SQLITE_ROW) {
        if (q.column_text(0) != c.user_id) {
          return make_error(ErrorCode::kConflict, "The username belongs to another user", "auth_username_taken");
        }
      } else if (rc != SQLITE_DONE) {
        return std::unexpected(impl_->fail(rc, "load webauthn account"));
      } else {
        SIGIL_ASSIGN_OR_RETURN(Query ins, impl_->query("INSERT INTO webauthn_accounts (" SIGIL_WA_ACCOUNT_COLS
                                                       ") VALUES (?, ?, ?, ?, ?, ?)"));
        ins.text(account.app_id).text(account.username).text(account.user_id).blob(account.user_handle);
        ins.text(account.display_name).integer(account.created_at);
        SIGIL_TRY(impl_->run(ins, "insert webauthn account"));
      }
    }
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query("INSERT INTO webauthn_credentials (" SIGIL_WA_CRED_COLS
                                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    q.blob(c.credential_id).text(c.app_id).text(c.user_id).text(c.username).blob(c.user_handle);
    q.blob(c.public_key_cose).integer(c.alg).integer(c.sign_count).blob(c.aaguid);
    q.text(json_string_array(c.transports)).text(c.attachment).boolean(c.backup_eligible).boolean(c.backup_state);
    q.text(c.fmt).text(c.attestation_type).text(c.device_info_json).integer(c.created_at).integer(c.last_used_at);
    q.integer(c.flagged_at);
    auto inserted = impl_->run(q, "insert webauthn credential");
    if (!inserted && inserted.error().code == ErrorCode::kConflict) {
      return make_error(ErrorCode::kConflict, "Credential already registered", "auth_credential_exists");
    }
    return inserted;
  });
}

Result<std::optional<WebAuthnCredential>> SqliteStore::find_webauthn_credential(const Bytes& credential_id) {
  return impl_->read([&](Conn& c) -> Result<std::optional<WebAuthnCredential>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_WA_CRED_COLS
                                            " FROM webauthn_credentials WHERE credential_id = ?"));
    q.blob(credential_id);
    return c.find_one(q, "find webauthn credential", [&](const Query& row) { return c.read_wa_credential(row); });
  });
}

Result<std::vector<WebAuthnCredential>> SqliteStore::list_webauthn_credentials(const std::string& app_id,
                                                                               const std::string& user_id) {
  return impl_->read([&](Conn& c) -> Result<std::vector<WebAuthnCredential>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_WA_CRED_COLS
                                            " FROM webauthn_credentials WHERE app_id = ? AND user_id = ?"
                                            " ORDER BY created_at, credential_id"));
    q.text(app_id).text(user_id);
    return c.find_all(q, "list webauthn credentials", [&](const Query& row) { return c.read_wa_credential(row); });
  });
}

Result<std::vector<WebAuthnCredential>> SqliteStore::list_webauthn_credentials_by_username(
    const std::string& app_id, const std::string& username) {
  return impl_->read([&](Conn& c) -> Result<std::vector<WebAuthnCredential>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_WA_CRED_COLS
                                            " FROM webauthn_credentials WHERE app_id = ? AND username = ?"
                                            " ORDER BY created_at, credential_id"));
    q.text(app_id).text(username);
    return c.find_all(q, "list webauthn credentials by username",
                      [&](const Query& row) { return c.read_wa_credential(row); });
  });
}

Result<bool> SqliteStore::delete_webauthn_credential(const std::string& app_id, const std::string& user_id,
                                                     const Bytes& credential_id) {
  return impl_->write([&](Impl::Transaction&) -> Result<bool> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
        "DELETE FROM webauthn_credentials WHERE credential_id = ? AND app_id = ? AND user_id = ?"));
    q.blob(credential_id).text(app_id).text(user_id);
    SIGIL_TRY(impl_->run(q, "delete webauthn credential"));
    return impl_->changes() > 0;
  });
}

Result<void> SqliteStore::flag_webauthn_credential(const Bytes& credential_id, int64_t now) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
        "UPDATE webauthn_credentials SET flagged_at = ? WHERE credential_id = ? AND flagged_at = 0"));
    q.integer(now).blob(credential_id);
    return impl_->run(q, "flag webauthn credential");
  });
}

// ---- mobile keys ----------------------------------------------------------------------------------------

Result<void> SqliteStore::insert_mobile_key(const MobileKey& k) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query("INSERT INTO mobile_keys (" SIGIL_MOBILE_KEY_COLS
                                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    q.text(k.app_id).text(k.key_id).text(k.user_id).blob(k.spki_der).text(k.key_type).text(k.os);
    q.text(k.device_id).text(k.display_name).integer(k.created_at).integer(k.last_used_at);
    return impl_->run(q, "insert mobile key");
  });
}

Result<std::optional<MobileKey>> SqliteStore::find_mobile_key(const std::string& app_id, const std::string& key_id) {
  return impl_->read([&](Conn& c) -> Result<std::optional<MobileKey>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_MOBILE_KEY_COLS
                                            " FROM mobile_keys WHERE app_id = ? AND key_id = ?"));
    q.text(app_id).text(key_id);
    return c.find_one(q, "find mobile key", Conn::read_mobile_key);
  });
}

Result<int> SqliteStore::count_mobile_keys(const std::string& app_id, const std::string& user_id) {
  return impl_->read([&](Conn& c) -> Result<int> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT COUNT(*) FROM mobile_keys WHERE app_id = ? AND user_id = ?"));
    q.text(app_id).text(user_id);
    const int rc = q.step();
    if (rc != SQLITE_ROW) return std::unexpected(c.fail(rc, "count mobile keys"));
    return static_cast<int>(q.column_int(0));
  });
}

Result<bool> SqliteStore::delete_mobile_key(const std::string& app_id, const std::string& user_id,
                                            const std::string& key_id) {
  return impl_->write([&](Impl::Transaction&) -> Result<bool> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
        "DELETE FROM mobile_keys WHERE app_id = ? AND key_id = ? AND user_id = ?"));
    q.text(app_id).text(key_id).text(user_id);
    SIGIL_TRY(impl_->run(q, "delete mobile key"));
    return impl_->changes() > 0;
  });
}

// ---- sessions and login ---------------------------------------------------------------------------------

Result<std::optional<Session>> SqliteStore::find_session(const std::string& id) {
  return impl_->read([&](Conn& c) -> Result<std::optional<Session>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_SESSION_COLS " FROM sessions WHERE id = ?"));
    q.text(id);
    return c.find_one(q, "find session", [&](const Query& row) { return c.read_session(row); });
  });
}

Result<bool> SqliteStore::end_session(const std::string& id, int64_t now) {
  return impl_->write([&](Impl::Transaction& txn) -> Result<bool> {
    {
      SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
          "UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at = 0"));
      q.integer(now).text(id);
      SIGIL_TRY(impl_->run(q, "end session"));
    }
    if (impl_->changes() == 0) {
      txn.rollback();
      return false;
    }
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at = 0"));
    q.integer(now).text(id);
    SIGIL_TRY(impl_->run(q, "revoke session refresh tokens"));
    return true;
  });
}

// ---- browser sessions -----------------------------------------------------------------------------------

Result<void> SqliteStore::create_browser_session(const BrowserSession& s) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query("INSERT INTO browser_sessions (" SIGIL_BROWSER_SESSION_COLS
                                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    q.blob(s.id_hash).text(s.tenant_id).text(s.user_id).text(json_string_array(s.amr)).integer(s.auth_time);
    q.integer(s.created_at).integer(s.expires_at).integer(s.ended_at);
    return impl_->run(q, "insert browser session");
  });
}

Result<std::optional<BrowserSession>> SqliteStore::find_browser_session(const Bytes& id_hash) {
  return impl_->read([&](Conn& c) -> Result<std::optional<BrowserSession>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_BROWSER_SESSION_COLS
                                            " FROM browser_sessions WHERE id_hash = ?"));
    q.blob(id_hash);
    return c.find_one(q, "find browser session", [&](const Query& row) { return c.read_browser_session(row); });
  });
}

Result<void> SqliteStore::link_browser_session(const Bytes& id_hash, const std::string& session_id) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
        "INSERT OR REPLACE INTO browser_session_logins (session_id, browser_session) VALUES (?, ?)"));
    q.text(session_id).blob(id_hash);
    return impl_->run(q, "link browser session");
  });
}

Result<bool> SqliteStore::end_browser_session(const Bytes& id_hash, int64_t now) {
  return impl_->write([&](Impl::Transaction& txn) -> Result<bool> {
    {
      SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
          "UPDATE browser_sessions SET ended_at = ? WHERE id_hash = ? AND ended_at = 0"));
      q.integer(now).blob(id_hash);
      SIGIL_TRY(impl_->run(q, "end browser session"));
    }
    if (impl_->changes() == 0) {
      txn.rollback();
      return false;
    }
    {
      SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
          "UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at = 0 AND session_id IN "
          "(SELECT session_id FROM browser_session_logins WHERE browser_session = ?)"));
      q.integer(now).blob(id_hash);
      SIGIL_TRY(impl_->run(q, "revoke browser session refresh tokens"));
    }
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
        "UPDATE sessions SET ended_at = ? WHERE ended_at = 0 AND id IN "
        "(SELECT session_id FROM browser_session_logins WHERE browser_session = ?)"));
    q.integer(now).blob(id_hash);
    SIGIL_TRY(impl_->run(q, "end browser session logins"));
    return true;
  });
}

Result<std::optional<Bytes>> SqliteStore::browser_session_of(const std::string& session_id) {
  return impl_->read([&](Conn& c) -> Result<std::optional<Bytes>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT browser_session FROM browser_session_logins WHERE session_id = ?"));
    q.text(session_id);
    return c.find_one(q, "find browser session link",
                      [](const Query& row) -> Result<Bytes> { return row.column_blob(0); });
  });
}

Result<void> SqliteStore::commit_login(const LoginWrite& w) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> { return impl_->commit_login_body(w); });
}

void SqliteStore::commit_login_async(LoginWrite w, std::function<void(Result<void>)> done) {
  impl_->write_async([this, w = std::move(w)](Impl::Transaction&) -> Result<void> { return impl_->commit_login_body(w); },
                     std::move(done));
}

// ---- refresh tokens -------------------------------------------------------------------------------------

Result<std::optional<RefreshToken>> SqliteStore::find_refresh_token(const Bytes& hash) {
  return impl_->read([&](Conn& c) -> Result<std::optional<RefreshToken>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_REFRESH_COLS " FROM refresh_tokens WHERE token_hash = ?"));
    q.blob(hash);
    return c.find_one(q, "find refresh token", Conn::read_refresh_token);
  });
}

Result<bool> SqliteStore::rotate_refresh_token(const Bytes& old_hash, const RefreshToken& next, int64_t now) {
  return impl_->write([&](Impl::Transaction& txn) -> Result<bool> {
    {
      SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
          "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? AND rotated_at = 0 AND revoked_at = 0"));
      q.integer(now).blob(old_hash);
      SIGIL_TRY(impl_->run(q, "rotate refresh token"));
    }
    if (impl_->changes() == 0) {
      txn.rollback();
      return false;
    }
    SIGIL_TRY(impl_->insert_refresh_token(next));
    return true;
  });
}

Result<void> SqliteStore::revoke_refresh_family(const std::string& family_id, int64_t now) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    {
      SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
          "UPDATE sessions SET ended_at = ? WHERE ended_at = 0 AND id IN "
          "(SELECT session_id FROM refresh_tokens WHERE family_id = ?)"));
      q.integer(now).text(family_id);
      SIGIL_TRY(impl_->run(q, "end family sessions"));
    }
    // The family's tokens, and any other token of the sessions just ended (as end_session does).
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at = 0 AND (family_id = ? OR session_id IN "
        "(SELECT session_id FROM refresh_tokens WHERE family_id = ?))"));
    q.integer(now).text(family_id).text(family_id);
    return impl_->run(q, "revoke refresh family");
  });
}

// ---- signing keys ---------------------------------------------------------------------------------------

Result<void> SqliteStore::insert_signing_key(const SigningKeyRow& k) {
  return impl_->write([&](Impl::Transaction&) -> Result<void> {
    SIGIL_ASSIGN_OR_RETURN(Query q, impl_->query("INSERT INTO signing_keys (" SIGIL_SIGNING_KEY_COLS
                                                 ") VALUES (?, ?, ?, ?, ?)"));
    q.text(k.kid).text(k.alg).blob(k.sealed_private).integer(k.created_at).integer(k.retired_at);
    return impl_->run(q, "insert signing key");
  });
}

Result<std::vector<SigningKeyRow>> SqliteStore::list_signing_keys() {
  return impl_->read([&](Conn& c) -> Result<std::vector<SigningKeyRow>> {
    SIGIL_ASSIGN_OR_RETURN(Query q, c.query("SELECT " SIGIL_SIGNING_KEY_COLS
                                            " FROM signing_keys ORDER BY created_at, kid"));
    return c.find_all(q, "list signing keys", Conn::read_signing_key);
  });
}

}  // namespace sigil::store
