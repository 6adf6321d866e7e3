// `sigil verify`: offline WebAuthn verification of JSON lines, with the same engine code as the server.
//
// Input, one JSON object per line: {ceremony: "create"|"get", rp_id, origins: [...], challenge (base64url),
// credential (PublicKeyCredential JSON, as toJSON() gives it), public_key (COSE, base64url; "get"),
// alg (COSE number; "get"), sign_count ("get"), user_verification: "required"|"preferred"|"discouraged",
// top_origins (optional: cross-origin iframes to accept)}.
// Output, one line per input: {ok: true|false, error: "<reason>"} plus, for "create": credential_id
// (base64url), public_key (COSE, base64url), alg, aaguid, fmt, attestation_type, flags; for "get":
// sign_count and flags.
#pragma once

#include <string>
#include <string_view>

namespace sigil::service {

[[nodiscard]] std::string verify_offline_line(std::string_view line, int64_t now_s);

}  // namespace sigil::service
