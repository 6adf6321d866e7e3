// SqliteStore's reader connections and configuration cache: reads never wait for the writer, a read that
// starts after a write returned sees it (on whichever pooled connection it runs), apps and clients are
// cached but every change — by this store, by a second store on the same file (the sigil CLI beside sigild)
// or by a manual edit — is seen at once (migration 4's version and triggers), and a version-3 file gets
// migration 4 with its rows intact.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/store/sqlite_store.h"
#include "engine/base/clock.h"

namespace sigil::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ReadPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sigil-readpool-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "sigil.db").string();
    store_ = open_store();
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(store_->create_tenant({"t1", "Tenant", 1}).has_value());
    ASSERT_TRUE(store_->create_app(app("a1", "App one", {"https://one.example"})).has_value());
    ASSERT_TRUE(store_->create_client(client("c1", "a1")).has_value());
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

  static App app(std::string id, std::string name, std::vector<std::string> origins) {
    App a;
    a.id = std::move(id);
    a.tenant_id = "t1";
    a.name = std::move(name);
    a.redirect_uris = {"https://example.com/cb"};
    a.origins = std::move(origins);
    a.rp_id = "example.com";
    a.resources = {"https://api.example.com"};
    a.created_at = 10;
    return a;
  }
  static Client client(std::string id, std::string app_id) {
    return Client{std::move(id), std::move(app_id), "t1", Bytes(32, 0x5a), "Client", 11, false};
  }
  static LoginWrite login(const std::string& session_id) {
    LoginWrite w;
    Session s;
    s.id = session_id;
    s.app_id = "a1";
    s.user_id = "u1";
    s.client_id = "c1";
    s.amr = {"webauthn"};
    s.client_attributes_json = "{}";
    w.new_session = s;
    w.amr = {"webauthn"};
    return w;
  }

  // A raw connection to the same file: what another process (or a manual edit) does.
  struct Raw {
    explicit Raw(const std::string& path) {
      EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
      sqlite3_busy_timeout(db, 5000);
    }
    ~Raw() { sqlite3_close(db); }
    Raw(const Raw&) = delete;
    Raw& operator=(const Raw&) = delete;
    void exec(const std::string& sql) {
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    }
    std::string query(const std::string& sql) {
      sqlite3_stmt* stmt = nullptr;
      std::string out;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        if (text != nullptr) out = text;
      }
      sqlite3_finalize(stmt);
      return out;
    }
    sqlite3* db = nullptr;
  };

  ManualClock clock_;
  fs::path dir_;
  std::string path_;
  std::unique_ptr<SqliteStore> store_;
};

// ---- readers beside the writer -------------------------------------------------------------------------

TEST_F(ReadPoolTest, ReadsCompleteWhileTheWriterIsHeldInsideAWrite) {
  ASSERT_TRUE(store_->create_user({"u1", "t1", "ann@example.com", "", false, 1, ""}).has_value());
  ASSERT_TRUE(store_->commit_login(login("s1")).has_value());
  // Another connection takes the write lock: the store's writer thread, holding its connection for the
  // whole group, waits in BEGIN IMMEDIATE (up to the 5 s busy timeout), exactly as behind a slow fsync.
  Raw raw(path_);
  raw.exec("BEGIN IMMEDIATE");
  auto blocked_write = std::async(std::launch::async, [&] {
    return store_->create_user({"u2", "t1", "bob@example.com", "", false, 2, ""});
  });
  std::this_thread::sleep_for(200ms);  // the writer thread is now inside the group
  ASSERT_EQ(blocked_write.wait_for(0ms), std::future_status::timeout);
  // Reads from several threads at once, each on a pooled connection, all finish while the writer waits.
  std::vector<std::future<bool>> reads;
  for (int t = 0; t < 4; ++t) {
    reads.push_back(std::async(std::launch::async, [&] {
      for (int i = 0; i < 20; ++i) {
        auto app = store_->find_app("a1");
        auto cl = store_->find_client("c1");
        auto user = store_->find_user("u1");
        auto session = store_->find_session("s1");
        auto missing = store_->find_user("u2");  // not committed yet
        if (!app || !*app || !cl || !*cl || !user || !*user || !session || !*session) return false;
        if (!missing || missing->has_value()) return false;
      }
      return true;
    }));
  }
  for (auto& r : reads) {
    ASSERT_EQ(r.wait_for(3s), std::future_status::ready) << "a read waited for the writer";
    EXPECT_TRUE(r.get());
  }
  EXPECT_EQ(blocked_write.wait_for(0ms), std::future_status::timeout);
  raw.exec("COMMIT");
  auto written = blocked_write.get();
  ASSERT_TRUE(written.has_value()) << written.error().message;
  auto u2 = store_->find_user("u2");
  ASSERT_TRUE(u2.has_value());
  EXPECT_TRUE(u2->has_value());
}

TEST_F(ReadPoolTest, ReadsCompleteWhileAsyncLoginsCommit) {
  // Reads interleaved with a stream of group commits; every read sees a consistent row.
  std::atomic<bool> stop{false};
  std::atomic<int> committed{0}, failed{0};
  std::mutex m;
  std::condition_variable cv;
  int outstanding = 0;
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return outstanding < 16; });
        ++outstanding;
      }
      store_->commit_login_async(login("s-" + std::to_string(i)), [&](Result<void> r) {
        if (r) ++committed;
        else ++failed;
        std::lock_guard lock(m);
        --outstanding;
        cv.notify_all();
      });
    }
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return outstanding == 0; });
  });
  std::vector<std::thread> readers;
  std::atomic<int> bad{0};
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto app = store_->find_app("a1");
        if (!app || !*app || (*app)->origins != std::vector<std::string>{"https://one.example"}) ++bad;
        auto apps = store_->list_apps();
        if (!apps || apps->size() != 1) ++bad;
      }
    });
  }
  for (auto& r : readers) r.join();
  stop = true;
  writer.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(committed.load(), 0);
}

TEST_F(ReadPoolTest, AReadAfterAWriteReturnedSeesItOnAnyThread) {
  // Each write is followed by reads on other threads (other pooled connections): none may miss it.
  constexpr int kWrites = 40;
  std::vector<std::thread> threads;
  std::atomic<int> misses{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites / 4; ++i) {
        const std::string id = "u-" + std::to_string(t) + "-" + std::to_string(i);
        ASSERT_TRUE(store_->create_user({id, "t1", id + "@example.com", "", false, i, ""}).has_value());
        // Read it back from this thread and from a fresh thread, which may well get another connection.
        if (!store_->find_user(id)->has_value()) ++misses;
        std::thread other([&] {
          if (!store_->find_user_by_email("t1", id + "@example.com")->has_value()) ++misses;
        });
        other.join();
        ASSERT_TRUE(store_->commit_login(login("s-" + id)).has_value());
        if (!store_->find_session("s-" + id)->has_value()) ++misses;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(misses.load(), 0);
}

TEST_F(ReadPoolTest, AsyncCallbacksReadTheirOwnWriteOnTheWriterThread) {
  std::promise<bool> seen;
  store_->commit_login_async(login("s-cb"), [&](Result<void> r) {
    auto s = store_->find_session("s-cb");
    auto a = store_->find_app("a1");
    seen.set_value(r.has_value() && s && s->has_value() && a && a->has_value());
  });
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(f.get());
}

// ---- the configuration cache ---------------------------------------------------------------------------

TEST_F(ReadPoolTest, OwnUpdatesAreSeenAtOnceAndResultsAreCopies) {
  auto before = store_->find_app("a1");
  ASSERT_TRUE(before.has_value() && before->has_value());
  (*before)->origins.push_back("https://tampered.example");  // a copy: the cache is not touched
  auto again = store_->find_app("a1");
  ASSERT_TRUE(again.has_value() && again->has_value());
  EXPECT_EQ((*again)->origins, std::vector<std::string>{"https://one.example"});

  App changed = app("a1", "Renamed", {"https://two.example"});
  ASSERT_TRUE(store_->update_app(changed).has_value());
  auto after = store_->find_app("a1");
  ASSERT_TRUE(after.has_value() && after->has_value());
  EXPECT_EQ((*after)->name, "Renamed");
  EXPECT_EQ((*after)->origins, std::vector<std::string>{"https://two.example"});
  auto list = store_->list_apps();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].origins, std::vector<std::string>{"https://two.example"});

  EXPECT_FALSE(store_->find_client("c2")->has_value());
  ASSERT_TRUE(store_->create_client(client("c2", "a1")).has_value());
  EXPECT_TRUE(store_->find_client("c2")->has_value());
}

TEST_F(ReadPoolTest, ChangesThroughASecondStoreOnTheFileAreSeen) {
  // Fill the cache.
  ASSERT_TRUE(store_->find_app("a1")->has_value());
  ASSERT_TRUE(store_->find_client("c1")->has_value());
  ASSERT_EQ(store_->list_apps()->size(), 1u);

  // The sigil CLI: another SqliteStore on the same file, writing apps and clients.
  {
    auto cli = open_store();
    ASSERT_NE(cli, nullptr);
    ASSERT_TRUE(cli->update_app(app("a1", "From the CLI", {"https://cli.example"})).has_value());
    ASSERT_TRUE(cli->create_app(app("a2", "Second", {"https://second.example"})).has_value());
    ASSERT_TRUE(cli->create_client(client("c2", "a2")).has_value());
  }
  auto a1 = store_->find_app("a1");
  ASSERT_TRUE(a1.has_value() && a1->has_value());
  EXPECT_EQ((*a1)->name, "From the CLI");
  EXPECT_EQ((*a1)->origins, std::vector<std::string>{"https://cli.example"});
  EXPECT_TRUE(store_->find_app("a2")->has_value());
  auto c2 = store_->find_client("c2");
  ASSERT_TRUE(c2.has_value() && c2->has_value());
  EXPECT_EQ((*c2)->app_id, "a2");
  EXPECT_EQ(store_->list_apps()->size(), 2u);

  // A manual edit (sqlite3 shell): update and delete, the triggers move the version all the same.
  Raw raw(path_);
  raw.exec("UPDATE clients SET name = 'Edited', public_client = 1 WHERE client_id = 'c1'");
  auto c1 = store_->find_client("c1");
  ASSERT_TRUE(c1.has_value() && c1->has_value());
  EXPECT_EQ((*c1)->name, "Edited");
  EXPECT_TRUE((*c1)->public_client);
  raw.exec("DELETE FROM clients WHERE client_id = 'c2'");
  EXPECT_FALSE(store_->find_client("c2")->has_value());
  raw.exec("UPDATE tenants SET name = 'Renamed' WHERE id = 't1'");
  EXPECT_EQ((*store_->find_tenant("t1"))->name, "Renamed");
}

TEST_F(ReadPoolTest, EveryConfigurationChangeMovesTheVersion) {
  Raw raw(path_);
  auto version = [&] { return std::stoll(raw.query("SELECT version FROM config_version")); };
  int64_t v = version();
  auto moved = [&] {
    const int64_t now = version();
    const bool ok = now > v;
    v = now;
    return ok;
  };
  ASSERT_TRUE(store_->create_tenant({"t2", "Two", 2}).has_value());
  EXPECT_TRUE(moved());
  ASSERT_TRUE(store_->create_app(app("a2", "Two", {})).has_value());
  EXPECT_TRUE(moved());
  ASSERT_TRUE(store_->update_app(app("a2", "Two again", {})).has_value());
  EXPECT_TRUE(moved());
  ASSERT_TRUE(store_->create_client(client("c2", "a2")).has_value());
  EXPECT_TRUE(moved());
  raw.exec("DELETE FROM clients WHERE client_id = 'c2'");
  EXPECT_TRUE(moved());
  raw.exec("DELETE FROM apps WHERE id = 'a2'");
  EXPECT_TRUE(moved());
  raw.exec("UPDATE tenants SET name = 'x' WHERE id = 't2'");
  EXPECT_TRUE(moved());
  raw.exec("DELETE FROM tenants WHERE id = 't2'");
  EXPECT_TRUE(moved());
  // Writes elsewhere leave it alone; a failed configuration write rolls its change back.
  ASSERT_TRUE(store_->create_user({"u1", "t1", "", "", false, 1, ""}).has_value());
  ASSERT_TRUE(store_->commit_login(login("s1")).has_value());
  ASSERT_FALSE(store_->create_client(client("c1", "a1")).has_value());  // duplicate
  EXPECT_EQ(version(), v);
}

TEST_F(ReadPoolTest, ManyAppsAndClientsStayCorrectPastTheCacheBound) {
  // More clients than the cache holds (it starts over past its bound): every lookup still answers right.
  Raw raw(path_);
  raw.exec(R"sql(
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
    INSERT INTO clients (client_id, app_id, tenant_id, secret_hash, name, created_at, public_client)
    SELECT 'bulk-' || i, 'a1', 't1', x'00', 'Bulk ' || i, i, i % 2 FROM n;
  )sql");
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 1; i <= 1500; i += 7) {
      auto c = store_->find_client("bulk-" + std::to_string(i));
      ASSERT_TRUE(c.has_value() && c->has_value()) << i;
      EXPECT_EQ((*c)->name, "Bulk " + std::to_string(i));
      EXPECT_EQ((*c)->public_client, i % 2 == 1);
    }
  }
  raw.exec("UPDATE clients SET name = 'Changed' WHERE client_id = 'bulk-8'");
  EXPECT_EQ((*store_->find_client("bulk-8"))->name, "Changed");
  EXPECT_TRUE(store_->find_app("a1")->has_value());
}

// ---- migration 4 ---------------------------------------------------------------------------------------

TEST_F(ReadPoolTest, VersionThreeDatabaseGetsMigrationFourKeepingItsRows) {
  ASSERT_EQ(SqliteStore::latest_schema_version(), 4) << "update this test for the new migration";
  ASSERT_TRUE(store_->create_user({"u1", "t1", "ann@example.com", "", true, 5, ""}).has_value());
  LoginWrite w = login("s1");
  RefreshToken t;
  t.token_hash = Bytes(32, 0x11);
  t.family_id = "f1";
  t.session_id = "s1";
  t.client_id = "c1";
  t.app_id = "a1";
  t.user_id = "u1";
  t.scope = "openid";
  w.refresh_token = t;
  ASSERT_TRUE(store_->commit_login(w).has_value());
  store_.reset();
  {
    // Back to a version-3 file: what migration 4 added is gone.
    Raw raw(path_);
    raw.exec(R"sql(
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
    )sql");
    EXPECT_EQ(raw.query("SELECT MAX(version) FROM schema_migrations"), "3");
    // A version-3 server (or CLI) changes an app: no trigger, no version.
    raw.exec("UPDATE apps SET name = 'Changed at version 3' WHERE id = 'a1'");
  }
  clock_.advance_ms(60'000);
  store_ = open_store();
  ASSERT_NE(store_, nullptr);
  Raw raw(path_);
  EXPECT_EQ(raw.query("SELECT COUNT(*) FROM schema_migrations"), "4");
  EXPECT_EQ(raw.query("SELECT applied_at FROM schema_migrations WHERE version = 4"), std::to_string(clock_.now_s()));
  EXPECT_EQ(raw.query("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '%config_version'"),
            "9");
  // Rows are intact.
  EXPECT_EQ((*store_->find_app("a1"))->name, "Changed at version 3");
  EXPECT_TRUE(store_->find_client("c1")->has_value());
  EXPECT_TRUE((*store_->find_user("u1"))->email_verified);
  EXPECT_TRUE(store_->find_session("s1")->has_value());
  EXPECT_TRUE(store_->find_refresh_token(Bytes(32, 0x11))->has_value());
  // And the version works from now on.
  const std::string v = raw.query("SELECT version FROM config_version");
  raw.exec("UPDATE apps SET name = 'Changed at version 4' WHERE id = 'a1'");
  EXPECT_NE(raw.query("SELECT version FROM config_version"), v);
  EXPECT_EQ((*store_->find_app("a1"))->name, "Changed at version 4");
}

// ---- databases without a pool --------------------------------------------------------------------------

TEST(SqliteStoreInMemory, ReadsAndWritesShareTheOnlyConnection) {
  ManualClock clock;
  auto opened = SqliteStore::open(":memory:", clock);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  auto& s = **opened;
  ASSERT_TRUE(s.create_tenant({"t1", "Tenant", 1}).has_value());
  App a;
  a.id = "a1";
  a.tenant_id = "t1";
  a.name = "App";
  a.origins = {"https://one.example"};
  ASSERT_TRUE(s.create_app(a).has_value());
  EXPECT_TRUE(s.find_tenant("t1")->has_value());
  EXPECT_EQ((*s.find_app("a1"))->origins, std::vector<std::string>{"https://one.example"});
  a.origins = {"https://two.example"};
  ASSERT_TRUE(s.update_app(a).has_value());
  EXPECT_EQ((*s.find_app("a1"))->origins, std::vector<std::string>{"https://two.example"});
  // Reads from several threads (and from a completion callback) share the writer connection.
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (!s.find_app("a1")->has_value()) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  std::promise<bool> seen;
  LoginWrite w;
  Session session;
  session.id = "s1";
  session.client_attributes_json = "{}";
  w.new_session = session;
  s.commit_login_async(w, [&](Result<void> r) { seen.set_value(r.has_value() && s.find_session("s1")->has_value()); });
  EXPECT_TRUE(seen.get_future().get());
}

}  // namespace
}  // namespace sigil::store
