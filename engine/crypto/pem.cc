#include "engine/crypto/pem.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

namespace sigil::crypto {

Result<std::vector<Bytes>> pem_certificates_to_der(std::string_view pem) {
  if (pem.size() > 1024 * 1024) return invalid_argument("PEM bundle too large");
  if (pem.empty()) return invalid_argument("no certificate in PEM");  // BIO_new_mem_buf(nullptr, 0) fails
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                 &BIO_free);
  if (!bio) return internal_error();
  std::vector<Bytes> out;
  for (;;) {
    X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (raw == nullptr) {
      const unsigned long err = ERR_peek_last_error();
      ERR_clear_error();
      // End of input is reported as "no start line"; anything else is a malformed block.
      if (ERR_GET_REASON(err) == PEM_R_NO_START_LINE && !out.empty()) break;
      return invalid_argument(out.empty() ? "no certificate in PEM" : "malformed certificate in PEM");
    }
    std::unique_ptr<X509, decltype(&X509_free)> cert(raw, &X509_free);
    const int len = i2d_X509(cert.get(), nullptr);
    if (len <= 0) return invalid_argument("malformed certificate in PEM");
    Bytes der(static_cast<size_t>(len));
    unsigned char* p = der.data();
    i2d_X509(cert.get(), &p);
    out.push_back(std::move(der));
  }
  return out;
}

}  // namespace sigil::crypto
