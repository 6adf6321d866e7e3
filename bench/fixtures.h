// Benchmark fixtures: key sets with signed messages for each COSE algorithm, and WebAuthn assertion
// vectors made by a minimal software authenticator (ES256, "none" attestation).
//
// Benchmark-only: the release preset builds without tests, so this does not use tests/support. Every
// vector is checked once when it is made (the engine must accept it), so a benchmark never times a
// rejection by mistake. Everything here is built once, lazily, and then read-only: safe to share across
// benchmark threads.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/crypto/bytes.h"
#include "engine/crypto/cose_key.h"
#include "engine/crypto/public_key.h"
#include "engine/webauthn/webauthn.h"

namespace sigil::bench {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// One key and one message it signed. `digest` is the message's hash under the algorithm's hash
// (SHA-256, or SHA-384 for ES384): the precomputed input of the EVP_PKEY_verify baseline.
struct SignedItem {
  std::shared_ptr<EVP_PKEY> pkey;  // cached OpenSSL key (what the raw baselines use)
  Bytes raw_public;                // Ed25519: the 32-byte key for libsodium; empty otherwise
  Bytes message;                   // 37-byte authenticatorData || 32-byte clientDataHash shape
  Bytes digest;
  Bytes signature;                 // DER for ECDSA, raw for EdDSA, modulus-length for RSA
  std::shared_ptr<const crypto::CoseKey> cose;  // the engine's handle for the same key
};

enum class Alg { kES256, kES384, kEdDSA, kRS256, kPS256 };

// `count` keys of `alg`, each with one signed message. Built once per (alg, count) and cached.
const std::vector<SignedItem>& signed_items(Alg alg, size_t count);
const char* alg_name(Alg alg);
const EVP_MD* md_for(Alg alg);  // fetched once; nullptr for EdDSA

inline constexpr const char* kRpId = "example.org";
inline constexpr const char* kOrigin = "https://example.org";

// One ES256 credential and one assertion by it, in the forms the benchmarks need.
struct AssertionVector {
  Bytes credential_id;
  Bytes user_handle;
  Bytes cose_public_key;       // COSE_Key bytes as registered
  Bytes challenge;             // raw 32 bytes the server issued
  Bytes client_data_json;
  Bytes authenticator_data;    // 37 bytes: rpIdHash, flags UP|UV, counter 1
  Bytes signature;             // DER
  std::string response_json;   // PublicKeyCredential.toJSON() of the assertion
  Bytes attestation_object;    // the registration's attestationObject ("none"), for the CBOR benchmark
  std::shared_ptr<const crypto::CoseKey> key;
  webauthn::StoredCredential stored;  // stored.public_key points into `key`
};

// Generated once (count fixed by the first call), or loaded from the file named by
// set_assertion_source() (written by write_assertion_vectors), so the peer comparison and sigil verify the
// very same assertions.
const std::vector<AssertionVector>& assertion_vectors(size_t count = 1000);
void set_assertion_source(std::string path);
// Writes `count` fresh vectors as JSON for bench/peers/peer_bench.mjs. Returns false on I/O failure.
bool write_assertion_vectors(const std::string& path, size_t count);

const webauthn::RelyingParty& relying_party();

// Resident set size of this process in bytes (/proc/self/statm).
size_t resident_bytes();

}  // namespace sigil::bench
