#include "api/store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/clock.h"

namespace sigil::store {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards; every test works on a real database file in it.
class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sigil-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "sigil.db").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<SqliteStore> open_store(SqliteStore::OpenOptions options = {}) {
    auto s = SqliteStore::open(path_, clock_, options);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
  }

  // Runs `sql` on a separate raw connection and returns the first column of the first row as text.
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

  // A tenant "t1" with an app "a1", which most rows hang off.
  void seed(Store& s) {
    ASSERT_TRUE(s.create_tenant({"t1", "Tenant one", 100}).has_value());
    App app;
    app.id = "a1";
    app.tenant_id = "t1";
    app.name = "App one";
    app.redirect_uris = {"https://example.com/cb"};
    app.origins = {"http://localhost:8080"};
    app.rp_id = "localhost";
    app.created_at = 101;
    ASSERT_TRUE(s.create_app(app).has_value());
  }

  static Session session(std::string id, std::vector<std::string> amr = {"webauthn"}) {
    Session s;
    s.id = std::move(id);
    s.app_id = "a1";
    s.user_id = "u1";
    s.client_id = "c1";
    s.created_at = 200;
    s.auth_time = 200;
    s.amr = std::move(amr);
    s.client_attributes_json = "{}";
    return s;
  }
  static RefreshToken token(uint8_t tag, std::string family, std::string session_id) {
    RefreshToken t;
    t.token_hash = Bytes(32, tag);
    t.family_id = std::move(family);
    t.session_id = std::move(session_id);
    t.client_id = "c1";
    t.app_id = "a1";
    t.user_id = "u1";
    t.scope = "openid offline_access";
    t.resource = "https://api.example.com";
    t.created_at = 200;
    t.expires_at = 200 + 14 * 86400;
    t.family_expires_at = 200 + 365 * 86400;
    return t;
  }
  static MobileKey mobile_key(std::string app_id, std::string key_id, std::string user_id) {
    MobileKey k;
    k.app_id = std::move(app_id);
    k.key_id = std::move(key_id);
    k.user_id = std::move(user_id);
    k.spki_der = {0x30, 0x59, 0x00, 0x13, 0xff};
    k.key_type = "ec";
    k.os = "ios";
    k.device_id = "device-1";
    k.display_name = "Phone";
    k.created_at = 300;
    return k;
  }
  // Logs in u1 on a new session with a refresh token.
  static LoginWrite login(std::string session_id, uint8_t token_tag, std::string family) {
    LoginWrite w;
    w.new_session = session(session_id);
    w.amr = {"webauthn"};
    w.auth_time = 200;
    w.refresh_token = token(token_tag, std::move(family), std::move(session_id));
    return w;
  }

  ManualClock clock_;
  fs::path dir_;
  std::string path_;
};

// ---- open, migrations, settings ----------------------------------------------------------------------

TEST_F(SqliteStoreTest, OpenCreatesDatabaseAndRecordsEachMigration) {
  ASSERT_NE(open_store(), nullptr);
  EXPECT_TRUE(fs::exists(path_));
  const int latest = SqliteStore::latest_schema_version();
  ASSERT_GE(latest, 1);
  EXPECT_EQ(raw_query("SELECT COUNT(*) FROM schema_migrations"), std::to_string(latest));
  EXPECT_EQ(raw_query("SELECT MAX(version) FROM schema_migrations"), std::to_string(latest));
  EXPECT_EQ(raw_query("SELECT MIN(version) FROM schema_migrations"), "1");
  EXPECT_EQ(raw_query("SELECT applied_at FROM schema_migrations WHERE version = 1"),
            std::to_string(clock_.now_s()));
}

TEST_F(SqliteStoreTest, ReopenAppliesNoMigrationAgain) {
  const int64_t first_open = clock_.now_s();
  ASSERT_NE(open_store(), nullptr);
  clock_.advance_ms(3'600'000);
  ASSERT_NE(open_store(), nullptr);
  ASSERT_NE(open_store(), nullptr);
  EXPECT_EQ(raw_query("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(SqliteStore::latest_schema_version()));
  EXPECT_EQ(raw_query("SELECT MAX(applied_at) FROM schema_migrations"), std::to_string(first_open));
}

TEST_F(SqliteStoreTest, DatabaseIsInWalMode) {
  ASSERT_NE(open_store(), nullptr);
  EXPECT_EQ(raw_query("PRAGMA journal_mode"), "wal");
}

TEST_F(SqliteStoreTest, SchemaNewerThanBuildFailsToOpenWithUnavailable) {
  ASSERT_NE(open_store(), nullptr);
  raw_exec("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)");
  auto s = SqliteStore::open(path_, clock_);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s.error().message, "Storage unavailable");
}

TEST_F(SqliteStoreTest, OpenInMissingDirectoryFailsWithUnavailable) {
  auto s = SqliteStore::open((dir_ / "no-such-dir" / "x.db").string(), clock_);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
}

TEST_F(SqliteStoreTest, OpenOfFileThatIsNotADatabaseFailsWithUnavailable) {
  {
    std::ofstream garbage(path_, std::ios::binary);
    garbage << std::string(4096, 'x');
  }
  auto s = SqliteStore::open(path_, clock_);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
}

// ---- tenants, apps, clients ----------------------------------------------------------------------------

TEST_F(SqliteStoreTest, TenantCreateFindListAndDuplicateConflict) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->create_tenant({"t2", "Second", 20}).has_value());
  ASSERT_TRUE(s->create_tenant({"t1", "First", 10}).has_value());
  auto found = s->find_tenant("t1");
  ASSERT_TRUE(found.has_value());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->name, "First");
  EXPECT_EQ((*found)->created_at, 10);
  auto missing = s->find_tenant("nope");
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->has_value());
  auto all = s->list_tenants();
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "t1");  // ordered by creation
  EXPECT_EQ((*all)[1].id, "t2");
  auto dup = s->create_tenant({"t1", "Again", 30});
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
}

TEST_F(SqliteStoreTest, AppRoundTripsListFieldsAndUpdates) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->create_tenant({"t1", "T", 1}).has_value());
  App app;
  app.id = "a1";
  app.tenant_id = "t1";
  app.name = "My \"app\"";
  app.redirect_uris = {"https://x.example/cb?a=1&b=\"2\"", "myapp://cb\\path", "https://ünï.example/"};
  app.origins = {};
  app.rp_id = "x.example";
  app.resources = {"https://api.example", std::string("ctl\x01\n", 5)};
  app.allow_client_challenges = true;
  app.public_signup = false;
  app.created_at = 5;
  ASSERT_TRUE(s->create_app(app).has_value());

  auto found = s->find_app("a1");
  ASSERT_TRUE(found.has_value() && found->has_value());
  const App& got = **found;
  EXPECT_EQ(got.name, app.name);
  EXPECT_EQ(got.tenant_id, "t1");
  EXPECT_EQ(got.redirect_uris, app.redirect_uris);
  EXPECT_EQ(got.origins, app.origins);
  EXPECT_EQ(got.resources, app.resources);
  EXPECT_EQ(got.rp_id, app.rp_id);
  EXPECT_TRUE(got.allow_client_challenges);
  EXPECT_FALSE(got.public_signup);
  EXPECT_EQ(got.created_at, 5);

  auto by_name = s->find_app_by_name("t1", app.name);
  ASSERT_TRUE(by_name.has_value() && by_name->has_value());
  EXPECT_EQ((*by_name)->id, "a1");
  auto other_tenant = s->find_app_by_name("t2", app.name);
  ASSERT_TRUE(other_tenant.has_value());
  EXPECT_FALSE(other_tenant->has_value());

  app.name = "Renamed";
  app.origins = {"http://localhost:8080"};
  app.public_signup = true;
  ASSERT_TRUE(s->update_app(app).has_value());
  auto updated = s->find_app("a1");
  ASSERT_TRUE(updated.has_value() && updated->has_value());
  EXPECT_EQ((*updated)->name, "Renamed");
  EXPECT_EQ((*updated)->origins, app.origins);
  EXPECT_TRUE((*updated)->public_signup);

  auto list = s->list_apps();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, "a1");

  App ghost = app;
  ghost.id = "ghost";
  auto r = s->update_app(ghost);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);

  auto dup = s->create_app(app);
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
}

TEST_F(SqliteStoreTest, AppOfUnknownTenantConflicts) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  App app;
  app.id = "a1";
  app.tenant_id = "missing";
  auto r = s->create_app(app);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  auto found = s->find_app("a1");
  ASSERT_TRUE(found.has_value());
  EXPECT_FALSE(found->has_value());
}

TEST_F(SqliteStoreTest, ClientRoundTripsSecretHashAndListsByApp) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  Client c{"c1", "a1", "t1", Bytes{0x00, 0x01, 0xfe, 0x00}, "Backend", 7};
  ASSERT_TRUE(s->create_client(c).has_value());
  ASSERT_TRUE(s->create_client({"c2", "a1", "t1", Bytes{}, "Empty hash", 8}).has_value());
  auto found = s->find_client("c1");
  ASSERT_TRUE(found.has_value() && found->has_value());
  EXPECT_EQ((*found)->secret_hash, c.secret_hash);
  EXPECT_EQ((*found)->app_id, "a1");
  EXPECT_EQ((*found)->name, "Backend");
  auto empty = s->find_client("c2");
  ASSERT_TRUE(empty.has_value() && empty->has_value());
  EXPECT_TRUE((*empty)->secret_hash.empty());
  auto list = s->list_clients("a1");
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].client_id, "c1");
  auto none = s->list_clients("other");
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
  auto dup = s->create_client(c);
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
}

// ---- users ---------------------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, UserCreateFindAndVerifyEmail) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->create_user({"u1", "t1", "ann@example.com", "+15550001", false, 9}).has_value());
  auto by_id = s->find_user("u1");
  ASSERT_TRUE(by_id.has_value() && by_id->has_value());
  EXPECT_EQ((*by_id)->email, "ann@example.com");
  EXPECT_FALSE((*by_id)->email_verified);
  auto by_email = s->find_user_by_email("t1", "ann@example.com");
  ASSERT_TRUE(by_email.has_value() && by_email->has_value());
  EXPECT_EQ((*by_email)->id, "u1");
  auto by_phone = s->find_user_by_phone("t1", "+15550001");
  ASSERT_TRUE(by_phone.has_value() && by_phone->has_value());
  EXPECT_EQ((*by_phone)->id, "u1");
  auto wrong_tenant = s->find_user_by_email("t2", "ann@example.com");
  ASSERT_TRUE(wrong_tenant.has_value());
  EXPECT_FALSE(wrong_tenant->has_value());

  ASSERT_TRUE(s->set_email_verified("u1").has_value());
  auto verified = s->find_user("u1");
  ASSERT_TRUE(verified.has_value() && verified->has_value());
  EXPECT_TRUE((*verified)->email_verified);
  auto unknown = s->set_email_verified("nobody");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST_F(SqliteStoreTest, DuplicateEmailInTenantConflicts) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->create_tenant({"t2", "Other", 1}).has_value());
  ASSERT_TRUE(s->create_user({"u1", "t1", "ann@example.com", "", false, 1}).has_value());
  auto dup = s->create_user({"u2", "t1", "ann@example.com", "", false, 2});
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(s->find_user("u2")->has_value());
  // The same e-mail in another tenant is a different user.
  EXPECT_TRUE(s->create_user({"u3", "t2", "ann@example.com", "", false, 3}).has_value());
}

TEST_F(SqliteStoreTest, DuplicatePhoneInTenantConflicts) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->create_user({"u1", "t1", "", "+15550001", false, 1}).has_value());
  auto dup = s->create_user({"u2", "t1", "", "+15550001", false, 2});
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
}

TEST_F(SqliteStoreTest, EmptyEmailAndPhoneAreNotUniqueAndMatchNobody) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->create_user({"u1", "t1", "", "", false, 1}).has_value());
  ASSERT_TRUE(s->create_user({"u2", "t1", "", "", false, 2}).has_value());
  auto by_email = s->find_user_by_email("t1", "");
  ASSERT_TRUE(by_email.has_value());
  EXPECT_FALSE(by_email->has_value());
  auto by_phone = s->find_user_by_phone("t1", "");
  ASSERT_TRUE(by_phone.has_value());
  EXPECT_FALSE(by_phone->has_value());
}

// ---- mobile keys ---------------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, MobileKeyInsertFindCount) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  MobileKey k = mobile_key("a1", "k1", "u1");
  ASSERT_TRUE(s->insert_mobile_key(k).has_value());
  ASSERT_TRUE(s->insert_mobile_key(mobile_key("a1", "k2", "u1")).has_value());
  ASSERT_TRUE(s->insert_mobile_key(mobile_key("a1", "k3", "u2")).has_value());
  auto found = s->find_mobile_key("a1", "k1");
  ASSERT_TRUE(found.has_value() && found->has_value());
  EXPECT_EQ((*found)->user_id, "u1");
  EXPECT_EQ((*found)->spki_der, k.spki_der);
  EXPECT_EQ((*found)->key_type, "ec");
  EXPECT_EQ((*found)->os, "ios");
  EXPECT_EQ((*found)->device_id, "device-1");
  EXPECT_EQ((*found)->display_name, "Phone");
  EXPECT_EQ((*found)->created_at, 300);
  EXPECT_EQ((*found)->last_used_at, 0);
  EXPECT_EQ(s->count_mobile_keys("a1", "u1").value(), 2);
  EXPECT_EQ(s->count_mobile_keys("a1", "u2").value(), 1);
  EXPECT_EQ(s->count_mobile_keys("a1", "nobody").value(), 0);
  auto missing = s->find_mobile_key("a1", "nope");
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(SqliteStoreTest, MobileKeyWithExistingIdInAppConflicts) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->insert_mobile_key(mobile_key("a1", "k1", "u1")).has_value());
  auto dup = s->insert_mobile_key(mobile_key("a1", "k1", "u2"));
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  EXPECT_EQ((*s->find_mobile_key("a1", "k1"))->user_id, "u1");
  // The same key id in another app is another key.
  App a2;
  a2.id = "a2";
  a2.tenant_id = "t1";
  ASSERT_TRUE(s->create_app(a2).has_value());
  EXPECT_TRUE(s->insert_mobile_key(mobile_key("a2", "k1", "u2")).has_value());
}

TEST_F(SqliteStoreTest, DeleteMobileKeyByAnotherUserReturnsFalseAndKeepsKey) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->insert_mobile_key(mobile_key("a1", "k1", "u1")).has_value());
  auto by_other = s->delete_mobile_key("a1", "u2", "k1");
  ASSERT_TRUE(by_other.has_value());
  EXPECT_FALSE(*by_other);
  EXPECT_TRUE(s->find_mobile_key("a1", "k1")->has_value());
  auto by_owner = s->delete_mobile_key("a1", "u1", "k1");
  ASSERT_TRUE(by_owner.has_value());
  EXPECT_TRUE(*by_owner);
  EXPECT_FALSE(s->find_mobile_key("a1", "k1")->has_value());
  auto again = s->delete_mobile_key("a1", "u1", "k1");
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(*again);
}

// ---- sessions and login --------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, CommitLoginWritesSessionTokenAndKeyUseTogether) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->insert_mobile_key(mobile_key("a1", "k1", "u1")).has_value());
  LoginWrite w = login("s1", 0x11, "f1");
  w.new_session->client_attributes_json = R"({"ip":"127.0.0.1"})";
  w.mobile_app_id = "a1";
  w.mobile_key_id = "k1";
  w.used_at = 250;
  ASSERT_TRUE(s->commit_login(w).has_value());

  auto sess = s->find_session("s1");
  ASSERT_TRUE(sess.has_value() && sess->has_value());
  EXPECT_EQ((*sess)->user_id, "u1");
  EXPECT_EQ((*sess)->client_id, "c1");
  EXPECT_EQ((*sess)->amr, std::vector<std::string>{"webauthn"});
  EXPECT_EQ((*sess)->client_attributes_json, R"({"ip":"127.0.0.1"})");
  EXPECT_EQ((*sess)->ended_at, 0);
  auto tok = s->find_refresh_token(Bytes(32, 0x11));
  ASSERT_TRUE(tok.has_value() && tok->has_value());
  const RefreshToken& t = **tok;
  EXPECT_EQ(t.family_id, "f1");
  EXPECT_EQ(t.session_id, "s1");
  EXPECT_EQ(t.scope, "openid offline_access");
  EXPECT_EQ(t.resource, "https://api.example.com");
  EXPECT_EQ(t.expires_at, 200 + 14 * 86400);
  EXPECT_EQ(t.family_expires_at, 200 + 365 * 86400);
  EXPECT_EQ(t.rotated_at, 0);
  EXPECT_EQ(t.revoked_at, 0);
  EXPECT_EQ((*s->find_mobile_key("a1", "k1"))->last_used_at, 250);
  auto missing = s->find_session("nope");
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(SqliteStoreTest, CommitLoginJoiningSessionMergesAmrAndUpdatesAuthTime) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  LoginWrite first;
  first.new_session = session("s1", {"pwd", "otp"});
  ASSERT_TRUE(s->commit_login(first).has_value());
  LoginWrite join;
  join.join_session_id = "s1";
  join.amr = {"otp", "mobile_biometrics", "pwd", "webauthn"};
  join.auth_time = 900;
  ASSERT_TRUE(s->commit_login(join).has_value());
  auto sess = s->find_session("s1");
  ASSERT_TRUE(sess.has_value() && sess->has_value());
  EXPECT_EQ((*sess)->amr, (std::vector<std::string>{"pwd", "otp", "mobile_biometrics", "webauthn"}));
  EXPECT_EQ((*sess)->auth_time, 900);
  EXPECT_EQ((*sess)->created_at, 200);
}

TEST_F(SqliteStoreTest, CommitLoginJoiningUnknownSessionWritesNothing) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  LoginWrite w;
  w.join_session_id = "ghost";
  w.amr = {"webauthn"};
  w.refresh_token = token(0x22, "f1", "ghost");
  auto r = s->commit_login(w);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(s->find_refresh_token(Bytes(32, 0x22))->has_value());
}

TEST_F(SqliteStoreTest, FailedCommitLoginRollsBackTheWholeTransaction) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->insert_mobile_key(mobile_key("a1", "k1", "u1")).has_value());
  ASSERT_TRUE(s->commit_login(login("s1", 0x11, "f1")).has_value());
  // Second login reuses the token hash: the insert of the token fails after the session insert.
  LoginWrite w = login("s2", 0x11, "f2");
  w.mobile_app_id = "a1";
  w.mobile_key_id = "k1";
  w.used_at = 999;
  auto r = s->commit_login(w);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(s->find_session("s2")->has_value());
  EXPECT_EQ((*s->find_mobile_key("a1", "k1"))->last_used_at, 0);
  EXPECT_EQ((*s->find_refresh_token(Bytes(32, 0x11)))->family_id, "f1");
  // The connection is usable afterwards.
  EXPECT_TRUE(s->commit_login(login("s3", 0x33, "f3")).has_value());
}

TEST_F(SqliteStoreTest, EndSessionRevokesItsRefreshTokens) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->commit_login(login("s1", 0x11, "f1")).has_value());
  ASSERT_TRUE(s->commit_login(login("s2", 0x22, "f2")).has_value());
  auto ended = s->end_session("s1", 500);
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(*ended);
  EXPECT_EQ((*s->find_session("s1"))->ended_at, 500);
  EXPECT_EQ((*s->find_refresh_token(Bytes(32, 0x11)))->revoked_at, 500);
  // Other sessions are untouched.
  EXPECT_EQ((*s->find_session("s2"))->ended_at, 0);
  EXPECT_EQ((*s->find_refresh_token(Bytes(32, 0x22)))->revoked_at, 0);
  auto again = s->end_session("s1", 600);
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(*again);
  EXPECT_EQ((*s->find_session("s1"))->ended_at, 500);
  auto unknown = s->end_session("ghost", 600);
  ASSERT_TRUE(unknown.has_value());
  EXPECT_FALSE(*unknown);
}

TEST_F(SqliteStoreTest, JoiningEndedSessionFails) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->commit_login(login("s1", 0x11, "f1")).has_value());
  ASSERT_TRUE(s->end_session("s1", 500).value());
  LoginWrite join;
  join.join_session_id = "s1";
  join.amr = {"otp"};
  auto r = s->commit_login(join);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

// ---- refresh tokens ------------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, RotateSucceedsOnceForTheSameOldHash) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->commit_login(login("s1", 0x11, "f1")).has_value());
  auto first = s->rotate_refresh_token(Bytes(32, 0x11), token(0x12, "f1", "s1"), 300);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(*first);
  EXPECT_EQ((*s->find_refresh_token(Bytes(32, 0x11)))->rotated_at, 300);
  EXPECT_TRUE(s->find_refresh_token(Bytes(32, 0x12))->has_value());

  auto second = s->rotate_refresh_token(Bytes(32, 0x11), token(0x13, "f1", "s1"), 301);
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(*second);
  EXPECT_FALSE(s->find_refresh_token(Bytes(32, 0x13))->has_value());  // nothing written
  EXPECT_EQ((*s->find_refresh_token(Bytes(32, 0x11)))->rotated_at, 300);

  auto unknown = s->rotate_refresh_token(Bytes(32, 0x99), token(0x14, "f1", "s1"), 302);
  ASSERT_TRUE(unknown.has_value());
  EXPECT_FALSE(*unknown);
}

TEST_F(SqliteStoreTest, RotateOfRevokedTokenReturnsFalse) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->commit_login(login("s1", 0x11, "f1")).has_value());
  ASSERT_TRUE(s->end_session("s1", 250).value());
  auto r = s->rotate_refresh_token(Bytes(32, 0x11), token(0x12, "f1", "s1"), 300);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(*r);
  EXPECT_FALSE(s->find_refresh_token(Bytes(32, 0x12))->has_value());
}

TEST_F(SqliteStoreTest, RotateWhoseNextTokenConflictsLeavesOldTokenCurrent) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->commit_login(login("s1", 0x11, "f1")).has_value());
  ASSERT_TRUE(s->commit_login(login("s2", 0x22, "f2")).has_value());
  auto r = s->rotate_refresh_token(Bytes(32, 0x11), token(0x22, "f1", "s1"), 300);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ((*s->find_refresh_token(Bytes(32, 0x11)))->rotated_at, 0);  // rolled back
  EXPECT_TRUE(s->rotate_refresh_token(Bytes(32, 0x11), token(0x12, "f1", "s1"), 301).value());
}

TEST_F(SqliteStoreTest, RevokeFamilyRevokesAllItsTokensAndEndsTheSession) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  ASSERT_TRUE(s->commit_login(login("s1", 0x11, "f1")).has_value());
  ASSERT_TRUE(s->rotate_refresh_token(Bytes(32, 0x11), token(0x12, "f1", "s1"), 300).value());
  ASSERT_TRUE(s->commit_login(login("s2", 0x21, "f2")).has_value());
  ASSERT_TRUE(s->revoke_refresh_family("f1", 400).has_value());
  EXPECT_EQ((*s->find_refresh_token(Bytes(32, 0x11)))->revoked_at, 400);
  EXPECT_EQ((*s->find_refresh_token(Bytes(32, 0x12)))->revoked_at, 400);
  EXPECT_EQ((*s->find_session("s1"))->ended_at, 400);
  EXPECT_EQ((*s->find_session("s2"))->ended_at, 0);
  EXPECT_EQ((*s->find_refresh_token(Bytes(32, 0x21)))->revoked_at, 0);
  EXPECT_FALSE(s->rotate_refresh_token(Bytes(32, 0x12), token(0x13, "f1", "s1"), 401).value());
  // Revoking an unknown family is a no-op, not an error.
  EXPECT_TRUE(s->revoke_refresh_family("ghost", 500).has_value());
}

// ---- signing keys --------------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, SigningKeysInsertListAndDuplicateConflict) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->insert_signing_key({"k2", "ES256", Bytes{9, 8, 7}, 20, 0}).has_value());
  ASSERT_TRUE(s->insert_signing_key({"k1", "ES256", Bytes{1, 2, 3}, 10, 15}).has_value());
  auto keys = s->list_signing_keys();
  ASSERT_TRUE(keys.has_value());
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].kid, "k1");
  EXPECT_EQ((*keys)[0].sealed_private, (Bytes{1, 2, 3}));
  EXPECT_EQ((*keys)[0].retired_at, 15);
  EXPECT_EQ((*keys)[1].kid, "k2");
  EXPECT_EQ((*keys)[1].alg, "ES256");
  auto dup = s->insert_signing_key({"k1", "ES256", Bytes{4}, 30, 0});
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
}

// ---- durability and failures ---------------------------------------------------------------------------

TEST_F(SqliteStoreTest, DataSurvivesCloseAndReopen) {
  {
    auto s = open_store();
    ASSERT_NE(s, nullptr);
    seed(*s);
    ASSERT_TRUE(s->create_user({"u1", "t1", "ann@example.com", "", true, 9}).has_value());
    ASSERT_TRUE(s->insert_mobile_key(mobile_key("a1", "k1", "u1")).has_value());
    ASSERT_TRUE(s->commit_login(login("s1", 0x11, "f1")).has_value());
    ASSERT_TRUE(s->insert_signing_key({"k1", "ES256", Bytes{1}, 10, 0}).has_value());
  }
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->find_tenant("t1")->has_value());
  auto app = s->find_app("a1");
  ASSERT_TRUE(app.has_value() && app->has_value());
  EXPECT_EQ((*app)->origins, std::vector<std::string>{"http://localhost:8080"});
  EXPECT_TRUE((*s->find_user_by_email("t1", "ann@example.com"))->email_verified);
  EXPECT_TRUE(s->find_mobile_key("a1", "k1")->has_value());
  EXPECT_TRUE(s->find_session("s1")->has_value());
  EXPECT_TRUE(s->find_refresh_token(Bytes(32, 0x11))->has_value());
  EXPECT_EQ(s->list_signing_keys()->size(), 1u);
}

TEST_F(SqliteStoreTest, ReadOnlyConnectionReadsButWritesFailWithUnavailable) {
  {
    auto s = open_store();
    ASSERT_NE(s, nullptr);
    seed(*s);
  }
  SqliteStore::OpenOptions ro;
  ro.read_only = true;
  auto s = open_store(ro);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->find_tenant("t1")->has_value());
  auto w = s->create_tenant({"t9", "Nine", 1});
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(w.error().message, "Storage unavailable");
  auto login_write = s->commit_login(login("s1", 0x11, "f1"));
  ASSERT_FALSE(login_write.has_value());
  EXPECT_EQ(login_write.error().code, ErrorCode::kUnavailable);
  // Still serving reads after failed writes.
  EXPECT_TRUE(s->find_app("a1")->has_value());
  EXPECT_FALSE(s->find_tenant("t9")->has_value());
}

TEST_F(SqliteStoreTest, ReadOnlyOpenOfMissingFileFailsWithUnavailable) {
  SqliteStore::OpenOptions ro;
  ro.read_only = true;
  auto s = SqliteStore::open(path_, clock_, ro);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
}

TEST_F(SqliteStoreTest, ReadOnlyFilePermissionsYieldUnavailableNotACrash) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root ignores file permissions; ReadOnlyConnectionReadsButWritesFailWithUnavailable "
                    "covers the same failure path";
  }
  {
    auto s = open_store();
    ASSERT_NE(s, nullptr);
    seed(*s);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string p = path_ + suffix;
    if (fs::exists(p)) {
      ASSERT_EQ(::chmod(p.c_str(), 0444), 0);
    }
  }
  ASSERT_EQ(::chmod(dir_.c_str(), 0555), 0);  // the -wal/-shm files cannot be created either
  auto opened = SqliteStore::open(path_, clock_);
  if (opened) {
    auto w = (*opened)->create_tenant({"t9", "Nine", 1});
    ASSERT_FALSE(w.has_value());
    EXPECT_EQ(w.error().code, ErrorCode::kUnavailable);
  } else {
    EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  }
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileBothWrite) {
  auto a = open_store();
  auto b = open_store();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->create_tenant({"t1", "A", 1}).has_value());
  ASSERT_TRUE(b->create_tenant({"t2", "B", 2}).has_value());
  EXPECT_TRUE(a->find_tenant("t2")->has_value());
  EXPECT_TRUE(b->find_tenant("t1")->has_value());
}

TEST_F(SqliteStoreTest, ConcurrentWritersFromManyThreadsAllCommit) {
  auto s = open_store();
  ASSERT_NE(s, nullptr);
  seed(*s);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "u" + std::to_string(t) + "-" + std::to_string(i);
        if (!s->create_user({id, "t1", id + "@example.com", "", false, i}).has_value()) failures.fetch_add(1);
        if (!s->find_user(id)->has_value()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(raw_query("SELECT COUNT(*) FROM users"), std::to_string(kThreads * kPerThread));
}

}  // namespace
}  // namespace sigil::store
