// X.509 helpers for attestation statements (see internal/x509.h).
#include "engine/webauthn/internal/x509.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <string_view>

#include "engine/webauthn/internal/der.h"

namespace sigil::webauthn::internal {
namespace {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct Asn1ObjectDeleter {
  void operator()(ASN1_OBJECT* o) const noexcept { ASN1_OBJECT_free(o); }
};
struct StoreDeleter {
  void operator()(X509_STORE* s) const noexcept { X509_STORE_free(s); }
};
struct StoreCtxDeleter {
  void operator()(X509_STORE_CTX* c) const noexcept { X509_STORE_CTX_free(c); }
};
struct StackDeleter {
  void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_free(s); }  // certificates owned elsewhere
};
struct GeneralNamesDeleter {
  void operator()(GENERAL_NAMES* g) const noexcept { GENERAL_NAMES_free(g); }
};
struct EkuDeleter {
  void operator()(EXTENDED_KEY_USAGE* e) const noexcept { EXTENDED_KEY_USAGE_free(e); }
};

std::unexpected<Error> fail(std::string message) {
  ERR_clear_error();
  return attestation_error(std::move(message));
}

std::unique_ptr<ASN1_OBJECT, Asn1ObjectDeleter> oid(const char* text) {
  return std::unique_ptr<ASN1_OBJECT, Asn1ObjectDeleter>(OBJ_txt2obj(text, /*no_name=*/1));
}

std::string_view asn1_string_view(const ASN1_STRING* s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s))};
}

// The text value of the single entry with `nid` in `name`; nullopt when absent or repeated.
std::optional<std::string_view> single_name_entry(const X509_NAME* name, int nid) {
  const int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return std::nullopt;
  if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0) return std::nullopt;
  const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, idx);
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(entry);
  if (data == nullptr) return std::nullopt;
  return asn1_string_view(data);
}

Result<void> check_basic_constraints_not_ca(X509* cert) {
  int crit = 0;
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr));
  if (bc == nullptr) return fail("attestation certificate: basicConstraints missing or malformed");
  const bool is_ca = bc->ca != 0;
  BASIC_CONSTRAINTS_free(bc);
  if (is_ca) return fail("attestation certificate: basicConstraints CA must be false");
  return {};
}

bool is_tpm_manufacturer_id(std::string_view v) {
  // TPMv2-EK-Profile 3.2.9: "id:" followed by the 4-byte vendor id in 8 upper-case hex digits.
  if (v.size() != 11 || v.substr(0, 3) != "id:") return false;
  for (char c : v.substr(3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

}  // namespace

std::unexpected<Error> attestation_error(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message), "auth_invalid_attestation");
}

Result<X509Ptr> parse_certificate(ByteView der) {
  if (der.empty() || der.size() > 16 * 1024) return fail("x5c: certificate empty or too large");
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return fail("x5c: certificate does not parse");
  if (p != der.data() + der.size()) return fail("x5c: trailing bytes after certificate");
  return cert;
}

Result<std::vector<X509Ptr>> parse_certificates(const std::vector<Bytes>& ders) {
  std::vector<X509Ptr> out;
  out.reserve(ders.size());
  for (const Bytes& d : ders) {
    SIGIL_ASSIGN_OR_RETURN(X509Ptr c, parse_certificate(d));
    out.push_back(std::move(c));
  }
  return out;
}

Result<Bytes> certificate_spki(X509* cert) {
  X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert);
  if (pub == nullptr) return fail("attestation certificate: no public key");
  unsigned char* buf = nullptr;
  const int len = i2d_X509_PUBKEY(pub, &buf);
  if (len <= 0) return fail("attestation certificate: public key does not encode");
  Bytes out(buf, buf + len);
  OPENSSL_free(buf);
  return out;
}

bool certificate_key_equals(X509* cert, const crypto::CoseKey& key) {
  EVP_PKEY* cert_key = X509_get0_pubkey(cert);
  const Bytes& spki = key.spki_der();
  if (cert_key == nullptr || spki.empty()) {
    ERR_clear_error();
    return false;
  }
  const unsigned char* p = spki.data();
  std::unique_ptr<EVP_PKEY, EvpPkeyDeleter> cred(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
  const bool equal = cred && EVP_PKEY_eq(cert_key, cred.get()) == 1;
  ERR_clear_error();
  return equal;
}

Result<std::optional<ExtensionValue>> find_extension(X509* cert, const char* oid_text) {
  auto obj = oid(oid_text);
  if (!obj) return internal_error("OID does not parse");
  const int idx = X509_get_ext_by_OBJ(cert, obj.get(), -1);
  if (idx < 0) return std::optional<ExtensionValue>{};
  if (X509_get_ext_by_OBJ(cert, obj.get(), idx) >= 0) return fail("attestation certificate: repeated extension");
  X509_EXTENSION* ext = X509_get_ext(cert, idx);
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  ExtensionValue v;
  v.critical = X509_EXTENSION_get_critical(ext) == 1;
  const unsigned char* d = ASN1_STRING_get0_data(data);
  v.value.assign(d, d + ASN1_STRING_length(data));
  return std::optional<ExtensionValue>(std::move(v));
}

Result<void> check_aaguid_extension(X509* cert, const std::array<uint8_t, 16>& aaguid) {
  SIGIL_ASSIGN_OR_RETURN(auto ext, find_extension(cert, "1.3.6.1.4.1.45724.1.1.4"));
  if (!ext) return {};
  if (ext->critical) return fail("attestation certificate: aaguid extension must not be critical");
  DerReader r(ext->value);
  ByteView body;
  if (!r.expect(kDerOctetString, false, &body) || !r.empty() || body.size() != 16) {
    return fail("attestation certificate: aaguid extension malformed");
  }
  if (std::memcmp(body.data(), aaguid.data(), 16) != 0) {
    return fail("attestation certificate: aaguid extension does not match authenticatorData");
  }
  return {};
}

Result<void> check_packed_certificate(X509* cert) {
  if (X509_get_version(cert) != X509_VERSION_3) return fail("packed: certificate version must be 3");
  const X509_NAME* subject = X509_get_subject_name(cert);
  auto c = single_name_entry(subject, NID_countryName);
  auto o = single_name_entry(subject, NID_organizationName);
  auto ou = single_name_entry(subject, NID_organizationalUnitName);
  auto cn = single_name_entry(subject, NID_commonName);
  if (!c || c->size() != 2) return fail("packed: certificate subject C missing");
  if (!o || o->empty()) return fail("packed: certificate subject O missing");
  if (!ou || *ou != "Authenticator Attestation") {
    return fail("packed: certificate subject OU must be \"Authenticator Attestation\"");
  }
  if (!cn) return fail("packed: certificate subject CN missing");
  return check_basic_constraints_not_ca(cert);
}

Result<void> check_tpm_aik_certificate(X509* cert) {
  if (X509_get_version(cert) != X509_VERSION_3) return fail("tpm: AIK certificate version must be 3");
  if (X509_NAME_entry_count(X509_get_subject_name(cert)) != 0) {
    return fail("tpm: AIK certificate subject must be empty");
  }
  // Subject Alternative Name (TPMv2-EK-Profile 3.2.9): critical (the subject is empty, RFC 5280
  // 4.2.1.6), one directoryName holding tcpaTpmManufacturer, tcpaTpmModel and tcpaTpmVersion.
  int san_crit = 0;
  std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter> san(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &san_crit, nullptr)));
  if (!san) return fail("tpm: AIK certificate subjectAltName missing or malformed");
  if (san_crit != 1) return fail("tpm: AIK certificate subjectAltName must be critical");
  auto manufacturer_oid = oid("2.23.133.2.1");
  auto model_oid = oid("2.23.133.2.2");
  auto version_oid = oid("2.23.133.2.3");
  bool found = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(san.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(san.get(), i);
    if (gn->type != GEN_DIRNAME) continue;
    const X509_NAME* dn = gn->d.directoryName;
    auto text_of = [&](const ASN1_OBJECT* o) -> std::optional<std::string_view> {
      const int idx = X509_NAME_get_index_by_OBJ(dn, o, -1);
      if (idx < 0 || X509_NAME_get_index_by_OBJ(dn, o, idx) >= 0) return std::nullopt;
      return asn1_string_view(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(dn, idx)));
    };
    auto manufacturer = text_of(manufacturer_oid.get());
    auto model = text_of(model_oid.get());
    auto version = text_of(version_oid.get());
    if (manufacturer && model && version && is_tpm_manufacturer_id(*manufacturer) && !model->empty() &&
        !version->empty()) {
      found = true;
      break;
    }
  }
  if (!found) return fail("tpm: AIK certificate subjectAltName lacks TPM manufacturer/model/version");
  std::unique_ptr<EXTENDED_KEY_USAGE, EkuDeleter> eku(
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  if (!eku) return fail("tpm: AIK certificate extendedKeyUsage missing");
  auto aik_oid = oid("2.23.133.8.3");
  bool has_aik = false;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    if (OBJ_cmp(sk_ASN1_OBJECT_value(eku.get(), i), aik_oid.get()) == 0) has_aik = true;
  }
  if (!has_aik) return fail("tpm: AIK certificate extendedKeyUsage lacks tcg-kp-AIKCertificate");
  return check_basic_constraints_not_ca(cert);
}

Result<void> verify_chain(const std::vector<Bytes>& x5c, const std::vector<Bytes>& anchors_der, int64_t now_s) {
  if (x5c.empty()) return fail("trust: no certificate chain");
  if (anchors_der.empty()) return fail("trust: no trust anchors configured");
  SIGIL_ASSIGN_OR_RETURN(auto chain, parse_certificates(x5c));
  SIGIL_ASSIGN_OR_RETURN(auto anchors, parse_certificates(anchors_der));
  std::unique_ptr<X509_STORE, StoreDeleter> store(X509_STORE_new());
  if (!store) return fail("trust: out of memory");
  for (auto& a : anchors) {
    if (X509_STORE_add_cert(store.get(), a.get()) != 1) return fail("trust: anchor not accepted");
  }
  // Intermediates only ever untrusted; a self-signed certificate here is never a trust anchor (OpenSSL
  // reports X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN unless the same certificate is a configured anchor).
  std::unique_ptr<STACK_OF(X509), StackDeleter> untrusted(sk_X509_new_null());
  if (!untrusted) return fail("trust: out of memory");
  for (size_t i = 1; i < chain.size(); ++i) {
    if (sk_X509_push(untrusted.get(), chain[i].get()) <= 0) return fail("trust: out of memory");
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxDeleter> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1) {
    return fail("trust: cannot initialise verification");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(now_s));
  X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    return fail(std::string("trust: certificate chain does not verify: ") + X509_verify_cert_error_string(err));
  }
  ERR_clear_error();
  return {};
}

}  // namespace sigil::webauthn::internal
