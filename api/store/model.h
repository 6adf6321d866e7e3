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
};

struct Client {
  std::string client_id;
  std::string app_id;
  std::string tenant_id;
  Bytes secret_hash;  // SHA-256 of the secret (secrets are 256-bit random, so a fast hash suffices)
  std::string name;
  int64_t created_at = 0;
};

struct User {
  std::string id;
  std::string tenant_id;
  std::string email;     // lower-cased; may be empty
  std::string phone;     // E.164; may be empty
  bool email_verified = false;
  int64_t created_at = 0;
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
};

}  // namespace sigil::store
