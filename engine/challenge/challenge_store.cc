// ChallengeStore: 64 shards, each a mutex over an unordered_map keyed by the 32-byte value.
//
// Hashing: the bucket hash is the first 8 bytes of the value and the shard is chosen from byte 8, which is
// only sound because every key is uniformly distributed: issue() draws it from the CSPRNG, and insert()
// takes caller-derived values that are SHA-256 outputs (an attacker who controls the hash input still
// cannot choose the output, so buckets cannot be flooded). A caller that inserts non-uniform values breaks
// that assumption.
//
// Matching: the map's key equality is a constant-time comparison over all 32 bytes (challenge_equal), so no
// comparison against a pending value (in the bucket chain or on the final match) exits early on the first
// differing byte.
//
// Randomness: issue() draws from a per-thread block of CSPRNG output (ChallengeRandom below), not one system
// call per challenge.
//
// Capacity: `count_` is reserved before an entry is placed and released when one is removed, so the number
// of entries never exceeds the capacity. When full, a sweep runs (one sweeper at a time) unless no pending
// entry can have expired yet: `earliest_expiry_` is a lower bound on the expiry of every pending entry,
// which keeps a flood of issue() calls at capacity from turning every call into a full scan.
#include "engine/challenge/challenge_store.h"

#include <pthread.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

#include "engine/crypto/digest.h"

namespace sigil::challenge {
namespace {

constexpr size_t kShardCount = 64;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct ValueHash {
  size_t operator()(const Challenge& c) const noexcept {
    uint64_t h = 0;
    std::memcpy(&h, c.data(), sizeof h);
    return static_cast<size_t>(h);
  }
};

// Constant-time equality of two 32-byte values: the OR of the XORs of four 64-bit words, with an
// optimisation barrier after each step so the compiler cannot turn the chain into early exits. Inline and
// word-wise because CRYPTO_memcmp (a byte loop behind a library call) was a fifth of issue+consume.
bool challenge_equal(const Challenge& a, const Challenge& b) noexcept {
  uint64_t acc = 0;
  for (size_t i = 0; i < a.size(); i += sizeof(uint64_t)) {
    uint64_t x = 0;
    uint64_t y = 0;
    std::memcpy(&x, a.data() + i, sizeof x);
    std::memcpy(&y, b.data() + i, sizeof y);
    acc |= x ^ y;
    __asm__ volatile("" : "+r"(acc));
  }
  return acc == 0;
}

struct ConstantTimeEqual {
  bool operator()(const Challenge& a, const Challenge& b) const noexcept { return challenge_equal(a, b); }
};

struct Entry {
  std::string context;
  int64_t expires_at_ms = 0;
};

// An entry is live while now < expires_at_ms.
bool expired(const Entry& e, int64_t now_ms) noexcept { return now_ms >= e.expires_at_ms; }

struct alignas(64) Shard {
  std::mutex mu;
  std::unordered_map<Challenge, Entry, ValueHash, ConstantTimeEqual> entries;
};

size_t shard_index(const Challenge& c) noexcept { return c[8] % kShardCount; }

int64_t saturating_add(int64_t a, int64_t b) noexcept {
  int64_t out = 0;
  return __builtin_add_overflow(a, b, &out) ? kNever : out;
}

Error not_found() { return Error{ErrorCode::kNotFound, "Unknown or expired challenge", {}, {}}; }

// Challenge randomness, drawn in bulk. One getrandom system call per 32-byte challenge cost ~400 ns (two
// thirds of issue+consume), and the kernel's generator itself runs at ~85 ns per 32 bytes here, so each
// thread refills a 4 KiB block as follows: a fresh 32-byte seed from the OS CSPRNG (crypto::random_fill,
// libsodium randombytes_buf), expanded with libsodium's randombytes_buf_deterministic (ChaCha20 keyed by the
// seed), the seed wiped at once. A block is 128 challenges; every block has its own OS seed, so no
// generator state outlives a block, and the only state is the block's unused bytes (the same exposure as
// any buffered draw). Served bytes are wiped from the block.
//
// Fork safety: sigild never forks, but a child must never serve the parent's unused bytes (both would issue
// the same challenges), so a pthread_atfork child handler discards the forking thread's block (the only
// thread the child has). Blocks of other threads do not exist in the child.
class ChallengeRandom {
 public:
  static void fill(Challenge& out) noexcept {
    static const bool registered = [] {
      SIGIL_CHECK(pthread_atfork(nullptr, nullptr, &ChallengeRandom::discard_in_child) == 0);
      return true;
    }();
    (void)registered;
    Block& b = block();
    if (b.used == sizeof b.bytes) b.refill();
    std::memcpy(out.data(), b.bytes + b.used, out.size());
    sodium_memzero(b.bytes + b.used, out.size());
    b.used += out.size();
  }

 private:
  static constexpr size_t kBlockSize = 4096;
  static_assert(kBlockSize % sizeof(Challenge) == 0);

  struct Block {
    uint8_t bytes[kBlockSize];
    size_t used = kBlockSize;  // empty until first use

    void refill() noexcept {
      uint8_t seed[randombytes_SEEDBYTES];
      crypto::random_fill(seed);  // also makes sure libsodium is initialised
      randombytes_buf_deterministic(bytes, sizeof bytes, seed);
      sodium_memzero(seed, sizeof seed);
      used = 0;
    }
    void discard() noexcept {
      sodium_memzero(bytes, sizeof bytes);
      used = kBlockSize;
    }
    ~Block() { discard(); }
  };

  static Block& block() noexcept {
    static thread_local Block b;
    return b;
  }
  static void discard_in_child() noexcept { block().discard(); }
};

}  // namespace

struct ChallengeStore::Impl {
  Impl(const Clock& c, Options o) : clock(c), options(o) {}

  // Reserves one slot of the capacity; false when full.
  bool try_reserve() noexcept {
    size_t cur = count.load(std::memory_order_relaxed);
    while (cur < options.capacity) {
      if (count.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  void release(size_t n = 1) noexcept { count.fetch_sub(n, std::memory_order_acq_rel); }

  void note_expiry(int64_t expires_at_ms) noexcept {
    int64_t cur = earliest_expiry.load(std::memory_order_relaxed);
    while (expires_at_ms < cur &&
           !earliest_expiry.compare_exchange_weak(cur, expires_at_ms, std::memory_order_acq_rel,
                                                  std::memory_order_relaxed)) {
    }
  }

  // Caller holds sweep_mu.
  size_t sweep_locked() {
    const int64_t now = clock.now_ms();
    // Inserts that land in a shard after it was scanned lower the bound again through note_expiry.
    earliest_expiry.store(kNever, std::memory_order_release);
    int64_t remaining_min = kNever;
    size_t removed = 0;
    for (Shard& shard : shards) {
      std::lock_guard lock(shard.mu);
      for (auto it = shard.entries.begin(); it != shard.entries.end();) {
        if (expired(it->second, now)) {
          it = shard.entries.erase(it);
          ++removed;
        } else {
          remaining_min = std::min(remaining_min, it->second.expires_at_ms);
          ++it;
        }
      }
    }
    note_expiry(remaining_min);
    if (removed > 0) release(removed);
    return removed;
  }

  // Reserves a slot, sweeping once if the store is full.
  Result<void> reserve() {
    if (try_reserve()) return {};
    {
      std::lock_guard lock(sweep_mu);
      // Another sweeper may have freed room while this thread waited; sweep only if that did not happen and
      // some pending entry may have expired by now.
      if (try_reserve()) return {};
      if (clock.now_ms() >= earliest_expiry.load(std::memory_order_acquire)) sweep_locked();
    }
    if (try_reserve()) return {};
    return make_error(ErrorCode::kUnavailable, "Challenge store at capacity");
  }

  // Places an entry whose slot is already reserved; false (slot released) if the value is pending.
  bool place(const Challenge& value, std::string& context, int64_t expires_at_ms) {
    Shard& shard = shards[shard_index(value)];
    {
      std::lock_guard lock(shard.mu);
      auto [it, inserted] = shard.entries.try_emplace(value);
      if (!inserted) {
        release();
        return false;
      }
      it->second.context = std::move(context);
      it->second.expires_at_ms = expires_at_ms;
      note_expiry(expires_at_ms);
    }
    return true;
  }

  const Clock& clock;
  const Options options;
  std::atomic<size_t> count{0};
  std::atomic<int64_t> earliest_expiry{kNever};
  std::mutex sweep_mu;
  std::array<Shard, kShardCount> shards;
};

ChallengeStore::ChallengeStore(const Clock& clock, Options options)
    : impl_(std::make_unique<Impl>(clock, options)) {}

ChallengeStore::~ChallengeStore() = default;

Result<Challenge> ChallengeStore::issue(std::string context, int64_t ttl_ms) {
  if (ttl_ms <= 0) return make_error(ErrorCode::kInternal, "Invalid challenge lifetime");
  SIGIL_TRY(impl_->reserve());
  const int64_t expires_at = saturating_add(impl_->clock.now_ms(), ttl_ms);
  Challenge value{};
  // A collision of two 256-bit random values does not happen; the loop only keeps the invariant local.
  for (;;) {
    ChallengeRandom::fill(value);
    if (impl_->place(value, context, expires_at)) return value;
    SIGIL_TRY(impl_->reserve());
  }
}

Result<void> ChallengeStore::insert(const Challenge& value, std::string context, int64_t ttl_ms) {
  if (ttl_ms <= 0) return make_error(ErrorCode::kInternal, "Invalid challenge lifetime");
  SIGIL_TRY(impl_->reserve());
  const int64_t expires_at = saturating_add(impl_->clock.now_ms(), ttl_ms);
  if (!impl_->place(value, context, expires_at)) {
    return make_error(ErrorCode::kConflict, "Challenge already pending");
  }
  return {};
}

Result<std::string> ChallengeStore::consume(ByteView value) {
  if (value.size() != Challenge{}.size()) return std::unexpected(not_found());
  Challenge key{};
  std::copy(value.begin(), value.end(), key.begin());

  Shard& shard = impl_->shards[shard_index(key)];
  Entry entry;
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(key);  // equality is ConstantTimeEqual over all 32 bytes
    if (it == shard.entries.end()) return std::unexpected(not_found());
    // Belt and braces: the map matched, confirm the full value in constant time before handing out the
    // context.
    if (!challenge_equal(it->first, key)) return std::unexpected(not_found());
    entry = std::move(it->second);
    shard.entries.erase(it);  // single use: erased whether it is still live or has expired
  }
  impl_->release();
  if (expired(entry, impl_->clock.now_ms())) return std::unexpected(not_found());
  return std::move(entry.context);
}

size_t ChallengeStore::size() const noexcept { return impl_->count.load(std::memory_order_acquire); }

size_t ChallengeStore::capacity() const noexcept { return impl_->options.capacity; }

size_t ChallengeStore::sweep() {
  std::lock_guard lock(impl_->sweep_mu);
  return impl_->sweep_locked();
}

}  // namespace sigil::challenge
