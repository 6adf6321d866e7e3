// The WebAuthn part of store::SqliteStore (API.md 3): accounts and credentials written in one transaction,
// conflicts that write nothing, per-user listing and deletion, flagging, sign-count updates through
// commit_login, external user ids, and the migration that adds all of it to an existing (version 1) file.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "api/store/sqlite_store.h"
#include "engine/base/clock.h"

namespace sigil::store {
namespace {

namespace fs = std::filesystem;

class WebAuthnStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sigil-wastore-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "sigil.db").string();
    store_ = open_store();
    ASSERT_NE(store_, nullptr);
    seed(*store_);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<SqliteStore> open_store() {
    auto s = SqliteStore::open(path_, clock_);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
  }

  std::string raw_query(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      if (text != nullptr) out = text;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
  }
  void raw_exec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }

  // Tenant t1 with apps a1 and a2; users u1 and u2 in t1.
  void seed(Store& s) {
    ASSERT_TRUE(s.create_tenant({"t1", "Tenant one", 100}).has_value());
    for (const char* id : {"a1", "a2"}) {
      App app;
      app.id = id;
      app.tenant_id = "t1";
      app.name = id;
      app.origins = {"https://example.org"};
      app.rp_id = "example.org";
      app.created_at = 101;
      ASSERT_TRUE(s.create_app(app).has_value());
    }
    ASSERT_TRUE(s.create_user(user("u1", "u1@example.com")).has_value());
    ASSERT_TRUE(s.create_user(user("u2", "u2@example.com")).has_value());
  }

  static User user(std::string id, std::string email, std::string external_id = {}) {
    User u;
    u.id = std::move(id);
    u.tenant_id = "t1";
    u.email = std::move(email);
    u.external_user_id = std::move(external_id);
    u.created_at = 150;
    return u;
  }
  static WebAuthnAccount account(std::string app_id, std::string username, std::string user_id, uint8_t handle) {
    WebAuthnAccount a;
    a.app_id = std::move(app_id);
    a.username = std::move(username);
    a.user_id = std::move(user_id);
    a.user_handle = Bytes(32, handle);
    a.display_name = "Display " + a.username;
    a.created_at = 200;
    return a;
  }
  static WebAuthnCredential credential(const WebAuthnAccount& a, uint8_t id_tag, int64_t created_at = 200) {
    WebAuthnCredential c;
    c.credential_id = Bytes(16, id_tag);
    c.app_id = a.app_id;
    c.user_id = a.user_id;
    c.username = a.username;
    c.user_handle = a.user_handle;
    c.public_key_cose = {0xa5, 0x01, 0x02, 0x03, 0x26};
    c.alg = -7;
    c.sign_count = 5;
    c.aaguid = Bytes(16, 0xaa);
    c.transports = {"internal", "hybrid"};
    c.attachment = "platform";
    c.backup_eligible = true;
    c.backup_state = false;
    c.fmt = "packed";
    c.attestation_type = "self";
    c.device_info_json = R"({"publicKeyId":"pk1"})";
    c.created_at = created_at;
    return c;
  }

  Result<void> register_cred(const WebAuthnAccount& a, const WebAuthnCredential& c,
                             const std::optional<User>& new_user = std::nullopt) {
    return store_->register_webauthn_credential(new_user, a, c);
  }

  static Session session(std::string id) {
    Session s;
    s.id = std::move(id);
    s.app_id = "a1";
    s.user_id = "u1";
    s.client_id = "c1";
    s.created_at = 200;
    s.auth_time = 200;
    s.amr = {"webauthn"};
    s.client_attributes_json = "{}";
    return s;
  }
  static LoginWrite webauthn_login(std::string session_id, const Bytes& credential_id, int64_t count,
                                   int64_t used_at, bool backup_state = false) {
    LoginWrite w;
    w.new_session = session(std::move(session_id));
    w.amr = {"webauthn"};
    w.auth_time = used_at;
    w.used_at = used_at;
    w.webauthn_credential_id = credential_id;
    w.webauthn_sign_count = count;
    w.webauthn_backup_state = backup_state;
    return w;
  }

  ManualClock clock_;
  fs::path dir_;
  std::string path_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(WebAuthnStoreTest, RegisterWritesAccountAndCredentialThatRoundTrip) {
  const auto a = account("a1", "alice", "u1", 0x01);
  const auto c = credential(a, 0x10);
  ASSERT_TRUE(register_cred(a, c).has_value());

  auto acc = store_->find_webauthn_account("a1", "alice");
  ASSERT_TRUE(acc.has_value() && acc->has_value());
  EXPECT_EQ((*acc)->user_id, "u1");
  EXPECT_EQ((*acc)->user_handle, Bytes(32, 0x01));
  EXPECT_EQ((*acc)->display_name, "Display alice");
  EXPECT_EQ((*acc)->created_at, 200);
  auto by_handle = store_->find_webauthn_account_by_handle("a1", Bytes(32, 0x01));
  ASSERT_TRUE(by_handle.has_value() && by_handle->has_value());
  EXPECT_EQ((*by_handle)->username, "alice");
  EXPECT_FALSE(store_->find_webauthn_account_by_handle("a2", Bytes(32, 0x01))->has_value());
  EXPECT_FALSE(store_->find_webauthn_account("a2", "alice")->has_value());

  auto got = store_->find_webauthn_credential(Bytes(16, 0x10));
  ASSERT_TRUE(got.has_value() && got->has_value());
  const WebAuthnCredential& g = **got;
  EXPECT_EQ(g.app_id, "a1");
  EXPECT_EQ(g.user_id, "u1");
  EXPECT_EQ(g.username, "alice");
  EXPECT_EQ(g.user_handle, Bytes(32, 0x01));
  EXPECT_EQ(g.public_key_cose, c.public_key_cose);
  EXPECT_EQ(g.alg, -7);
  EXPECT_EQ(g.sign_count, 5);
  EXPECT_EQ(g.aaguid, Bytes(16, 0xaa));
  EXPECT_EQ(g.transports, (std::vector<std::string>{"internal", "hybrid"}));
  EXPECT_EQ(g.attachment, "platform");
  EXPECT_TRUE(g.backup_eligible);
  EXPECT_FALSE(g.backup_state);
  EXPECT_EQ(g.fmt, "packed");
  EXPECT_EQ(g.attestation_type, "self");
  EXPECT_EQ(g.device_info_json, R"({"publicKeyId":"pk1"})");
  EXPECT_EQ(g.created_at, 200);
  EXPECT_EQ(g.last_used_at, 0);
  EXPECT_EQ(g.flagged_at, 0);
  EXPECT_FALSE(store_->find_webauthn_credential(Bytes(16, 0x11))->has_value());
}

TEST_F(WebAuthnStoreTest, SecondCredentialOfSameUserReusesTheAccount) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
  ASSERT_TRUE(register_cred(a, credential(a, 0x11, 300)).has_value());
  EXPECT_EQ(raw_query("SELECT COUNT(*) FROM webauthn_accounts"), "1");
  EXPECT_EQ(raw_query("SELECT COUNT(*) FROM webauthn_credentials"), "2");
}

TEST_F(WebAuthnStoreTest, UsernameOfAnotherUserConflictsAndWritesNothing) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
  auto b = account("a1", "alice", "u2", 0x02);
  auto r = register_cred(b, credential(b, 0x20));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ(r.error().ts_error_code, "auth_username_taken");
  EXPECT_FALSE(store_->find_webauthn_credential(Bytes(16, 0x20))->has_value());
  EXPECT_EQ((*store_->find_webauthn_account("a1", "alice"))->user_id, "u1");
  // The same name in another app is another account.
  auto other_app = account("a2", "alice", "u2", 0x02);
  EXPECT_TRUE(register_cred(other_app, credential(other_app, 0x21)).has_value());
}

TEST_F(WebAuthnStoreTest, UsernameConflictRollsBackTheNewUser) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
  auto b = account("a1", "alice", "u3", 0x03);
  auto r = register_cred(b, credential(b, 0x30), user("u3", "u3@example.com", "ext-3"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().ts_error_code, "auth_username_taken");
  EXPECT_FALSE(store_->find_user("u3")->has_value());
  EXPECT_FALSE(store_->find_user_by_external_id("t1", "ext-3")->has_value());
}

TEST_F(WebAuthnStoreTest, DuplicateCredentialIdConflictsAcrossAppsAndWritesNothing) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
  // The same id for another user in another app: ids are unique across all apps.
  auto b = account("a2", "bob", "u2", 0x02);
  auto r = register_cred(b, credential(b, 0x10));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ(r.error().ts_error_code, "auth_credential_exists");
  EXPECT_FALSE(store_->find_webauthn_account("a2", "bob")->has_value()) << "account insert rolled back";
  EXPECT_EQ((*store_->find_webauthn_credential(Bytes(16, 0x10)))->user_id, "u1");
}

TEST_F(WebAuthnStoreTest, NewUserIsInsertedInTheSameTransaction) {
  auto a = account("a1", "carol", "u3", 0x03);
  ASSERT_TRUE(register_cred(a, credential(a, 0x30), user("u3", "carol@example.com", "ext-carol")).has_value());
  auto u = store_->find_user("u3");
  ASSERT_TRUE(u.has_value() && u->has_value());
  EXPECT_EQ((*u)->email, "carol@example.com");
  EXPECT_EQ((*u)->external_user_id, "ext-carol");
  EXPECT_TRUE(store_->find_webauthn_credential(Bytes(16, 0x30))->has_value());
}

TEST_F(WebAuthnStoreTest, FailedCredentialInsertRollsBackTheNewUserAndAccount) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
  auto c = account("a1", "carol", "u3", 0x03);
  auto r = register_cred(c, credential(c, 0x10), user("u3", "carol@example.com", "ext-carol"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().ts_error_code, "auth_credential_exists");
  EXPECT_FALSE(store_->find_user("u3")->has_value());
  EXPECT_FALSE(store_->find_user_by_external_id("t1", "ext-carol")->has_value());
  EXPECT_FALSE(store_->find_webauthn_account("a1", "carol")->has_value());
  // The connection is usable afterwards.
  EXPECT_TRUE(register_cred(c, credential(c, 0x31), user("u3", "carol@example.com", "ext-carol")).has_value());
}

TEST_F(WebAuthnStoreTest, NewUserWithTakenExternalIdConflictsAndWritesNothing) {
  ASSERT_TRUE(store_->create_user(user("u4", "", "ext-4")).has_value());
  auto c = account("a1", "dave", "u5", 0x05);
  auto r = register_cred(c, credential(c, 0x50), user("u5", "", "ext-4"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(store_->find_webauthn_credential(Bytes(16, 0x50))->has_value());
  EXPECT_FALSE(store_->find_webauthn_account("a1", "dave")->has_value());
}

TEST_F(WebAuthnStoreTest, ListsByUserAndByUsernameWithinOneApp) {
  const auto a = account("a1", "alice", "u1", 0x01);
  const auto a_work = account("a1", "alice-work", "u1", 0x04);
  const auto b = account("a1", "bob", "u2", 0x02);
  const auto a2 = account("a2", "alice", "u1", 0x05);
  ASSERT_TRUE(register_cred(a, credential(a, 0x12, 300)).has_value());
  ASSERT_TRUE(register_cred(a, credential(a, 0x11, 200)).has_value());
  ASSERT_TRUE(register_cred(a_work, credential(a_work, 0x13, 400)).has_value());
  ASSERT_TRUE(register_cred(b, credential(b, 0x20)).has_value());
  ASSERT_TRUE(register_cred(a2, credential(a2, 0x30)).has_value());

  auto by_user = store_->list_webauthn_credentials("a1", "u1");
  ASSERT_TRUE(by_user.has_value());
  ASSERT_EQ(by_user->size(), 3u);
  EXPECT_EQ((*by_user)[0].credential_id, Bytes(16, 0x11)) << "ordered by creation";
  EXPECT_EQ((*by_user)[1].credential_id, Bytes(16, 0x12));
  EXPECT_EQ((*by_user)[2].credential_id, Bytes(16, 0x13));

  auto by_name = store_->list_webauthn_credentials_by_username("a1", "alice");
  ASSERT_TRUE(by_name.has_value());
  ASSERT_EQ(by_name->size(), 2u);
  EXPECT_EQ((*by_name)[0].credential_id, Bytes(16, 0x11));
  EXPECT_EQ((*by_name)[1].credential_id, Bytes(16, 0x12));

  EXPECT_EQ(store_->list_webauthn_credentials("a2", "u1")->size(), 1u);
  EXPECT_EQ(store_->list_webauthn_credentials_by_username("a1", "bob")->size(), 1u);
  EXPECT_TRUE(store_->list_webauthn_credentials_by_username("a1", "nobody")->empty());
  EXPECT_TRUE(store_->list_webauthn_credentials("a1", "u9")->empty());
}

TEST_F(WebAuthnStoreTest, DeleteRemovesOnlyTheCallersOwnCredential) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
  auto by_other_user = store_->delete_webauthn_credential("a1", "u2", Bytes(16, 0x10));
  ASSERT_TRUE(by_other_user.has_value());
  EXPECT_FALSE(*by_other_user);
  auto by_other_app = store_->delete_webauthn_credential("a2", "u1", Bytes(16, 0x10));
  ASSERT_TRUE(by_other_app.has_value());
  EXPECT_FALSE(*by_other_app);
  EXPECT_TRUE(store_->find_webauthn_credential(Bytes(16, 0x10))->has_value());
  auto by_owner = store_->delete_webauthn_credential("a1", "u1", Bytes(16, 0x10));
  ASSERT_TRUE(by_owner.has_value());
  EXPECT_TRUE(*by_owner);
  EXPECT_FALSE(store_->find_webauthn_credential(Bytes(16, 0x10))->has_value());
  auto again = store_->delete_webauthn_credential("a1", "u1", Bytes(16, 0x10));
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(*again);
}

TEST_F(WebAuthnStoreTest, FlagSetsTimeOnceAndSurvivesReads) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
  ASSERT_TRUE(store_->flag_webauthn_credential(Bytes(16, 0x10), 500).has_value());
  EXPECT_EQ((*store_->find_webauthn_credential(Bytes(16, 0x10)))->flagged_at, 500);
  // A second flag keeps the first time.
  ASSERT_TRUE(store_->flag_webauthn_credential(Bytes(16, 0x10), 900).has_value());
  EXPECT_EQ((*store_->find_webauthn_credential(Bytes(16, 0x10)))->flagged_at, 500);
  EXPECT_EQ((*store_->list_webauthn_credentials("a1", "u1"))[0].flagged_at, 500);
  // Flagging an unknown id is not an error.
  EXPECT_TRUE(store_->flag_webauthn_credential(Bytes(16, 0x99), 900).has_value());
}

TEST_F(WebAuthnStoreTest, CommitLoginMovesSignCountOnlyForwardAndRecordsUse) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());  // sign_count 5
  ASSERT_TRUE(store_->commit_login(webauthn_login("s1", Bytes(16, 0x10), 9, 300, true)).has_value());
  auto c = *store_->find_webauthn_credential(Bytes(16, 0x10));
  EXPECT_EQ(c->sign_count, 9);
  EXPECT_EQ(c->last_used_at, 300);
  EXPECT_TRUE(c->backup_state);
  EXPECT_TRUE(store_->find_session("s1")->has_value());
  // A racing login that verified an older count never moves it back.
  ASSERT_TRUE(store_->commit_login(webauthn_login("s2", Bytes(16, 0x10), 7, 400)).has_value());
  c = *store_->find_webauthn_credential(Bytes(16, 0x10));
  EXPECT_EQ(c->sign_count, 9);
  EXPECT_EQ(c->last_used_at, 400);
  // Zero counters (many passkeys) stay zero-compatible.
  ASSERT_TRUE(store_->commit_login(webauthn_login("s3", Bytes(16, 0x10), 0, 500)).has_value());
  EXPECT_EQ((*store_->find_webauthn_credential(Bytes(16, 0x10)))->sign_count, 9);
}

TEST_F(WebAuthnStoreTest, FailedCommitLoginLeavesTheCredentialUntouched) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
  ASSERT_TRUE(store_->commit_login(webauthn_login("s1", Bytes(16, 0x10), 6, 300)).has_value());
  // Same session id again: the session insert fails, so the whole write is rolled back.
  auto r = store_->commit_login(webauthn_login("s1", Bytes(16, 0x10), 50, 999));
  ASSERT_FALSE(r.has_value());
  auto c = *store_->find_webauthn_credential(Bytes(16, 0x10));
  EXPECT_EQ(c->sign_count, 6);
  EXPECT_EQ(c->last_used_at, 300);
}

TEST_F(WebAuthnStoreTest, FindUserByExternalIdIsPerTenantAndIgnoresEmpty) {
  ASSERT_TRUE(store_->create_user(user("u7", "u7@example.com", "ext-7")).has_value());
  auto found = store_->find_user_by_external_id("t1", "ext-7");
  ASSERT_TRUE(found.has_value() && found->has_value());
  EXPECT_EQ((*found)->id, "u7");
  EXPECT_EQ((*found)->external_user_id, "ext-7");
  EXPECT_FALSE(store_->find_user_by_external_id("t2", "ext-7")->has_value());
  EXPECT_FALSE(store_->find_user_by_external_id("t1", "ext-8")->has_value());
  // u1 and u2 have no external id: an empty one matches nobody.
  EXPECT_FALSE(store_->find_user_by_external_id("t1", "")->has_value());
  // Unique per tenant.
  auto dup = store_->create_user(user("u8", "u8@example.com", "ext-7"));
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
}

TEST_F(WebAuthnStoreTest, AppWebAuthnPolicyRoundTrips) {
  auto app = *store_->find_app("a1");
  ASSERT_TRUE(app.has_value());
  EXPECT_EQ(app->user_verification, "preferred");
  EXPECT_EQ(app->attestation_trust, "none");
  EXPECT_TRUE(app->trust_anchor_files.empty());
  EXPECT_TRUE(app->top_origins.empty());
  app->user_verification = "required";
  app->attestation_trust = "direct";
  app->trust_anchor_files = {"/etc/sigil/roots.pem"};
  app->top_origins = {"https://example.com"};
  ASSERT_TRUE(store_->update_app(*app).has_value());
  auto again = *store_->find_app("a1");
  EXPECT_EQ(again->user_verification, "required");
  EXPECT_EQ(again->attestation_trust, "direct");
  EXPECT_EQ(again->trust_anchor_files, std::vector<std::string>{"/etc/sigil/roots.pem"});
  EXPECT_EQ(again->top_origins, std::vector<std::string>{"https://example.com"});
}

TEST_F(WebAuthnStoreTest, DataSurvivesReopenAndBothMigrationsAreRecorded) {
  const auto a = account("a1", "alice", "u1", 0x01);
  ASSERT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
  store_.reset();
  store_ = open_store();
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE(store_->find_webauthn_credential(Bytes(16, 0x10))->has_value());
  EXPECT_TRUE(store_->find_webauthn_account("a1", "alice")->has_value());
  EXPECT_GE(SqliteStore::latest_schema_version(), 2);
  EXPECT_EQ(raw_query("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(SqliteStore::latest_schema_version()));
  EXPECT_EQ(raw_query("SELECT COUNT(*) FROM schema_migrations WHERE version IN (1, 2)"), "2");
}

TEST_F(WebAuthnStoreTest, VersionOneDatabaseMigratesKeepingItsRows) {
  // Turn the file back into a version-1 database: drop what migration 2 added.
  ASSERT_EQ(SqliteStore::latest_schema_version(), 4) << "update this test for the new migration";
  store_.reset();
  raw_exec(R"sql(
    DROP TRIGGER tenants_insert_config_version;
    DROP TRIGGER tenants_update_config_version;
    DROP TRIGGER tenants_delete_config_version;
    DROP TRIGGER apps_insert_config_version;
    DROP TRIGGER apps_update_config_version;
    DROP TRIGGER apps_delete_config_version;
    DROP TRIGGER clients_insert_config_version;
    DROP TRIGGER clients_update_config_version;
    DROP TRIGGER clients_delete_config_version;
    DROP TABLE config_version;
    DELETE FROM schema_migrations WHERE version = 4;
    DROP TABLE browser_session_logins;
    DROP TABLE browser_sessions;
    ALTER TABLE clients DROP COLUMN public_client;
    DELETE FROM schema_migrations WHERE version = 3;
    DROP TABLE webauthn_credentials;
    DROP TABLE webauthn_accounts;
    DROP INDEX users_external_id;
    ALTER TABLE users DROP COLUMN external_user_id;
    ALTER TABLE apps DROP COLUMN user_verification;
    ALTER TABLE apps DROP COLUMN attestation_trust;
    ALTER TABLE apps DROP COLUMN trust_anchor_files;
    ALTER TABLE apps DROP COLUMN top_origins;
    DELETE FROM schema_migrations WHERE version = 2;
  )sql");
  EXPECT_EQ(raw_query("SELECT MAX(version) FROM schema_migrations"), "1");
  clock_.advance_ms(60'000);
  store_ = open_store();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(raw_query("SELECT COUNT(*) FROM schema_migrations"), "4");
  EXPECT_EQ(raw_query("SELECT applied_at FROM schema_migrations WHERE version = 2"),
            std::to_string(clock_.now_s()));
  // Old rows are intact and get the defaults.
  auto u = store_->find_user("u1");
  ASSERT_TRUE(u.has_value() && u->has_value());
  EXPECT_EQ((*u)->email, "u1@example.com");
  EXPECT_EQ((*u)->external_user_id, "");
  auto app = store_->find_app("a1");
  ASSERT_TRUE(app.has_value() && app->has_value());
  EXPECT_EQ((*app)->user_verification, "preferred");
  EXPECT_EQ((*app)->attestation_trust, "none");
  EXPECT_EQ((*app)->origins, std::vector<std::string>{"https://example.org"});
  // And the new tables work.
  const auto a = account("a1", "alice", "u1", 0x01);
  EXPECT_TRUE(register_cred(a, credential(a, 0x10)).has_value());
}

}  // namespace
}  // namespace sigil::store
