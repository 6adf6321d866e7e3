// Short-lived single-node state (authorization codes, OTPs, one-time links, replay caches) with TTLs.
//
// Guarantees: bounded (insert fails with kUnavailable at capacity after dropping expired entries);
// take() removes atomically, so a value is handed out at most once even under concurrent callers;
// expired entries are never returned. Keys are secrets' hashes or other non-secret ids; callers that key
// by a secret hash it first (the map's lookup is then not a timing oracle on the secret).
// Multi-node deployments move this state to Redis (DESIGN.md "Scale").
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstddef>
#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "engine/base/clock.h"
#include "engine/base/result.h"

namespace sigil::auth {

template <typename V>
class EphemeralMap {
 public:
  EphemeralMap(const Clock& clock, size_t capacity) : clock_(clock), capacity_(capacity) {}

  // Inserts or replaces.
  [[nodiscard]] Result<void> put(const std::string& key, V value, int64_t ttl_ms) {
    std::lock_guard lock(mu_);
    const int64_t now = clock_.now_ms();
    if (map_.size() >= capacity_ && !map_.contains(key)) {
      sweep_locked(now);
      if (map_.size() >= capacity_) return make_error(ErrorCode::kUnavailable, "Service busy, try again");
    }
    map_[key] = Entry{std::move(value), now + ttl_ms};
    earliest_expiry_ms_ = std::min(earliest_expiry_ms_, now + ttl_ms);
    return {};
  }

  // Inserts only when no live value holds the key; returns whether it inserted.
  [[nodiscard]] Result<bool> put_if_absent(const std::string& key, V value, int64_t ttl_ms) {
    std::lock_guard lock(mu_);
    const int64_t now = clock_.now_ms();
    auto it = map_.find(key);
    if (it != map_.end() && it->second.expires_at_ms > now) return false;
    if (it == map_.end() && map_.size() >= capacity_) {
      sweep_locked(now);
      if (map_.size() >= capacity_) return make_error(ErrorCode::kUnavailable, "Service busy, try again");
    }
    map_[key] = Entry{std::move(value), now + ttl_ms};
    earliest_expiry_ms_ = std::min(earliest_expiry_ms_, now + ttl_ms);
    return true;
  }

  // Removes and returns the live value.
  [[nodiscard]] std::optional<V> take(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    Entry e = std::move(it->second);
    map_.erase(it);
    if (e.expires_at_ms <= clock_.now_ms()) return std::nullopt;
    return std::move(e.value);
  }

  // A copy of the live value, left in place.
  [[nodiscard]] std::optional<V> peek(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || it->second.expires_at_ms <= clock_.now_ms()) return std::nullopt;
    return it->second.value;
  }

  // Runs `fn` on the live value under the lock; fn returns false to erase it. Returns whether a live
  // value was found.
  bool update(const std::string& key, const std::function<bool(V&, int64_t expires_at_ms)>& fn) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    if (it->second.expires_at_ms <= clock_.now_ms()) {
      map_.erase(it);
      return false;
    }
    if (!fn(it->second.value, it->second.expires_at_ms)) map_.erase(it);
    return true;
  }

  [[nodiscard]] bool contains(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    return it != map_.end() && it->second.expires_at_ms > clock_.now_ms();
  }

  [[nodiscard]] size_t size() {
    std::lock_guard lock(mu_);
    return map_.size();
  }

 private:
  struct Entry {
    V value;
    int64_t expires_at_ms;
  };
  // O(n), so only when something can have expired: a flood at capacity fails fast instead of
  // rescanning the map on every insert.
  void sweep_locked(int64_t now) {
    if (now < earliest_expiry_ms_) return;
    std::erase_if(map_, [now](const auto& kv) { return kv.second.expires_at_ms <= now; });
    earliest_expiry_ms_ = INT64_MAX;
    for (const auto& kv : map_) earliest_expiry_ms_ = std::min(earliest_expiry_ms_, kv.second.expires_at_ms);
  }

  const Clock& clock_;
  const size_t capacity_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  int64_t earliest_expiry_ms_ = INT64_MAX;  // lower bound of every entry's expiry
};

}  // namespace sigil::auth
