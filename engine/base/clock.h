// Injected time. Production uses SystemClock; tests use ManualClock to move past expiry without sleeping.
// Thread-safety: both implementations are safe to call from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sigil {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in milliseconds since the Unix epoch.
  [[nodiscard]] virtual int64_t now_ms() const noexcept = 0;
  [[nodiscard]] int64_t now_s() const noexcept { return now_ms() / 1000; }
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] int64_t now_ms() const noexcept override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  [[nodiscard]] int64_t now_ms() const noexcept override { return now_.load(std::memory_order_relaxed); }
  void advance_ms(int64_t ms) noexcept { now_.fetch_add(ms, std::memory_order_relaxed); }
  void set_ms(int64_t ms) noexcept { now_.store(ms, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace sigil
