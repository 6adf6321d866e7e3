// WebAuthn relying-party verification (W3C WebAuthn Level 3, §7.1 registration and §7.2 authentication).
//
// Guarantees: every check of §7.1/§7.2 that does not need storage is done here, in the order of the
// specification; the checks that need storage (challenge lookup, credential lookup, credential-id
// uniqueness, user binding) are done by the caller with the data this API returns. Only the verifiers
// construct VerifiedRegistration / VerifiedAssertion. Nothing throws; all input is untrusted and bounded.
// Errors: kInvalidArgument (registration: ts_error_code "auth_invalid_attestation") or kUnauthenticated
// (assertion: ts_error_code "auth_webauthn_failed", or "webauthn_sign_count_regression" when the only
// failure is a sign-count regression, so the caller can flag the credential). The message names the
// failed check for logs and tests; services show clients a generic message.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "engine/crypto/bytes.h"
#include "engine/crypto/cose_key.h"

namespace sigil::webauthn {

inline constexpr size_t kMaxCredentialIdBytes = 1023;

// authenticatorData flags (§6.1).
inline constexpr uint8_t kFlagUP = 0x01;
inline constexpr uint8_t kFlagUV = 0x04;
inline constexpr uint8_t kFlagBE = 0x08;
inline constexpr uint8_t kFlagBS = 0x10;
inline constexpr uint8_t kFlagAT = 0x40;
inline constexpr uint8_t kFlagED = 0x80;

struct AttestedCredentialData {
  std::array<uint8_t, 16> aaguid{};
  Bytes credential_id;
  Bytes credential_public_key;  // COSE_Key bytes, exactly as encoded
};

struct AuthenticatorData {
  std::array<uint8_t, 32> rp_id_hash{};
  uint8_t flags = 0;
  uint32_t sign_count = 0;
  std::optional<AttestedCredentialData> attested;  // present iff AT
  Bytes extensions;                                 // CBOR map bytes, present iff ED
};

// Exact-length parse: AT requires attested data, ED requires extensions, nothing may trail; reserved
// flag bits are ignored; BS without BE is refused.
[[nodiscard]] Result<AuthenticatorData> parse_authenticator_data(ByteView data);

struct CollectedClientData {
  std::string type;        // "webauthn.create" | "webauthn.get"
  Bytes challenge;         // decoded from base64url
  std::string origin;
  bool cross_origin = false;
  std::string top_origin;  // empty when absent
};

// clientDataJSON (simdjson): must be a JSON object with string type/challenge/origin, boolean
// crossOrigin when present, string topOrigin when present; the challenge must be base64url.
[[nodiscard]] Result<CollectedClientData> parse_client_data(ByteView json);

enum class UserVerification : uint8_t { kRequired, kPreferred, kDiscouraged };

struct RelyingParty {
  std::string rp_id;                       // e.g. "example.org"
  std::vector<std::string> origins;        // exact origins, e.g. "https://example.org"
  std::vector<std::string> top_origins;    // accepted topOrigin values for cross-origin iframes
  bool allow_cross_origin = false;         // crossOrigin:true accepted only when the top origin is allowed
};

// Attestation trust policy per app: kNone accepts any verified statement (and records its type);
// kDirect requires an x5c chain to one of `anchors` (DER certificates). A self-signed certificate
// inside x5c is never an anchor.
struct TrustPolicy {
  enum class Mode : uint8_t { kNone, kDirect };
  Mode mode = Mode::kNone;
  std::vector<Bytes> anchors_der;
};

struct RegistrationInput {
  ByteView client_data_json;
  ByteView attestation_object;
  ByteView expected_challenge;  // raw bytes
  const RelyingParty* rp = nullptr;
  UserVerification user_verification = UserVerification::kPreferred;
  const TrustPolicy* trust = nullptr;
  // Algorithms offered in pubKeyCredParams (§7.1 step 20); empty = ES256, EdDSA, ES384, ES512, PS256, RS256.
  std::vector<int64_t> allowed_algs;
  int64_t now_s = 0;  // for certificate validity
};

class VerifiedRegistration {
 public:
  std::string fmt;               // "none", "packed", "fido-u2f", "tpm", "android-key", "apple"
  std::string attestation_type;  // "none", "self", "basic", "attca", "anonca"
  bool trusted = false;          // chained to an anchor (kDirect) — false under kNone unless it also chains
  Bytes credential_id;
  Bytes credential_public_key;   // COSE bytes; parse with crypto::CoseKey::decode
  int64_t alg = 0;
  std::array<uint8_t, 16> aaguid{};
  uint32_t sign_count = 0;
  uint8_t flags = 0;
  CollectedClientData client_data;

 private:
  friend Result<VerifiedRegistration> verify_registration(const RegistrationInput&);
  VerifiedRegistration() = default;
};

[[nodiscard]] Result<VerifiedRegistration> verify_registration(const RegistrationInput& in);

struct StoredCredential {
  Bytes credential_id;
  const crypto::CoseKey* public_key = nullptr;
  uint32_t sign_count = 0;
  Bytes user_handle;
  bool backup_eligible = false;  // BE as registered; BE must not change (§6.1.3)
};

struct AssertionInput {
  ByteView credential_id;        // rawId from the client
  ByteView client_data_json;
  ByteView authenticator_data;
  ByteView signature;
  ByteView user_handle;          // empty = absent
  ByteView expected_challenge;   // raw bytes
  const RelyingParty* rp = nullptr;
  UserVerification user_verification = UserVerification::kPreferred;
  const StoredCredential* credential = nullptr;
};

class VerifiedAssertion {
 public:
  uint32_t sign_count = 0;
  uint8_t flags = 0;
  CollectedClientData client_data;

 private:
  friend Result<VerifiedAssertion> verify_assertion(const AssertionInput&);
  VerifiedAssertion() = default;
};

[[nodiscard]] Result<VerifiedAssertion> verify_assertion(const AssertionInput& in);

// Lower-case UUID text of an AAGUID ("00000000-0000-0000-0000-000000000000").
[[nodiscard]] std::string aaguid_string(const std::array<uint8_t, 16>& aaguid);

}  // namespace sigil::webauthn
