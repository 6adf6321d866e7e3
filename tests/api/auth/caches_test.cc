// The in-memory caches used on request paths, under concurrent use (built and run under TSan by tools/test).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "api/auth/ephemeral.h"
#include "api/service/key_cache.h"
#include "engine/base/clock.h"

namespace sigil {
namespace {

TEST(EphemeralMap, ConcurrentTakeHandsOutEachValueOnce) {
  ManualClock clock;
  auth::EphemeralMap<int> map(clock, 100'000);
  constexpr int kKeys = 2000;
  for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(map.put("k" + std::to_string(i), i, 60'000).has_value());
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kKeys; ++i) {
        if (map.take("k" + std::to_string(i))) ++taken;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(taken.load(), kKeys);
  EXPECT_EQ(map.size(), 0u);
}

TEST(EphemeralMap, ConcurrentPutIfAbsentLetsOneWriterWin) {
  ManualClock clock;
  auth::EphemeralMap<int> map(clock, 1000);
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto r = map.put_if_absent("replay", t, 60'000);
      if (r && *r) ++wins;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wins.load(), 1);
}

TEST(EphemeralMap, AtCapacityFailsInsteadOfGrowingAndRecoversAfterExpiry) {
  ManualClock clock;
  auth::EphemeralMap<int> map(clock, 100);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(map.put("k" + std::to_string(i), i, 1000).has_value());
  auto full = map.put("one-more", 1, 1000);
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().code, ErrorCode::kUnavailable);
  clock.advance_ms(1001);
  EXPECT_TRUE(map.put("one-more", 1, 1000).has_value());
  EXPECT_FALSE(map.peek("k1").has_value());  // expired entries never come back
}

TEST(KeyCache, ConcurrentFindPutEraseStaysBoundedAndConsistent) {
  service::KeyCache<std::string> cache(256);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string key = "key" + std::to_string((i * 7 + t) % 1000);
        if (auto v = cache.find(key)) {
          if (*v != "value-of-" + key) ++wrong;
        } else {
          cache.put(key, std::make_shared<const std::string>("value-of-" + key));
        }
        if (i % 97 == 0) cache.erase(key);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(cache.size(), 256u + 16u);  // per-shard bound, rounded up per shard
}

}  // namespace
}  // namespace sigil
