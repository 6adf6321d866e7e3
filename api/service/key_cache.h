// A bounded, sharded cache of parsed key handles in front of the store (DESIGN.md hot path, step 4):
// a credential's key is parsed once, not on every login.
//
// Guarantees: at most `capacity` entries (per shard capacity / kShards; when a shard is full an arbitrary
// entry of that shard is evicted — keys are cheap to re-parse, so a simple bound beats LRU bookkeeping);
// erase() makes the next lookup miss (callers erase on delete before answering); values are immutable
// shared handles, safe to use after eviction. Thread-safety: all methods may be called concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sigil::service {

template <typename V>
class KeyCache {
 public:
  explicit KeyCache(size_t capacity) : per_shard_(capacity / kShards + 1) {}

  [[nodiscard]] std::shared_ptr<const V> find(const std::string& key) const {
    const Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(key);
    return it == s.map.end() ? nullptr : it->second;
  }

  void put(const std::string& key, std::shared_ptr<const V> value) {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    if (s.map.size() >= per_shard_ && !s.map.contains(key)) s.map.erase(s.map.begin());
    s.map[key] = std::move(value);
  }

  void erase(const std::string& key) {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    s.map.erase(key);
  }

  [[nodiscard]] size_t size() const {
    size_t n = 0;
    for (const auto& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.map.size();
    }
    return n;
  }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::shared_ptr<const V>> map;
  };
  Shard& shard(const std::string& key) { return shards_[std::hash<std::string>{}(key) % kShards]; }
  const Shard& shard(const std::string& key) const { return shards_[std::hash<std::string>{}(key) % kShards]; }

  size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace sigil::service
