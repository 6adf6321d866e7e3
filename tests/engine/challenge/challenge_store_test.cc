#include "engine/challenge/challenge_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/clock.h"

namespace sigil::challenge {
namespace {

constexpr int64_t kTtlMs = 60'000;

ChallengeStore::Options with_capacity(size_t n) {
  ChallengeStore::Options o;
  o.capacity = n;
  return o;
}

Challenge derived(uint8_t seed) {
  Challenge c{};
  // Spread the seed over the value like a digest would: hash and shard bytes both vary.
  for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<uint8_t>(seed * 31u + i * 7u + (seed >> 3));
  return c;
}

TEST(ChallengeStore, IssuedChallengeConsumesOnceAndReturnsContext) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  auto c = store.issue("ctx-1", kTtlMs);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(store.size(), 1u);
  auto ctx = store.consume(ByteView(*c));
  ASSERT_TRUE(ctx.has_value()) << ctx.error().message;
  EXPECT_EQ(*ctx, "ctx-1");
  EXPECT_EQ(store.size(), 0u);
}

TEST(ChallengeStore, IssuedChallengesAreDistinct) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  auto a = store.issue("a", kTtlMs);
  auto b = store.issue("b", kTtlMs);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(ChallengeStore, SecondConsumeFailsWithNotFound) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  auto c = store.issue("ctx", kTtlMs);
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE(store.consume(ByteView(*c)).has_value());
  auto again = store.consume(ByteView(*c));
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(again.error().message, "Unknown or expired challenge");
}

TEST(ChallengeStore, UnknownChallengeFailsWithSameError) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  ASSERT_TRUE(store.issue("ctx", kTtlMs).has_value());
  Challenge other = derived(1);
  auto r = store.consume(ByteView(other));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "Unknown or expired challenge");
}

TEST(ChallengeStore, ExpiredChallengeFailsAndIsRemoved) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  auto c = store.issue("ctx", kTtlMs);
  ASSERT_TRUE(c.has_value());
  clock.advance_ms(kTtlMs);  // expiry is exclusive: at exactly expires_at the entry is dead
  auto r = store.consume(ByteView(*c));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "Unknown or expired challenge");
  EXPECT_EQ(store.size(), 0u);
}

TEST(ChallengeStore, ChallengeJustBeforeExpiryStillConsumes) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  auto c = store.issue("ctx", kTtlMs);
  ASSERT_TRUE(c.has_value());
  clock.advance_ms(kTtlMs - 1);
  EXPECT_TRUE(store.consume(ByteView(*c)).has_value());
}

TEST(ChallengeStore, WrongLengthValueFailsWithNotFound) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  auto c = store.issue("ctx", kTtlMs);
  ASSERT_TRUE(c.has_value());
  ByteView full(*c);
  for (ByteView v : {full.first(31), full.first(0), ByteView()}) {
    auto r = store.consume(v);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  }
  std::vector<uint8_t> longer(c->begin(), c->end());
  longer.push_back(0);
  auto r = store.consume(ByteView(longer));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  // The genuine value is untouched by the failed attempts.
  EXPECT_TRUE(store.consume(full).has_value());
}

TEST(ChallengeStore, ValueDifferingInLastByteDoesNotMatch) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  auto c = store.issue("ctx", kTtlMs);
  ASSERT_TRUE(c.has_value());
  Challenge near = *c;
  near[31] ^= 1;
  EXPECT_FALSE(store.consume(ByteView(near)).has_value());
  EXPECT_TRUE(store.consume(ByteView(*c)).has_value());
}

// Values that share the bucket hash (bytes 0-7) and the shard (byte 8) reach the map's equality; a change
// in any single bit of any byte must still not match.
TEST(ChallengeStore, ValueDifferingInAnyBitDoesNotMatch) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  const Challenge c = derived(42);
  ASSERT_TRUE(store.insert(c, "ctx", kTtlMs).has_value());
  for (size_t i = 0; i < c.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Challenge near = c;
      near[i] ^= static_cast<uint8_t>(1u << bit);
      EXPECT_FALSE(store.consume(ByteView(near)).has_value()) << "byte " << i << " bit " << bit;
    }
  }
  EXPECT_TRUE(store.consume(ByteView(c)).has_value());
}

// Issued challenges come from a per-thread block of CSPRNG output; a forked child must not serve the
// parent's remaining block (both would issue the same challenge).
TEST(ChallengeStore, ForkedChildDoesNotRepeatTheParentsChallenges) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  ASSERT_TRUE(store.issue("warm", kTtlMs).has_value());  // this thread now holds a partly used block
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    auto c = store.issue("child", kTtlMs);
    const bool ok = c.has_value() && write(fds[1], c->data(), c->size()) == static_cast<ssize_t>(c->size());
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  Challenge from_child{};
  size_t got = 0;
  while (got < from_child.size()) {
    const ssize_t n = read(fds[0], from_child.data() + got, from_child.size() - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, from_child.size());
  auto mine = store.issue("parent", kTtlMs);
  ASSERT_TRUE(mine.has_value());
  EXPECT_NE(*mine, from_child);
}

TEST(ChallengeStore, InsertedValueConsumesOnce) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  Challenge v = derived(7);
  ASSERT_TRUE(store.insert(v, "derived", kTtlMs).has_value());
  auto r = store.consume(ByteView(v));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "derived");
  EXPECT_FALSE(store.consume(ByteView(v)).has_value());
}

TEST(ChallengeStore, InsertDuplicateFailsWithConflictAndKeepsFirst) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  Challenge v = derived(9);
  ASSERT_TRUE(store.insert(v, "first", kTtlMs).has_value());
  auto dup = store.insert(v, "second", kTtlMs);
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  EXPECT_EQ(store.size(), 1u);  // the failed insert gave its capacity slot back
  auto r = store.consume(ByteView(v));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "first");
}

TEST(ChallengeStore, NonPositiveTtlIsRejected) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  EXPECT_FALSE(store.issue("ctx", 0).has_value());
  EXPECT_FALSE(store.insert(derived(1), "ctx", -5).has_value());
  EXPECT_EQ(store.size(), 0u);
}

TEST(ChallengeStore, IssueAtCapacityFailsWithUnavailable) {
  ManualClock clock;
  ChallengeStore store(clock, with_capacity(16));
  EXPECT_EQ(store.capacity(), 16u);
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(store.issue("ctx", kTtlMs).has_value()) << i;
  auto r = store.issue("ctx", kTtlMs);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().message, "Challenge store at capacity");
  auto ins = store.insert(derived(3), "ctx", kTtlMs);
  ASSERT_FALSE(ins.has_value());
  EXPECT_EQ(ins.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(store.size(), 16u);  // never grows beyond capacity
}

TEST(ChallengeStore, IssueAtCapacitySucceedsAfterEntriesExpire) {
  ManualClock clock;
  ChallengeStore store(clock, with_capacity(8));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(store.issue("old", kTtlMs).has_value());
  ASSERT_FALSE(store.issue("new", kTtlMs).has_value());
  clock.advance_ms(kTtlMs);
  auto r = store.issue("new", kTtlMs);  // the full store sweeps the expired entries first
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(*store.consume(ByteView(*r)), "new");
}

TEST(ChallengeStore, FullStoreSweepsShortLivedEntryIssuedAfterAnEarlierSweep) {
  ManualClock clock;
  ChallengeStore store(clock, with_capacity(3));
  ASSERT_TRUE(store.issue("long", 10 * kTtlMs).has_value());
  ASSERT_TRUE(store.issue("long", 10 * kTtlMs).has_value());
  EXPECT_EQ(store.sweep(), 0u);  // nothing expired; the store now knows the earliest expiry is far away
  ASSERT_TRUE(store.issue("short", 1'000).has_value());
  ASSERT_FALSE(store.issue("next", kTtlMs).has_value());
  clock.advance_ms(1'000);
  auto r = store.issue("next", kTtlMs);  // the short-lived entry must still be found by the sweep
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(store.size(), 3u);
}

TEST(ChallengeStore, ConsumeFreesCapacity) {
  ManualClock clock;
  ChallengeStore store(clock, with_capacity(1));
  auto a = store.issue("a", kTtlMs);
  ASSERT_TRUE(a.has_value());
  ASSERT_FALSE(store.issue("b", kTtlMs).has_value());
  ASSERT_TRUE(store.consume(ByteView(*a)).has_value());
  EXPECT_TRUE(store.issue("b", kTtlMs).has_value());
}

TEST(ChallengeStore, SweepRemovesOnlyExpiredEntries) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store.issue("short", 1'000).has_value());
  auto keep = store.issue("long", kTtlMs);
  ASSERT_TRUE(keep.has_value());
  EXPECT_EQ(store.sweep(), 0u);
  clock.advance_ms(1'000);
  EXPECT_EQ(store.sweep(), 10u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(*store.consume(ByteView(*keep)), "long");
}

TEST(ChallengeStore, ConcurrentConsumeOfSameChallengeSucceedsExactlyOnce) {
  ManualClock clock;
  ChallengeStore store(clock, {});
  for (int round = 0; round < 50; ++round) {
    auto c = store.issue("ctx", kTtlMs);
    ASSERT_TRUE(c.has_value());
    std::atomic<int> successes{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        if (store.consume(ByteView(*c)).has_value()) successes.fetch_add(1);
      });
    }
    go.store(true, std::memory_order_release);
    for (auto& th : threads) th.join();
    EXPECT_EQ(successes.load(), 1) << "round " << round;
  }
  EXPECT_EQ(store.size(), 0u);
}

TEST(ChallengeStore, ConcurrentIssueAndConsumeStress) {
  ManualClock clock;
  constexpr size_t kCapacity = 4'096;
  ChallengeStore store(clock, with_capacity(kCapacity));
  constexpr int kThreads = 4;
  constexpr int kIterations = 5'000;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Challenge> pending;
      for (int i = 0; i < kIterations; ++i) {
        std::string ctx = std::to_string(t) + ":" + std::to_string(i);
        auto c = store.issue(ctx, kTtlMs);
        if (!c) {
          failures.fetch_add(1);
          continue;
        }
        pending.push_back(*c);
        if (i % 3 == 2) {
          // Consume out of order, and sweep now and then, to interleave every operation.
          for (const Challenge& p : pending) {
            if (!store.consume(ByteView(p)).has_value()) failures.fetch_add(1);
          }
          pending.clear();
          if (i % 300 == 2) store.sweep();
        }
      }
      for (const Challenge& p : pending) {
        if (!store.consume(ByteView(p)).has_value()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store.size(), 0u);
}

TEST(ChallengeStore, ConcurrentIssueNeverExceedsCapacity) {
  ManualClock clock;
  constexpr size_t kCapacity = 100;
  ChallengeStore store(clock, with_capacity(kCapacity));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (store.issue("ctx", kTtlMs).has_value()) ok.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), static_cast<int>(kCapacity));
  EXPECT_EQ(store.size(), kCapacity);
}

}  // namespace
}  // namespace sigil::challenge
