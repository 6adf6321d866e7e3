// Group commit: many concurrent writes share one transaction and one fsync, each in its own savepoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/store/sqlite_store.h"
#include "engine/base/clock.h"

namespace sigil::store {
namespace {

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sigil-group-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto s = SqliteStore::open(dir_ + "/sigil.db", clock_);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->create_tenant({"t1", "Tenant", 1}).has_value());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<SqliteStore> reopen() {
    store_.reset();
    auto s = SqliteStore::open(dir_ + "/sigil.db", clock_);
    EXPECT_TRUE(s.has_value());
    return s ? std::move(*s) : nullptr;
  }
  LoginWrite login(const std::string& session_id) {
    LoginWrite w;
    Session s;
    s.id = session_id;
    s.app_id = "app";
    s.user_id = "user";
    s.client_id = "client";
    s.amr = {"webauthn"};
    s.client_attributes_json = "{}";
    w.new_session = s;
    w.amr = {"webauthn"};
    return w;
  }

  ManualClock clock_;
  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(GroupCommitTest, ConcurrentWritesAreAllDurable) {
  constexpr int kThreads = 8, kPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        User u;
        u.id = "u-" + std::to_string(t) + "-" + std::to_string(i);
        u.tenant_id = "t1";
        u.email = u.id + "@example.com";
        if (!store_->create_user(u)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto s = reopen();
  ASSERT_NE(s, nullptr);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      auto u = s->find_user("u-" + std::to_string(t) + "-" + std::to_string(i));
      ASSERT_TRUE(u.has_value());
      EXPECT_TRUE(u->has_value()) << "user " << t << "/" << i << " lost";
    }
  }
}

TEST_F(GroupCommitTest, AFailingWriteInAGroupUndoesOnlyItself) {
  User first;
  first.id = "u-first";
  first.tenant_id = "t1";
  first.email = "same@example.com";
  ASSERT_TRUE(store_->create_user(first).has_value());
  // Many writers at once: the duplicates conflict, the others land, whatever group they share.
  std::vector<std::thread> threads;
  std::atomic<int> conflicts{0}, ok{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      User u;
      u.id = "u-" + std::to_string(t);
      u.tenant_id = "t1";
      u.email = t % 2 == 0 ? std::string("same@example.com") : "u" + std::to_string(t) + "@example.com";
      auto r = store_->create_user(u);
      if (r) ++ok;
      else if (r.error().code == ErrorCode::kConflict) ++conflicts;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(conflicts.load(), 8);
  EXPECT_EQ(ok.load(), 8);
  auto s = reopen();
  for (int t = 1; t < 16; t += 2) {
    auto u = s->find_user("u-" + std::to_string(t));
    ASSERT_TRUE(u.has_value());
    EXPECT_TRUE(u->has_value());
  }
  for (int t = 0; t < 16; t += 2) {
    auto u = s->find_user("u-" + std::to_string(t));
    ASSERT_TRUE(u.has_value());
    EXPECT_FALSE(u->has_value());
  }
}

TEST_F(GroupCommitTest, AsyncLoginCommitCallsBackAfterTheWriteIsDurable) {
  std::mutex m;
  std::condition_variable cv;
  int done = 0, failed = 0;
  constexpr int kLogins = 50;
  for (int i = 0; i < kLogins; ++i) {
    store_->commit_login_async(login("s-" + std::to_string(i)), [&](Result<void> r) {
      std::lock_guard lock(m);
      if (!r) ++failed;
      ++done;
      cv.notify_one();
    });
  }
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done == kLogins; });
  }
  EXPECT_EQ(failed, 0);
  auto s = reopen();
  for (int i = 0; i < kLogins; ++i) {
    auto found = s->find_session("s-" + std::to_string(i));
    ASSERT_TRUE(found.has_value());
    EXPECT_TRUE(found->has_value());
  }
}

TEST_F(GroupCommitTest, AsyncFailureReportsTheBodysError) {
  std::mutex m;
  std::condition_variable cv;
  std::optional<Result<void>> first, second;
  store_->commit_login_async(login("dup"), [&](Result<void> r) {
    std::lock_guard lock(m);
    first = r;
    cv.notify_one();
  });
  store_->commit_login_async(login("dup"), [&](Result<void> r) {
    std::lock_guard lock(m);
    second = r;
    cv.notify_one();
  });
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return first && second; });
  EXPECT_TRUE(first->has_value());
  ASSERT_FALSE(second->has_value());
  EXPECT_EQ(second->error().code, ErrorCode::kConflict);
}

TEST_F(GroupCommitTest, CallbacksMayUseTheStore) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  bool found = false;
  store_->commit_login_async(login("s-cb"), [&](Result<void> r) {
    ASSERT_TRUE(r.has_value());
    // Reads and a blocking write from the writer's own callback must not deadlock.
    auto s = store_->find_session("s-cb");
    User u;
    u.id = "u-cb";
    u.tenant_id = "t1";
    auto w = store_->create_user(u);
    std::lock_guard lock(m);
    found = s.has_value() && s->has_value() && w.has_value();
    done = true;
    cv.notify_one();
  });
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return done; });
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace sigil::store
