#include "bench/batch_bench.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "bench/fixtures.h"
#include "engine/batch/batch_verifier.h"

namespace sigil::bench {
namespace {

void (*g_before_each)() = nullptr;

// One iteration: submit `batch` ES256 verifications (key handle copied, message and signature copied into
// the job, as a request handler would) and wait until every callback has run. Items = verifications, in real
// time: the work runs on the arena's threads while this thread sleeps on a futex.
void bm_batch_verify(benchmark::State& state) {
  if (g_before_each != nullptr) g_before_each();
  const auto batch = static_cast<size_t>(state.range(0));
  const int concurrency = static_cast<int>(state.range(1));
  const auto& items = signed_items(Alg::kES256, 1000);
  batch::BatchVerifier verifier({.concurrency = concurrency, .capacity = 65536, .max_batch = 1024});
  std::atomic<size_t> remaining{0};
  std::atomic<size_t> invalid{0};
  size_t next = 0;
  for (auto _ : state) {
    remaining.store(batch, std::memory_order_relaxed);
    for (size_t j = 0; j < batch; ++j) {
      const SignedItem& it = items[next];
      if (++next == items.size()) next = 0;
      auto ok = verifier.submit(batch::VerifyJob(*it.cose, it.message, it.signature),
                                [&remaining, &invalid](batch::Verdict v) {
                                  if (v != batch::Verdict::kValid) invalid.fetch_add(1, std::memory_order_relaxed);
                                  if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining.notify_one();
                                });
      if (!ok) {
        state.SkipWithError("submit refused");
        return;
      }
    }
    for (size_t r = remaining.load(std::memory_order_acquire); r != 0; r = remaining.load(std::memory_order_acquire)) {
      remaining.wait(r, std::memory_order_acquire);
    }
  }
  if (invalid.load() != 0) state.SkipWithError("a valid signature was not verified as valid");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(batch));
  const auto stats = verifier.stats();
  if (stats.batches > 0) {
    state.counters["mean_dispatch_batch"] = static_cast<double>(stats.completed) / static_cast<double>(stats.batches);
  }
}

}  // namespace

void register_batch_benchmarks(void (*before_each)()) {
  g_before_each = before_each;
  const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto* b = benchmark::RegisterBenchmark("batch/engine:BatchVerifier", bm_batch_verify);
  b->ArgNames({"batch", "concurrency"})->UseRealTime();
  for (int concurrency : {1, all}) {
    for (int64_t size : {1, 16, 256, 1024}) b->Args({size, concurrency});
    if (all == 1) break;
  }
}

}  // namespace sigil::bench
