// Attestation statement formats: none, packed, fido-u2f, tpm, android-key, apple (WebAuthn L3 §8.2-§8.8).
//
// Every procedure verifies the statement's own signature and binding to authenticatorData/clientDataHash;
// trust in the certificate chain is decided separately (webauthn.cc, TrustPolicy).
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string_view>

#include "engine/crypto/digest.h"
#include "engine/webauthn/internal/attestation.h"
#include "engine/webauthn/internal/der.h"
#include "engine/webauthn/internal/reader.h"
#include "engine/webauthn/internal/x509.h"

namespace sigil::webauthn::internal {
namespace {

constexpr size_t kMaxX5cCertificates = 8;

// ---- statement field access --------------------------------------------------------------------

// Every key of the attStmt map must be a text string from `allowed` (the formats' CDDL maps are closed).
Result<void> only_keys(const cbor::Value& stmt, std::string_view fmt, std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : stmt.map()) {
    (void)v;
    if (k.type() != cbor::Value::Type::kText ||
        std::find(allowed.begin(), allowed.end(), std::string_view(k.text())) == allowed.end()) {
      return attestation_error(std::string(fmt) + ": unexpected attStmt member");
    }
  }
  return {};
}

Result<int64_t> get_alg(const cbor::Value& stmt, std::string_view fmt) {
  const cbor::Value* v = stmt.find("alg");
  if (v == nullptr || !v->is_int()) return attestation_error(std::string(fmt) + ": attStmt alg missing");
  auto alg = v->as_int();
  if (!alg) return attestation_error(std::string(fmt) + ": attStmt alg out of range");
  return *alg;
}

Result<const Bytes*> get_bytes(const cbor::Value& stmt, std::string_view key, std::string_view fmt) {
  const cbor::Value* v = stmt.find(key);
  if (v == nullptr || v->type() != cbor::Value::Type::kBytes || v->bytes().empty()) {
    return attestation_error(std::string(fmt) + ": attStmt " + std::string(key) + " missing");
  }
  return &v->bytes();
}

Result<std::vector<Bytes>> get_x5c(const cbor::Value& stmt, std::string_view fmt) {
  const cbor::Value* v = stmt.find("x5c");
  if (v == nullptr || v->type() != cbor::Value::Type::kArray || v->array().empty()) {
    return attestation_error(std::string(fmt) + ": attStmt x5c missing or empty");
  }
  if (v->array().size() > kMaxX5cCertificates) return attestation_error(std::string(fmt) + ": x5c too long");
  std::vector<Bytes> out;
  for (const cbor::Value& c : v->array()) {
    if (c.type() != cbor::Value::Type::kBytes || c.bytes().empty()) {
      return attestation_error(std::string(fmt) + ": x5c element is not a certificate");
    }
    out.push_back(c.bytes());
  }
  return out;
}

Bytes concat(ByteView a, ByteView b) {
  Bytes out;
  out.reserve(a.size() + b.size());
  out.insert(out.end(), a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// ---- digests ---------------------------------------------------------------------------------------

struct MdDeleter {
  void operator()(EVP_MD* m) const noexcept { EVP_MD_free(m); }
};

// Fetched once per algorithm (CONVENTIONS.md: implicit lookups take locks).
const EVP_MD* fetched_md(const char* name) {
  static const std::unique_ptr<EVP_MD, MdDeleter> sha1(EVP_MD_fetch(nullptr, "SHA1", nullptr));
  static const std::unique_ptr<EVP_MD, MdDeleter> sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  static const std::unique_ptr<EVP_MD, MdDeleter> sha384(EVP_MD_fetch(nullptr, "SHA384", nullptr));
  static const std::unique_ptr<EVP_MD, MdDeleter> sha512(EVP_MD_fetch(nullptr, "SHA512", nullptr));
  const std::string_view n(name);
  if (n == "SHA1") return sha1.get();
  if (n == "SHA256") return sha256.get();
  if (n == "SHA384") return sha384.get();
  if (n == "SHA512") return sha512.get();
  return nullptr;
}

std::optional<Bytes> digest(const char* name, ByteView data) {
  const EVP_MD* md = fetched_md(name);
  if (md == nullptr) return std::nullopt;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) return std::nullopt;
  return Bytes(out, out + len);
}

// Hash algorithm of a COSE signature algorithm (TPM extraData).
const char* cose_alg_hash(int64_t alg) {
  switch (alg) {
    case crypto::cose_alg::kES256:
    case crypto::cose_alg::kRS256:
    case crypto::cose_alg::kPS256: return "SHA256";
    case crypto::cose_alg::kES384: return "SHA384";
    case crypto::cose_alg::kES512: return "SHA512";
    case crypto::cose_alg::kRS1: return "SHA1";
    default: return nullptr;
  }
}

// ---- COSE key components ------------------------------------------------------------------------

struct CoseParts {
  int64_t kty = 0;
  int64_t crv = 0;   // EC2
  Bytes x, y;        // EC2
  Bytes n, e;        // RSA
};

Result<CoseParts> cose_parts(const crypto::CoseKey& key) {
  auto map = cbor::decode(key.cose_bytes());
  if (!map || map->type() != cbor::Value::Type::kMap) return attestation_error("credential public key malformed");
  CoseParts p;
  const cbor::Value* kty = map->find(int64_t{1});
  if (kty == nullptr || !kty->is_int()) return attestation_error("credential public key kty missing");
  p.kty = kty->as_int().value_or(0);
  auto bytes_of = [&](int64_t label, Bytes* out) {
    const cbor::Value* v = map->find(label);
    if (v != nullptr && v->type() == cbor::Value::Type::kBytes) *out = v->bytes();
  };
  if (p.kty == 2) {
    const cbor::Value* crv = map->find(int64_t{-1});
    if (crv == nullptr || !crv->is_int()) return attestation_error("credential public key crv missing");
    p.crv = crv->as_int().value_or(0);
    bytes_of(-2, &p.x);
    bytes_of(-3, &p.y);
  } else if (p.kty == 3) {
    bytes_of(-1, &p.n);
    bytes_of(-2, &p.e);
  }
  return p;
}

ByteView strip_leading_zeros(ByteView b) {
  size_t i = 0;
  while (i < b.size() && b[i] == 0) ++i;
  return b.subspan(i);
}

// ---- none ------------------------------------------------------------------------------------------

Result<StatementResult> verify_none(const StatementInput& in) {
  if (!in.att_stmt->map().empty()) return attestation_error("none: attStmt must be an empty map");
  return StatementResult{"none", {}};
}

// ---- packed (§8.2) ---------------------------------------------------------------------------------

Result<StatementResult> verify_packed(const StatementInput& in) {
  const cbor::Value& stmt = *in.att_stmt;
  SIGIL_TRY(only_keys(stmt, "packed", {"alg", "sig", "x5c"}));
  SIGIL_ASSIGN_OR_RETURN(int64_t alg, get_alg(stmt, "packed"));
  SIGIL_ASSIGN_OR_RETURN(const Bytes* sig, get_bytes(stmt, "sig", "packed"));
  const Bytes signed_data = concat(in.auth_data, *in.client_data_hash);
  if (stmt.find("x5c") != nullptr) {
    SIGIL_ASSIGN_OR_RETURN(std::vector<Bytes> x5c, get_x5c(stmt, "packed"));
    SIGIL_ASSIGN_OR_RETURN(X509Ptr leaf, parse_certificate(x5c[0]));
    SIGIL_ASSIGN_OR_RETURN(Bytes spki, certificate_spki(leaf.get()));
    auto key = crypto::CoseKey::from_spki(spki, alg);
    if (!key) return attestation_error("packed: attestation certificate key does not fit alg");
    if (!key->verify(signed_data, *sig)) return attestation_error("packed: attestation signature invalid");
    SIGIL_TRY(check_packed_certificate(leaf.get()));
    SIGIL_TRY(check_aaguid_extension(leaf.get(), in.parsed->attested->aaguid));
    return StatementResult{"basic", std::move(x5c)};
  }
  // Self attestation.
  if (alg != in.credential_key->alg()) return attestation_error("packed: self attestation alg differs from the credential key");
  if (!in.credential_key->verify(signed_data, *sig)) return attestation_error("packed: self attestation signature invalid");
  return StatementResult{"self", {}};
}

// ---- fido-u2f (§8.6) -------------------------------------------------------------------------------

Result<StatementResult> verify_fido_u2f(const StatementInput& in) {
  const cbor::Value& stmt = *in.att_stmt;
  SIGIL_TRY(only_keys(stmt, "fido-u2f", {"sig", "x5c"}));
  SIGIL_ASSIGN_OR_RETURN(const Bytes* sig, get_bytes(stmt, "sig", "fido-u2f"));
  SIGIL_ASSIGN_OR_RETURN(std::vector<Bytes> x5c, get_x5c(stmt, "fido-u2f"));
  if (x5c.size() != 1) return attestation_error("fido-u2f: x5c must hold exactly one certificate");
  SIGIL_ASSIGN_OR_RETURN(X509Ptr cert, parse_certificate(x5c[0]));
  SIGIL_ASSIGN_OR_RETURN(Bytes spki, certificate_spki(cert.get()));
  // ES256 fixes the key type to EC P-256 (CoseKey refuses any other curve for ES256).
  auto cert_key = crypto::CoseKey::from_spki(spki, crypto::cose_alg::kES256);
  if (!cert_key) return attestation_error("fido-u2f: attestation certificate key is not P-256");
  if (in.credential_key->alg() != crypto::cose_alg::kES256) {
    return attestation_error("fido-u2f: credential key must be ES256");
  }
  SIGIL_ASSIGN_OR_RETURN(CoseParts parts, cose_parts(*in.credential_key));
  if (parts.kty != 2 || parts.crv != 1 || parts.x.size() != 32 || parts.y.size() != 32) {
    return attestation_error("fido-u2f: credential key must be EC2 P-256");
  }
  const auto& attested = *in.parsed->attested;
  Bytes data;
  data.reserve(1 + 32 + 32 + attested.credential_id.size() + 65);
  data.push_back(0x00);
  data.insert(data.end(), in.parsed->rp_id_hash.begin(), in.parsed->rp_id_hash.end());
  data.insert(data.end(), in.client_data_hash->begin(), in.client_data_hash->end());
  data.insert(data.end(), attested.credential_id.begin(), attested.credential_id.end());
  data.push_back(0x04);
  data.insert(data.end(), parts.x.begin(), parts.x.end());
  data.insert(data.end(), parts.y.begin(), parts.y.end());
  if (!cert_key->verify(data, *sig)) return attestation_error("fido-u2f: attestation signature invalid");
  return StatementResult{"basic", std::move(x5c)};
}

// ---- tpm (§8.3) ------------------------------------------------------------------------------------

constexpr uint16_t kTpmAlgRsa = 0x0001;
constexpr uint16_t kTpmAlgSha1 = 0x0004;
constexpr uint16_t kTpmAlgSha256 = 0x000B;
constexpr uint16_t kTpmAlgSha384 = 0x000C;
constexpr uint16_t kTpmAlgSha512 = 0x000D;
constexpr uint16_t kTpmAlgNull = 0x0010;
constexpr uint16_t kTpmAlgEcc = 0x0023;
constexpr uint32_t kTpmGeneratedValue = 0xff544347;
constexpr uint16_t kTpmStAttestCertify = 0x8017;

const char* tpm_hash_name(uint16_t alg) {
  switch (alg) {
    case kTpmAlgSha1: return "SHA1";
    case kTpmAlgSha256: return "SHA256";
    case kTpmAlgSha384: return "SHA384";
    case kTpmAlgSha512: return "SHA512";
    default: return nullptr;
  }
}

struct TpmPublic {
  uint16_t type = 0;
  uint16_t name_alg = 0;
  // RSA
  uint32_t exponent = 0;
  ByteView modulus;
  // ECC
  uint16_t curve = 0;
  ByteView x, y;
};

// TPMT_SYM_DEF_OBJECT / TPMT_*_SCHEME: an algorithm id followed by details unless it is TPM_ALG_NULL.
bool skip_sym_def(ByteReader& r) {
  uint16_t alg = 0;
  if (!r.u16(&alg)) return false;
  return alg == kTpmAlgNull || r.skip(4);  // keyBits + mode
}
bool skip_scheme(ByteReader& r) {
  uint16_t alg = 0;
  if (!r.u16(&alg)) return false;
  return alg == kTpmAlgNull || r.skip(2);  // hashAlg of the signing scheme / KDF
}

Result<TpmPublic> parse_pub_area(ByteView data) {
  ByteReader r(data);
  TpmPublic p;
  uint32_t attributes = 0;
  ByteView auth_policy;
  if (!r.u16(&p.type) || !r.u16(&p.name_alg) || !r.u32(&attributes) || !r.sized16(&auth_policy)) {
    return attestation_error("tpm: pubArea truncated");
  }
  if (p.type == kTpmAlgRsa) {
    uint16_t key_bits = 0;
    if (!skip_sym_def(r) || !skip_scheme(r) || !r.u16(&key_bits) || !r.u32(&p.exponent) ||
        !r.sized16(&p.modulus)) {
      return attestation_error("tpm: pubArea RSA parameters truncated");
    }
  } else if (p.type == kTpmAlgEcc) {
    if (!skip_sym_def(r) || !skip_scheme(r) || !r.u16(&p.curve) || !skip_scheme(r) || !r.sized16(&p.x) ||
        !r.sized16(&p.y)) {
      return attestation_error("tpm: pubArea ECC parameters truncated");
    }
  } else {
    return attestation_error("tpm: pubArea type must be RSA or ECC");
  }
  if (!r.empty()) return attestation_error("tpm: trailing bytes after pubArea");
  return p;
}

Result<void> pub_area_matches(const TpmPublic& p, const crypto::CoseKey& key) {
  SIGIL_ASSIGN_OR_RETURN(CoseParts c, cose_parts(key));
  if (p.type == kTpmAlgRsa) {
    if (c.kty != 3) return attestation_error("tpm: pubArea type differs from the credential key");
    if (!crypto::ct_equal(strip_leading_zeros(p.modulus), strip_leading_zeros(c.n))) {
      return attestation_error("tpm: pubArea modulus differs from the credential key");
    }
    const uint64_t tpm_e = p.exponent == 0 ? 65537 : p.exponent;
    const ByteView e = strip_leading_zeros(c.e);
    if (e.empty() || e.size() > 4) return attestation_error("tpm: credential key exponent malformed");
    uint64_t cose_e = 0;
    for (uint8_t b : e) cose_e = (cose_e << 8) | b;
    if (cose_e != tpm_e) return attestation_error("tpm: pubArea exponent differs from the credential key");
    return {};
  }
  // ECC: TPM_ECC_NIST_P256/P384/P521 → COSE crv 1/2/3.
  int64_t crv = 0;
  switch (p.curve) {
    case 0x0003: crv = 1; break;
    case 0x0004: crv = 2; break;
    case 0x0005: crv = 3; break;
    default: return attestation_error("tpm: pubArea curve not supported");
  }
  if (c.kty != 2 || c.crv != crv) return attestation_error("tpm: pubArea curve differs from the credential key");
  if (!crypto::ct_equal(p.x, c.x) || !crypto::ct_equal(p.y, c.y)) {
    return attestation_error("tpm: pubArea point differs from the credential key");
  }
  return {};
}

struct TpmAttest {
  ByteView extra_data;
  ByteView attested_name;
};

Result<TpmAttest> parse_cert_info(ByteView data) {
  ByteReader r(data);
  uint32_t magic = 0;
  uint16_t type = 0;
  ByteView qualified_signer, qualified_name;
  TpmAttest a;
  if (!r.u32(&magic) || !r.u16(&type)) return attestation_error("tpm: certInfo truncated");
  if (magic != kTpmGeneratedValue) return attestation_error("tpm: certInfo magic is not TPM_GENERATED_VALUE");
  if (type != kTpmStAttestCertify) return attestation_error("tpm: certInfo type is not TPM_ST_ATTEST_CERTIFY");
  // qualifiedSigner, extraData, clockInfo (clock 8, resetCount 4, restartCount 4, safe 1),
  // firmwareVersion 8, then TPMS_CERTIFY_INFO {name, qualifiedName}.
  if (!r.sized16(&qualified_signer) || !r.sized16(&a.extra_data) || !r.skip(17) || !r.skip(8) ||
      !r.sized16(&a.attested_name) || !r.sized16(&qualified_name)) {
    return attestation_error("tpm: certInfo truncated");
  }
  if (!r.empty()) return attestation_error("tpm: trailing bytes after certInfo");
  return a;
}

Result<StatementResult> verify_tpm(const StatementInput& in) {
  const cbor::Value& stmt = *in.att_stmt;
  if (stmt.find("ecdaaKeyId") != nullptr) return attestation_error("tpm: ECDAA is not supported");
  SIGIL_TRY(only_keys(stmt, "tpm", {"ver", "alg", "x5c", "sig", "certInfo", "pubArea"}));
  const cbor::Value* ver = stmt.find("ver");
  if (ver == nullptr || ver->type() != cbor::Value::Type::kText || ver->text() != "2.0") {
    return attestation_error("tpm: ver must be \"2.0\"");
  }
  SIGIL_ASSIGN_OR_RETURN(int64_t alg, get_alg(stmt, "tpm"));
  SIGIL_ASSIGN_OR_RETURN(const Bytes* sig, get_bytes(stmt, "sig", "tpm"));
  SIGIL_ASSIGN_OR_RETURN(const Bytes* cert_info, get_bytes(stmt, "certInfo", "tpm"));
  SIGIL_ASSIGN_OR_RETURN(const Bytes* pub_area, get_bytes(stmt, "pubArea", "tpm"));
  SIGIL_ASSIGN_OR_RETURN(std::vector<Bytes> x5c, get_x5c(stmt, "tpm"));

  SIGIL_ASSIGN_OR_RETURN(TpmPublic pub, parse_pub_area(*pub_area));
  SIGIL_TRY(pub_area_matches(pub, *in.credential_key));

  SIGIL_ASSIGN_OR_RETURN(TpmAttest attest, parse_cert_info(*cert_info));
  const char* hash_name = cose_alg_hash(alg);
  if (hash_name == nullptr) return attestation_error("tpm: alg not supported");
  const Bytes att_to_be_signed = concat(in.auth_data, *in.client_data_hash);
  auto expected_extra = digest(hash_name, att_to_be_signed);
  if (!expected_extra || !crypto::ct_equal(attest.extra_data, *expected_extra)) {
    return attestation_error("tpm: certInfo extraData is not the hash of attToBeSigned");
  }
  const char* name_hash = tpm_hash_name(pub.name_alg);
  if (name_hash == nullptr) return attestation_error("tpm: pubArea nameAlg not supported");
  auto pub_digest = digest(name_hash, *pub_area);
  if (!pub_digest) return internal_error("digest failed");
  Bytes name{static_cast<uint8_t>(pub.name_alg >> 8), static_cast<uint8_t>(pub.name_alg & 0xff)};
  name.insert(name.end(), pub_digest->begin(), pub_digest->end());
  if (!crypto::ct_equal(attest.attested_name, name)) {
    return attestation_error("tpm: certInfo attested name is not the Name of pubArea");
  }

  SIGIL_ASSIGN_OR_RETURN(X509Ptr aik, parse_certificate(x5c[0]));
  SIGIL_ASSIGN_OR_RETURN(Bytes spki, certificate_spki(aik.get()));
  auto aik_key = crypto::CoseKey::from_spki(spki, alg);
  if (!aik_key) return attestation_error("tpm: AIK certificate key does not fit alg");
  if (!aik_key->verify(*cert_info, *sig)) return attestation_error("tpm: signature over certInfo invalid");
  SIGIL_TRY(check_tpm_aik_certificate(aik.get()));
  SIGIL_TRY(check_aaguid_extension(aik.get(), in.parsed->attested->aaguid));
  return StatementResult{"attca", std::move(x5c)};
}

// ---- android-key (§8.4) ----------------------------------------------------------------------------

constexpr uint32_t kKmTagPurpose = 1;
constexpr uint32_t kKmTagAllApplications = 600;
constexpr uint32_t kKmTagOrigin = 702;
constexpr int64_t kKmOriginGenerated = 0;
constexpr int64_t kKmPurposeSign = 2;

struct AuthorizationList {
  bool all_applications = false;
  std::optional<int64_t> origin;
  std::optional<std::vector<int64_t>> purpose;
};

Result<AuthorizationList> parse_authorization_list(ByteView seq_body) {
  AuthorizationList list;
  DerReader r(seq_body);
  while (!r.empty()) {
    DerElement e;
    if (!r.next(&e)) return attestation_error("android-key: authorization list malformed");
    if (e.tag_class != kDerContext || !e.constructed) {
      return attestation_error("android-key: authorization list entry malformed");
    }
    if (e.tag == kKmTagAllApplications) {
      list.all_applications = true;
    } else if (e.tag == kKmTagOrigin) {
      DerReader inner(e.value);
      ByteView body;
      if (!inner.expect(kDerInteger, false, &body) || !inner.empty()) {
        return attestation_error("android-key: origin malformed");
      }
      list.origin = der_small_uint(body);
      if (!list.origin) return attestation_error("android-key: origin malformed");
    } else if (e.tag == kKmTagPurpose) {
      DerReader inner(e.value);
      ByteView set_body;
      if (!inner.expect(kDerSet, true, &set_body) || !inner.empty()) {
        return attestation_error("android-key: purpose malformed");
      }
      std::vector<int64_t> purposes;
      DerReader items(set_body);
      while (!items.empty()) {
        ByteView body;
        if (!items.expect(kDerInteger, false, &body)) return attestation_error("android-key: purpose malformed");
        auto v = der_small_uint(body);
        if (!v) return attestation_error("android-key: purpose malformed");
        purposes.push_back(*v);
      }
      list.purpose = std::move(purposes);
    }
    // Other tags are not needed for WebAuthn and are skipped (their framing was checked above).
  }
  return list;
}

Result<StatementResult> verify_android_key(const StatementInput& in) {
  const cbor::Value& stmt = *in.att_stmt;
  SIGIL_TRY(only_keys(stmt, "android-key", {"alg", "sig", "x5c"}));
  SIGIL_ASSIGN_OR_RETURN(int64_t alg, get_alg(stmt, "android-key"));
  SIGIL_ASSIGN_OR_RETURN(const Bytes* sig, get_bytes(stmt, "sig", "android-key"));
  SIGIL_ASSIGN_OR_RETURN(std::vector<Bytes> x5c, get_x5c(stmt, "android-key"));
  SIGIL_ASSIGN_OR_RETURN(X509Ptr leaf, parse_certificate(x5c[0]));
  SIGIL_ASSIGN_OR_RETURN(Bytes spki, certificate_spki(leaf.get()));
  auto key = crypto::CoseKey::from_spki(spki, alg);
  if (!key) return attestation_error("android-key: certificate key does not fit alg");
  if (!key->verify(concat(in.auth_data, *in.client_data_hash), *sig)) {
    return attestation_error("android-key: attestation signature invalid");
  }
  if (!certificate_key_equals(leaf.get(), *in.credential_key)) {
    return attestation_error("android-key: certificate key differs from the credential key");
  }
  SIGIL_ASSIGN_OR_RETURN(auto ext, find_extension(leaf.get(), "1.3.6.1.4.1.11129.2.1.17"));
  if (!ext) return attestation_error("android-key: key description extension missing");
  // KeyDescription ::= SEQUENCE { attestationVersion INTEGER, attestationSecurityLevel ENUMERATED,
  //   keymasterVersion INTEGER, keymasterSecurityLevel ENUMERATED, attestationChallenge OCTET STRING,
  //   uniqueId OCTET STRING, softwareEnforced AuthorizationList, teeEnforced AuthorizationList }
  DerReader outer(ext->value);
  ByteView desc;
  if (!outer.expect(kDerSequence, true, &desc) || !outer.empty()) {
    return attestation_error("android-key: key description malformed");
  }
  DerReader r(desc);
  ByteView att_version, att_level, km_version, km_level, challenge, unique_id, sw_body, tee_body;
  if (!r.expect(kDerInteger, false, &att_version) || !r.expect(kDerEnumerated, false, &att_level) ||
      !r.expect(kDerInteger, false, &km_version) || !r.expect(kDerEnumerated, false, &km_level) ||
      !r.expect(kDerOctetString, false, &challenge) || !r.expect(kDerOctetString, false, &unique_id) ||
      !r.expect(kDerSequence, true, &sw_body) || !r.expect(kDerSequence, true, &tee_body) || !r.empty()) {
    return attestation_error("android-key: key description malformed");
  }
  if (!crypto::ct_equal(challenge, *in.client_data_hash)) {
    return attestation_error("android-key: attestationChallenge is not clientDataHash");
  }
  SIGIL_ASSIGN_OR_RETURN(AuthorizationList sw, parse_authorization_list(sw_body));
  SIGIL_ASSIGN_OR_RETURN(AuthorizationList tee, parse_authorization_list(tee_body));
  if (sw.all_applications || tee.all_applications) {
    return attestation_error("android-key: allApplications present (key not scoped to the RP ID)");
  }
  // Union of teeEnforced and softwareEnforced (sigil has no TEE-only policy yet); a value present in
  // either list must be the one §8.4 requires (see docs/WEBAUTHN_CHECKS.md for absent values).
  for (const AuthorizationList* list : {&tee, &sw}) {
    if (list->origin && *list->origin != kKmOriginGenerated) {
      return attestation_error("android-key: key origin is not KM_ORIGIN_GENERATED");
    }
    if (list->purpose && (list->purpose->size() != 1 || (*list->purpose)[0] != kKmPurposeSign)) {
      return attestation_error("android-key: key purpose is not KM_PURPOSE_SIGN");
    }
  }
  return StatementResult{"basic", std::move(x5c)};
}

// ---- apple (§8.8) ----------------------------------------------------------------------------------

Result<StatementResult> verify_apple(const StatementInput& in) {
  const cbor::Value& stmt = *in.att_stmt;
  SIGIL_TRY(only_keys(stmt, "apple", {"x5c"}));
  SIGIL_ASSIGN_OR_RETURN(std::vector<Bytes> x5c, get_x5c(stmt, "apple"));
  SIGIL_ASSIGN_OR_RETURN(X509Ptr leaf, parse_certificate(x5c[0]));
  const crypto::Sha256Digest nonce = crypto::sha256(concat(in.auth_data, *in.client_data_hash));
  SIGIL_ASSIGN_OR_RETURN(auto ext, find_extension(leaf.get(), "1.2.840.113635.100.8.2"));
  if (!ext) return attestation_error("apple: nonce extension missing");
  // SEQUENCE { [1] EXPLICIT OCTET STRING nonce }
  DerReader outer(ext->value);
  ByteView seq;
  if (!outer.expect(kDerSequence, true, &seq) || !outer.empty()) return attestation_error("apple: nonce extension malformed");
  DerReader tagged(seq);
  DerElement e;
  if (!tagged.next(&e) || e.tag_class != kDerContext || !e.constructed || e.tag != 1 || !tagged.empty()) {
    return attestation_error("apple: nonce extension malformed");
  }
  DerReader inner(e.value);
  ByteView value;
  if (!inner.expect(kDerOctetString, false, &value) || !inner.empty()) {
    return attestation_error("apple: nonce extension malformed");
  }
  if (!crypto::ct_equal(value, nonce)) return attestation_error("apple: nonce does not match");
  if (!certificate_key_equals(leaf.get(), *in.credential_key)) {
    return attestation_error("apple: certificate key differs from the credential key");
  }
  return StatementResult{"anonca", std::move(x5c)};
}

}  // namespace

Result<StatementResult> verify_statement(const StatementInput& in) {
  SIGIL_CHECK(in.att_stmt != nullptr && in.parsed != nullptr && in.parsed->attested.has_value() &&
              in.credential_key != nullptr && in.client_data_hash != nullptr);
  if (in.att_stmt->type() != cbor::Value::Type::kMap) return attestation_error("attStmt is not a map");
  if (in.fmt == "none") return verify_none(in);
  if (in.fmt == "packed") return verify_packed(in);
  if (in.fmt == "fido-u2f") return verify_fido_u2f(in);
  if (in.fmt == "tpm") return verify_tpm(in);
  if (in.fmt == "android-key") return verify_android_key(in);
  if (in.fmt == "apple") return verify_apple(in);
  return attestation_error("unsupported attestation statement format");
}

}  // namespace sigil::webauthn::internal
