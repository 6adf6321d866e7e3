#include "engine/batch/batch_verifier.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/crypto/digest.h"
#include "engine/crypto/signing_key.h"

namespace sigil::batch {
namespace {

using crypto::CoseKey;
using crypto::PublicKey;
using crypto::SigningKey;
using namespace std::chrono_literals;

// Counts callbacks; wait() returns once `expected` have arrived (or fails the test after a minute).
class Done {
 public:
  void add() {
    std::lock_guard lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  [[nodiscard]] bool wait(std::size_t expected) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 60s, [&] { return count_ >= expected; });
  }
  [[nodiscard]] std::size_t count() {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t count_ = 0;
};

// What each job's callback saw: how many calls (must end at 1), the verdict, and whether it ran on the
// submitting thread.
struct Slot {
  std::atomic<int> calls{0};
  std::atomic<int> verdict{-1};
  std::atomic<bool> on_submitter{false};
};

Bytes message_for(std::size_t i) {
  Bytes m(48);
  for (std::size_t j = 0; j < m.size(); ++j) m[j] = static_cast<uint8_t>((i * 131 + j * 7) & 0xff);
  return m;
}

std::vector<SigningKey> p256_keys(std::size_t n) {
  std::vector<SigningKey> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto k = SigningKey::generate_p256();
    SIGIL_CHECK(k.has_value());
    keys.push_back(std::move(*k));
  }
  return keys;
}

PublicKey public_of(const SigningKey& sk) {
  auto pk = PublicKey::from_spki_der(sk.public_key().spki_der());
  SIGIL_CHECK(pk.has_value());
  return *pk;
}

// RSA-2048 key made with OpenSSL, signed RS256 (PKCS#1 v1.5, SHA-256).
struct RsaSigner {
  RsaSigner() : pkey(EVP_RSA_gen(2048), EVP_PKEY_free) {
    SIGIL_CHECK(pkey != nullptr);
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(pkey.get(), &der);
    SIGIL_CHECK(len > 0);
    Bytes spki(der, der + len);
    OPENSSL_free(der);
    auto pk = PublicKey::from_spki_der(spki);
    SIGIL_CHECK(pk.has_value());
    public_key = std::make_unique<PublicKey>(*pk);
  }
  Bytes sign(ByteView msg) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    SIGIL_CHECK(EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, pkey.get(), nullptr) == 1);
    std::size_t len = 0;
    SIGIL_CHECK(EVP_DigestSign(ctx.get(), nullptr, &len, msg.data(), msg.size()) == 1);
    Bytes sig(len);
    SIGIL_CHECK(EVP_DigestSign(ctx.get(), sig.data(), &len, msg.data(), msg.size()) == 1);
    sig.resize(len);
    return sig;
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey;
  std::unique_ptr<PublicKey> public_key;
};

// Ed25519 key made with libsodium, as a CoseKey (EdDSA) through its SubjectPublicKeyInfo.
struct Ed25519Signer {
  Ed25519Signer() {
    SIGIL_CHECK(sodium_init() >= 0);
    crypto_sign_keypair(pk, sk);
    Bytes spki = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    spki.insert(spki.end(), pk, pk + sizeof pk);
    auto k = CoseKey::from_spki(spki, crypto::cose_alg::kEdDSA);
    SIGIL_CHECK(k.has_value());
    cose = std::make_unique<CoseKey>(*k);
  }
  Bytes sign(ByteView msg) const {
    Bytes sig(crypto_sign_BYTES);
    crypto_sign_detached(sig.data(), nullptr, msg.data(), msg.size(), sk);
    return sig;
  }
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  std::unique_ptr<CoseKey> cose;
};

// One job of the mixed stream: the job and the verdict it must get.
struct Case {
  VerifyJob job;
  Verdict expected;
};

// 10,000 P-256 jobs over 200 keys (each signature under its own key, then under the neighbour's key),
// interleaved with RSA, Ed25519 (CoseKey) and prehashed-digest jobs, good and bad.
std::vector<Case> mixed_cases() {
  constexpr std::size_t kKeys = 200;
  constexpr std::size_t kSignatures = 5000;
  static const std::vector<SigningKey> keys = p256_keys(kKeys);
  static const RsaSigner rsa;
  static const Ed25519Signer ed;
  std::vector<PublicKey> publics;
  for (const auto& k : keys) publics.push_back(public_of(k));

  std::vector<Case> cases;
  cases.reserve(2 * kSignatures + 4 * (kSignatures / 25));
  for (std::size_t i = 0; i < kSignatures; ++i) {
    const std::size_t k = i % kKeys;
    const Bytes msg = message_for(i);
    auto sig = keys[k].sign_es256_der(msg);
    SIGIL_CHECK(sig.has_value());
    cases.push_back({VerifyJob(publics[k], msg, *sig), Verdict::kValid});
    cases.push_back({VerifyJob(publics[(k + 1) % kKeys], msg, *sig), Verdict::kInvalid});
    if (i % 25 == 0) {
      const Bytes rsa_sig = rsa.sign(msg);
      cases.push_back({VerifyJob(*rsa.public_key, msg, rsa_sig), Verdict::kValid});
      cases.push_back({VerifyJob(*rsa.public_key, message_for(i + 1), rsa_sig), Verdict::kInvalid});
      const Bytes ed_sig = ed.sign(msg);
      cases.push_back({VerifyJob(*ed.cose, msg, ed_sig), Verdict::kValid});
      Bytes bad_ed = ed_sig;
      bad_ed[5] ^= 0x01;
      cases.push_back({VerifyJob(*ed.cose, msg, bad_ed), Verdict::kInvalid});
      const auto d = crypto::sha256(msg);
      const Bytes digest(d.begin(), d.end());
      cases.push_back({VerifyJob::over_sha256_digest(publics[k], digest, *sig), Verdict::kValid});
      cases.push_back({VerifyJob::over_sha256_digest(publics[(k + 3) % kKeys], digest, *sig), Verdict::kInvalid});
    }
  }
  return cases;
}

// Submits every case from the calling thread and checks each callback: once, right verdict, never on
// the submitting thread.
void run_cases(BatchVerifier& verifier, std::vector<Case> cases) {
  const std::size_t n = cases.size();
  std::vector<Slot> slots(n);
  std::vector<Verdict> expected;
  expected.reserve(n);
  Done done;
  const auto me = std::this_thread::get_id();
  for (std::size_t i = 0; i < n; ++i) {
    expected.push_back(cases[i].expected);
    Slot* slot = &slots[i];
    auto accepted = verifier.submit(std::move(cases[i].job), [slot, me, &done](Verdict v) {
      slot->verdict.store(static_cast<int>(v));
      if (std::this_thread::get_id() == me) slot->on_submitter.store(true);
      slot->calls.fetch_add(1);
      done.add();
    });
    ASSERT_TRUE(accepted) << accepted.error().message;
  }
  ASSERT_TRUE(done.wait(n)) << "only " << done.count() << " of " << n << " callbacks";
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(slots[i].calls.load(), 1) << "job " << i;
    EXPECT_FALSE(slots[i].on_submitter.load()) << "job " << i;
    if (slots[i].verdict.load() != static_cast<int>(expected[i])) ++wrong;
  }
  EXPECT_EQ(wrong, 0u);
}

TEST(BatchVerifier, TenThousandP256JobsOver200KeysNeighbourKeysFailAndMixedAlgorithmsCorrect) {
  BatchVerifier verifier;
  std::vector<Case> cases = mixed_cases();
  const std::size_t n = cases.size();
  ASSERT_GE(n, 10000u);
  run_cases(verifier, std::move(cases));
  // Callbacks all returned, so counters are final once outstanding reaches 0.
  while (verifier.stats().outstanding != 0) std::this_thread::yield();
  const auto s = verifier.stats();
  EXPECT_EQ(s.submitted, n);
  EXPECT_EQ(s.completed, n);
  EXPECT_EQ(s.cancelled, 0u);
  EXPECT_EQ(s.rejected, 0u);
  uint64_t histogram_total = 0;
  for (uint64_t b : s.batch_size_histogram) histogram_total += b;
  EXPECT_EQ(histogram_total, s.batches);
  EXPECT_GE(s.batches, 1u);
  EXPECT_LE(s.batches, n);
}

// The OpenSSL 3.0 pitfall (CONVENTIONS.md) through the batch path: one arena thread interleaves keys A
// and B; A's signature must fail under B right after a verification under A, and B's must pass.
TEST(BatchVerifier, OneThreadInterleavingKeysNeverVerifiesUnderThePreviousKey) {
  BatchVerifier verifier(BatchVerifierOptions{.concurrency = 1});
  auto keys = p256_keys(2);
  const PublicKey a = public_of(keys[0]);
  const PublicKey b = public_of(keys[1]);
  std::vector<Case> cases;
  for (std::size_t i = 0; i < 200; ++i) {
    const Bytes msg = message_for(i);
    const Bytes sig_a = *keys[0].sign_es256_der(msg);
    const Bytes sig_b = *keys[1].sign_es256_der(msg);
    cases.push_back({VerifyJob(a, msg, sig_a), Verdict::kValid});
    cases.push_back({VerifyJob(b, msg, sig_a), Verdict::kInvalid});
    cases.push_back({VerifyJob(b, msg, sig_b), Verdict::kValid});
    cases.push_back({VerifyJob(a, msg, sig_b), Verdict::kInvalid});
  }
  // Same thread for all: concurrency 1 means only the dispatcher runs jobs.
  std::mutex mu;
  std::vector<std::thread::id> threads;
  Done done;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Verdict want = cases[i].expected;
    ASSERT_TRUE(verifier.submit(std::move(cases[i].job), [&, want, i](Verdict v) {
      EXPECT_EQ(v, want) << "job " << i;
      {
        std::lock_guard lock(mu);
        threads.push_back(std::this_thread::get_id());
      }
      done.add();
    }));
  }
  ASSERT_TRUE(done.wait(cases.size()));
  std::lock_guard lock(mu);
  for (const auto& t : threads) EXPECT_EQ(t, threads.front());
}

TEST(BatchVerifier, FourThreadsSubmitConcurrently) {
  constexpr std::size_t kThreads = 4;
  constexpr std::size_t kPerThread = 500;
  auto keys = p256_keys(8);
  std::vector<PublicKey> publics;
  for (const auto& k : keys) publics.push_back(public_of(k));
  std::vector<Bytes> sigs;
  for (std::size_t i = 0; i < kPerThread; ++i) sigs.push_back(*keys[i % keys.size()].sign_es256_der(message_for(i)));

  BatchVerifier verifier;
  std::vector<Slot> slots(kThreads * kPerThread);
  Done done;
  std::atomic<std::size_t> wrong{0};
  std::vector<std::thread> submitters;
  for (std::size_t t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      const auto me = std::this_thread::get_id();
      for (std::size_t i = 0; i < kPerThread; ++i) {
        const bool good = (i + t) % 2 == 0;
        const std::size_t k = i % keys.size();
        Slot* slot = &slots[t * kPerThread + i];
        VerifyJob job(publics[good ? k : (k + 1) % keys.size()], message_for(i), sigs[i]);
        auto ok = verifier.submit(std::move(job), [&, slot, good, me](Verdict v) {
          if (v != (good ? Verdict::kValid : Verdict::kInvalid)) wrong.fetch_add(1);
          if (std::this_thread::get_id() == me) slot->on_submitter.store(true);
          slot->calls.fetch_add(1);
          done.add();
        });
        SIGIL_CHECK(ok.has_value());
      }
      // Stay alive until every callback has run: a finished thread's id may be reused by a new TBB
      // worker, which would make the "not on the submitting thread" check meaningless.
      SIGIL_CHECK(done.wait(kThreads * kPerThread));
    });
  }
  for (auto& t : submitters) t.join();
  ASSERT_TRUE(done.wait(slots.size()));
  EXPECT_EQ(wrong.load(), 0u);
  for (const auto& s : slots) {
    EXPECT_EQ(s.calls.load(), 1);
    EXPECT_FALSE(s.on_submitter.load());
  }
  while (verifier.stats().outstanding != 0) std::this_thread::yield();
  EXPECT_EQ(verifier.stats().submitted, slots.size());
  EXPECT_EQ(verifier.stats().completed, slots.size());
}

// Holds the (single) arena thread until released, so that jobs stay queued.
struct Gate {
  std::promise<void> started;
  std::promise<void> release;
};

Result<void> block_on(Gate& gate) {
  gate.started.set_value();
  gate.release.get_future().wait();
  return {};
}

TEST(BatchVerifier, FullQueueRejectsWithUnavailableAndNeverCallsBackTheRejectedJob) {
  auto keys = p256_keys(1);
  const PublicKey pk = public_of(keys[0]);
  const Bytes msg = message_for(1);
  const Bytes sig = *keys[0].sign_es256_der(msg);

  BatchVerifier verifier(BatchVerifierOptions{.concurrency = 1, .capacity = 8});
  Gate gate;
  auto started = gate.started.get_future();
  Done done;
  ASSERT_TRUE(verifier.run([&] { return block_on(gate); }, [&](Result<void> r) {
    EXPECT_TRUE(r.has_value());
    done.add();
  }));
  started.wait();  // the blocker is running and holds one unit of capacity

  std::atomic<int> rejected_callbacks{0};
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(verifier.submit(VerifyJob(pk, msg, sig), [&](Verdict v) {
      EXPECT_EQ(v, Verdict::kValid);
      done.add();
    }));
  }
  auto full = verifier.submit(VerifyJob(pk, msg, sig), [&](Verdict) { rejected_callbacks.fetch_add(1); });
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(full.error().status(), 503);
  EXPECT_EQ(full.error().message, "Verification queue full");
  auto full_run = verifier.run([] { return Result<int>(1); }, [&](Result<int>) { rejected_callbacks.fetch_add(1); });
  ASSERT_FALSE(full_run.has_value());
  EXPECT_EQ(full_run.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(verifier.stats().rejected, 2u);
  EXPECT_EQ(verifier.stats().outstanding, 8u);

  gate.release.set_value();
  ASSERT_TRUE(done.wait(8));
  while (verifier.stats().outstanding != 0) std::this_thread::yield();
  // Capacity is back: a new job is accepted and runs.
  ASSERT_TRUE(verifier.submit(VerifyJob(pk, msg, sig), [&](Verdict v) {
    EXPECT_EQ(v, Verdict::kValid);
    done.add();
  }));
  ASSERT_TRUE(done.wait(9));
  EXPECT_EQ(rejected_callbacks.load(), 0);
  EXPECT_EQ(verifier.stats().submitted, 9u);
}

TEST(BatchVerifier, DestructionCancelsPendingJobsAndCallsEachBackOnce) {
  auto keys = p256_keys(1);
  const PublicKey pk = public_of(keys[0]);
  const Bytes msg = message_for(2);
  const Bytes sig = *keys[0].sign_es256_der(msg);

  constexpr int kPending = 100;
  std::vector<Slot> slots(kPending);
  std::atomic<int> task_ran{0};
  std::atomic<int> task_cancelled{0};
  std::atomic<int> blocker_done{0};
  {
    auto verifier = std::make_unique<BatchVerifier>(BatchVerifierOptions{.concurrency = 1});
    std::promise<void> started;
    auto started_future = started.get_future();
    // The blocker runs until the destructor has begun (accepting() turns false), so that every job
    // behind it is still queued when shutdown starts.
    BatchVerifier* raw = verifier.get();
    ASSERT_TRUE(raw->run(
        [&] {
          started.set_value();
          while (raw->accepting()) std::this_thread::sleep_for(1ms);
          return Result<void>();
        },
        [&](Result<void> r) {
          EXPECT_TRUE(r.has_value());
          blocker_done.fetch_add(1);
        }));
    started_future.wait();
    for (int i = 0; i < kPending; ++i) {
      Slot* slot = &slots[i];
      ASSERT_TRUE(raw->submit(VerifyJob(pk, msg, sig), [slot](Verdict v) {
        slot->verdict.store(static_cast<int>(v));
        slot->calls.fetch_add(1);
      }));
    }
    ASSERT_TRUE(raw->run(
        [&] {
          task_ran.fetch_add(1);
          return Result<int>(7);
        },
        [&](Result<int> r) {
          ASSERT_FALSE(r.has_value());
          EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
          EXPECT_EQ(r.error().message, "Verifier shutting down");
          task_cancelled.fetch_add(1);
        }));
    verifier.reset();  // returns only after every callback
  }
  EXPECT_EQ(blocker_done.load(), 1);
  EXPECT_EQ(task_ran.load(), 0);
  EXPECT_EQ(task_cancelled.load(), 1);
  for (const auto& s : slots) {
    EXPECT_EQ(s.calls.load(), 1);
    EXPECT_EQ(s.verdict.load(), static_cast<int>(Verdict::kCancelled));
  }
}

// Two arena threads: the dispatcher hands a multi-job batch to a TBB worker (a helper) and takes the next
// batch without waiting for it. Destroying the verifier while helpers still work through a batch must wait
// for them: every job is called back exactly once (run or cancelled) and nothing runs after the destructor.
TEST(BatchVerifier, DestructionWaitsForHelpersStillWorkingThroughABatch) {
  constexpr int kJobs = 64;
  std::vector<std::atomic<int>> calls(kJobs);
  std::atomic<int> ran{0};
  std::atomic<int> cancelled{0};
  std::atomic<bool> destroyed{false};
  std::atomic<int> after_destruction{0};
  std::atomic<int> threads_seen{0};
  std::mutex mu;
  std::vector<std::thread::id> ids;
  {
    BatchVerifier verifier(BatchVerifierOptions{.concurrency = 2});
    Gate gate;
    auto started = gate.started.get_future();
    ASSERT_TRUE(verifier.run([&] { return block_on(gate); }, [](Result<void>) {}));
    started.wait();
    for (int i = 0; i < kJobs; ++i) {
      ASSERT_TRUE(verifier.run(
          [&] {
            std::this_thread::sleep_for(2ms);
            {
              std::lock_guard lock(mu);
              if (std::find(ids.begin(), ids.end(), std::this_thread::get_id()) == ids.end()) {
                ids.push_back(std::this_thread::get_id());
                threads_seen.fetch_add(1);
              }
            }
            return Result<void>();
          },
          [&, i](Result<void> r) {
            if (destroyed.load()) after_destruction.fetch_add(1);
            (r ? ran : cancelled).fetch_add(1);
            calls[i].fetch_add(1);
          }));
    }
    gate.release.set_value();  // all 64 queued: the next batch has them all, shared with a helper
    std::this_thread::sleep_for(10ms);
  }
  destroyed.store(true);
  EXPECT_EQ(after_destruction.load(), 0);
  EXPECT_EQ(ran.load() + cancelled.load(), kJobs);
  for (int i = 0; i < kJobs; ++i) EXPECT_EQ(calls[i].load(), 1) << "job " << i;
  EXPECT_GE(ran.load(), 1);
  EXPECT_LE(threads_seen.load(), 2);  // never more than `concurrency` arena threads
}

TEST(BatchVerifier, SubmitFromACallbackDuringShutdownIsRejected) {
  std::atomic<int> second_callbacks{0};
  std::atomic<bool> saw_rejection{false};
  {
    BatchVerifier verifier(BatchVerifierOptions{.concurrency = 1});
    std::promise<void> started;
    auto started_future = started.get_future();
    BatchVerifier* raw = &verifier;
    ASSERT_TRUE(verifier.run(
        [&] {
          started.set_value();
          while (raw->accepting()) std::this_thread::sleep_for(1ms);
          return Result<void>();
        },
        [&](Result<void>) {
          auto again = raw->run([] { return Result<void>(); }, [&](Result<void>) { second_callbacks.fetch_add(1); });
          saw_rejection.store(!again.has_value() && again.error().code == ErrorCode::kUnavailable);
        }));
    started_future.wait();
  }
  EXPECT_TRUE(saw_rejection.load());
  EXPECT_EQ(second_callbacks.load(), 0);
}

TEST(BatchVerifier, RunSignsTokensOnTheArenaAndCallbacksMaySubmitMore) {
  auto keys = p256_keys(1);
  const SigningKey& sk = keys[0];
  const PublicKey pk = public_of(sk);
  BatchVerifier verifier(BatchVerifierOptions{.concurrency = 2});
  constexpr std::size_t kTokens = 200;
  Done done;
  std::atomic<int> verified{0};
  std::atomic<int> on_submitter{0};
  const auto me = std::this_thread::get_id();
  for (std::size_t i = 0; i < kTokens; ++i) {
    Bytes msg = message_for(i);
    ASSERT_TRUE(verifier.run([&sk, msg] { return sk.sign_es256_der(msg); },
                             [&, msg](Result<Bytes> sig) mutable {
                               if (std::this_thread::get_id() == me) on_submitter.fetch_add(1);
                               ASSERT_TRUE(sig.has_value());
                               // Chain: verify the fresh signature on the same verifier, from the callback.
                               auto again = verifier.submit(VerifyJob(pk, std::move(msg), std::move(*sig)),
                                                            [&](Verdict v) {
                                                              if (v == Verdict::kValid) verified.fetch_add(1);
                                                              done.add();
                                                            });
                               ASSERT_TRUE(again.has_value());
                             }));
  }
  ASSERT_TRUE(done.wait(kTokens));
  EXPECT_EQ(verified.load(), static_cast<int>(kTokens));
  EXPECT_EQ(on_submitter.load(), 0);

  // A task's error reaches its callback unchanged.
  std::promise<Error> err;
  ASSERT_TRUE(verifier.run([] { return Result<int>(make_error(ErrorCode::kInternal, "boom")); },
                           [&](Result<int> r) { err.set_value(r.error()); }));
  const Error e = err.get_future().get();
  EXPECT_EQ(e.code, ErrorCode::kInternal);
  EXPECT_EQ(e.message, "boom");
}

TEST(BatchVerifier, MalformedSignaturesAndEmptyInputsAreInvalidNotFatal) {
  auto keys = p256_keys(1);
  const PublicKey pk = public_of(keys[0]);
  static const Ed25519Signer ed;
  std::vector<Case> cases;
  cases.push_back({VerifyJob(pk, {}, {}), Verdict::kInvalid});
  cases.push_back({VerifyJob(pk, message_for(1), Bytes(72, 0xff)), Verdict::kInvalid});
  cases.push_back({VerifyJob(pk, message_for(1), Bytes{0x30, 0x00}), Verdict::kInvalid});
  cases.push_back({VerifyJob::over_sha256_digest(pk, Bytes(5, 1), *keys[0].sign_es256_der(message_for(1))),
                   Verdict::kInvalid});
  cases.push_back({VerifyJob(*ed.cose, message_for(1), Bytes(63, 0)), Verdict::kInvalid});
  cases.push_back({VerifyJob(*ed.cose, {}, ed.sign({})), Verdict::kValid});
  BatchVerifier verifier(BatchVerifierOptions{.concurrency = 2});
  run_cases(verifier, std::move(cases));
}

TEST(BatchVerifier, BatchesNeverExceedMaxBatchAndHistogramCountsEveryBatch) {
  auto keys = p256_keys(1);
  const PublicKey pk = public_of(keys[0]);
  const Bytes msg = message_for(3);
  const Bytes sig = *keys[0].sign_es256_der(msg);
  BatchVerifier verifier(BatchVerifierOptions{.concurrency = 1, .max_batch = 4});
  Gate gate;
  auto started = gate.started.get_future();
  Done done;
  ASSERT_TRUE(verifier.run([&] { return block_on(gate); }, [&](Result<void>) { done.add(); }));
  started.wait();
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(verifier.submit(VerifyJob(pk, msg, sig), [&](Verdict) { done.add(); }));
  }
  gate.release.set_value();
  ASSERT_TRUE(done.wait(41));
  const auto s = verifier.stats();
  // 40 jobs queued behind the blocker, at most 4 per batch: the blocker's batch plus exactly 10 more.
  EXPECT_EQ(s.batches, 11u);
  EXPECT_EQ(s.batch_size_histogram[0], 1u);   // the blocker alone
  EXPECT_EQ(s.batch_size_histogram[2], 10u);  // [4, 8)
}

}  // namespace
}  // namespace sigil::batch

#if defined(__SANITIZE_THREAD__)
// TSan builds: Debian's libtbb is not instrumented; load the TBB-only suppressions (engine/batch/tsan.supp
// explains each line) and keep enough history to show both stacks of a report. TSAN_OPTIONS adds to these.
extern "C" const char* __tsan_default_options() {
  return "suppressions=" SIGIL_SOURCE_DIR "/engine/batch/tsan.supp history_size=7";
}
#endif
