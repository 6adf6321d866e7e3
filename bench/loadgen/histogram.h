// A small HDR-style latency histogram: log-linear buckets, 1 µs resolution below 128 µs and < 1.6 %
// relative error above (64 linear sub-buckets per power of two), values up to 60 s (larger ones are clamped
// and counted in `clamped`). Debian 12 packages no C/C++ HdrHistogram (only Java and Go), hence this one.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace loadgen {

class Histogram {
 public:
  static constexpr uint64_t kMaxUs = 60'000'000;  // 60 s

  void record(uint64_t us) {
    if (us > kMaxUs) {
      us = kMaxUs;
      ++clamped_;
    }
    ++counts_[index(us)];
    ++count_;
    sum_ += us;
    max_ = std::max(max_, us);
    min_ = std::min(min_, us);
  }

  void merge(const Histogram& o) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    clamped_ += o.clamped_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }

  // The value at quantile q (0..1]: the highest value equivalent to the bucket holding that rank, capped by the
  // exact maximum (so p100 is exact, and no percentile exceeds it).
  uint64_t percentile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t clamped() const { return clamped_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }

 private:
  static constexpr int kSubBits = 7;                      // 128 sub-buckets in the first range
  static constexpr uint64_t kHalf = 1u << (kSubBits - 1);  // 64 per later power of two
  static constexpr size_t kBuckets = 64 * 21 + 128;         // enough for 2^27 µs > 60 s

  static size_t index(uint64_t v) {
    const int msb = 63 - std::countl_zero(v | 1);
    const int shift = std::max(0, msb - (kSubBits - 1));
    return static_cast<size_t>(shift) * kHalf + static_cast<size_t>(v >> shift);
  }
  static uint64_t upper(size_t i) {
    if (i < 2 * kHalf) return i;
    const size_t shift = i / kHalf - 1;
    const uint64_t sub = i - shift * kHalf;
    return ((sub + 1) << shift) - 1;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0, sum_ = 0, max_ = 0, min_ = UINT64_MAX, clamped_ = 0;
};

}  // namespace loadgen
