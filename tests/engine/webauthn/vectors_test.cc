// The W3C WebAuthn Level 3 specification's test vectors (/work/shared/vectors/webauthn-spec): every
// registration verifies given its challenge, every authentication verifies against the credential that
// registration produced, cross-origin cases follow the RP policy, x5c chains are trusted under kDirect
// with the vectors' CA, and a flipped byte in the signature, rpIdHash, challenge or origin fails.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/cbor/cbor.h"
#include "engine/crypto/cose_key.h"
#include "engine/crypto/digest.h"
#include "engine/webauthn/webauthn.h"

namespace sigil::webauthn {
namespace {

constexpr int64_t kNow = 1767225600;  // 2026-01-01; the vectors' certificates are valid 2024..3024

Bytes hex(std::string_view s) {
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out;
  if (s.size() % 2 != 0) return out;
  for (size_t i = 0; i < s.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(nib(s[i]) * 16 + nib(s[i + 1])));
  }
  return out;
}

struct Ceremony {
  std::string name;
  Bytes reg_challenge, reg_client_data, attestation_object, credential_id, aaguid;
  Bytes auth_challenge, auth_client_data, authenticator_data, signature;
};

struct Vectors {
  std::string rp_id, origin, top_origin;
  Bytes ca_cert;
  std::vector<Ceremony> ceremonies;
};

std::string str(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v) != simdjson::SUCCESS) return {};
  return std::string(v);
}

const Vectors& vectors() {
  static const Vectors v = [] {
    Vectors out;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    const std::string path = std::string(SIGIL_VECTORS_DIR) + "/webauthn-spec/webauthn-l3-test-vectors.json";
    if (parser.load(path).get(root) != simdjson::SUCCESS) return out;
    out.rp_id = str(root, "rp_id");
    out.origin = str(root, "origin");
    out.top_origin = str(root, "top_origin");
    out.ca_cert = hex(str(root, "attestation_ca_cert"));
    simdjson::dom::array arr;
    if (root["vectors"].get_array().get(arr) != simdjson::SUCCESS) return out;
    for (simdjson::dom::element item : arr) {
      Ceremony c;
      c.name = str(item, "name");
      simdjson::dom::element reg = item["registration"].value_unsafe();
      simdjson::dom::element auth = item["authentication"].value_unsafe();
      c.reg_challenge = hex(str(reg, "challenge"));
      c.reg_client_data = hex(str(reg, "clientDataJSON"));
      c.attestation_object = hex(str(reg, "attestationObject"));
      c.credential_id = hex(str(reg, "credential_id"));
      c.aaguid = hex(str(reg, "aaguid"));
      c.auth_challenge = hex(str(auth, "challenge"));
      c.auth_client_data = hex(str(auth, "clientDataJSON"));
      c.authenticator_data = hex(str(auth, "authenticatorData"));
      c.signature = hex(str(auth, "signature"));
      out.ceremonies.push_back(std::move(c));
    }
    return out;
  }();
  return v;
}

bool is_cross_origin_case(const std::string& name) {
  return name == "none-es256-crossOrigin" || name == "none-es256-topOrigin";
}

std::string expected_type(const std::string& name) {
  if (name.rfind("none-", 0) == 0) return "none";
  if (name == "packed-self-es256") return "self";
  if (name == "tpm-es256") return "attca";
  if (name == "apple-es256") return "anonca";
  return "basic";
}

RelyingParty default_rp() {
  RelyingParty rp;
  rp.rp_id = vectors().rp_id;
  rp.origins = {vectors().origin};
  return rp;
}

RelyingParty cross_origin_rp() {
  RelyingParty rp = default_rp();
  rp.allow_cross_origin = true;
  rp.top_origins = {vectors().top_origin};
  return rp;
}

Result<VerifiedRegistration> register_vector(const Ceremony& c, const RelyingParty& rp, const TrustPolicy& trust,
                                             ByteView client_data, ByteView att_obj, ByteView challenge) {
  RegistrationInput in;
  in.client_data_json = client_data;
  in.attestation_object = att_obj;
  in.expected_challenge = challenge;
  in.rp = &rp;
  in.trust = &trust;
  in.now_s = kNow;
  // What the vectors' creation options must have offered: the defaults plus the fully-specified
  // Ed448 algorithm (-53) that packed-ed448's credential uses.
  in.allowed_algs = {crypto::cose_alg::kES256, crypto::cose_alg::kEdDSA, crypto::cose_alg::kES384,
                     crypto::cose_alg::kES512, crypto::cose_alg::kPS256, crypto::cose_alg::kRS256, -53};
  (void)c;
  return verify_registration(in);
}

Result<VerifiedRegistration> register_vector(const Ceremony& c, const RelyingParty& rp, const TrustPolicy& trust) {
  return register_vector(c, rp, trust, c.reg_client_data, c.attestation_object, c.reg_challenge);
}

// The key lives on the heap so that the StoredCredential's pointer survives copies and moves.
struct Stored {
  std::shared_ptr<const crypto::CoseKey> key;
  StoredCredential cred;
};

Stored stored_from(const VerifiedRegistration& reg) {
  Stored s;
  auto key = crypto::CoseKey::decode(reg.credential_public_key);
  if (key) s.key = std::make_shared<const crypto::CoseKey>(std::move(*key));
  s.cred.credential_id = reg.credential_id;
  s.cred.public_key = s.key.get();
  s.cred.sign_count = reg.sign_count;
  s.cred.backup_eligible = (reg.flags & kFlagBE) != 0;
  return s;
}

struct AssertionBytes {
  Bytes client_data, authenticator_data, signature, challenge;
};

Result<VerifiedAssertion> authenticate(const Ceremony& c, const RelyingParty& rp, const Stored& stored,
                                       const AssertionBytes& a) {
  AssertionInput in;
  in.credential_id = c.credential_id;
  in.client_data_json = a.client_data;
  in.authenticator_data = a.authenticator_data;
  in.signature = a.signature;
  in.expected_challenge = a.challenge;
  in.rp = &rp;
  in.credential = &stored.cred;
  return verify_assertion(in);
}

AssertionBytes assertion_of(const Ceremony& c) {
  return {c.auth_client_data, c.authenticator_data, c.signature, c.auth_challenge};
}

// Replaces the first occurrence of `needle` in `hay` after flipping one of its bytes.
bool flip_inside(Bytes& hay, const Bytes& needle, size_t offset_in_needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
  if (it == hay.end() || offset_in_needle >= needle.size()) return false;
  *(it + static_cast<std::ptrdiff_t>(offset_in_needle)) ^= 0x01;
  return true;
}

Bytes flip_origin(Bytes client_data) {
  const std::string needle = "\"origin\":\"https://example.org\"";
  Bytes n(needle.begin(), needle.end());
  flip_inside(client_data, n, needle.size() - 2);  // https://example.orf
  return client_data;
}

struct StmtParts {
  Bytes sig;
  Bytes auth_data;
};
StmtParts stmt_parts(const Bytes& att_obj) {
  StmtParts p;
  auto v = cbor::decode(att_obj);
  if (!v) return p;
  if (const cbor::Value* stmt = v->find("attStmt")) {
    if (const cbor::Value* sig = stmt->find("sig")) p.sig = sig->bytes();
  }
  if (const cbor::Value* ad = v->find("authData")) p.auth_data = ad->bytes();
  return p;
}

TEST(WebAuthnSpecVectors, AllFifteenLoaded) {
  ASSERT_EQ(vectors().ceremonies.size(), 15u);
  EXPECT_EQ(vectors().rp_id, "example.org");
  EXPECT_FALSE(vectors().ca_cert.empty());
}

// Registration then authentication for every vector; prints the per-vector table.
TEST(WebAuthnSpecVectors, RegistrationThenAuthenticationVerify) {
  const TrustPolicy none_policy;
  int reg_ok = 0, auth_ok = 0;
  std::printf("\n%-32s %-12s %-8s %-14s %-8s\n", "vector", "fmt", "type", "registration", "authentication");
  for (const Ceremony& c : vectors().ceremonies) {
    SCOPED_TRACE(c.name);
    const RelyingParty rp = is_cross_origin_case(c.name) ? cross_origin_rp() : default_rp();
    auto reg = register_vector(c, rp, none_policy);
    bool a_ok = false;
    std::string fmt = "-", type = "-";
    if (reg) {
      ++reg_ok;
      fmt = reg->fmt;
      type = reg->attestation_type;
      EXPECT_EQ(reg->attestation_type, expected_type(c.name));
      EXPECT_EQ(reg->credential_id, c.credential_id);
      EXPECT_EQ(Bytes(reg->aaguid.begin(), reg->aaguid.end()), c.aaguid);
      EXPECT_FALSE(reg->trusted);  // kNone without anchors
      Stored stored = stored_from(*reg);
      ASSERT_TRUE(stored.key != nullptr);
      auto auth = authenticate(c, rp, stored, assertion_of(c));
      a_ok = auth.has_value();
      if (a_ok) ++auth_ok;
      EXPECT_TRUE(a_ok) << auth.error().message;
    } else {
      ADD_FAILURE() << "registration: " << reg.error().message;
    }
    std::printf("%-32s %-12s %-8s %-14s %-8s\n", c.name.c_str(), fmt.c_str(), type.c_str(),
                reg ? "ok" : ("FAIL: " + reg.error().message).c_str(), a_ok ? "ok" : "FAIL");
  }
  std::printf("registration %d/%zu, authentication %d/%zu\n", reg_ok, vectors().ceremonies.size(), auth_ok,
              vectors().ceremonies.size());
  EXPECT_EQ(reg_ok, 15);
  EXPECT_EQ(auth_ok, 15);
}

TEST(WebAuthnSpecVectors, CrossOriginCasesFailByDefaultAndPassWhenAllowed) {
  const TrustPolicy none_policy;
  int seen = 0;
  for (const Ceremony& c : vectors().ceremonies) {
    if (!is_cross_origin_case(c.name)) continue;
    ++seen;
    SCOPED_TRACE(c.name);
    auto refused = register_vector(c, default_rp(), none_policy);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().ts_error_code, "auth_invalid_attestation");
    auto reg = register_vector(c, cross_origin_rp(), none_policy);
    ASSERT_TRUE(reg) << reg.error().message;
    Stored stored = stored_from(*reg);
    auto refused_auth = authenticate(c, default_rp(), stored, assertion_of(c));
    ASSERT_FALSE(refused_auth);
    EXPECT_EQ(refused_auth.error().ts_error_code, "auth_webauthn_failed");
    EXPECT_TRUE(authenticate(c, cross_origin_rp(), stored, assertion_of(c)));
    // Allowing cross-origin use without listing the top origin still refuses a reported topOrigin.
    RelyingParty no_top = default_rp();
    no_top.allow_cross_origin = true;
    EXPECT_EQ(register_vector(c, no_top, none_policy).has_value(), c.name == "none-es256-crossOrigin");
  }
  EXPECT_EQ(seen, 2);
}

TEST(WebAuthnSpecVectors, DirectTrustWithTheVectorCaTrustsEveryX5cVector) {
  TrustPolicy direct;
  direct.mode = TrustPolicy::Mode::kDirect;
  direct.anchors_der = {vectors().ca_cert};
  TrustPolicy none_with_anchor;
  none_with_anchor.anchors_der = {vectors().ca_cert};
  int trusted = 0;
  for (const Ceremony& c : vectors().ceremonies) {
    SCOPED_TRACE(c.name);
    const RelyingParty rp = is_cross_origin_case(c.name) ? cross_origin_rp() : default_rp();
    const std::string type = expected_type(c.name);
    auto reg = register_vector(c, rp, direct);
    auto soft = register_vector(c, rp, none_with_anchor);
    ASSERT_TRUE(soft) << soft.error().message;
    if (type == "none" || type == "self") {
      ASSERT_FALSE(reg);  // nothing to chain: refused under kDirect
      EXPECT_FALSE(soft->trusted);
      continue;
    }
    ASSERT_TRUE(reg) << reg.error().message;
    EXPECT_TRUE(reg->trusted);
    EXPECT_TRUE(soft->trusted);
    ++trusted;
    // Without the anchor (or with an unrelated one) kDirect refuses and kNone does not trust.
    TrustPolicy wrong = direct;
    wrong.anchors_der = {};
    EXPECT_FALSE(register_vector(c, rp, wrong));
    // Outside the certificates' validity the chain does not verify.
    RegistrationInput early;
    early.client_data_json = c.reg_client_data;
    early.attestation_object = c.attestation_object;
    early.expected_challenge = c.reg_challenge;
    early.rp = &rp;
    early.trust = &direct;
    early.now_s = 1600000000;  // 2020
    EXPECT_FALSE(verify_registration(early));
  }
  EXPECT_EQ(trusted, 10);
}

// The leaf certificate given as its own anchor does not make the chain trusted unless it is the
// configured root; a self-signed certificate inside x5c is never an anchor.
// §7.1 step 20: with the default pubKeyCredParams (no -53), the Ed448 credential is refused.
TEST(WebAuthnSpecVectors, Ed448RefusedUnlessOffered) {
  for (const Ceremony& c : vectors().ceremonies) {
    if (c.name != "packed-ed448") continue;
    const RelyingParty rp = default_rp();
    const TrustPolicy trust;
    RegistrationInput in;
    in.client_data_json = c.reg_client_data;
    in.attestation_object = c.attestation_object;
    in.expected_challenge = c.reg_challenge;
    in.rp = &rp;
    in.trust = &trust;
    in.now_s = kNow;
    auto r = verify_registration(in);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "credential key algorithm was not offered");
  }
}

TEST(WebAuthnSpecVectors, LeafIsNotAnAnchorWithoutPartialChains) {
  for (const Ceremony& c : vectors().ceremonies) {
    if (c.name != "packed-es256") continue;
    auto v = cbor::decode(c.attestation_object);
    ASSERT_TRUE(v);
    const Bytes leaf = v->find("attStmt")->find("x5c")->array()[0].bytes();
    TrustPolicy direct;
    direct.mode = TrustPolicy::Mode::kDirect;
    direct.anchors_der = {leaf};
    EXPECT_FALSE(register_vector(c, default_rp(), direct));
  }
}

void cbor_head(Bytes& out, uint8_t major, size_t n) {
  const auto m = static_cast<uint8_t>(major << 5);
  if (n < 24) {
    out.push_back(static_cast<uint8_t>(m | n));
  } else if (n <= 0xff) {
    out.insert(out.end(), {static_cast<uint8_t>(m | 24), static_cast<uint8_t>(n)});
  } else {
    out.insert(out.end(), {static_cast<uint8_t>(m | 25), static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
  }
}
void cbor_text(Bytes& out, std::string_view t) {
  cbor_head(out, 3, t.size());
  out.insert(out.end(), t.begin(), t.end());
}
void cbor_bytes(Bytes& out, ByteView b) {
  cbor_head(out, 2, b.size());
  out.insert(out.end(), b.begin(), b.end());
}

// x5c = [leaf, the self-signed vector CA]: the CA inside x5c is only ever an untrusted certificate, so
// the chain is trusted when the CA is a configured anchor and refused when it is not.
TEST(WebAuthnSpecVectors, SelfSignedCertificateInX5cIsNeverAnAnchor) {
  for (const Ceremony& c : vectors().ceremonies) {
    if (c.name != "packed-es256") continue;
    auto v = cbor::decode(c.attestation_object);
    ASSERT_TRUE(v);
    const cbor::Value* stmt = v->find("attStmt");
    Bytes obj;
    cbor_head(obj, 5, 3);
    cbor_text(obj, "fmt");
    cbor_text(obj, "packed");
    cbor_text(obj, "attStmt");
    cbor_head(obj, 5, 3);
    cbor_text(obj, "alg");
    obj.push_back(0x26);  // -7
    cbor_text(obj, "sig");
    cbor_bytes(obj, stmt->find("sig")->bytes());
    cbor_text(obj, "x5c");
    cbor_head(obj, 4, 2);
    cbor_bytes(obj, stmt->find("x5c")->array()[0].bytes());
    cbor_bytes(obj, vectors().ca_cert);
    cbor_text(obj, "authData");
    cbor_bytes(obj, v->find("authData")->bytes());

    TrustPolicy direct;
    direct.mode = TrustPolicy::Mode::kDirect;
    direct.anchors_der = {vectors().ca_cert};
    auto ok = register_vector(c, default_rp(), direct, c.reg_client_data, obj, c.reg_challenge);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_TRUE(ok->trusted);
    // An unrelated anchor (another vector's leaf): the chain would only validate via the self-signed CA.
    auto apple = cbor::decode(vectors().ceremonies[13].attestation_object);
    ASSERT_TRUE(apple);
    direct.anchors_der = {apple->find("attStmt")->find("x5c")->array()[0].bytes()};
    auto refused = register_vector(c, default_rp(), direct, c.reg_client_data, obj, c.reg_challenge);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("trust: certificate chain does not verify"), std::string::npos)
        << refused.error().message;
    TrustPolicy soft;
    soft.anchors_der = direct.anchors_der;
    auto untrusted = register_vector(c, default_rp(), soft, c.reg_client_data, obj, c.reg_challenge);
    ASSERT_TRUE(untrusted);
    EXPECT_FALSE(untrusted->trusted);
  }
}

// Format-specific bindings: one flipped byte in the structure each procedure checks.
TEST(WebAuthnSpecVectors, FormatBindingsAreChecked) {
  const TrustPolicy none_policy;
  auto refuse = [&](const Ceremony& c, const Bytes& obj, std::string_view msg) {
    auto r = register_vector(c, default_rp(), none_policy, c.reg_client_data, obj, c.reg_challenge);
    ASSERT_FALSE(r) << msg;
    EXPECT_NE(r.error().message.find(msg), std::string::npos) << r.error().message;
  };
  int checked = 0;
  for (const Ceremony& c : vectors().ceremonies) {
    SCOPED_TRACE(c.name);
    auto v = cbor::decode(c.attestation_object);
    ASSERT_TRUE(v);
    const cbor::Value* stmt = v->find("attStmt");
    const crypto::Sha256Digest hash = crypto::sha256(c.reg_client_data);
    const Bytes hash_bytes(hash.begin(), hash.end());
    if (c.name == "tpm-es256") {
      const Bytes pub = stmt->find("pubArea")->bytes();
      Bytes obj = c.attestation_object;
      ASSERT_TRUE(flip_inside(obj, pub, pub.size() - 1));  // last byte of unique.y
      refuse(c, obj, "tpm: pubArea point differs");
      const Bytes info = stmt->find("certInfo")->bytes();
      obj = c.attestation_object;
      ASSERT_TRUE(flip_inside(obj, info, 10));  // inside extraData
      refuse(c, obj, "tpm: certInfo extraData");
      obj = c.attestation_object;
      ASSERT_TRUE(flip_inside(obj, info, 0));  // magic
      refuse(c, obj, "tpm: certInfo magic");
      obj = c.attestation_object;
      ASSERT_TRUE(flip_inside(obj, info, info.size() - 5));  // attested name
      refuse(c, obj, "tpm: certInfo attested name");
      ++checked;
    } else if (c.name == "android-key-es256") {
      Bytes obj = c.attestation_object;
      ASSERT_TRUE(flip_inside(obj, hash_bytes, 3));  // attestationChallenge inside the certificate
      refuse(c, obj, "android-key: attestationChallenge is not clientDataHash");
      ++checked;
    } else if (c.name == "apple-es256") {
      Bytes signed_data = v->find("authData")->bytes();
      signed_data.insert(signed_data.end(), hash.begin(), hash.end());
      const crypto::Sha256Digest nonce = crypto::sha256(signed_data);
      Bytes obj = c.attestation_object;
      ASSERT_TRUE(flip_inside(obj, Bytes(nonce.begin(), nonce.end()), 3));
      refuse(c, obj, "apple: nonce does not match");
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3);
}

TEST(WebAuthnSpecVectors, FlippedBytesFailBothCeremonies) {
  const TrustPolicy none_policy;
  int reg_sig_cases = 0;
  for (const Ceremony& c : vectors().ceremonies) {
    SCOPED_TRACE(c.name);
    const RelyingParty rp = is_cross_origin_case(c.name) ? cross_origin_rp() : default_rp();
    auto reg = register_vector(c, rp, none_policy);
    ASSERT_TRUE(reg) << reg.error().message;
    Stored stored = stored_from(*reg);

    // Registration: attestation signature (formats that carry one), rpIdHash, challenge, origin.
    const StmtParts parts = stmt_parts(c.attestation_object);
    if (!parts.sig.empty()) {
      Bytes obj = c.attestation_object;
      ASSERT_TRUE(flip_inside(obj, parts.sig, parts.sig.size() / 2));
      auto r = register_vector(c, rp, none_policy, c.reg_client_data, obj, c.reg_challenge);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
      EXPECT_EQ(r.error().ts_error_code, "auth_invalid_attestation");
      ++reg_sig_cases;
    }
    {
      Bytes obj = c.attestation_object;
      ASSERT_TRUE(flip_inside(obj, parts.auth_data, 0));
      auto r = register_vector(c, rp, none_policy, c.reg_client_data, obj, c.reg_challenge);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().message, "rpIdHash does not match the RP ID");
    }
    {
      Bytes challenge = c.reg_challenge;
      challenge[challenge.size() / 2] ^= 0x01;
      auto r = register_vector(c, rp, none_policy, c.reg_client_data, c.attestation_object, challenge);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().message, "challenge does not match");
    }
    {
      auto r = register_vector(c, rp, none_policy, flip_origin(c.reg_client_data), c.attestation_object,
                               c.reg_challenge);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().message, "origin is not an expected origin");
    }

    // Authentication: signature, rpIdHash, challenge, origin.
    {
      AssertionBytes a = assertion_of(c);
      a.signature[a.signature.size() / 2] ^= 0x01;
      auto r = authenticate(c, rp, stored, a);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
      EXPECT_EQ(r.error().ts_error_code, "auth_webauthn_failed");
    }
    {
      AssertionBytes a = assertion_of(c);
      a.authenticator_data[0] ^= 0x01;
      auto r = authenticate(c, rp, stored, a);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().message, "rpIdHash does not match the RP ID");
    }
    {
      AssertionBytes a = assertion_of(c);
      a.challenge[0] ^= 0x01;
      auto r = authenticate(c, rp, stored, a);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().message, "challenge does not match");
    }
    {
      AssertionBytes a = assertion_of(c);
      a.client_data = flip_origin(a.client_data);
      auto r = authenticate(c, rp, stored, a);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().message, "origin is not an expected origin");
      // With the mutated origin configured, the signature over the original clientDataJSON fails.
      RelyingParty other = rp;
      other.origins.push_back("https://example.orf");
      auto r2 = authenticate(c, other, stored, a);
      ASSERT_FALSE(r2);
      EXPECT_EQ(r2.error().message, "signature invalid");
    }
  }
  EXPECT_EQ(reg_sig_cases, 10);  // packed x5c ×6, packed self, tpm, android-key, fido-u2f
}

// The signature of one vector does not verify under another vector's credential on the same thread
// (the OpenSSL 3.0 context re-use pitfall of CONVENTIONS.md).
TEST(WebAuthnSpecVectors, SignatureOfOneCredentialFailsUnderAnother) {
  const TrustPolicy none_policy;
  const auto& cs = vectors().ceremonies;
  std::vector<Stored> stored;
  for (const Ceremony& c : cs) {
    const RelyingParty rp = is_cross_origin_case(c.name) ? cross_origin_rp() : default_rp();
    auto reg = register_vector(c, rp, none_policy);
    ASSERT_TRUE(reg);
    stored.push_back(stored_from(*reg));
  }
  for (size_t i = 0; i < cs.size(); ++i) {
    const size_t j = (i + 1) % cs.size();
    SCOPED_TRACE(cs[i].name + " under " + cs[j].name);
    const RelyingParty rp = is_cross_origin_case(cs[i].name) ? cross_origin_rp() : default_rp();
    EXPECT_TRUE(authenticate(cs[i], rp, stored[i], assertion_of(cs[i])));
    Stored swapped = stored[i];
    swapped.key = stored[j].key;
    swapped.cred.public_key = swapped.key.get();
    auto r = authenticate(cs[i], rp, swapped, assertion_of(cs[i]));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "signature invalid");
    const RelyingParty rp_j = is_cross_origin_case(cs[j].name) ? cross_origin_rp() : default_rp();
    EXPECT_TRUE(authenticate(cs[j], rp_j, stored[j], assertion_of(cs[j])));
  }
}

}  // namespace
}  // namespace sigil::webauthn
