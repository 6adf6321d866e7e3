// The load generator's own small software authenticator: ES256 passkeys ("none" attestation, counters),
// P-256 device keys for mobile biometrics, and the encodings both need. Independent of the server's code.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loadgen {

using Bytes = std::vector<uint8_t>;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string base64(const uint8_t* p, size_t n, bool url, bool pad);
inline std::string base64(const Bytes& b, bool url = false, bool pad = true) {
  return base64(b.data(), b.size(), url, pad);
}
inline std::string base64(std::string_view s, bool url = false, bool pad = true) {
  return base64(reinterpret_cast<const uint8_t*>(s.data()), s.size(), url, pad);
}
// Either alphabet, padded or not.
std::optional<Bytes> base64_decode(std::string_view s);

std::array<uint8_t, 32> sha256(const void* p, size_t n);
Bytes random_bytes(size_t n);

// JSON string literal with quotes.
std::string json_string(std::string_view s);

Pkey p256_generate();
// ECDSA P-256 / SHA-256 signature over `msg`, DER encoded.
Bytes es256_sign(EVP_PKEY* key, const void* msg, size_t n);
// base64 (standard, padded) of the X.509 SubjectPublicKeyInfo DER.
std::string spki_base64(EVP_PKEY* key);

// One ES256 passkey.
struct Passkey {
  Bytes id;
  Bytes user_handle;
  std::string rp_id;
  std::array<uint8_t, 32> rp_id_hash{};
  uint32_t counter = 0;
  Pkey key;
};

// navigator.credentials.create(): from the register/start options, a new passkey and the credential's toJSON()
// text ("none" attestation). Throws std::runtime_error on options it cannot read.
std::string passkey_create(Passkey& out, std::string_view rp_id, std::string_view challenge,
                           std::string_view user_id, std::string_view origin);
// navigator.credentials.get(): bumps the counter, signs authenticatorData || SHA-256(clientDataJSON), and returns
// the webauthn_encoded_result (base64 of the SDK envelope with the WebAuthn session id).
std::string passkey_assert(Passkey& key, std::string_view session_id, std::string_view challenge,
                           std::string_view origin);

}  // namespace loadgen
