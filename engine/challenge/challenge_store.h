// In-process challenge store.
//
// Guarantees: challenges are 32 random bytes from the CSPRNG (or a caller-derived 32-byte value, see
// insert); issue and consume are O(1); a challenge is consumed at most once (the first consume wins, every
// later one fails); the stored value is compared in constant time; an expired entry never matches (time
// comes from the injected Clock); at most `capacity` entries are pending — past that, issue/insert fail
// with kUnavailable (HTTP 503) after sweeping expired entries, instead of growing.
// Thread-safety: all methods may be called concurrently (sharded locks).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/base/clock.h"
#include "engine/base/result.h"
#include "engine/crypto/bytes.h"

namespace sigil::challenge {

using Challenge = std::array<uint8_t, 32>;

class ChallengeStore {
 public:
  struct Options {
    size_t capacity = 1'000'000;
  };

  ChallengeStore(const Clock& clock, Options options);
  ~ChallengeStore();
  ChallengeStore(const ChallengeStore&) = delete;
  ChallengeStore& operator=(const ChallengeStore&) = delete;

  // A fresh random challenge bound to `context` (opaque to the store), valid for ttl_ms.
  [[nodiscard]] Result<Challenge> issue(std::string context, int64_t ttl_ms);
  // Stores a caller-derived challenge (e.g. SHA-256 over a nonce and approval data). Fails with
  // kConflict if the value is already pending.
  [[nodiscard]] Result<void> insert(const Challenge& value, std::string context, int64_t ttl_ms);
  // Removes the challenge and returns its context. kNotFound when unknown, already consumed or
  // expired (one error for all three, so callers cannot probe).
  [[nodiscard]] Result<std::string> consume(ByteView value);

  // Pending entries, expired ones not yet swept included.
  [[nodiscard]] size_t size() const noexcept;
  [[nodiscard]] size_t capacity() const noexcept;
  // Drops expired entries; returns how many.
  size_t sweep();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sigil::challenge
