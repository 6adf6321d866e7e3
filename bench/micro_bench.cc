// sigil_bench: micro-benchmarks of the engine next to the raw crypto limit measured in the same run.
//
// A benchmark measures, a test asserts: nothing here fails on a timing. Every engine figure that has a raw
// counterpart gets `ratio_vs_raw` = engine rate / fastest raw rate of its group (same thread count, same
// aggregate), added by RatioReporter to the console line (as a label) and to the JSON output (as a
// counter). Names: "<group>/raw:<how>" is a baseline, "<group>/engine:<what>" an engine figure;
// assertion/, scaling/ and batch/ figures compare with the ES256 group.
//
// Extra flags (before the Google Benchmark ones):
//   --dump-assertions=FILE [N]  write N (default 1000) assertion vectors for bench/peers and exit
//   --assertions=FILE           verify the assertions of FILE instead of fresh ones
//   --with-memory               also register challenge/memory:10M_pending (about 1 GiB resident)
//   --scaling-max=N             largest credential count of scaling/ (default 1000000)
#include <benchmark/benchmark.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <simdjson.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "api/auth/jwt.h"
#include "bench/fixtures.h"
#include "engine/base/clock.h"
#include "engine/cbor/cbor.h"
#include "engine/challenge/challenge_store.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"
#include "engine/crypto/signing_key.h"
#include "engine/webauthn/webauthn.h"

#if defined(SIGIL_BENCH_HAVE_BATCH)
#include "bench/batch_bench.h"
#endif

namespace sigil::bench {
namespace {

constexpr size_t kKeys = 1000;   // cached keys per algorithm; benchmarks rotate through them
constexpr size_t kRsaKeys = 16;  // RSA key generation is slow; RSA verify cost does not depend on caching

// Each benchmark thread t of n visits items t, t+n, t+2n, ...: disjoint, so per-item state (a pending
// challenge) is never shared.
template <class F>
void rotate(benchmark::State& state, size_t count, F&& one) {
  const auto step = static_cast<size_t>(state.threads());
  size_t i = static_cast<size_t>(state.thread_index()) % count;
  for (auto _ : state) {
    if (!one(i)) {
      state.SkipWithError("operation failed: the fixture or the engine is broken");
      break;
    }
    i += step;
    if (i >= count) i -= count;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

size_t key_count(Alg alg) { return alg == Alg::kRS256 || alg == Alg::kPS256 ? kRsaKeys : kKeys; }

// ---- raw baselines --------------------------------------------------------------------------------------

// EVP_DigestVerify with a fresh EVP_MD_CTX per call on a cached EVP_PKEY (hashes the message).
bool digest_verify(Alg alg, const SignedItem& it) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = ctx != nullptr && EVP_DigestVerifyInit(ctx, &pctx, md_for(alg), nullptr, it.pkey.get()) == 1;
  if (ok && alg == Alg::kRS256) ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
  if (ok && alg == Alg::kPS256) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
  }
  ok = ok && EVP_DigestVerify(ctx, it.signature.data(), it.signature.size(), it.message.data(),
                              it.message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) ERR_clear_error();
  return ok;
}

void bm_raw_digest_verify(benchmark::State& state, Alg alg) {
  const auto& items = signed_items(alg, key_count(alg));
  rotate(state, items.size(), [&](size_t i) { return digest_verify(alg, items[i]); });
}

// EVP_PKEY_verify on an EVP_PKEY_CTX initialised once per key (per thread: a context is not shared
// between threads), over the precomputed digest. One context per key, so never the re-init pitfall.
void bm_raw_pkey_verify(benchmark::State& state, Alg alg) {
  const auto& items = signed_items(alg, key_count(alg));
  std::vector<EVP_PKEY_CTX*> ctxs(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    EVP_PKEY_CTX* c = EVP_PKEY_CTX_new_from_pkey(nullptr, items[i].pkey.get(), nullptr);
    bool ok = c != nullptr && EVP_PKEY_verify_init(c) == 1;
    if (ok && alg == Alg::kRS256) ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1;
    if (ok && alg == Alg::kPS256) {
      ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(c, md_for(alg)) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) == 1;
    }
    ok = ok && EVP_PKEY_CTX_set_signature_md(c, md_for(alg)) == 1;
    if (!ok) {
      state.SkipWithError("EVP_PKEY_CTX setup failed");
      return;
    }
    ctxs[i] = c;
  }
  rotate(state, items.size(), [&](size_t i) {
    const SignedItem& it = items[i];
    return EVP_PKEY_verify(ctxs[i], it.signature.data(), it.signature.size(), it.digest.data(),
                           it.digest.size()) == 1;
  });
  for (EVP_PKEY_CTX* c : ctxs) EVP_PKEY_CTX_free(c);
}

// ECDSA_do_verify on a cached legacy EC_KEY with the signature parsed and the digest computed beforehand:
// the lowest-overhead OpenSSL 3.0 entry into the P-256/P-384 verify maths (no provider dispatch).
// The EC_KEY API is deprecated in OpenSSL 3.0; it is used here only as the baseline the issue asks for.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
struct LegacyEc {
  std::vector<EC_KEY*> keys;
  std::vector<ECDSA_SIG*> sigs;
};

const LegacyEc& legacy_ec(Alg alg) {
  static std::mutex mu;
  static std::map<Alg, LegacyEc> cache;  // lives until exit
  std::lock_guard lock(mu);
  LegacyEc& out = cache[alg];
  if (out.keys.empty()) {
    for (const SignedItem& it : signed_items(alg, kKeys)) {
      out.keys.push_back(EVP_PKEY_get1_EC_KEY(it.pkey.get()));
      const unsigned char* p = it.signature.data();
      out.sigs.push_back(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(it.signature.size())));
    }
  }
  return out;
}

void bm_raw_ecdsa_do_verify(benchmark::State& state, Alg alg) {
  const auto& items = signed_items(alg, kKeys);
  const LegacyEc& ec = legacy_ec(alg);
  rotate(state, items.size(), [&](size_t i) {
    return ECDSA_do_verify(items[i].digest.data(), static_cast<int>(items[i].digest.size()), ec.sigs[i],
                           ec.keys[i]) == 1;
  });
}
#pragma GCC diagnostic pop

void bm_raw_sodium_ed25519(benchmark::State& state) {
  const auto& items = signed_items(Alg::kEdDSA, kKeys);
  rotate(state, items.size(), [&](size_t i) {
    const SignedItem& it = items[i];
    return crypto_sign_verify_detached(it.signature.data(), it.message.data(), it.message.size(),
                                       it.raw_public.data()) == 0;
  });
}

// ---- engine verify ---------------------------------------------------------------------------------------

void bm_engine_cose_verify(benchmark::State& state, Alg alg) {
  const auto& items = signed_items(alg, key_count(alg));
  rotate(state, items.size(), [&](size_t i) { return items[i].cose->verify(items[i].message, items[i].signature); });
}

void bm_engine_public_key_verify(benchmark::State& state) {
  const auto& items = signed_items(Alg::kES256, kKeys);
  static const std::vector<crypto::PublicKey> keys = [&] {
    std::vector<crypto::PublicKey> out;
    for (const SignedItem& it : items) {
      auto k = crypto::PublicKey::from_spki_der(it.cose->spki_der());
      if (!k) std::abort();
      out.push_back(*std::move(k));
    }
    return out;
  }();
  rotate(state, items.size(), [&](size_t i) { return keys[i].verify(items[i].message, items[i].signature); });
}

// ---- key parsing (registration, loading credentials from the store) ------------------------------------

// The uncompressed point of each ES256 fixture key.
const std::vector<Bytes>& p256_points() {
  static const std::vector<Bytes> points = [] {
    std::vector<Bytes> out;
    for (const SignedItem& it : signed_items(Alg::kES256, kKeys)) {
      Bytes p(65);
      size_t len = 0;
      if (EVP_PKEY_get_octet_string_param(it.pkey.get(), OSSL_PKEY_PARAM_PUB_KEY, p.data(), p.size(), &len) != 1) {
        std::abort();
      }
      out.push_back(std::move(p));
    }
    return out;
  }();
  return points;
}

// EVP_PKEY_fromdata of a P-256 point, then the full public check (which for EC includes n*Q = O, a scalar
// multiplication) or the quick one (point on the curve: enough for a prime-order curve, cofactor 1).
void bm_raw_key_import(benchmark::State& state, bool full_check) {
  const auto& points = p256_points();
  rotate(state, points.size(), [&](size_t i) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("P-256"), 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(points[i].data()), 65),
        OSSL_PARAM_construct_end()};
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    EVP_PKEY* pkey = nullptr;
    bool ok = ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
              EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (ok) {
      EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
      ok = check != nullptr && (full_check ? EVP_PKEY_public_check(check) : EVP_PKEY_public_check_quick(check)) == 1;
      EVP_PKEY_CTX_free(check);
    }
    EVP_PKEY_free(pkey);
    return ok;
  });
}

void bm_engine_cose_decode(benchmark::State& state) {
  const auto& items = signed_items(Alg::kES256, kKeys);
  rotate(state, items.size(), [&](size_t i) {
    auto k = crypto::CoseKey::decode(items[i].cose->cose_bytes());
    benchmark::DoNotOptimize(k);
    return k.has_value();
  });
}

// ---- the in-process assertion path ----------------------------------------------------------------------

webauthn::AssertionInput assertion_input(const AssertionVector& v) {
  webauthn::AssertionInput in;
  in.credential_id = v.credential_id;
  in.client_data_json = v.client_data_json;
  in.authenticator_data = v.authenticator_data;
  in.signature = v.signature;
  in.user_handle = v.user_handle;
  in.expected_challenge = v.challenge;
  in.rp = &relying_party();
  in.user_verification = webauthn::UserVerification::kRequired;
  in.credential = &v.stored;
  return in;
}

// verify_assertion: parse clientDataJSON + authenticatorData, every §7.2 check, the signature, with a stored
// CoseKey.
void bm_assertion_verify(benchmark::State& state) {
  const auto& vs = assertion_vectors();
  rotate(state, vs.size(), [&](size_t i) { return webauthn::verify_assertion(assertion_input(vs[i])).has_value(); });
}

// The signature part of verify_assertion alone: CoseKey::verify over authenticatorData || SHA-256(clientData),
// prepared beforehand, with the assertion vectors' keys. verify_assertion minus this is the WebAuthn work.
void bm_assertion_signature_only(benchmark::State& state) {
  const auto& vs = assertion_vectors();
  static const std::vector<Bytes> signed_data = [&] {
    std::vector<Bytes> out;
    for (const AssertionVector& v : vs) {
      Bytes d = v.authenticator_data;
      const crypto::Sha256Digest h = crypto::sha256(v.client_data_json);
      d.insert(d.end(), h.begin(), h.end());
      out.push_back(std::move(d));
    }
    return out;
  }();
  rotate(state, vs.size(), [&](size_t i) { return vs[i].key->verify(signed_data[i], vs[i].signature); });
}

using CredentialIndex = std::unordered_map<std::string, const AssertionVector*>;
const CredentialIndex& credential_index() {
  static const CredentialIndex index = [] {
    CredentialIndex m;
    for (const AssertionVector& v : assertion_vectors()) m.emplace(std::string(as_chars(v.credential_id)), &v);
    return m;
  }();
  return index;
}

// What a verify request costs in process: the challenge (inserted, as /options did, then consumed), the
// credential looked up by id, then verify_assertion.
void bm_assertion_with_challenge(benchmark::State& state) {
  const auto& vs = assertion_vectors();
  const CredentialIndex& index = credential_index();
  static SystemClock clock;
  static challenge::ChallengeStore store(clock, {.capacity = 1 << 20});
  rotate(state, vs.size(), [&](size_t i) {
    const AssertionVector& v = vs[i];
    challenge::Challenge c{};
    std::copy(v.challenge.begin(), v.challenge.end(), c.begin());
    if (!store.insert(c, "app\nuser", 60'000)) return false;
    auto ctx = store.consume(v.challenge);
    if (!ctx) return false;
    auto it = index.find(std::string(as_chars(v.credential_id)));
    if (it == index.end()) return false;
    webauthn::AssertionInput in = assertion_input(*it->second);
    return webauthn::verify_assertion(in).has_value();
  });
}

// From the browser's toJSON() text: JSON parse (one simdjson parser per thread), base64url decoding of the
// five fields, credential lookup by rawId, verify_assertion. This is the input @simplewebauthn/server gets
// (it receives the object already parsed), so it is the figure the peer comparison uses.
bool verify_from_json(simdjson::dom::parser& parser, const AssertionVector& v, const CredentialIndex& index) {
  simdjson::dom::element doc;
  if (parser.parse(v.response_json).get(doc) != simdjson::SUCCESS) return false;
  std::string_view raw_id, cdj, ad, sig, uh;
  simdjson::dom::element r;
  if (doc["rawId"].get_string().get(raw_id) || doc["response"].get(r) ||
      r["clientDataJSON"].get_string().get(cdj) || r["authenticatorData"].get_string().get(ad) ||
      r["signature"].get_string().get(sig)) {
    return false;
  }
  if (r["userHandle"].get_string().get(uh)) uh = {};
  auto id_b = crypto::base64url_decode(raw_id);
  auto cdj_b = crypto::base64url_decode(cdj);
  auto ad_b = crypto::base64url_decode(ad);
  auto sig_b = crypto::base64url_decode(sig);
  auto uh_b = crypto::base64url_decode(uh);
  if (!id_b || !cdj_b || !ad_b || !sig_b || !uh_b) return false;
  auto it = index.find(std::string(as_chars(*id_b)));
  if (it == index.end()) return false;
  webauthn::AssertionInput in;
  in.credential_id = *id_b;
  in.client_data_json = *cdj_b;
  in.authenticator_data = *ad_b;
  in.signature = *sig_b;
  in.user_handle = *uh_b;
  in.expected_challenge = v.challenge;  // the server's pending challenge for this ceremony
  in.rp = &relying_party();
  in.user_verification = webauthn::UserVerification::kRequired;
  in.credential = &it->second->stored;
  return webauthn::verify_assertion(in).has_value();
}

void bm_assertion_from_json(benchmark::State& state) {
  const auto& vs = assertion_vectors();
  const CredentialIndex& index = credential_index();
  simdjson::dom::parser parser;
  rotate(state, vs.size(), [&](size_t i) { return verify_from_json(parser, vs[i], index); });
}

// ---- parsing ---------------------------------------------------------------------------------------------

void bm_cbor_attestation_object(benchmark::State& state) {
  const auto& vs = assertion_vectors();
  int64_t bytes = 0;
  rotate(state, vs.size(), [&](size_t i) {
    auto v = cbor::decode(vs[i].attestation_object);
    benchmark::DoNotOptimize(v);
    bytes += static_cast<int64_t>(vs[i].attestation_object.size());
    return v.has_value();
  });
  state.SetBytesProcessed(bytes);
}

void bm_parse_client_data(benchmark::State& state) {
  const auto& vs = assertion_vectors();
  rotate(state, vs.size(), [&](size_t i) {
    auto v = webauthn::parse_client_data(vs[i].client_data_json);
    benchmark::DoNotOptimize(v);
    return v.has_value();
  });
}

void bm_parse_authenticator_data(benchmark::State& state, bool registration) {
  const auto& vs = assertion_vectors();
  static const std::vector<Bytes> reg_auth_data = [&] {
    std::vector<Bytes> out;
    for (const AssertionVector& v : vs) {
      auto att = cbor::decode(v.attestation_object);
      const cbor::Value* ad = att ? att->find("authData") : nullptr;
      if (ad == nullptr) std::abort();
      out.push_back(ad->bytes());
    }
    return out;
  }();
  rotate(state, vs.size(), [&](size_t i) {
    auto v = webauthn::parse_authenticator_data(registration ? ByteView(reg_auth_data[i])
                                                             : ByteView(vs[i].authenticator_data));
    benchmark::DoNotOptimize(v);
    return v.has_value();
  });
}

// ---- JWT ES256 signing ----------------------------------------------------------------------------------

std::string jwt_payload() {
  return R"({"iss":"https://example.org","sub":"user-4f1c2a","aud":"app-93b1","exp":1800000000,)"
         R"("iat":1799996400,"jti":"6d8f0a4c1b2e4e7a9c3d5f7a1b3c5d7e","scope":"openid profile"})";
}

const auth::JwtKey& jwt_key() {
  static const auth::JwtKey key = [] {
    auto k = crypto::SigningKey::generate_p256();
    if (!k) std::abort();
    return auth::JwtKey{"bench-kid", *std::move(k), true};
  }();
  return key;
}

// Raw: EVP_DigestSign (ECDSA P-256, SHA-256) with a fresh EVP_MD_CTX on a cached key, over a message the
// size of a JWT signing input.
void bm_raw_digest_sign(benchmark::State& state) {
  static const PkeyPtr key(EVP_EC_gen("P-256"));
  const std::string input = crypto::base64url_encode(as_bytes(R"({"alg":"ES256","typ":"at+jwt","kid":"bench-kid"})")) +
                            "." + crypto::base64url_encode(as_bytes(jwt_payload()));
  uint8_t sig[80];
  for (auto _ : state) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = sizeof sig;
    const bool ok = ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, md_for(Alg::kES256), nullptr, key.get()) == 1 &&
                    EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const uint8_t*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
      state.SkipWithError("EVP_DigestSign failed");
      break;
    }
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Raw: EVP_PKEY_sign on one EVP_PKEY_CTX initialised once for a cached key (the context SigningKey's pool
// keeps per key), over a digest computed before the loop: the ECDSA P-256 signature and nothing else.
void bm_raw_pkey_sign_preinit(benchmark::State& state) {
  static const PkeyPtr key(EVP_EC_gen("P-256"));
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr);
  if (ctx == nullptr || EVP_PKEY_sign_init(ctx) != 1 || EVP_PKEY_CTX_set_signature_md(ctx, md_for(Alg::kES256)) != 1) {
    EVP_PKEY_CTX_free(ctx);
    state.SkipWithError("EVP_PKEY_sign_init failed");
    return;
  }
  const std::string input = crypto::base64url_encode(as_bytes(R"({"alg":"ES256","typ":"at+jwt","kid":"bench-kid"})")) +
                            "." + crypto::base64url_encode(as_bytes(jwt_payload()));
  const auto digest = crypto::sha256(as_bytes(input));
  uint8_t sig[80];
  for (auto _ : state) {
    size_t len = sizeof sig;
    if (EVP_PKEY_sign(ctx, sig, &len, digest.data(), digest.size()) != 1) {
      state.SkipWithError("EVP_PKEY_sign failed");
      break;
    }
    benchmark::DoNotOptimize(sig);
  }
  EVP_PKEY_CTX_free(ctx);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void bm_engine_sign_jwt(benchmark::State& state) {
  const auth::JwtKey& key = jwt_key();
  const std::string payload = jwt_payload();
  for (auto _ : state) {
    auto token = auth::sign_jwt(key, "at+jwt", payload);
    if (!token) {
      state.SkipWithError("sign_jwt failed");
      break;
    }
    benchmark::DoNotOptimize(token);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// ---- challenge store -------------------------------------------------------------------------------------

challenge::ChallengeStore& shared_store() {
  static SystemClock clock;
  static challenge::ChallengeStore store(clock, {.capacity = 1 << 20});
  return store;
}

// issue (CSPRNG draw, shard insert) then consume (constant-time lookup, erase) of the same challenge.
// Context: state.range(0) bytes (8 fits the small-string buffer; 64 is a typical mobile context).
void bm_challenge_issue_consume(benchmark::State& state) {
  challenge::ChallengeStore& store = shared_store();
  const std::string context(static_cast<size_t>(state.range(0)), 'c');
  for (auto _ : state) {
    auto c = store.issue(context, 60'000);
    if (!c || !store.consume(*c)) {
      state.SkipWithError("issue/consume failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Where the issue time goes: one 32-byte CSPRNG draw (libsodium randombytes_buf).
void bm_challenge_random_fill(benchmark::State& state) {
  challenge::Challenge c{};
  for (auto _ : state) {
    crypto::random_fill(c);
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// What a buffered generator would cost: 32 bytes served from a 4 KiB block drawn from the same CSPRNG
// (one system call per 128 challenges instead of one per challenge).
void bm_challenge_buffered_fill(benchmark::State& state) {
  std::array<uint8_t, 4096> block{};
  size_t used = block.size();
  challenge::Challenge c{};
  for (auto _ : state) {
    if (used == block.size()) {
      crypto::random_fill(block);
      used = 0;
    }
    std::memcpy(c.data(), block.data() + used, c.size());
    used += c.size();
    benchmark::DoNotOptimize(c);
  }
  crypto::wipe(block);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// The alternative: OpenSSL's per-thread DRBG (seeded from the OS, no system call per draw).
void bm_challenge_rand_bytes(benchmark::State& state) {
  challenge::Challenge c{};
  for (auto _ : state) {
    if (RAND_bytes(c.data(), static_cast<int>(c.size())) != 1) {
      state.SkipWithError("RAND_bytes failed");
      break;
    }
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// 10M pending challenges: resident memory before and after issuing them (8-byte contexts).
void bm_challenge_memory(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    ManualClock clock;
    const size_t before = resident_bytes();
    auto store = std::make_unique<challenge::ChallengeStore>(clock, challenge::ChallengeStore::Options{count});
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < count; ++i) {
      if (!store->issue("ctx-0001", 300'000)) {
        state.SkipWithError("issue failed before the store was full");
        return;
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const size_t after = resident_bytes();
    const double delta = static_cast<double>(after - before);
    state.counters["pending"] = static_cast<double>(store->size());
    state.counters["resident_MiB"] = delta / (1024.0 * 1024.0);
    state.counters["bytes_per_challenge"] = delta / static_cast<double>(count);
    state.counters["issue_per_s_filling"] = static_cast<double>(count) / secs;
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
}

// ---- credential-count scaling ----------------------------------------------------------------------------

// N credentials, each with its own parsed CoseKey (its own EVP_PKEY), in an unordered_map keyed by a 16-byte
// credential id. The keys repeat the 1000 fixture keys' values (parsing 1M distinct fresh keys would not
// change the lookup or the verify; generating them would take minutes).
struct Scaling {
  size_t n = 0;
  struct Cred {
    std::shared_ptr<const crypto::CoseKey> key;
    uint32_t item = 0;
  };
  std::unordered_map<std::string, Cred> creds;
  std::vector<std::string> probe_ids;  // random existing ids, visited in order
  double bytes_per_credential = 0;
  double build_s = 0;
};

std::mutex scaling_mu;
std::unique_ptr<Scaling> scaling_state;

void release_scaling() {
  std::lock_guard lock(scaling_mu);
  scaling_state.reset();
}

const Scaling& scaling_fixture(size_t n) {
  std::lock_guard lock(scaling_mu);
  if (scaling_state && scaling_state->n == n) return *scaling_state;
  scaling_state.reset();
  const auto& items = signed_items(Alg::kES256, kKeys);
  const size_t before = resident_bytes();
  const auto t0 = std::chrono::steady_clock::now();
  auto s = std::make_unique<Scaling>();
  s->n = n;
  // Parse on all cores: decoding validates each point, which dominates the build.
  std::vector<std::shared_ptr<const crypto::CoseKey>> keys(n);
  const unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      for (size_t i = w; i < n; i += workers) {
        auto k = crypto::CoseKey::decode(items[i % items.size()].cose->cose_bytes());
        if (!k) std::abort();
        keys[i] = std::make_shared<const crypto::CoseKey>(*std::move(k));
      }
    });
  }
  for (auto& t : pool) t.join();
  s->creds.reserve(n);
  std::vector<std::string> ids(n);
  for (size_t i = 0; i < n; ++i) {
    Bytes id = crypto::random_bytes(16);
    ids[i].assign(as_chars(id));
    s->creds.emplace(ids[i], Scaling::Cred{std::move(keys[i]), static_cast<uint32_t>(i % items.size())});
  }
  s->build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::mt19937_64 rng(42);
  for (size_t i = 0; i < 4096; ++i) s->probe_ids.push_back(ids[rng() % n]);
  const size_t after = resident_bytes();
  s->bytes_per_credential = static_cast<double>(after > before ? after - before : 0) / static_cast<double>(n);
  scaling_state = std::move(s);
  return *scaling_state;
}

void bm_scaling(benchmark::State& state, bool verify) {
  const Scaling& s = scaling_fixture(static_cast<size_t>(state.range(0)));
  const auto& items = signed_items(Alg::kES256, kKeys);
  rotate(state, s.probe_ids.size(), [&](size_t i) {
    auto it = s.creds.find(s.probe_ids[i]);
    if (it == s.creds.end()) return false;
    if (!verify) {
      benchmark::DoNotOptimize(it->second.key);
      return true;
    }
    const SignedItem& item = items[it->second.item];
    return it->second.key->verify(item.message, item.signature);
  });
  state.counters["bytes_per_credential"] = s.bytes_per_credential;
  state.counters["build_s"] = s.build_s;
}

// ---- registration -----------------------------------------------------------------------------------------

struct Options {
  bool with_memory = false;
  size_t scaling_max = 1'000'000;
};

// Single-thread figures are in CPU time (steadier while other work shares the machine). Families that
// also matter on several threads are registered a second time at 1 and 2 threads in real time; the 2-thread
// ratio is taken against the raw figure at 2 threads, and the scaling (2 threads / 1 thread) in real time.
template <class Fn>
void reg(const std::string& name, Fn fn, bool threaded = false) {
  benchmark::RegisterBenchmark(name.c_str(), fn);
  if (threaded) benchmark::RegisterBenchmark(name.c_str(), fn)->Threads(1)->Threads(2)->UseRealTime();
}

void register_all(const Options& opt) {
  using benchmark::RegisterBenchmark;
  for (Alg alg : {Alg::kES256, Alg::kES384, Alg::kEdDSA, Alg::kRS256, Alg::kPS256}) {
    const std::string g = std::string("verify/") + alg_name(alg);
    const bool threaded = alg == Alg::kES256;
    if (alg == Alg::kEdDSA) reg(g + "/raw:crypto_sign_verify_detached", bm_raw_sodium_ed25519);
    reg(g + "/raw:EVP_DigestVerify", [alg](benchmark::State& st) { bm_raw_digest_verify(st, alg); }, threaded);
    if (alg != Alg::kEdDSA) {
      reg(g + "/raw:EVP_PKEY_verify_preinit_ctx", [alg](benchmark::State& st) { bm_raw_pkey_verify(st, alg); },
          threaded);
    }
    if (alg == Alg::kES256 || alg == Alg::kES384) {
      reg(g + "/raw:ECDSA_do_verify", [alg](benchmark::State& st) { bm_raw_ecdsa_do_verify(st, alg); }, threaded);
    }
    reg(g + "/engine:CoseKey::verify", [alg](benchmark::State& st) { bm_engine_cose_verify(st, alg); }, threaded);
    if (alg == Alg::kES256) reg(g + "/engine:PublicKey::verify", bm_engine_public_key_verify);
  }

  reg("keyparse/ES256/raw:EVP_PKEY_fromdata+public_check_quick",
      [](benchmark::State& st) { bm_raw_key_import(st, false); });
  reg("keyparse/ES256/raw:EVP_PKEY_fromdata+public_check", [](benchmark::State& st) { bm_raw_key_import(st, true); });
  reg("keyparse/ES256/engine:CoseKey::decode", bm_engine_cose_decode);

  reg("assertion/engine:verify_assertion", bm_assertion_verify, true);
  reg("assertion/component:signature_only", bm_assertion_signature_only);
  reg("assertion/engine:challenge+lookup+verify_assertion", bm_assertion_with_challenge, true);
  reg("assertion/engine:from_toJSON", bm_assertion_from_json);

  RegisterBenchmark("parse/cbor:attestationObject", bm_cbor_attestation_object);
  RegisterBenchmark("parse/clientDataJSON", bm_parse_client_data);
  RegisterBenchmark("parse/authenticatorData:assertion",
                    [](benchmark::State& st) { bm_parse_authenticator_data(st, false); });
  RegisterBenchmark("parse/authenticatorData:registration",
                    [](benchmark::State& st) { bm_parse_authenticator_data(st, true); });

  RegisterBenchmark("jwt/ES256_sign/raw:EVP_DigestSign", bm_raw_digest_sign);
  RegisterBenchmark("jwt/ES256_sign/raw:EVP_PKEY_sign_preinit_ctx", bm_raw_pkey_sign_preinit);
  RegisterBenchmark("jwt/ES256_sign/engine:sign_jwt", bm_engine_sign_jwt);

  RegisterBenchmark("challenge/issue+consume", bm_challenge_issue_consume)->ArgName("context_bytes")->Arg(8)->Arg(64);
  RegisterBenchmark("challenge/issue+consume", bm_challenge_issue_consume)
      ->ArgName("context_bytes")->Arg(8)->Threads(1)->Threads(2)->UseRealTime();
  RegisterBenchmark("challenge/component:random_fill_32B", bm_challenge_random_fill);
  RegisterBenchmark("challenge/component:RAND_bytes_32B", bm_challenge_rand_bytes);
  RegisterBenchmark("challenge/component:random_fill_32B_from_4KiB_block", bm_challenge_buffered_fill);
  if (opt.with_memory) {
    RegisterBenchmark("challenge/memory", bm_challenge_memory)
        ->ArgName("pending")->Arg(10'000'000)->Iterations(1)->Unit(benchmark::kSecond);
  }

  for (size_t n : {size_t{1'000}, size_t{100'000}, size_t{1'000'000}}) {
    if (n > opt.scaling_max) continue;
    RegisterBenchmark("scaling/lookup", [](benchmark::State& st) { bm_scaling(st, false); })
        ->ArgName("credentials")->Arg(static_cast<int64_t>(n));
    RegisterBenchmark("scaling/lookup+verify", [](benchmark::State& st) { bm_scaling(st, true); })
        ->ArgName("credentials")->Arg(static_cast<int64_t>(n));
  }

#if defined(SIGIL_BENCH_HAVE_BATCH)
  register_batch_benchmarks(release_scaling);
#endif
}

// ---- ratio reporting -------------------------------------------------------------------------------------

// Fastest raw rate per "group|threads|aggregate", filled as raw runs are reported (for the JSON file: all
// of them before any engine figure, see RatioReporter::Finalize).
struct RawRates {
  std::mutex mu;
  std::map<std::string, std::pair<double, std::string>> best;  // key -> (rate, raw name)
  std::map<std::string, double> digest_verify;                 // key -> EVP_DigestVerify rate
};
RawRates& raw_rates() {
  static RawRates r;
  return r;
}

double rate_of(const benchmark::BenchmarkReporter::Run& run) {
  auto it = run.counters.find("items_per_second");
  return it == run.counters.end() ? 0.0 : it->second.value;
}

// The raw group an engine figure compares with, or "" when it has none.
std::string reference_group(const std::string& name) {
  if (name.rfind("assertion/", 0) == 0 || name.rfind("scaling/lookup+verify", 0) == 0 ||
      name.rfind("batch/", 0) == 0) {
    return "verify/ES256";
  }
  if (auto pos = name.find("/engine:"); pos != std::string::npos) return name.substr(0, pos);
  return {};
}

std::string human_rate(double r) {
  char buf[32];
  if (r >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM/s", r / 1e6);
  } else if (r >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fk/s", r / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f/s", r);
  }
  return buf;
}

template <class Base>
class RatioReporter : public Base {
 public:
  using Base::Base;
  // The console streams each result as it comes (a figure whose raw baseline has not run yet, as happens with
  // --benchmark_enable_random_interleaving, shows no ratio there); the JSON file, which tools/bench reads,
  // is written at the end with every ratio, whatever order the runs came in.
  void ReportRuns(const std::vector<benchmark::BenchmarkReporter::Run>& runs) override {
    if (!kConsole) {
      held_.insert(held_.end(), runs.begin(), runs.end());
      return;
    }
    std::vector<benchmark::BenchmarkReporter::Run> out = runs;
    for (auto& run : out) annotate(run);
    Base::ReportRuns(out);
  }
  void Finalize() override {
    if (!kConsole) {
      for (auto& run : held_) {
        if (is_raw(run)) annotate(run);  // baselines first: they fill raw_rates()
      }
      for (auto& run : held_) {
        if (!is_raw(run)) annotate(run);
      }
      if (!held_.empty()) Base::ReportRuns(held_);
      held_.clear();
    }
    Base::Finalize();
  }

 private:
  static constexpr bool kConsole = std::is_same_v<Base, benchmark::ConsoleReporter>;

  static bool is_raw(const benchmark::BenchmarkReporter::Run& run) {
    return run.run_name.function_name.find("/raw:") != std::string::npos;
  }

  std::vector<benchmark::BenchmarkReporter::Run> held_;

  void annotate(benchmark::BenchmarkReporter::Run& run) {
    if (run.error_occurred) return;
    if (run.run_type == benchmark::BenchmarkReporter::Run::RT_Aggregate &&
        run.aggregate_name != "mean" && run.aggregate_name != "median") {
      return;
    }
    const std::string& name = run.run_name.function_name;
    // Batch figures run on `concurrency` arena threads (one benchmark thread waits): compare with the raw
    // figure at that many threads.
    int64_t threads = run.threads;
    if (auto p = run.run_name.args.find("concurrency:"); name.rfind("batch/", 0) == 0 && p != std::string::npos) {
      threads = std::strtoll(run.run_name.args.c_str() + p + std::strlen("concurrency:"), nullptr, 10);
    }
    // Batch figures are in real time; ES256 has real-time raw figures at 1 and 2 threads.
    const std::string suffix =
        "|" + std::to_string(threads) + "|" + run.run_name.time_type + "|" + run.aggregate_name;
    const double rate = rate_of(run);
    RawRates& rr = raw_rates();
    std::lock_guard lock(rr.mu);
    if (auto pos = name.find("/raw:"); pos != std::string::npos) {
      const std::string key = name.substr(0, pos) + suffix;
      auto& best = rr.best[key];
      if (rate > best.first) best = {rate, name.substr(pos + 5)};
      if (name.ends_with("/raw:EVP_DigestVerify")) rr.digest_verify[key] = rate;
      return;
    }
    const std::string group = reference_group(name);
    if (group.empty() || rate <= 0) return;
    auto it = rr.best.find(group + suffix);
    if (it == rr.best.end() || it->second.first <= 0) return;
    const double ratio = rate / it->second.first;
    char label[160];
    std::snprintf(label, sizeof label, "x%.3f of raw %s (%s)", ratio, it->second.second.c_str(),
                  human_rate(it->second.first).c_str());
    std::string text = label;
    if (auto dv = rr.digest_verify.find(group + suffix);
        dv != rr.digest_verify.end() && dv->second > 0 && it->second.second != "EVP_DigestVerify") {
      std::snprintf(label, sizeof label, "; x%.3f of EVP_DigestVerify (%s)", rate / dv->second,
                    human_rate(dv->second).c_str());
      text += label;
      if (!kConsole) run.counters["ratio_vs_DigestVerify"] = benchmark::Counter(rate / dv->second);
    }
    run.report_label = run.report_label.empty() ? text : run.report_label + "; " + text;
    if (!kConsole) run.counters["ratio_vs_raw"] = benchmark::Counter(ratio);
  }
};

}  // namespace
}  // namespace sigil::bench

int main(int argc, char** argv) {
  using namespace sigil::bench;
  Options opt;
  std::vector<char*> rest;
  bool has_out = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i > 0 && a.starts_with("--dump-assertions=")) {
      size_t n = 1000;
      if (i + 1 < argc && std::isdigit(static_cast<unsigned char>(argv[i + 1][0]))) n = std::strtoul(argv[++i], nullptr, 10);
      const std::string path(a.substr(std::strlen("--dump-assertions=")));
      if (!write_assertion_vectors(path, n)) {
        std::fprintf(stderr, "sigil_bench: cannot write %s\n", path.c_str());
        return 1;
      }
      std::printf("wrote %zu assertion vectors to %s\n", n, path.c_str());
      return 0;
    }
    if (i > 0 && a.starts_with("--assertions=")) {
      set_assertion_source(std::string(a.substr(std::strlen("--assertions="))));
      continue;
    }
    if (i > 0 && a == "--with-memory") {
      opt.with_memory = true;
      continue;
    }
    if (i > 0 && a.starts_with("--scaling-max=")) {
      opt.scaling_max = std::strtoul(argv[i] + std::strlen("--scaling-max="), nullptr, 10);
      continue;
    }
    if (a.starts_with("--benchmark_out=")) has_out = true;
    rest.push_back(argv[i]);
  }
  int rest_argc = static_cast<int>(rest.size());
  rest.push_back(nullptr);
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  register_all(opt);

  RatioReporter<benchmark::ConsoleReporter> display(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_Color
                                                                           : benchmark::ConsoleReporter::OO_None);
  RatioReporter<benchmark::JSONReporter> file;
  benchmark::RunSpecifiedBenchmarks(&display, has_out ? &file : nullptr);
  benchmark::Shutdown();
  return 0;
}
