// A software WebAuthn authenticator for tests: ES256 credentials, "none" attestation, counters, and the
// PublicKeyCredential JSON a browser's toJSON() produces. Test-only; never linked into sigild.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/crypto/bytes.h"

namespace sigil::testing {

class SoftAuthenticator {
 public:
  struct Credential {
    Bytes id;
    Bytes user_handle;
    std::string rp_id;
    uint32_t counter = 0;
    std::shared_ptr<void> key;  // EVP_PKEY (P-256)
  };

  // navigator.credentials.create() with the server's credential_creation_options (JSON text).
  // Returns the credential's toJSON() text; the new credential is kept.
  std::string create(std::string_view creation_options_json, std::string_view origin);
  // navigator.credentials.get(): signs with the credential at `index` of credentials() (the options'
  // allowCredentials are not consulted, so tests can also present a credential the server did not
  // allow). Returns the toJSON() text.
  std::string get(std::string_view request_options_json, std::string_view origin, size_t index = 0);

  std::vector<Credential>& credentials() { return credentials_; }

  // Knobs for negative tests.
  bool user_verified = true;
  bool backup_eligible = false;
  int counter_step = 1;  // 0 keeps the counter at zero (as many passkeys do)

 private:
  std::vector<Credential> credentials_;
};

// base64 of a JSON text, as webauthn_encoded_result carries it.
std::string encode_result(std::string_view json);

}  // namespace sigil::testing
