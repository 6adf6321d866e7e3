// Pre-initialised EVP_PKEY_CTX contexts of one key: verify contexts for PublicKey and CoseKey, sign
// contexts for SigningKey (the token signing key).
//
// Why: creating a context per operation (EVP_PKEY_CTX_new_from_pkey + EVP_PKEY_verify_init or
// EVP_PKEY_sign_init + setting the digest and padding) costs provider lookups under locks and several
// allocations, about 10% of an ES256 verify and more of an ES256 sign. Here each key keeps a small free list of contexts that were initialised once for that key and
// are never re-pointed at another one: a context belongs to exactly one key for its whole life, so the
// OpenSSL 3.0 re-init pitfall of CONVENTIONS.md (a reused context keeping an earlier key) cannot occur.
//
// Thread-safety: a context is used by one thread at a time (acquire pops it off the free list under the
// mutex, release pushes it back). The pool grows only when every pooled context is in use, so its size is
// the largest number of threads that verified with this key at the same moment, capped at kMaxPooled (a
// context beyond the cap is freed on release). Contexts are created lazily: a key that never verifies
// holds none.
//
// Internal to engine/crypto: header-only so the component's source glob needs no change.
#pragma once

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "engine/crypto/bytes.h"
#include "engine/crypto/internal/ossl_ptr.h"

namespace sigil::crypto::internal {

class PkeyCtxPool {
 public:
  enum class Op { kVerify, kSign };
  struct Params {
    const EVP_MD* md = nullptr;  // signature digest; fetched once by the caller, outlives the pool
    int rsa_padding = 0;         // 0 (not RSA), RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING
    Op op = Op::kVerify;         // what every context of this pool is initialised for
  };

  // Holds its own reference to `pkey` (a complete, validated key; a private key for Op::kSign).
  PkeyCtxPool(EVP_PKEY* pkey, Params params) noexcept : pkey_(pkey), params_(params) { EVP_PKEY_up_ref(pkey_); }
  ~PkeyCtxPool() {
    for (size_t i = 0; i < count_; ++i) EVP_PKEY_CTX_free(free_[i]);
    EVP_PKEY_free(pkey_);
  }
  PkeyCtxPool(const PkeyCtxPool&) = delete;
  PkeyCtxPool& operator=(const PkeyCtxPool&) = delete;

  // EVP_PKEY_verify of `sig` over `tbs` (a digest of params.md) with one of this key's contexts. Clears
  // OpenSSL's error queue on failure.
  [[nodiscard]] bool verify(const uint8_t* tbs, size_t tbs_len, ByteView sig) noexcept {
    if (params_.op != Op::kVerify) return false;
    EVP_PKEY_CTX* ctx = acquire();
    if (ctx == nullptr) {
      ERR_clear_error();
      return false;
    }
    const bool ok = EVP_PKEY_verify(ctx, sig.data(), sig.size(), tbs, tbs_len) == 1;
    if (!ok) ERR_clear_error();
    release(ctx);
    return ok;
  }

  // EVP_PKEY_sign over the digest `tbs` (of params.md) into sig[0, *sig_len), with one of this key's sign
  // contexts; *sig_len is the buffer size on entry, the signature size on return. ECDSA draws a fresh nonce
  // per call inside the provider: a context carries no per-signature state between calls. Clears OpenSSL's
  // error queue on failure.
  [[nodiscard]] bool sign(const uint8_t* tbs, size_t tbs_len, uint8_t* sig, size_t* sig_len) noexcept {
    if (params_.op != Op::kSign) return false;
    EVP_PKEY_CTX* ctx = acquire();
    if (ctx == nullptr) {
      ERR_clear_error();
      return false;
    }
    const bool ok = EVP_PKEY_sign(ctx, sig, sig_len, tbs, tbs_len) == 1;
    if (!ok) ERR_clear_error();
    release(ctx);
    return ok;
  }

 private:
  static constexpr size_t kMaxPooled = 8;

  EVP_PKEY_CTX* acquire() noexcept {
    {
      std::lock_guard lock(mu_);
      if (count_ > 0) return free_[--count_];
    }
    return make_ctx();
  }

  void release(EVP_PKEY_CTX* ctx) noexcept {
    {
      std::lock_guard lock(mu_);
      if (count_ < kMaxPooled) {
        free_[count_++] = ctx;
        return;
      }
    }
    EVP_PKEY_CTX_free(ctx);
  }

  // A context bound to this pool's key, initialised for verification (or signing) once: padding, PSS salt
  // and MGF1, signature digest. Never initialised again, never given another key.
  EVP_PKEY_CTX* make_ctx() const noexcept {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_, nullptr);
    bool ok = ctx != nullptr &&
              (params_.op == Op::kSign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) == 1;
    if (ok && params_.rsa_padding != 0) ok = EVP_PKEY_CTX_set_rsa_padding(ctx, params_.rsa_padding) == 1;
    if (ok && params_.rsa_padding == RSA_PKCS1_PSS_PADDING) {
      ok = EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, params_.md) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    }
    ok = ok && EVP_PKEY_CTX_set_signature_md(ctx, params_.md) == 1;
    if (!ok) {
      EVP_PKEY_CTX_free(ctx);
      return nullptr;
    }
    return ctx;
  }

  EVP_PKEY* const pkey_;
  const Params params_;
  std::mutex mu_;
  size_t count_ = 0;
  std::array<EVP_PKEY_CTX*, kMaxPooled> free_{};
};

// One-shot digest on a per-thread EVP_MD_CTX re-initialised for each call: a digest context holds no key,
// so reusing it is safe, and it saves the context allocation of EVP_Digest. `md` must be fetched once by
// the caller. Returns false (error queue cleared) on failure.
[[nodiscard]] inline bool digest(const EVP_MD* md, ByteView data, uint8_t* out, unsigned int* out_len) noexcept {
  static thread_local MdCtxPtr ctx(EVP_MD_CTX_new());
  static const uint8_t kEmpty = 0;
  const bool ok = ctx != nullptr && EVP_DigestInit_ex2(ctx.get(), md, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx.get(), data.empty() ? &kEmpty : data.data(), data.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx.get(), out, out_len) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

}  // namespace sigil::crypto::internal
