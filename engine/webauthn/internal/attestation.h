// Attestation statement verification procedures (WebAuthn L3 §8.2-§8.8).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.h"
#include "engine/cbor/cbor.h"
#include "engine/crypto/bytes.h"
#include "engine/crypto/cose_key.h"
#include "engine/crypto/digest.h"
#include "engine/webauthn/webauthn.h"

namespace sigil::webauthn::internal {

struct StatementResult {
  std::string attestation_type;  // "none", "self", "basic", "attca", "anonca"
  std::vector<Bytes> trust_path; // x5c (leaf first); empty for none/self
};

struct StatementInput {
  std::string_view fmt;
  const cbor::Value* att_stmt = nullptr;
  ByteView auth_data;                 // raw authenticatorData bytes
  const AuthenticatorData* parsed = nullptr;  // with attested credential data
  const crypto::CoseKey* credential_key = nullptr;
  const crypto::Sha256Digest* client_data_hash = nullptr;
};

// Runs the verification procedure of `fmt` (§7.1 steps 21-22). Unknown fmt → error.
[[nodiscard]] Result<StatementResult> verify_statement(const StatementInput& in);

}  // namespace sigil::webauthn::internal
