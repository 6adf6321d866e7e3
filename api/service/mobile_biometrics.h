// API.md section 2: mobile-biometric device keys and logins.
//
// Guarantees: a key is bound to the user of the user access token that registered it and can be deleted
// only by that user; a login consumes a /start challenge of the same app, user (and device, when given)
// at most once, before its signature is checked; every failure of a login is one generic 401 so callers
// cannot probe which check failed; approval_data given at /start is bound into the challenge
// (SHA-256(nonce || canonical JSON)) and comes back as the ID token's `approval_data` claim.
#pragma once

#include <string>

#include "api/auth/tokens.h"
#include "api/service/context.h"
#include "api/service/key_cache.h"
#include "engine/crypto/public_key.h"
#include "api/service/params.h"

namespace sigil::service {

class MobileBiometrics {
 public:
  explicit MobileBiometrics(ServiceContext& ctx);

  // Each returns the JSON body of a 200.
  [[nodiscard]] Result<std::string> start(const auth::Principal& caller, const Params& in);
  [[nodiscard]] Result<std::string> authenticate(const auth::Principal& caller, const Params& in);
  // The same without blocking on the store's commit: `done` gets the body (or the error) once the login is
  // durable. Everything up to the signature check runs on the calling thread.
  void authenticate_async(const auth::Principal& caller, const Params& in, LoginDone done);
  [[nodiscard]] Result<std::string> register_key(const auth::Principal& caller, const Params& in);
  [[nodiscard]] Result<std::string> delete_key(const auth::Principal& caller, const Params& in);

 private:
  [[nodiscard]] Result<std::unique_ptr<PreparedLogin>> prepare_authentication(const auth::Principal& caller,
                                                                              const Params& in);
  ServiceContext& ctx_;
  // Client-made challenges already used per key (API.md 2.2, allow_client_challenges), 24 h.
  auth::EphemeralMap<bool> client_challenge_replay_;
  // Parsed device keys by SHA-256 of their SPKI: content-addressed, so an entry can never outlive the key
  // it stands for (the row is still read per login: ownership and deletion are always current).
  KeyCache<crypto::PublicKey> keys_;
};

// Writes the backend token response (API.md 0.5).
[[nodiscard]] std::string token_response_json(const auth::TokenSet& t);

// Finishes a prepared login (mobile or WebAuthn authenticate): commits it, then answers the backend token
// response. The async form does not block on the commit; `done` runs once the login is durable.
[[nodiscard]] Result<std::string> complete_login(auth::TokenService& tokens,
                                                 Result<std::unique_ptr<PreparedLogin>> prepared);
void complete_login_async(auth::TokenService& tokens, Result<std::unique_ptr<PreparedLogin>> prepared,
                          LoginDone done);

}  // namespace sigil::service
