// Owning pointers for the OpenSSL objects engine/crypto handles: one deleter template instead of a
// hand-written deleter struct per type in every source file.
//
// Internal to engine/crypto: header-only so the component's source glob needs no change.
#pragma once

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <memory>

namespace sigil::crypto::internal {

// Calls `Free` on the pointer; OpenSSL's *_free functions all accept nullptr.
template <auto Free>
struct OsslFree {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

inline void openssl_free_bytes(unsigned char* p) noexcept { OPENSSL_free(p); }

using PkeyPtr = std::unique_ptr<EVP_PKEY, OsslFree<&EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslFree<&EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslFree<&EVP_MD_CTX_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, OsslFree<&EVP_MAC_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, OsslFree<&BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslFree<&OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OsslFree<&OSSL_PARAM_free>>;
using Pkcs8Ptr = std::unique_ptr<PKCS8_PRIV_KEY_INFO, OsslFree<&PKCS8_PRIV_KEY_INFO_free>>;
using OpenSslBuf = std::unique_ptr<unsigned char, OsslFree<&openssl_free_bytes>>;  // from i2d_* and friends

}  // namespace sigil::crypto::internal
