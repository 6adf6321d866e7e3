// SHA-256, HMAC-SHA-256, constant-time comparison, CSPRNG and wiping.
//
// Algorithms are fetched once and kept for the life of the process (never freed, on purpose): the implicit
// EVP_sha256()/HMAC() lookups take a lock on every call that stops scaling across threads.
#include "engine/crypto/digest.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include <memory>

#include "engine/base/result.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/internal/ossl_ptr.h"
#include "engine/crypto/internal/pkey_ctx_pool.h"

namespace sigil::crypto {
namespace {

const EVP_MD* sha256_md() noexcept {
  static EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    SIGIL_CHECK(m != nullptr);
    return m;
  }();
  return md;
}

using internal::MacCtxPtr;

// A keyed HMAC-SHA256 context used only as a template: EVP_MAC_CTX_dup copies the already-resolved digest,
// so a per-call init with a new key does not look the digest up by name again. Read-only after creation.
const EVP_MAC_CTX* hmac_template() noexcept {
  static EVP_MAC_CTX* const tmpl = [] {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    SIGIL_CHECK(mac != nullptr);
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context holds its own reference
    SIGIL_CHECK(ctx != nullptr);
    char digest_name[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end(),
    };
    static const unsigned char kDummyKey[1] = {0};
    SIGIL_CHECK(EVP_MAC_init(ctx, kDummyKey, sizeof kDummyKey, params) == 1);
    return ctx;
  }();
  return tmpl;
}

void ensure_sodium() noexcept {
  static const bool ok = [] {
    if (sodium_init() < 0) {
      std::fprintf(stderr, "sigil: libsodium initialisation failed\n");
      std::abort();
    }
    return true;
  }();
  (void)ok;
}

}  // namespace

Sha256Digest sha256(ByteView data) noexcept {
  Sha256Digest out{};
  unsigned int len = 0;
  // A per-thread digest context re-initialised per call (no key in it, so reuse is safe).
  const bool ok = internal::digest(sha256_md(), data, out.data(), &len);
  SIGIL_CHECK(ok && len == out.size());
  return out;
}

Sha256Digest hmac_sha256(ByteView key, ByteView data) noexcept {
  MacCtxPtr ctx(EVP_MAC_CTX_dup(hmac_template()));
  SIGIL_CHECK(ctx != nullptr);
  // A zero-length key is legal for HMAC; OpenSSL wants a non-null pointer for it.
  static const unsigned char kEmpty[1] = {0};
  const unsigned char* k = key.empty() ? kEmpty : key.data();
  Sha256Digest out{};
  size_t len = 0;
  const bool ok = EVP_MAC_init(ctx.get(), k, key.size(), nullptr) == 1 &&
                  EVP_MAC_update(ctx.get(), data.data(), data.size()) == 1 &&
                  EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) == 1 && len == out.size();
  SIGIL_CHECK(ok);
  return out;
}

bool ct_equal(ByteView a, ByteView b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void random_fill(std::span<uint8_t> out) noexcept {
  ensure_sodium();
  if (!out.empty()) randombytes_buf(out.data(), out.size());
}

Bytes random_bytes(size_t n) {
  Bytes out(n);
  random_fill(out);
  return out;
}

std::string random_token(size_t n_bytes) {
  Bytes raw = random_bytes(n_bytes);
  std::string token = base64url_encode(raw);
  wipe(raw);
  return token;
}

std::string random_digits(size_t digits) {
  ensure_sodium();
  std::string out(digits, '0');
  // randombytes_uniform rejects out-of-range draws, so every digit is uniform (no modulo bias).
  for (char& c : out) c = static_cast<char>('0' + randombytes_uniform(10));
  return out;
}

void wipe(std::span<uint8_t> secret) noexcept {
  if (!secret.empty()) sodium_memzero(secret.data(), secret.size());
}

}  // namespace sigil::crypto
