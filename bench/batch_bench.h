// Batch-verification benchmarks (engine/batch): built only when that component exists (bench/CMakeLists.txt).
#pragma once

namespace sigil::bench {

// Registers batch/engine:BatchVerifier for batch sizes 1..1024 at concurrency 1 and all hardware threads.
// `before_each` runs before each benchmark's setup (frees memory held by earlier fixtures).
void register_batch_benchmarks(void (*before_each)());

}  // namespace sigil::bench
