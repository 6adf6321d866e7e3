#include "engine/batch/batch_verifier.h"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
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

// Design: one dispatcher thread takes whatever is queued (up to max_batch) as a batch and works through it
// itself; when the batch holds more than one job and the arena has workers, it first enqueues helper tasks
// (at most concurrency - 1) on the arena, and each helper claims jobs from the same batch (an atomic index)
// until none is left. Nobody waits for anybody at the end of a batch: the dispatcher takes the next batch as
// soon as every job of the current one has been claimed, and a helper simply returns. So the arena has at
// most `concurrency` threads busy (the dispatcher plus concurrency-1 TBB workers, which TBB's default worker
// pool of hardware-1 threads can always supply), a batch's tail never leaves a thread spinning at a join,
// and a batch of one job (light load) runs on the dispatcher without involving TBB at all. While a batch
// runs, new jobs accumulate, so batches grow with load by themselves; when the queue is short the
// dispatcher starts at once (latency first). It never waits for a batch to fill.
struct BatchVerifier::Impl {
  explicit Impl(const BatchVerifierOptions& o)
      : concurrency(o.concurrency > 0 ? o.concurrency : tbb::info::default_concurrency()),
        capacity(o.capacity > 0 ? o.capacity : 1),
        max_batch(o.max_batch > 0 ? o.max_batch : 1),
        max_helpers(helpers_for(concurrency)),
        arena(concurrency, 1) {}

  // Helpers are TBB workers: never more than the worker pool holds (the destructor waits for every enqueued
  // helper, so each must be able to run), nor than the arena admits besides the dispatcher.
  static int helpers_for(int concurrency) noexcept {
    const auto parallelism = tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
    const int pool_workers = static_cast<int>(std::min<std::size_t>(parallelism, 1 << 16)) - 1;
    return std::max(0, std::min(concurrency - 1, pool_workers));
  }

  // A batch shared by the dispatcher and its helpers. The last of them to leave frees it.
  struct Batch {
    std::vector<Node*> nodes;
    std::atomic<std::size_t> next{0};  // the next unclaimed node
    std::atomic<int> users{1};
  };

  const int concurrency;
  const std::size_t capacity;
  const std::size_t max_batch;
  const int max_helpers;
  tbb::task_arena arena;

  // Intrusive FIFO of accepted nodes (submitters push at the tail, the dispatcher pops at the head).
  std::mutex mu;
  std::condition_variable wake;
  std::condition_variable helpers_idle;  // signalled (under mu) when the last running helper returns
  Node* head = nullptr;
  Node* tail = nullptr;
  bool dispatcher_waiting = false;
  bool stopping = false;
  int helpers_running = 0;  // under mu: helper tasks enqueued on the arena and not yet returned

  std::atomic<std::size_t> outstanding{0};  // accepted, callback not yet returned
  std::atomic<bool> accepting{true};

  std::atomic<uint64_t> submitted{0}, completed{0}, cancelled{0}, rejected{0}, batches{0};
  std::array<std::atomic<uint64_t>, kHistogramBuckets> histogram{};

  std::atomic<Batch*> spare{nullptr};
  std::thread dispatcher;

  ~Impl() { delete spare.load(std::memory_order_acquire); }

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

  // Claims and runs jobs of `b` until none is left, then leaves it.
  void work(Batch* b) noexcept {
    const std::size_t n = b->nodes.size();
    for (std::size_t i = b->next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = b->next.fetch_add(1, std::memory_order_relaxed)) {
      finish(b->nodes[i], Action::kRun);
    }
    if (b->users.fetch_sub(1, std::memory_order_acq_rel) == 1) recycle(b);
  }

  // The last user of a batch keeps it for the dispatcher's next one (one spare), so that a busy verifier
  // allocates no batch buffers.
  void recycle(Batch* b) noexcept {
    Batch* empty = nullptr;
    if (!spare.compare_exchange_strong(empty, b, std::memory_order_acq_rel)) delete b;
  }

  Batch* new_batch() {
    Batch* b = spare.exchange(nullptr, std::memory_order_acq_rel);
    if (b == nullptr) return new Batch;
    b->nodes.clear();
    b->next.store(0, std::memory_order_relaxed);
    b->users.store(1, std::memory_order_relaxed);
    return b;
  }

  void helper(Batch* b) noexcept {
    hb_acquire(b);
    work(b);
    std::lock_guard lock(mu);
    if (--helpers_running == 0) helpers_idle.notify_all();
  }

  // Hands `b` to up to `want` arena workers; returns how many helper tasks were enqueued.
  int enlist_helpers(Batch* b, int want) noexcept {
    {
      std::lock_guard lock(mu);
      helpers_running += want;
    }
    b->users.fetch_add(want, std::memory_order_relaxed);
    hb_release(b);
    int enqueued = 0;
    try {
      for (; enqueued < want; ++enqueued) arena.enqueue([this, b] { helper(b); });
    } catch (...) {
      // Out of memory: the dispatcher works through the rest of the batch itself.
    }
    if (enqueued < want) {
      const int missing = want - enqueued;
      b->users.fetch_sub(missing, std::memory_order_relaxed);
      std::lock_guard lock(mu);
      helpers_running -= missing;
      if (helpers_running == 0) helpers_idle.notify_all();
    }
    return enqueued;
  }

  void run_dispatcher() {
    for (;;) {
      Node* first = nullptr;
      std::size_t n = 0;
      {
        std::unique_lock lock(mu);
        if (head == nullptr && !stopping) {
          dispatcher_waiting = true;
          wake.wait(lock, [&] { return head != nullptr || stopping; });
          dispatcher_waiting = false;
        }
        if (stopping) break;
        first = head;
        Node* last = head;
        for (n = 1; n < max_batch && last->next != nullptr; ++n) last = last->next;
        head = last->next;
        last->next = nullptr;
        if (head == nullptr) tail = nullptr;
      }
      record_batch(n);
      const int want = static_cast<int>(std::min<std::size_t>(n - 1, static_cast<std::size_t>(max_helpers)));
      Batch* b = nullptr;
      if (want > 0) {
        try {
          b = new_batch();
          b->nodes.reserve(n);
          for (Node* node = first; node != nullptr; node = node->next) b->nodes.push_back(node);
        } catch (...) {
          if (b != nullptr) recycle(b);  // out of memory: run the batch here, alone
          b = nullptr;
        }
      }
      if (b == nullptr) {
        while (first != nullptr) {
          Node* next = first->next;  // read before the node is freed
          finish(first, Action::kRun);
          first = next;
        }
        continue;
      }
      enlist_helpers(b, want);
      work(b);
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
  {
    // Helpers still working through the dispatcher's last batch finish it.
    std::unique_lock lock(impl_->mu);
    impl_->helpers_idle.wait(lock, [&] { return impl_->helpers_running == 0; });
  }
  // Every accepted job has had its callback: the dispatcher and its helpers ran or cancelled all queued
  // nodes, and enqueue() refuses new ones once `stopping` is set.
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
