// BatchVerifier: runs signature checks (and other CPU-bound work, e.g. token signing) on a oneTBB task
// arena, so that I/O threads never block on crypto.
//
// Guarantees:
//  - submit()/run() never block on crypto and never run the job on the calling thread: they enqueue and
//    return. They fail fast (ErrorCode::kUnavailable) when the verifier holds `capacity` accepted-but-
//    unfinished jobs ("Verification queue full", answer 503 + Retry-After) or is shutting down
//    ("Verifier shutting down"); a rejected job's callback is never called.
//  - Every accepted job's callback is called exactly once, on the dispatcher thread or a TBB worker of
//    the arena, in order of completion (not of submission). A callback may call submit()/run() again.
//    Jobs, tasks and callbacks run under noexcept: one that throws terminates the process. A callback
//    must not destroy the verifier.
//  - Memory is bounded: at most `capacity` accepted jobs exist at once; the queue never grows past it.
//  - One heap allocation per accepted job (a node holding the job and the callback inline); no
//    std::function; the dispatcher reuses its batch buffer.
//  - Destruction cancels what is still queued (VerifyJob callbacks get Verdict::kCancelled, run()
//    callbacks get kUnavailable), lets the batch being worked through finish, joins the dispatcher and
//    waits for the arena workers helping it; no callback runs after the destructor returns. The owner
//    must not call submit()/run() concurrently with or after the destructor except from callbacks
//    (which are then rejected).
//  - Keys are copied into the job (they are immutable handles sharing one parsed OpenSSL key, so a copy
//    is two reference-count increments): no lifetime contract for the caller. PublicKey/CoseKey::verify
//    use a fresh or reset context per call, so arena threads interleaving keys never verify under a
//    previous key (CONVENTIONS.md, OpenSSL 3.0 pitfall; tested through this path).
//
// Thread-safety: submit(), run(), accepting() and stats() may be called from any thread at once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <variant>

#include "engine/base/result.h"
#include "engine/crypto/bytes.h"
#include "engine/crypto/cose_key.h"
#include "engine/crypto/public_key.h"

namespace sigil::batch {

// The outcome of a verification. An enum, not bool or Result<bool>: a caller must compare with kValid
// explicitly, so `if (result)` can never read "the check ran" as "the signature is valid".
enum class Verdict : uint8_t {
  kValid,      // the signature verifies under the key
  kInvalid,    // it does not (or is malformed)
  kCancelled,  // the verifier shut down before the job ran: answer 503, not 401
};

// One signature check. Owns its message and signature (moved in: the caller has built them for this
// request anyway) and a copy of the key handle.
class VerifyJob {
 public:
  // PublicKey: ES256 or RS256 over `message` (hashed with SHA-256 by the key).
  VerifyJob(crypto::PublicKey key, Bytes message, Bytes signature) noexcept
      : key_(std::move(key)), message_(std::move(message)), signature_(std::move(signature)) {}
  // CoseKey: the key's own COSE algorithm over `message`.
  VerifyJob(crypto::CoseKey key, Bytes message, Bytes signature) noexcept
      : key_(std::move(key)), message_(std::move(message)), signature_(std::move(signature)) {}
  // PublicKey over a precomputed SHA-256 digest.
  [[nodiscard]] static VerifyJob over_sha256_digest(crypto::PublicKey key, Bytes digest, Bytes signature) noexcept {
    VerifyJob job(std::move(key), std::move(digest), std::move(signature));
    job.prehashed_ = true;
    return job;
  }

  // Runs the check on the calling thread.
  [[nodiscard]] bool verify() const noexcept;

 private:
  std::variant<crypto::PublicKey, crypto::CoseKey> key_;
  Bytes message_;  // or the SHA-256 digest when prehashed_
  Bytes signature_;
  bool prehashed_ = false;
};

struct BatchVerifierOptions {
  // Arena threads, the dispatcher included; 0 = TBB's default (hardware threads). More than TBB's worker
  // pool (hardware - 1, unless the application raises tbb::global_control) plus one is not reached.
  int concurrency = 0;
  std::size_t capacity = 65536; // accepted jobs not yet finished (queued + running)
  std::size_t max_batch = 1024; // most jobs handed to one parallel_for
};

class BatchVerifier {
 public:
  // Batch-size histogram: bucket i counts batches of size in [2^i, 2^(i+1)); the last one takes the rest.
  static constexpr std::size_t kHistogramBuckets = 16;
  struct Stats {
    uint64_t submitted = 0;  // accepted by submit()/run()
    uint64_t completed = 0;  // callbacks with a real outcome
    uint64_t cancelled = 0;  // callbacks with kCancelled / kUnavailable (shutdown)
    uint64_t rejected = 0;   // refused by submit()/run() (full or shutting down)
    uint64_t outstanding = 0;  // accepted, callback not yet returned (queue depth + running)
    uint64_t batches = 0;
    std::array<uint64_t, kHistogramBuckets> batch_size_histogram{};
  };

  explicit BatchVerifier(BatchVerifierOptions options = {});
  ~BatchVerifier();
  BatchVerifier(const BatchVerifier&) = delete;
  BatchVerifier& operator=(const BatchVerifier&) = delete;

  // Queues `job`; later calls `callback(Verdict)` exactly once on an arena thread.
  template <typename Callback>
    requires std::is_invocable_v<Callback&, Verdict>
  [[nodiscard]] Result<void> submit(VerifyJob job, Callback&& callback) {
    if (auto reserved = reserve(); !reserved) return reserved;
    return enqueue(new (std::nothrow)
                       VerifyNode<std::decay_t<Callback>>(std::move(job), std::forward<Callback>(callback)));
  }

  // Queues arbitrary CPU-bound work (token signing) on the same arena. `task()` returns Result<T>;
  // `callback(Result<T>)` is called exactly once; on shutdown before the task ran, the task is not run
  // and the callback gets kUnavailable.
  template <typename Task, typename Callback>
    requires std::is_invocable_v<Task&> && std::is_invocable_v<Callback&, std::invoke_result_t<Task&>>
  [[nodiscard]] Result<void> run(Task&& task, Callback&& callback) {
    static_assert(std::is_same_v<std::invoke_result_t<Task&>,
                                 Result<typename std::invoke_result_t<Task&>::value_type>>,
                  "run(): the task must return sigil::Result<T>");
    if (auto reserved = reserve(); !reserved) return reserved;
    return enqueue(new (std::nothrow) TaskNode<std::decay_t<Task>, std::decay_t<Callback>>(
        std::forward<Task>(task), std::forward<Callback>(callback)));
  }

  // False once shutdown has begun (readiness probes).
  [[nodiscard]] bool accepting() const noexcept;
  [[nodiscard]] int concurrency() const noexcept;
  [[nodiscard]] Stats stats() const noexcept;

  // Type-erased queue entry: one allocation per job, no vtable. `execute(node, action)` runs the job and
  // calls back (kRun), calls back with the cancelled outcome (kCancel), or only frees it (kDiscard: a
  // job refused after allocation); it always deletes the node. Public only for the templates below.
  enum class Action : uint8_t { kRun, kCancel, kDiscard };
  struct Node {
    using Execute = void (*)(Node*, Action) noexcept;
    explicit Node(Execute e) noexcept : execute(e) {}
    Node* next = nullptr;
    Execute execute;
  };

 private:
  template <typename Callback>
  struct VerifyNode final : Node {
    template <typename C>
    VerifyNode(VerifyJob j, C&& c) : Node(&run_node), job(std::move(j)), callback(std::forward<C>(c)) {}
    static void run_node(Node* n, Action action) noexcept {
      std::unique_ptr<VerifyNode> self(static_cast<VerifyNode*>(n));
      if (action == Action::kDiscard) return;
      const bool run = action == Action::kRun;
      self->callback(run ? (self->job.verify() ? Verdict::kValid : Verdict::kInvalid) : Verdict::kCancelled);
    }
    VerifyJob job;
    Callback callback;
  };

  template <typename Task, typename Callback>
  struct TaskNode final : Node {
    template <typename T, typename C>
    TaskNode(T&& t, C&& c) : Node(&run_node), task(std::forward<T>(t)), callback(std::forward<C>(c)) {}
    static void run_node(Node* n, Action action) noexcept {
      std::unique_ptr<TaskNode> self(static_cast<TaskNode*>(n));
      if (action == Action::kDiscard) return;
      using R = std::invoke_result_t<Task&>;
      if (action == Action::kRun) {
        self->callback(self->task());
      } else {
        self->callback(R(shutting_down_error()));
      }
    }
    Task task;
    Callback callback;
  };

  struct Impl;

  // Counts one job against capacity, or fails (and counts a rejection) when full or shutting down.
  [[nodiscard]] Result<void> reserve();
  // Takes ownership of a reserved node (null: allocation failed); on failure frees it without a callback
  // and releases the reservation.
  [[nodiscard]] Result<void> enqueue(Node* node);
  [[nodiscard]] static std::unexpected<Error> shutting_down_error();

  std::unique_ptr<Impl> impl_;
};

}  // namespace sigil::batch
