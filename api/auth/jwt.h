// Compact JWS (RFC 7515) with ES256 only: signing our tokens, verifying bearer tokens, publishing the JWKS.
//
// Guarantees of verify: the header must be a JSON object with "alg":"ES256" (anything else — "none",
// "HS256", "RS256" — is rejected before any key is touched), a "kid" naming a key of the KeySet, and a
// "typ" equal to the expected one when one is expected; the signature is 64 bytes r||s verified under
// that key; the payload must be a JSON object; `exp` must be in the future and `nbf`/`iat` not in the
// future beyond a 60 s skew; `iss` must equal the expected issuer. Only verify() constructs a
// VerifiedJwt, so unverified claims cannot be passed on as verified. Every failure is one
// kUnauthenticated "Invalid token" (the reason is in Error::ts_error_code for logs/tests only).
// Thread-safety: KeySet is immutable once built; sign and verify may run from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.h"
#include "engine/crypto/signing_key.h"

namespace sigil::auth {

struct JwtKey {
  std::string kid;
  crypto::SigningKey key;
  bool active = true;  // signs new tokens; inactive keys still verify until retired from the set
};

class KeySet {
 public:
  explicit KeySet(std::vector<JwtKey> keys);  // the first active key signs
  [[nodiscard]] const JwtKey* signing_key() const noexcept;
  [[nodiscard]] const JwtKey* find(std::string_view kid) const noexcept;
  // {"keys":[{"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..,"use":"sig","alg":"ES256"}, ...]}
  [[nodiscard]] std::string jwks_json() const;

 private:
  std::vector<JwtKey> keys_;
};

// header = {"alg":"ES256","typ":<typ>,"kid":<kid>}; payload_json must be a serialised JSON object.
[[nodiscard]] Result<std::string> sign_jwt(const JwtKey& key, std::string_view typ,
                                           std::string_view payload_json);

class VerifiedJwt {
 public:
  [[nodiscard]] const std::string& payload_json() const noexcept { return payload_; }
  [[nodiscard]] const std::string& kid() const noexcept { return kid_; }
  [[nodiscard]] const std::string& typ() const noexcept { return typ_; }

 private:
  friend Result<VerifiedJwt> verify_jwt(const KeySet&, std::string_view, std::string_view,
                                        std::string_view, int64_t);
  VerifiedJwt() = default;
  std::string payload_, kid_, typ_;
};

// expected_typ empty = any typ accepted. now_s: epoch seconds from the injected clock.
[[nodiscard]] Result<VerifiedJwt> verify_jwt(const KeySet& keys, std::string_view token,
                                             std::string_view expected_issuer,
                                             std::string_view expected_typ, int64_t now_s);

}  // namespace sigil::auth
