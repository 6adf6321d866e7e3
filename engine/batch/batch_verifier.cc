#include "engine/batch/batch_verifier.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#define SIGIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SIGIL_TSAN 1
#endif
#endif
#ifdef SIGIL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace sigil::batch {
namespace {

// Debian's libtbb is not built with ThreadSanitizer, so TSan cannot see the happens-before edges that
// TBB's spawn/steal/join create, and reports every job's data as racing. These annotations state the
// edges TBB guarantees (the dispatcher's writes before parallel_for are visible to each body; each
// body's writes are visible after parallel_for returns). They compile to nothing outside TSan builds.
inline void hb_release([[maybe_unused]] void* addr) noexcept {
#ifdef SIGIL_TSAN
  __tsan_release(addr);
#endif
}
inline void hb_acquire([[maybe_unused]] void* addr) noexcept {
#ifdef SIGIL_TSAN
  __tsan_acquire(addr);
#endif
}

}  // namespace

bool VerifyJob::verify() const noexcept {
  if (const auto* pk = std::get_if<crypto::PublicKey>(&key_)) {
    return prehashed_ ? pk->verify_digest(message_, signature_) : pk->verify(message_, signature_);
  }
  return std::get<crypto::CoseKey>(key_).verify(message_, signature_);
}

// Design: one dispatcher thread takes whatever is queued (up to max_batch) and runs it with parallel_for
// inside arena.execute, taking part in the work itself (the arena reserves its slot, so the arena has
// `concurrency` threads: the dispatcher plus concurrency-1 TBB workers, which TBB's default worker pool
// of hardware-1 threads can always supply). While a batch runs, new jobs accumulate, so batches grow
// with load by themselves; when the queue is short the dispatcher starts at once (latency first). It
// never waits for a batch to fill: the arena is idle whenever the dispatcher decides, so a wait could
// only add latency. A batch's tail leaves threads idle for at most one job's time.
struct BatchVerifier::Impl {
  explicit Impl(const BatchVerifierOptions& o)
      : concurrency(o.concurrency > 0 ? o.concurrency : tbb::info::default_concurrency()),
        capacity(o.capacity > 0 ? o.capacity : 1),
        max_batch(o.max_batch > 0 ? o.max_batch : 1),
        arena(concurrency, 1) {}

  const int concurrency;
  const std::size_t capacity;
  const std::size_t max_batch;
  tbb::task_arena arena;

  // Intrusive FIFO of accepted nodes (submitters push at the tail, the dispatcher pops at the head).
  std::mutex mu;
  std::condition_variable wake;
  Node* head = nullptr;
  Node* tail = nullptr;
  bool dispatcher_waiting = false;
  bool stopping = false;

  std::atomic<std::size_t> outstanding{0};  // accepted, callback not yet returned
  std::atomic<bool> accepting{true};

  std::atomic<uint64_t> submitted{0}, completed{0}, cancelled{0}, rejected{0}, batches{0};
  std::array<std::atomic<uint64_t>, kHistogramBuckets> histogram{};

  std::thread dispatcher;

  // Counts first (so a test that saw its last callback sees the counters too), then runs the job and
  // its callback, then releases the capacity it held.
  void finish(Node* node, Action action) noexcept {
    (action == Action::kRun ? completed : cancelled).fetch_add(1, std::memory_order_relaxed);
    node->execute(node, action);
    outstanding.fetch_sub(1, std::memory_order_acq_rel);
  }

  void record_batch(std::size_t n) noexcept {
    batches.fetch_add(1, std::memory_order_relaxed);
    const auto width = static_cast<std::size_t>(std::bit_width(n));  // n >= 1
    const std::size_t bucket = std::min(width - 1, kHistogramBuckets - 1);
    histogram[bucket].fetch_add(1, std::memory_order_relaxed);
  }

  void run_dispatcher() {
    std::vector<Node*> batch;
    batch.reserve(max_batch);
    for (;;) {
      {
        std::unique_lock lock(mu);
        if (head == nullptr && !stopping) {
          dispatcher_waiting = true;
          wake.wait(lock, [&] { return head != nullptr || stopping; });
          dispatcher_waiting = false;
        }
        if (stopping) break;
        while (head != nullptr && batch.size() < max_batch) {
          batch.push_back(head);
          head = head->next;
        }
        if (head == nullptr) tail = nullptr;
      }
      record_batch(batch.size());
      hb_release(&batch);
      arena.execute([&] {
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, batch.size(), 1),
                          [&](const tbb::blocked_range<std::size_t>& r) {
                            hb_acquire(&batch);
                            for (std::size_t i = r.begin(); i != r.end(); ++i) finish(batch[i], Action::kRun);
                            hb_release(&batch);
                          });
      });
      hb_acquire(&batch);
      batch.clear();
    }
    // Shutdown: nothing can be queued any more (stopping is set under mu); cancel what is left.
    Node* rest = nullptr;
    {
      std::lock_guard lock(mu);
      rest = head;
      head = tail = nullptr;
    }
    while (rest != nullptr) {
      Node* next = rest->next;
      finish(rest, Action::kCancel);
      rest = next;
    }
  }
};

BatchVerifier::BatchVerifier(BatchVerifierOptions options) : impl_(std::make_unique<Impl>(options)) {
  impl_->arena.initialize();
  impl_->dispatcher = std::thread([impl = impl_.get()] { impl->run_dispatcher(); });
}

BatchVerifier::~BatchVerifier() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    impl_->accepting.store(false, std::memory_order_release);
  }
  impl_->wake.notify_one();
  impl_->dispatcher.join();
  // Every accepted job has had its callback: the dispatcher ran or cancelled all queued nodes, and
  // enqueue() refuses new ones once `stopping` is set.
  SIGIL_CHECK(impl_->outstanding.load(std::memory_order_acquire) == 0);
}

Result<void> BatchVerifier::reserve() {
  Impl& s = *impl_;
  if (!s.accepting.load(std::memory_order_acquire)) {
    s.rejected.fetch_add(1, std::memory_order_relaxed);
    return shutting_down_error();
  }
  // fetch_add then undo: two submitters at the boundary may both be refused, never both admitted.
  if (s.outstanding.fetch_add(1, std::memory_order_acq_rel) >= s.capacity) {
    s.outstanding.fetch_sub(1, std::memory_order_acq_rel);
    s.rejected.fetch_add(1, std::memory_order_relaxed);
    return make_error(ErrorCode::kUnavailable, "Verification queue full");
  }
  return {};
}

Result<void> BatchVerifier::enqueue(Node* node) {
  Impl& s = *impl_;
  if (node == nullptr) {
    s.outstanding.fetch_sub(1, std::memory_order_acq_rel);
    s.rejected.fetch_add(1, std::memory_order_relaxed);
    return make_error(ErrorCode::kUnavailable, "Verification queue full");
  }
  bool notify = false;
  {
    std::lock_guard lock(s.mu);
    if (s.stopping) {
      // Lost the race with the destructor: free without a callback, as a rejection.
      node->execute(node, Action::kDiscard);
      s.outstanding.fetch_sub(1, std::memory_order_acq_rel);
      s.rejected.fetch_add(1, std::memory_order_relaxed);
      return shutting_down_error();
    }
    node->next = nullptr;
    if (s.tail != nullptr) {
      s.tail->next = node;
    } else {
      s.head = node;
    }
    s.tail = node;
    s.submitted.fetch_add(1, std::memory_order_relaxed);
    notify = s.dispatcher_waiting;
    s.dispatcher_waiting = false;  // one wake-up is enough
  }
  if (notify) s.wake.notify_one();
  return {};
}

std::unexpected<Error> BatchVerifier::shutting_down_error() {
  return make_error(ErrorCode::kUnavailable, "Verifier shutting down");
}

bool BatchVerifier::accepting() const noexcept { return impl_->accepting.load(std::memory_order_acquire); }

int BatchVerifier::concurrency() const noexcept { return impl_->concurrency; }

BatchVerifier::Stats BatchVerifier::stats() const noexcept {
  const Impl& s = *impl_;
  Stats out;
  out.submitted = s.submitted.load(std::memory_order_relaxed);
  out.completed = s.completed.load(std::memory_order_relaxed);
  out.cancelled = s.cancelled.load(std::memory_order_relaxed);
  out.rejected = s.rejected.load(std::memory_order_relaxed);
  out.outstanding = s.outstanding.load(std::memory_order_relaxed);
  out.batches = s.batches.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < kHistogramBuckets; ++i) {
    out.batch_size_histogram[i] = s.histogram[i].load(std::memory_order_relaxed);
  }
  return out;
}

}  // namespace sigil::batch
