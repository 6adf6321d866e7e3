// Strict ECDSA DER signature check shared by PublicKey (ES256) and CoseKey (ES256/384/512).
//
// Internal to engine/crypto: header-only so the component's source glob needs no change.
#pragma once

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>

#include <cstring>
#include <memory>

#include "engine/crypto/bytes.h"

namespace sigil::crypto::internal {

// Strict ECDSA DER: the input must be exactly the DER re-encoding of what was parsed (no BER lengths,
// no padding zeros, no trailing bytes), at most `max_size` bytes, and r, s in [1, order-1].
// Leaves OpenSSL's error queue to the caller.
[[nodiscard]] inline bool ecdsa_der_is_strict(ByteView sig, const BIGNUM* order, size_t max_size) noexcept {
  struct SigFree {
    void operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
  };
  struct BufFree {
    void operator()(unsigned char* p) const noexcept { OPENSSL_free(p); }
  };
  if (sig.empty() || sig.size() > max_size) return false;
  const unsigned char* p = sig.data();
  std::unique_ptr<ECDSA_SIG, SigFree> parsed(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  if (!parsed) return false;
  if (p != sig.data() + sig.size()) return false;
  unsigned char* raw = nullptr;
  const int len = i2d_ECDSA_SIG(parsed.get(), &raw);
  if (len <= 0) return false;
  std::unique_ptr<unsigned char, BufFree> reencoded(raw);
  if (static_cast<size_t>(len) != sig.size() || std::memcmp(raw, sig.data(), sig.size()) != 0) return false;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(parsed.get(), &r, &s);
  for (const BIGNUM* v : {r, s}) {
    if (BN_is_negative(v) || BN_is_zero(v) || BN_cmp(v, order) >= 0) return false;
  }
  return true;
}

}  // namespace sigil::crypto::internal
