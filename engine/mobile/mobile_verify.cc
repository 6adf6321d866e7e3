#include "engine/mobile/mobile_verify.h"

#include "engine/crypto/base64.h"

namespace sigil::mobile {

Result<crypto::PublicKey> parse_device_key(std::string_view public_key_b64,
                                           std::optional<std::string_view> encryption_type) {
  if (encryption_type && *encryption_type != "ec" && *encryption_type != "rsa") {
    return invalid_argument("encryptionType must be 'rsa' or 'ec'", "auth_invalid_key_type");
  }
  if (public_key_b64.empty() || public_key_b64.size() > kMaxEncodedKeyChars) {
    return invalid_argument("publicKey is empty or too long", "auth_invalid_key_encoding");
  }
  auto der = crypto::base64_any_decode(public_key_b64);
  if (!der) return invalid_argument("publicKey is not valid base64", "auth_invalid_key_encoding");
  SIGIL_ASSIGN_OR_RETURN(crypto::PublicKey key, crypto::PublicKey::parse_any(*der));
  if (encryption_type && *encryption_type != key_type_name(key)) {
    return invalid_argument("encryptionType does not match the key", "auth_invalid_key_type");
  }
  return key;
}

std::string_view key_type_name(const crypto::PublicKey& key) noexcept {
  return key.type() == crypto::KeyType::kRsa ? "rsa" : "ec";
}

bool verify_device_signature(const crypto::PublicKey& key, std::string_view challenge,
                             std::string_view signature_b64) noexcept {
  if (signature_b64.empty() || signature_b64.size() > kMaxEncodedSignatureChars) return false;
  auto sig = crypto::base64_any_decode(signature_b64);
  if (!sig) return false;
  return key.verify(as_bytes(challenge), *sig);
}

}  // namespace sigil::mobile
