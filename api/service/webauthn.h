// API.md section 3: WebAuthn registration and login, backend-to-backend.
//
// Guarantees: a ceremony (webauthn_session_id) is single use — consumed on success and on failure — and
// lives `timeout` + 30 s; the challenge is matched in constant time by the engine; the credential must
// belong to the app, to the user the ceremony named, and be in allowCredentials when that was non-empty;
// a sign-count regression flags the credential, which is refused from then on; an unknown username gets
// options that look like a real user's (allowCredentials derived from a server secret, stable per name);
// a credential is stored (with what §7.1 step 26 lists) durably before the 200.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/auth/ephemeral.h"
#include "api/auth/tokens.h"
#include "api/service/context.h"
#include "api/service/key_cache.h"
#include "api/service/params.h"
#include "engine/webauthn/webauthn.h"

namespace sigil::service {

// A PublicKeyCredential as the browser hands it over (toJSON() form or the SDK envelope's member).
struct ParsedCredential {
  Bytes raw_id;
  std::string type;
  std::string authenticator_attachment;  // "platform" | "cross-platform" | ""
  Bytes client_data_json;
  Bytes authenticator_data;   // assertion
  Bytes signature;            // assertion
  Bytes user_handle;          // assertion; empty = none
  Bytes attestation_object;   // registration
  std::vector<std::string> transports;
};

// webauthn_encoded_result (API.md 3.1), decoded: base64 (either alphabet) of JSON, <= 32 KiB decoded.
struct EncodedResult {
  std::string session_id;        // envelope form only
  ParsedCredential credential;
  std::string device_info_json;  // deviceInfo, when present
};

[[nodiscard]] Result<EncodedResult> decode_encoded_result(std::string_view encoded);
// Parses the JSON text of one PublicKeyCredential (toJSON() form).
[[nodiscard]] Result<ParsedCredential> parse_credential_json(std::string_view json);

// Start responses carry the app's origins so the adapter can answer CORS for exactly those.
struct StartReply {
  std::string body;
  std::vector<std::string> cors_origins;
};

class WebAuthn {
 public:
  explicit WebAuthn(ServiceContext& ctx);

  [[nodiscard]] Result<StartReply> authenticate_start(const Params& in);
  [[nodiscard]] Result<StartReply> register_start(const Params& in);
  [[nodiscard]] Result<std::string> authenticate(const auth::Principal& caller, const Params& in);
  // The same without blocking on the store's commit (see MobileBiometrics::authenticate_async).
  void authenticate_async(const auth::Principal& caller, const Params& in, LoginDone done);
  [[nodiscard]] Result<std::string> register_credential(const auth::Principal& caller, const Params& in);
  [[nodiscard]] Result<std::string> external_register(const auth::Principal& caller, const Params& in);
  [[nodiscard]] Result<std::string> hosted_hint(const auth::Principal& caller, const Params& in);
  // DELETE /v1/auth/webauthn/credentials/{id}: the caller's own credential only.
  [[nodiscard]] Result<std::string> delete_credential(const auth::Principal& caller, std::string_view id);
  // Every origin some app allows (CORS preflight, which carries no client_id).
  [[nodiscard]] Result<bool> origin_known(std::string_view origin);

  struct Ceremony {
    std::string id;              // webauthn_session_id
    bool registration = false;
    std::string app_id;
    std::string user_id;         // authentication: the user the ceremony named, when it named one
    Bytes challenge;
    std::string username;        // empty = usernameless
    std::string display_name;
    Bytes user_handle;           // registration: the user.id of the options
    std::string approval_data_json;
    std::vector<Bytes> allowed_credentials;
    bool hosted = false;         // a hosted-page ceremony: never completed through the backend endpoints
  };
  struct HostedRegistration {
    std::string app_id, identifier, display_name, external_user_id, redirect_uri;
  };

  // ---- for the hosted pages (api/service/hosted.h) ----
  // Ceremonies bound to a hosted ticket: their id never leaves the server (the hosted service keeps it), the
  // backend endpoints refuse them, and the relying party accepts sigil's own origin (public_url) besides the
  // app's origins. Options are the `publicKey` member of navigator.credentials.get/create with every binary
  // field base64url.
  struct HostedAssertion {
    store::User user;
    store::WebAuthnCredential credential;
    std::vector<std::pair<std::string, std::string>> id_claims;  // `webauthn`, `webauthn_username`
  };
  // user_id empty = usernameless (discoverable credentials); else that user's credentials (404 when none).
  [[nodiscard]] Result<std::string> hosted_assertion_options(const store::App& app, const std::string& user_id,
                                                             std::string* ceremony_id);
  // Verifies a PublicKeyCredential (toJSON() text) against the ceremony (consumed whatever the outcome) and
  // moves the credential's sign count; no token session is created here.
  [[nodiscard]] Result<HostedAssertion> hosted_finish_assertion(const store::App& app, const std::string& ceremony_id,
                                                                std::string_view credential_json);
  [[nodiscard]] Result<std::string> hosted_registration_options(const store::App& app, const std::string& username,
                                                                const std::string& display_name,
                                                                std::string* ceremony_id);
  // Stores the credential (and `user` when user_created) in one transaction; returns its id, base64url.
  [[nodiscard]] Result<std::string> hosted_finish_registration(const store::App& app, const std::string& ceremony_id,
                                                               const store::User& user, bool user_created,
                                                               std::string_view credential_json);
  // The hosted-registration hint (3.7) behind a register_webauthn_cred_token: peek leaves it, take removes it.
  [[nodiscard]] std::optional<HostedRegistration> peek_hosted_registration(std::string_view token);
  [[nodiscard]] std::optional<HostedRegistration> take_hosted_registration(std::string_view token);

 private:
  [[nodiscard]] Result<std::unique_ptr<PreparedLogin>> prepare_authentication(const auth::Principal& caller,
                                                                              const Params& in);
  struct AssertionOutcome {
    store::WebAuthnCredential credential;
    store::User user;
    std::string claim;  // the `webauthn` ID-token claim
    uint32_t sign_count = 0;
    uint8_t flags = 0;
  };
  [[nodiscard]] Result<AssertionOutcome> verify_assertion_for(const store::App& app, const Ceremony& ceremony,
                                                              const ParsedCredential& cred_in,
                                                              const webauthn::RelyingParty& rp);
  [[nodiscard]] webauthn::RelyingParty hosted_relying_party(const store::App& app) const;
  [[nodiscard]] std::string hosted_token_key(std::string_view token) const;
  [[nodiscard]] Result<store::App> app_for_client_id(const Params& in);
  [[nodiscard]] Result<Ceremony> take_ceremony(const EncodedResult& result, bool registration);
  [[nodiscard]] Result<std::string> finish_registration(const auth::Principal& caller, const store::App& app,
                                                        const store::User& user, bool user_created,
                                                        const EncodedResult& result, const Ceremony& ceremony,
                                                        const std::string& external_user_id,
                                                        const webauthn::RelyingParty* rp_override = nullptr,
                                                        std::string* credential_id_out = nullptr);

  ServiceContext& ctx_;
  auth::EphemeralMap<Ceremony> ceremonies_;     // webauthn_session_id -> ceremony
  auth::EphemeralMap<std::string> by_challenge_;  // base64url(challenge) -> webauthn_session_id
  auth::EphemeralMap<HostedRegistration> hosted_;
  // Parsed credential keys by SHA-256 of their COSE bytes: parsed once, not per login. Content-addressed,
  // so no entry can outlive its key (the credential row is still read per login for its sign count).
  KeyCache<crypto::CoseKey> keys_;
};

}  // namespace sigil::service
