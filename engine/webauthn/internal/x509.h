// X.509 helpers for attestation statements (OpenSSL 3). Certificates are untrusted input: parsed with
// d2i_X509 that must consume exactly the given bytes; OpenSSL's error queue is cleared after failures.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <openssl/x509.h>

#include "engine/base/result.h"
#include "engine/crypto/bytes.h"
#include "engine/crypto/cose_key.h"

namespace sigil::webauthn::internal {

struct X509Deleter {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

// Error helper: every registration failure is kInvalidArgument / auth_invalid_attestation.
[[nodiscard]] std::unexpected<Error> attestation_error(std::string message);

[[nodiscard]] Result<X509Ptr> parse_certificate(ByteView der);
[[nodiscard]] Result<std::vector<X509Ptr>> parse_certificates(const std::vector<Bytes>& ders);

// SubjectPublicKeyInfo DER of the certificate's key.
[[nodiscard]] Result<Bytes> certificate_spki(X509* cert);
// True when the certificate's public key is the same key as `key` (EVP_PKEY_eq on the public parts).
[[nodiscard]] bool certificate_key_equals(X509* cert, const crypto::CoseKey& key);

// The extnValue contents (inside the OCTET STRING) of the extension with `oid`; nullopt when absent;
// an error when it occurs more than once.
struct ExtensionValue {
  Bytes value;
  bool critical = false;
};
[[nodiscard]] Result<std::optional<ExtensionValue>> find_extension(X509* cert, const char* oid);

// id-fido-gen-ce-aaguid (1.3.6.1.4.1.45724.1.1.4): when present it must be a non-critical
// OCTET STRING of 16 bytes equal to `aaguid`.
[[nodiscard]] Result<void> check_aaguid_extension(X509* cert, const std::array<uint8_t, 16>& aaguid);

// §8.2.1 packed attestation certificate requirements.
[[nodiscard]] Result<void> check_packed_certificate(X509* cert);
// §8.3.1 TPM AIK certificate requirements.
[[nodiscard]] Result<void> check_tpm_aik_certificate(X509* cert);

// Verifies x5c[0] chains to one of `anchors_der` at `now_s` with x5c[1..] as untrusted intermediates.
// No partial chains; a self-signed certificate inside x5c is never an anchor.
[[nodiscard]] Result<void> verify_chain(const std::vector<Bytes>& x5c, const std::vector<Bytes>& anchors_der,
                                        int64_t now_s);

}  // namespace sigil::webauthn::internal
