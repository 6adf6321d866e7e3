// One test per check of W3C WebAuthn Level 3 §7.1 (Registration.StepN_*) and §7.2
// (Authentication.StepN_*) that sigil's engine performs, with crafted inputs: a fresh P-256 credential
// key, authenticatorData, clientDataJSON and attestationObject built here with a tiny CBOR encoder.
// Step numbers follow the Level 3 text; docs/WEBAUTHN_CHECKS.md maps every step to its test.
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "engine/crypto/base64.h"
#include "engine/crypto/cose_key.h"
#include "engine/crypto/digest.h"
#include "engine/webauthn/webauthn.h"

namespace sigil::webauthn {
namespace {

constexpr int64_t kNow = 1767225600;
const std::string kRpId = "example.org";
const std::string kOrigin = "https://example.org";

// ---- tiny CBOR encoder (canonical when the caller writes keys in canonical order) --------------------

class Cbor {
 public:
  Cbor& uint(uint64_t n) { return head(0, n); }
  Cbor& integer(int64_t n) { return n >= 0 ? head(0, static_cast<uint64_t>(n)) : head(1, static_cast<uint64_t>(-1 - n)); }
  Cbor& bytes(ByteView b) {
    head(2, b.size());
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  Cbor& text(std::string_view s) {
    head(3, s.size());
    out_.insert(out_.end(), s.begin(), s.end());
    return *this;
  }
  Cbor& array(size_t n) { return head(4, n); }
  Cbor& map(size_t n) { return head(5, n); }
  Cbor& raw(ByteView b) {
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  [[nodiscard]] const Bytes& out() const { return out_; }

 private:
  Cbor& head(uint8_t major, uint64_t n) {
    const auto m = static_cast<uint8_t>(major << 5);
    if (n < 24) {
      out_.push_back(static_cast<uint8_t>(m | n));
    } else if (n <= 0xff) {
      out_.push_back(m | 24);
      out_.push_back(static_cast<uint8_t>(n));
    } else if (n <= 0xffff) {
      out_.push_back(m | 25);
      out_.push_back(static_cast<uint8_t>(n >> 8));
      out_.push_back(static_cast<uint8_t>(n));
    } else {
      out_.push_back(m | 26);
      for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(n >> s));
    }
    return *this;
  }
  Bytes out_;
};

// ---- a P-256 credential -------------------------------------------------------------------------------

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

class P256Credential {
 public:
  P256Credential() : key_(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")) {
    unsigned char point[65];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len);
    Cbor c;
    c.map(5).integer(1).integer(2).integer(3).integer(-7).integer(-1).integer(1);
    c.integer(-2).bytes(ByteView(point + 1, 32)).integer(-3).bytes(ByteView(point + 33, 32));
    cose_ = c.out();
  }
  [[nodiscard]] const Bytes& cose() const { return cose_; }
  [[nodiscard]] Bytes sign(ByteView msg) const {
    std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
    size_t len = 0;
    EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key_.get(), nullptr);
    EVP_DigestSign(ctx.get(), nullptr, &len, msg.data(), msg.size());
    Bytes sig(len);
    EVP_DigestSign(ctx.get(), sig.data(), &len, msg.data(), msg.size());
    sig.resize(len);
    return sig;
  }

 private:
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key_;
  Bytes cose_;
};

Bytes concat(ByteView a, ByteView b) {
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::string client_data(std::string_view type, ByteView challenge, std::string_view origin = kOrigin,
                        std::string_view tail = ",\"crossOrigin\":false") {
  return "{\"type\":\"" + std::string(type) + "\",\"challenge\":\"" + crypto::base64url_encode(challenge) +
         "\",\"origin\":\"" + std::string(origin) + "\"" + std::string(tail) + "}";
}

struct AuthDataSpec {
  std::string rp_id = kRpId;
  uint8_t flags = kFlagUP | kFlagUV;
  uint32_t sign_count = 0;
  Bytes credential_id;      // with `cose`: attested credential data
  Bytes cose;
  Bytes extensions;         // CBOR map bytes
  Bytes trailing;
};

Bytes auth_data(const AuthDataSpec& s) {
  const auto h = crypto::sha256(as_bytes(s.rp_id));
  Bytes out(h.begin(), h.end());
  out.push_back(s.flags);
  for (int sh = 24; sh >= 0; sh -= 8) out.push_back(static_cast<uint8_t>(s.sign_count >> sh));
  if (!s.cose.empty()) {
    for (int i = 0; i < 16; ++i) out.push_back(static_cast<uint8_t>(0xa0 + i));  // aaguid
    out.push_back(static_cast<uint8_t>(s.credential_id.size() >> 8));
    out.push_back(static_cast<uint8_t>(s.credential_id.size()));
    out.insert(out.end(), s.credential_id.begin(), s.credential_id.end());
    out.insert(out.end(), s.cose.begin(), s.cose.end());
  }
  out.insert(out.end(), s.extensions.begin(), s.extensions.end());
  out.insert(out.end(), s.trailing.begin(), s.trailing.end());
  return out;
}

Bytes attestation_object(std::string_view fmt, ByteView att_stmt, ByteView auth) {
  Cbor c;
  c.map(3).text("fmt").text(fmt).text("attStmt").raw(att_stmt).text("authData").bytes(auth);
  return c.out();
}

const Bytes kEmptyMap = {0xa0};

// ---- registration fixture ------------------------------------------------------------------------------

class Registration : public ::testing::Test {
 protected:
  Registration() {
    rp_.rp_id = kRpId;
    rp_.origins = {kOrigin};
    challenge_ = crypto::random_bytes(32);
    spec_.flags = kFlagUP | kFlagUV | kFlagAT;
    spec_.credential_id = crypto::random_bytes(16);
    spec_.cose = cred_.cose();
    client_ = client_data("webauthn.create", challenge_);
  }

  // Builds the attestationObject from spec_ ("none" unless fmt/att_stmt are given) and verifies.
  Result<VerifiedRegistration> run(std::string_view fmt = "none", std::optional<Bytes> att_stmt = std::nullopt) {
    auth_ = auth_data(spec_);
    att_obj_ = attestation_object(fmt, att_stmt ? *att_stmt : kEmptyMap, auth_);
    return run_raw();
  }
  Result<VerifiedRegistration> run_raw() {
    RegistrationInput in;
    in.client_data_json = as_bytes(client_);
    in.attestation_object = att_obj_;
    in.expected_challenge = challenge_;
    in.rp = &rp_;
    in.user_verification = uv_;
    in.trust = &trust_;
    in.allowed_algs = algs_;
    in.now_s = kNow;
    return verify_registration(in);
  }
  // packed self attestation over the current spec_ and client_.
  Bytes self_stmt(int64_t alg) {
    const auto hash = crypto::sha256(as_bytes(client_));
    const Bytes sig = cred_.sign(concat(auth_data(spec_), hash));
    Cbor c;
    c.map(2).text("alg").integer(alg).text("sig").bytes(sig);
    return c.out();
  }

  static void expect_refused(const Result<VerifiedRegistration>& r, std::string_view message) {
    ASSERT_FALSE(r) << "expected refusal: " << message;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().ts_error_code, "auth_invalid_attestation");
    EXPECT_NE(r.error().message.find(message), std::string::npos) << r.error().message;
  }

  P256Credential cred_;
  RelyingParty rp_;
  TrustPolicy trust_;
  UserVerification uv_ = UserVerification::kPreferred;
  std::vector<int64_t> algs_;
  Bytes challenge_;
  AuthDataSpec spec_;
  std::string client_;
  Bytes auth_, att_obj_;
};

TEST_F(Registration, AcceptsWellFormedNoneAttestation) {
  auto r = run();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->fmt, "none");
  EXPECT_EQ(r->attestation_type, "none");
  EXPECT_FALSE(r->trusted);
  EXPECT_EQ(r->credential_id, spec_.credential_id);
  EXPECT_EQ(r->credential_public_key, cred_.cose());
  EXPECT_EQ(r->alg, crypto::cose_alg::kES256);
  EXPECT_EQ(aaguid_string(r->aaguid), "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf");
  EXPECT_EQ(r->client_data.challenge, challenge_);
}

TEST_F(Registration, Step5_6_ClientDataMustBeAJsonObject) {
  client_ = "{\"type\":\"webauthn.create\",";
  expect_refused(run(), "not valid JSON");
  client_ = "[1,2]";
  expect_refused(run(), "not an object");
  client_ = "{\"type\":\"webauthn.create\",\"origin\":\"" + kOrigin + "\"}";
  expect_refused(run(), "challenge missing");
}

TEST_F(Registration, Step6_DuplicateClientDataMembersRejected) {
  client_ = client_data("webauthn.create", challenge_, kOrigin, ",\"type\":\"webauthn.create\"");
  expect_refused(run(), "duplicate member");
}

TEST_F(Registration, Step7_TypeMustBeWebauthnCreate) {
  client_ = client_data("webauthn.get", challenge_);
  expect_refused(run(), "type is not webauthn.create");
}

TEST_F(Registration, Step8_ChallengeMustMatch) {
  client_ = client_data("webauthn.create", crypto::random_bytes(32));
  expect_refused(run(), "challenge does not match");
  // The challenge must be unpadded base64url.
  client_ = "{\"type\":\"webauthn.create\",\"challenge\":\"" + crypto::base64_encode(challenge_) + "\",\"origin\":\"" +
            kOrigin + "\"}";
  expect_refused(run(), "base64url");
}

TEST_F(Registration, Step9_OriginMustBeExpected) {
  client_ = client_data("webauthn.create", challenge_, "https://evil.example.org");
  expect_refused(run(), "origin is not an expected origin");
  client_ = client_data("webauthn.create", challenge_, "https://example.org/");  // exact comparison
  expect_refused(run(), "origin is not an expected origin");
}

TEST_F(Registration, Step10_CrossOriginRejectedUnlessAllowed) {
  client_ = client_data("webauthn.create", challenge_, kOrigin, ",\"crossOrigin\":true");
  expect_refused(run(), "crossOrigin");
  rp_.allow_cross_origin = true;
  EXPECT_TRUE(run());
  client_ = client_data("webauthn.create", challenge_, kOrigin, ",\"crossOrigin\":\"true\"");
  expect_refused(run(), "crossOrigin is not a boolean");
}

TEST_F(Registration, Step11_TopOriginMustBeAnAllowedTopOrigin) {
  client_ = client_data("webauthn.create", challenge_, kOrigin,
                        ",\"crossOrigin\":true,\"topOrigin\":\"https://example.com\"");
  rp_.allow_cross_origin = true;
  expect_refused(run(), "topOrigin is not an expected top origin");
  rp_.top_origins = {"https://example.com"};
  EXPECT_TRUE(run());
}

TEST_F(Registration, Step11_TopOriginWithoutCrossOriginRejected) {
  rp_.allow_cross_origin = true;
  rp_.top_origins = {"https://example.com"};
  client_ = client_data("webauthn.create", challenge_, kOrigin,
                        ",\"crossOrigin\":false,\"topOrigin\":\"https://example.com\"");
  expect_refused(run(), "topOrigin present but crossOrigin is not true");
}

TEST_F(Registration, Step13_AttestationObjectMustBeWellFormed) {
  att_obj_ = {0xa1, 0x63, 'f', 'm', 't'};  // truncated
  expect_refused(run_raw(), "not valid CBOR");
  Cbor c;
  c.map(2).text("fmt").text("none").text("authData").bytes(auth_data(spec_));
  att_obj_ = c.out();
  expect_refused(run_raw(), "map of fmt, attStmt, authData");
}

TEST_F(Registration, Step13_AuthenticatorDataTrailingBytesRejected) {
  spec_.trailing = {0x00};
  expect_refused(run(), "trailing bytes after authenticatorData");
}

TEST_F(Registration, Step14_RpIdHashMustMatch) {
  spec_.rp_id = "example.com";
  expect_refused(run(), "rpIdHash does not match");
}

TEST_F(Registration, Step15_UserPresenceRequired) {
  spec_.flags = kFlagUV | kFlagAT;
  expect_refused(run(), "user presence flag not set");
}

TEST_F(Registration, Step16_UserVerificationRequiredWhenPolicyRequires) {
  spec_.flags = kFlagUP | kFlagAT;
  EXPECT_TRUE(run());  // preferred: UV ignored
  uv_ = UserVerification::kRequired;
  expect_refused(run(), "UV flag not set");
}

TEST_F(Registration, Step17_BackupStateWithoutEligibilityRejected) {
  spec_.flags = kFlagUP | kFlagAT | kFlagBS;
  expect_refused(run(), "BS flag set without BE");
  spec_.flags = kFlagUP | kFlagAT | kFlagBS | kFlagBE;
  EXPECT_TRUE(run());
}

TEST_F(Registration, AttestedCredentialDataRequired) {
  spec_.flags = kFlagUP | kFlagUV;
  spec_.cose.clear();
  expect_refused(run(), "attested credential data missing");
}

TEST_F(Registration, Step20_AlgorithmMustBeOffered) {
  algs_ = {crypto::cose_alg::kRS256};
  expect_refused(run(), "credential key algorithm was not offered");
  algs_ = {crypto::cose_alg::kRS256, crypto::cose_alg::kES256};
  EXPECT_TRUE(run());
}

TEST_F(Registration, Step21_UnknownFormatRejected) {
  expect_refused(run("unknown-fmt"), "unsupported attestation statement format");
  expect_refused(run("None"), "unsupported attestation statement format");  // case-sensitive
}

TEST_F(Registration, Step22_NoneStatementMustBeEmpty) {
  Cbor c;
  c.map(1).text("alg").integer(-7);
  expect_refused(run("none", c.out()), "none: attStmt must be an empty map");
}

TEST_F(Registration, Step22_PackedSelfAttestationVerifies) {
  auto r = run("packed", self_stmt(crypto::cose_alg::kES256));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->attestation_type, "self");
}

TEST_F(Registration, Step22_PackedSelfAttestationAlgMustMatchCredentialKey) {
  expect_refused(run("packed", self_stmt(crypto::cose_alg::kES384)), "self attestation alg differs");
}

TEST_F(Registration, Step22_PackedSelfAttestationSignatureMustVerify) {
  const Bytes stmt = self_stmt(crypto::cose_alg::kES256);
  client_ = client_data("webauthn.create", challenge_, kOrigin, ",\"crossOrigin\":false,\"extra\":1");
  expect_refused(run("packed", stmt), "self attestation signature invalid");  // signed another hash
  P256Credential other;
  const auto hash = crypto::sha256(as_bytes(client_));
  Cbor c;
  c.map(2).text("alg").integer(-7).text("sig").bytes(other.sign(concat(auth_data(spec_), hash)));
  expect_refused(run("packed", c.out()), "self attestation signature invalid");
}

TEST_F(Registration, Step22_UnexpectedStatementMembersRejected) {
  const auto hash = crypto::sha256(as_bytes(client_));
  Cbor c;
  c.map(3).text("alg").integer(-7).text("sig").bytes(cred_.sign(concat(auth_data(spec_), hash)));
  c.text("extra").integer(1);
  expect_refused(run("packed", c.out()), "unexpected attStmt member");
}

TEST_F(Registration, Step24_DirectTrustRefusesNoneAndSelf) {
  trust_.mode = TrustPolicy::Mode::kDirect;
  trust_.anchors_der = {Bytes{0x30}};
  expect_refused(run(), "trust: attestation type none is not accepted");
  expect_refused(run("packed", self_stmt(crypto::cose_alg::kES256)), "trust: attestation type self is not accepted");
}

TEST_F(Registration, Step25_CredentialIdLongerThan1023Rejected) {
  spec_.credential_id = Bytes(1024, 0x42);
  expect_refused(run(), "credential id longer than 1023 bytes");
  spec_.credential_id = Bytes(1023, 0x42);
  EXPECT_TRUE(run());
}

// ---- authentication fixture ---------------------------------------------------------------------------

class Authentication : public ::testing::Test {
 protected:
  Authentication() : key_(*crypto::CoseKey::decode(cred_.cose())) {
    rp_.rp_id = kRpId;
    rp_.origins = {kOrigin};
    challenge_ = crypto::random_bytes(32);
    stored_.credential_id = crypto::random_bytes(16);
    stored_.public_key = &key_;
    stored_.sign_count = 5;
    stored_.user_handle = crypto::random_bytes(32);
    spec_.flags = kFlagUP | kFlagUV;
    spec_.sign_count = 6;
    credential_id_ = stored_.credential_id;
    client_ = client_data("webauthn.get", challenge_);
  }

  // Signs authData || SHA-256(clientDataJSON) with `signer` (the credential by default) and verifies.
  Result<VerifiedAssertion> run(const P256Credential* signer = nullptr) {
    auth_ = auth_data(spec_);
    const auto hash = crypto::sha256(as_bytes(client_));
    sig_ = (signer != nullptr ? *signer : cred_).sign(concat(auth_, hash));
    return run_raw();
  }
  Result<VerifiedAssertion> run_raw() {
    AssertionInput in;
    in.credential_id = credential_id_;
    in.client_data_json = as_bytes(client_);
    in.authenticator_data = auth_;
    in.signature = sig_;
    in.user_handle = user_handle_;
    in.expected_challenge = challenge_;
    in.rp = &rp_;
    in.user_verification = uv_;
    in.credential = &stored_;
    return verify_assertion(in);
  }
  static void expect_refused(const Result<VerifiedAssertion>& r, std::string_view message,
                             std::string_view ts = "auth_webauthn_failed") {
    ASSERT_FALSE(r) << "expected refusal: " << message;
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
    EXPECT_EQ(r.error().ts_error_code, ts);
    EXPECT_NE(r.error().message.find(message), std::string::npos) << r.error().message;
  }

  P256Credential cred_;
  crypto::CoseKey key_;
  RelyingParty rp_;
  StoredCredential stored_;
  UserVerification uv_ = UserVerification::kPreferred;
  Bytes challenge_, credential_id_, user_handle_;
  AuthDataSpec spec_;
  std::string client_;
  Bytes auth_, sig_;
};

TEST_F(Authentication, AcceptsValidAssertion) {
  auto r = run();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->sign_count, 6u);
  EXPECT_EQ(r->flags, kFlagUP | kFlagUV);
  EXPECT_EQ(r->client_data.type, "webauthn.get");
}

TEST_F(Authentication, Step5_6_CredentialIdMustMatchStoredCredential) {
  credential_id_ = crypto::random_bytes(16);
  expect_refused(run(), "credential id does not match");
}

TEST_F(Authentication, Step6_UserHandleMustMatchWhenPresent) {
  user_handle_ = stored_.user_handle;
  EXPECT_TRUE(run());
  user_handle_ = crypto::random_bytes(32);
  expect_refused(run(), "userHandle does not match");
  user_handle_.clear();  // absent (non-discoverable flow): fine
  EXPECT_TRUE(run());
}

TEST_F(Authentication, Step9_ClientDataMustBeValid) {
  client_ = "{\"type\":\"webauthn.get\"";
  expect_refused(run(), "not valid JSON");
  client_ = std::string(9000, ' ');
  expect_refused(run(), "larger than 8 KiB");
}

TEST_F(Authentication, Step10_TypeMustBeWebauthnGet) {
  client_ = client_data("webauthn.create", challenge_);
  expect_refused(run(), "type is not webauthn.get");
}

TEST_F(Authentication, Step11_ChallengeMustMatch) {
  client_ = client_data("webauthn.get", crypto::random_bytes(32));
  expect_refused(run(), "challenge does not match");
}

TEST_F(Authentication, Step12_OriginMustBeExpected) {
  client_ = client_data("webauthn.get", challenge_, "http://example.org");
  expect_refused(run(), "origin is not an expected origin");
}

TEST_F(Authentication, Step13_CrossOriginRejectedUnlessAllowed) {
  client_ = client_data("webauthn.get", challenge_, kOrigin, ",\"crossOrigin\":true");
  expect_refused(run(), "crossOrigin is true");
  rp_.allow_cross_origin = true;
  EXPECT_TRUE(run());
}

TEST_F(Authentication, Step14_TopOriginMustBeAllowedAndCrossOrigin) {
  rp_.allow_cross_origin = true;
  client_ = client_data("webauthn.get", challenge_, kOrigin, ",\"crossOrigin\":true,\"topOrigin\":\"https://a.test\"");
  expect_refused(run(), "topOrigin is not an expected top origin");
  rp_.top_origins = {"https://a.test"};
  EXPECT_TRUE(run());
  client_ = client_data("webauthn.get", challenge_, kOrigin, ",\"topOrigin\":\"https://a.test\"");
  expect_refused(run(), "topOrigin present but crossOrigin is not true");
}

TEST_F(Authentication, Step15_RpIdHashMustMatch) {
  spec_.rp_id = "login.example.org";
  expect_refused(run(), "rpIdHash does not match");
}

TEST_F(Authentication, Step16_UserPresenceRequired) {
  spec_.flags = kFlagUV;
  expect_refused(run(), "user presence flag not set");
}

TEST_F(Authentication, Step17_UserVerificationRequiredWhenPolicyRequires) {
  spec_.flags = kFlagUP;
  EXPECT_TRUE(run());
  uv_ = UserVerification::kRequired;
  spec_.sign_count = 7;
  expect_refused(run(), "UV flag not set");
}

TEST_F(Authentication, Step18_BackupStateWithoutEligibilityRejected) {
  spec_.flags = kFlagUP | kFlagBS;
  expect_refused(run(), "BS flag set without BE");
}

TEST_F(Authentication, Step19_BackupEligibilityMustNotChange) {
  spec_.flags = kFlagUP | kFlagBE;
  expect_refused(run(), "backup eligibility differs");
  stored_.backup_eligible = true;
  spec_.flags = kFlagUP | kFlagBE | kFlagBS;  // BS may change, BE may not
  EXPECT_TRUE(run());
  spec_.flags = kFlagUP;
  expect_refused(run(), "backup eligibility differs");
}

TEST_F(Authentication, Step21_SignatureMustVerify) {
  P256Credential other;
  expect_refused(run(&other), "signature invalid");
  ASSERT_TRUE(run());
  sig_.back() ^= 0x01;
  expect_refused(run_raw(), "signature invalid");
  // The signature covers clientDataJSON: a changed client data (same challenge/origin) fails.
  ASSERT_TRUE(run());
  client_ = client_data("webauthn.get", challenge_, kOrigin, ",\"crossOrigin\":false,\"x\":1");
  expect_refused(run_raw(), "signature invalid");
}

TEST_F(Authentication, Step22_SignCountRegressionRejected) {
  spec_.sign_count = 4;
  expect_refused(run(), "signature counter did not increase", "webauthn_sign_count_regression");
  spec_.sign_count = 5;  // equal is not an increase
  expect_refused(run(), "signature counter did not increase", "webauthn_sign_count_regression");
  spec_.sign_count = 0;  // authenticator stopped counting
  expect_refused(run(), "signature counter did not increase", "webauthn_sign_count_regression");
}

TEST_F(Authentication, Step22_ZeroCountersAccepted) {
  stored_.sign_count = 0;
  spec_.sign_count = 0;
  EXPECT_TRUE(run());
  spec_.sign_count = 1;
  EXPECT_TRUE(run());
}

TEST_F(Authentication, Step22_RegressionReportedOnlyAfterSignatureVerified) {
  spec_.sign_count = 1;
  P256Credential other;
  expect_refused(run(&other), "signature invalid");  // not webauthn_sign_count_regression
}

TEST_F(Authentication, AttestedCredentialDataRejected) {
  spec_.flags = kFlagUP | kFlagAT;
  spec_.credential_id = stored_.credential_id;
  spec_.cose = cred_.cose();
  expect_refused(run(), "attested credential data present");
}

TEST_F(Authentication, ExtensionsAccepted) {
  spec_.flags = kFlagUP | kFlagED;
  Cbor c;
  c.map(1).text("credProtect").uint(2);
  spec_.extensions = c.out();
  EXPECT_TRUE(run());
}

// ---- parsers ----------------------------------------------------------------------------------------------

TEST(AuthenticatorData, RejectsShortInput) {
  EXPECT_FALSE(parse_authenticator_data(Bytes(36, 0)));
  EXPECT_TRUE(parse_authenticator_data(Bytes(37, 0)));
}

TEST(AuthenticatorData, ParsesHeaderBigEndian) {
  AuthDataSpec s;
  s.flags = kFlagUP;
  s.sign_count = 0x01020304;
  auto a = parse_authenticator_data(auth_data(s));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->sign_count, 0x01020304u);
  EXPECT_EQ(a->flags, kFlagUP);
  EXPECT_FALSE(a->attested);
  EXPECT_TRUE(a->extensions.empty());
}

TEST(AuthenticatorData, RejectsTrailingBytes) {
  AuthDataSpec s;
  s.trailing = {0xa0};
  EXPECT_FALSE(parse_authenticator_data(auth_data(s)));  // ED not set: extensions are trailing bytes
}

TEST(AuthenticatorData, AttestedDataAndExtensionsSplitExactly) {
  P256Credential cred;
  AuthDataSpec s;
  s.flags = kFlagUP | kFlagAT | kFlagED;
  s.credential_id = {1, 2, 3};
  s.cose = cred.cose();
  Cbor c;
  c.map(1).text("credProtect").uint(1);
  s.extensions = c.out();
  auto a = parse_authenticator_data(auth_data(s));
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(a->attested);
  EXPECT_EQ(a->attested->credential_id, s.credential_id);
  EXPECT_EQ(a->attested->credential_public_key, cred.cose());
  EXPECT_EQ(a->extensions, c.out());
  s.flags = kFlagUP | kFlagAT;  // extensions present but ED clear
  EXPECT_FALSE(parse_authenticator_data(auth_data(s)));
  s.flags = kFlagUP | kFlagAT | kFlagED;
  s.extensions.clear();  // ED set but nothing there
  EXPECT_FALSE(parse_authenticator_data(auth_data(s)));
}

TEST(AuthenticatorData, RejectsTruncatedAttestedData) {
  P256Credential cred;
  AuthDataSpec s;
  s.flags = kFlagUP | kFlagAT;
  s.credential_id = {1, 2, 3};
  s.cose = cred.cose();
  Bytes d = auth_data(s);
  for (size_t cut = 37; cut < d.size(); cut += 7) {
    EXPECT_FALSE(parse_authenticator_data(ByteView(d.data(), cut))) << cut;
  }
}

TEST(ClientData, ParsesMembers) {
  const Bytes ch = {1, 2, 3, 4};
  auto c = parse_client_data(as_bytes(client_data("webauthn.get", ch, kOrigin,
                                                  ",\"crossOrigin\":true,\"topOrigin\":\"https://t.test\",\"other\":[1]")));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->type, "webauthn.get");
  EXPECT_EQ(c->challenge, ch);
  EXPECT_EQ(c->origin, kOrigin);
  EXPECT_TRUE(c->cross_origin);
  EXPECT_EQ(c->top_origin, "https://t.test");
}

TEST(ClientData, RejectsBadMembers) {
  EXPECT_FALSE(parse_client_data(as_bytes(std::string("{\"type\":1,\"challenge\":\"AQID\",\"origin\":\"o\"}"))));
  EXPECT_FALSE(parse_client_data(as_bytes(std::string("{\"type\":\"t\",\"challenge\":\"AQI=\",\"origin\":\"o\"}"))));
  EXPECT_FALSE(parse_client_data(as_bytes(std::string("{\"type\":\"t\",\"challenge\":\"\",\"origin\":\"o\"}"))));
  EXPECT_FALSE(parse_client_data(as_bytes(std::string("{\"type\":\"t\",\"challenge\":\"AQID\",\"origin\":\"o\",\"origin\":\"o\"}"))));
  EXPECT_FALSE(parse_client_data(as_bytes(std::string("{\"type\":\"t\",\"challenge\":\"AQID\",\"origin\":\"o\"} x"))));
  EXPECT_FALSE(parse_client_data(as_bytes(std::string("{\"type\":\"t\",\"challenge\":\"AQID\",\"origin\":\"o\",\"topOrigin\":null}"))));
  EXPECT_TRUE(parse_client_data(as_bytes(std::string("{\"type\":\"t\",\"challenge\":\"AQID\",\"origin\":\"o\"}"))));
}

TEST(Aaguid, FormatsAsLowerCaseUuid) {
  std::array<uint8_t, 16> a{};
  EXPECT_EQ(aaguid_string(a), "00000000-0000-0000-0000-000000000000");
  for (size_t i = 0; i < 16; ++i) a[i] = static_cast<uint8_t>(0xf0 + i);
  EXPECT_EQ(aaguid_string(a), "f0f1f2f3-f4f5-f6f7-f8f9-fafbfcfdfeff");
}

}  // namespace
}  // namespace sigil::webauthn
