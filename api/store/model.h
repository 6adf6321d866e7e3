// Rows of the durable store. Plain values; no behaviour.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/crypto/bytes.h"

namespace sigil::store {

struct Tenant {
  std::string id;
  std::string name;
  int64_t created_at = 0;  // epoch seconds
};

struct App {
  std::string id;
  std::string tenant_id;
  std::string name;
  std::vector<std::string> redirect_uris;
  std::vector<std::string> origins;    // WebAuthn origins, e.g. "http://localhost:8080"
  std::string rp_id;                    // WebAuthn relying-party id, e.g. "localhost"
  std::vector<std::string> resources;   // allowed `resource` values (access-token audiences)
  bool allow_client_challenges = false; // API.md 2.2
  bool public_signup = true;
  int64_t created_at = 0;
  // WebAuthn policy (API.md 3.1).
  std::string user_verification = "preferred";  // "required" | "preferred" | "discouraged"
  std::string attestation_trust = "none";       // "none" | "direct"
  std::vector<std::string> trust_anchor_files;  // PEM files of attestation roots, for "direct"
  std::vector<std::string> top_origins;         // cross-origin iframes allowed (topOrigin values)
};

struct Client {
  std::string client_id;
  std::string app_id;
  std::string tenant_id;
  Bytes secret_hash;  // SHA-256 of the secret (secrets are 256-bit random, so a fast hash suffices)
  std::string name;
  int64_t created_at = 0;
  // A public client (browser or native app) holds no secret: it authenticates with its client_id only and
  // must use PKCE S256 on the authorization-code flow. secret_hash is empty for it.
  bool public_client = false;
};

struct User {
  std::string id;
  std::string tenant_id;
  std::string email;     // lower-cased; may be empty
  std::string phone;     // E.164; may be empty
  bool email_verified = false;
  int64_t created_at = 0;
  std::string external_user_id{};  // the user's id in the customer's system (API.md 3.6); may be empty
};

struct MobileKey {
  std::string app_id;
  std::string key_id;       // publicKeyId
  std::string user_id;
  Bytes spki_der;           // canonical SubjectPublicKeyInfo
  std::string key_type;     // "ec" | "rsa"
  std::string os;
  std::string device_id;
  std::string display_name;
  int64_t created_at = 0;
  int64_t last_used_at = 0;
};

// A WebAuthn account: a username at one app's relying party, bound to one user, with a stable user
// handle (the `user.id` of the creation options).
struct WebAuthnAccount {
  std::string app_id;
  std::string username;
  std::string user_id;
  Bytes user_handle;  // 32 random bytes
  std::string display_name;
  int64_t created_at = 0;
};

// What §7.1 step 26 says to store, plus the parsed key's COSE bytes (parsed into a key handle on load).
struct WebAuthnCredential {
  Bytes credential_id;
  std::string app_id;
  std::string user_id;
  std::string username;
  Bytes user_handle;
  Bytes public_key_cose;
  int64_t alg = 0;
  int64_t sign_count = 0;
  Bytes aaguid;                          // 16 bytes
  std::vector<std::string> transports;
  std::string attachment;                // "platform" | "cross-platform" | ""
  bool backup_eligible = false;
  bool backup_state = false;
  std::string fmt;                       // attestation statement format
  std::string attestation_type;          // none, self, basic, attca, anonca
  std::string device_info_json;          // deviceInfo (API.md 3.1), "" when none
  int64_t created_at = 0;
  int64_t last_used_at = 0;
  int64_t flagged_at = 0;                // sign-count regression seen: refused from then on
};

struct Session {
  std::string id;
  std::string app_id;
  std::string user_id;
  std::string client_id;
  int64_t created_at = 0;
  int64_t auth_time = 0;
  std::vector<std::string> amr;
  std::string client_attributes_json;  // "{}" when none
  int64_t ended_at = 0;                // 0 while active
};

// A signed-in browser at the hosted pages (the `sigil_session` cookie). Only the SHA-256 of the cookie value
// is stored. Bound to a tenant's user, so any app of that tenant may skip the ceremony within its lifetime.
struct BrowserSession {
  Bytes id_hash;
  std::string tenant_id;
  std::string user_id;
  std::vector<std::string> amr;
  int64_t auth_time = 0;
  int64_t created_at = 0;
  int64_t expires_at = 0;
  int64_t ended_at = 0;  // 0 while active
};

struct RefreshToken {
  Bytes token_hash;         // SHA-256 of the opaque token
  std::string family_id;
  std::string session_id;
  std::string client_id;
  std::string app_id;
  std::string user_id;
  std::string scope;
  std::string resource;     // audience of the access tokens it mints; empty = default
  int64_t created_at = 0;
  int64_t expires_at = 0;          // 14 days after creation, capped by family_expires_at
  int64_t family_expires_at = 0;   // original login + 1 year
  int64_t rotated_at = 0;          // 0 while current
  int64_t revoked_at = 0;          // 0 while not revoked
};

struct SigningKeyRow {
  std::string kid;
  std::string alg;          // "ES256"
  Bytes sealed_private;     // PKCS#8 sealed with the key-encryption key, aad = kid
  int64_t created_at = 0;
  int64_t retired_at = 0;   // 0 while signing
};

// The writes of one successful login, committed in one transaction: all or nothing.
struct LoginWrite {
  std::optional<Session> new_session;       // a new session to create, or
  std::string join_session_id;              // an existing one whose amr gains `amr`
  std::vector<std::string> amr;
  int64_t auth_time = 0;
  std::optional<RefreshToken> refresh_token;
  // Touch the authenticator that signed (mobile key), when set.
  std::string mobile_app_id, mobile_key_id;
  int64_t used_at = 0;
  // Or the WebAuthn credential that signed: its new sign count and backup state.
  Bytes webauthn_credential_id;
  int64_t webauthn_sign_count = 0;
  bool webauthn_backup_state = false;
};

}  // namespace sigil::store
