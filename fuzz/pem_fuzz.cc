// Fuzz target for PEM certificate bundles (engine/crypto/pem.h, pem_certificates_to_der: attestation trust
// anchors).
//
// Properties:
//  - every error is kInvalidArgument;
//  - success ⇒ at least one certificate, each a DER X.509 certificate that d2i_X509 parses consuming every
//    byte and i2d_X509 re-encodes to the same bytes;
//  - the DER list written back as PEM (base64 in 64-column lines) converts to the same list.
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/crypto/base64.h"
#include "engine/crypto/pem.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;

void check_der(const Bytes& der) {
  FUZZ_CHECK(!der.empty(), "empty DER certificate");
  const unsigned char* p = der.data();
  std::unique_ptr<X509, decltype(&X509_free)> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())), &X509_free);
  FUZZ_CHECK(cert != nullptr, "DER certificate does not re-parse with d2i_X509");
  FUZZ_CHECK(p == der.data() + der.size(), "DER certificate has trailing bytes");
  unsigned char* out = nullptr;
  const int len = i2d_X509(cert.get(), &out);
  FUZZ_CHECK(len > 0, "re-parsed certificate does not encode");
  const Bytes again(out, out + len);
  OPENSSL_free(out);
  FUZZ_CHECK(again == der, "re-parsed certificate re-encodes differently");
}

std::string to_pem(const std::vector<Bytes>& ders) {
  std::string pem;
  for (const Bytes& der : ders) {
    const std::string b64 = sigil::crypto::base64_encode(der);
    pem += "-----BEGIN CERTIFICATE-----\n";
    for (size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
    pem += "-----END CERTIFICATE-----\n";
  }
  return pem;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto r = sigil::crypto::pem_certificates_to_der(input);
  if (!r) {
    FUZZ_CHECK(r.error().code == sigil::ErrorCode::kInvalidArgument, "PEM error is not kInvalidArgument");
    return 0;
  }
  FUZZ_CHECK(!r->empty(), "PEM bundle accepted without a certificate");
  for (const Bytes& der : *r) check_der(der);
  auto again = sigil::crypto::pem_certificates_to_der(to_pem(*r));
  FUZZ_CHECK(again.has_value() && *again == *r, "the certificates written back as PEM convert differently");
  return 0;
}
