// service::MobileBiometrics (API.md 2) over real parts: SQLite in a temporary folder, a TokenService with a
// fresh signing key, a ChallengeStore, and a ManualClock to move past challenge expiry. Device keys are real
// OpenSSL keys; signatures are made exactly as the mobile SDKs make them (SHA-256, DER for ECDSA).
#include "api/service/mobile_biometrics.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "api/store/sqlite_store.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::service {
namespace {

// --- device keys ---------------------------------------------------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

class DeviceKey {
 public:
  static DeviceKey ec() { return DeviceKey(EVP_EC_gen("P-256")); }
  static DeviceKey rsa(unsigned bits = 2048) { return DeviceKey(EVP_RSA_gen(bits)); }
  static DeviceKey ec_curve(const char* curve) { return DeviceKey(EVP_EC_gen(curve)); }

  // X.509 SubjectPublicKeyInfo DER (Android), base64.
  [[nodiscard]] std::string spki_b64() const {
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(pkey_.get(), &der);
    SIGIL_CHECK(n > 0);
    std::string out = crypto::base64_encode(ByteView(der, static_cast<size_t>(n)));
    OPENSSL_free(der);
    return out;
  }
  // PKCS#1 RSAPublicKey DER for RSA, the raw X9.62 point (04||X||Y) for EC (iOS exports), base64.
  [[nodiscard]] std::string raw_b64() const {
    unsigned char* der = nullptr;
    const int n = i2d_PublicKey(pkey_.get(), &der);
    SIGIL_CHECK(n > 0);
    std::string out = crypto::base64_encode(ByteView(der, static_cast<size_t>(n)));
    OPENSSL_free(der);
    return out;
  }
  // SHA256withECDSA (DER) or SHA256withRSA (PKCS#1 v1.5) over the UTF-8 bytes of `message`, base64.
  [[nodiscard]] std::string sign_b64(std::string_view message) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    SIGIL_CHECK(ctx != nullptr);
    SIGIL_CHECK(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey_.get()) == 1);
    size_t len = 0;
    const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
    SIGIL_CHECK(EVP_DigestSign(ctx, nullptr, &len, msg, message.size()) == 1);
    Bytes sig(len);
    SIGIL_CHECK(EVP_DigestSign(ctx, sig.data(), &len, msg, message.size()) == 1);
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    return crypto::base64_encode(sig);
  }

 private:
  explicit DeviceKey(EVP_PKEY* p) : pkey_(p, PkeyFree{}) { SIGIL_CHECK(p != nullptr); }
  std::shared_ptr<EVP_PKEY> pkey_;
};

// --- helpers -------------------------------------------------------------------------------------------

class RecordingEmail final : public EmailSender {
 public:
  Result<void> send(const EmailMessage& m) override {
    sent.push_back(m);
    return {};
  }
  std::vector<EmailMessage> sent;
};

std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sigil-mobile-XXXXXX").string();
  SIGIL_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

std::string jwt_payload(const std::string& jwt) {
  const size_t a = jwt.find('.');
  const size_t b = jwt.find('.', a + 1);
  SIGIL_CHECK(a != std::string::npos && b != std::string::npos);
  auto decoded = crypto::base64url_decode(std::string_view(jwt).substr(a + 1, b - a - 1));
  SIGIL_CHECK(decoded.has_value());
  return std::string(as_chars(*decoded));
}

// A string member of a JSON object text; empty when absent or not a string.
std::string json_string(const std::string& json, std::string_view name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return {};
  std::string_view v;
  if (root[name].get_string().get(v)) return {};
  return std::string(v);
}

Params params(std::string_view json) {
  auto p = Params::from_json(json);
  SIGIL_CHECK(p.has_value());
  return std::move(*p);
}

// {"k":"v",...} from pairs of strings.
std::string obj(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  JsonWriter w;
  w.begin_object();
  for (const auto& [k, v] : fields) w.key(k).string(v);
  w.end_object();
  return std::move(w).str();
}

void expect_auth_failed(const Result<std::string>& r) {
  ASSERT_FALSE(r.has_value()) << *r;
  EXPECT_EQ(r.error().status(), 401);
  EXPECT_EQ(r.error().message, "Authentication failed");
  EXPECT_EQ(r.error().ts_error_code, "auth_invalid_signature");
}

void expect_status(const Result<std::string>& r, int status, std::string_view ts = {}) {
  ASSERT_FALSE(r.has_value()) << *r;
  EXPECT_EQ(r.error().status(), status) << r.error().message;
  if (!ts.empty()) {
    EXPECT_EQ(r.error().ts_error_code, ts) << r.error().message;
  }
}

class MobileBiometricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    auto opened = store::SqliteStore::open(dir_ + "/sigil.db", clock_);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    store_ = std::move(*opened);
    auto keys = auth::load_or_create_signing_keys(*store_, crypto::random_bytes(32), clock_);
    ASSERT_TRUE(keys.has_value());
    auth::AuthConfig config;
    config.issuer = "https://sigil.test";
    tokens_ = std::make_unique<auth::TokenService>(*store_, clock_, config, *keys);
    challenges_ = std::make_unique<challenge::ChallengeStore>(clock_, challenge::ChallengeStore::Options{1000});
    ctx_ = std::unique_ptr<ServiceContext>(new ServiceContext{
        *store_, *tokens_, *challenges_, email_, clock_, "http://localhost:8080", crypto::random_bytes(32)});
    mobile_ = std::make_unique<MobileBiometrics>(*ctx_);

    ASSERT_TRUE(store_->create_tenant({"tenant-1", "t1", clock_.now_s()}).has_value());
    app_ = make_app("app-1");
    other_app_ = make_app("app-2");
    make_client("client-1", app_);
    make_client("client-2", other_app_);
    alice_ = make_user("user-alice", "alice@example.com");
    bob_ = make_user("user-bob", "bob@example.com");
    client_ = client_principal("client-1");
    alice_p_ = user_principal(alice_);
    bob_p_ = user_principal(bob_);
  }

  void TearDown() override {
    mobile_.reset();
    ctx_.reset();
    challenges_.reset();
    tokens_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  store::App make_app(const std::string& id) {
    store::App app;
    app.id = id;
    app.tenant_id = "tenant-1";
    app.name = id;
    app.redirect_uris = {"https://app.example/cb"};
    app.created_at = clock_.now_s();
    SIGIL_CHECK(store_->create_app(app).has_value());
    return app;
  }
  void make_client(const std::string& id, const store::App& app) {
    store::Client c;
    c.client_id = id;
    c.app_id = app.id;
    c.tenant_id = app.tenant_id;
    auto h = crypto::sha256(as_bytes(id + "-secret"));
    c.secret_hash.assign(h.begin(), h.end());
    c.created_at = clock_.now_s();
    SIGIL_CHECK(store_->create_client(c).has_value());
  }
  store::User make_user(const std::string& id, const std::string& email) {
    store::User u;
    u.id = id;
    u.tenant_id = "tenant-1";
    u.email = email;
    u.phone = "+1555" + std::to_string(id.size()) + std::to_string(email.size());
    u.email_verified = true;
    u.created_at = clock_.now_s();
    SIGIL_CHECK(store_->create_user(u).has_value());
    return u;
  }

  // Real bearer tokens, authenticated as the router would.
  auth::Principal client_principal(const std::string& client_id) {
    auto client = store_->find_client(client_id);
    SIGIL_CHECK(client.has_value() && client->has_value());
    auto app = store_->find_app((*client)->app_id);
    SIGIL_CHECK(app.has_value() && app->has_value());
    auto t = tokens_->issue_client_token(**client, **app, "", "");
    SIGIL_CHECK(t.has_value());
    auto p = tokens_->authenticate_bearer("Bearer " + t->access_token);
    SIGIL_CHECK(p.has_value());
    return *p;
  }
  auth::Principal user_principal(const store::User& user) { return user_principal(user, app_, "client-1"); }
  auth::Principal user_principal(const store::User& user, const store::App& app, const std::string& client_id) {
    auth::LoginRequest req;
    req.app = &app;
    req.client_id = client_id;
    req.user = user;
    req.amr = "eotp";
    auto t = tokens_->login(req);
    SIGIL_CHECK(t.has_value());
    auto p = tokens_->authenticate_bearer("Bearer " + t->access_token);
    SIGIL_CHECK(p.has_value());
    return *p;
  }

  Result<std::string> register_key(const auth::Principal& who, std::string_view key_id, std::string_view public_key,
                                   std::string_view type = {}) {
    JsonWriter w;
    w.begin_object();
    w.key("publicKey").string(public_key);
    w.key("publicKeyId").string(key_id);
    w.key("os").string("Android");
    if (!type.empty()) w.key("encryptionType").string(type);
    w.end_object();
    return mobile_->register_key(who, params(w.str()));
  }
  void must_register(const auth::Principal& who, std::string_view key_id, const DeviceKey& key,
                     std::string_view type = "ec") {
    auto r = register_key(who, key_id, key.spki_b64(), type);
    ASSERT_TRUE(r.has_value()) << r.error().message << " " << r.error().ts_error_code;
  }

  Result<std::string> start_for(const std::string& user_id, std::string_view extra_json_members = {}) {
    std::string body = "{\"user_id\":" + JsonWriter::quote(user_id);
    if (!extra_json_members.empty()) body += "," + std::string(extra_json_members);
    body += "}";
    return mobile_->start(client_, params(body));
  }
  std::string challenge_for(const std::string& user_id, std::string_view extra = {}) {
    auto r = start_for(user_id, extra);
    SIGIL_CHECK(r.has_value());
    std::string c = json_string(*r, "challenge");
    SIGIL_CHECK(!c.empty());
    return c;
  }

  Result<std::string> authenticate(const std::string& user_id, std::string_view key_id, std::string_view challenge,
                                   std::string_view signature, std::string_view extra_json_members = {}) {
    JsonWriter w;
    w.begin_object();
    w.key("user_id").string(user_id);
    w.key("key_id").string(key_id);
    w.key("challenge").string(challenge);
    w.key("signature").string(signature);
    w.end_object();
    std::string body = w.str();
    if (!extra_json_members.empty()) body = body.substr(0, body.size() - 1) + "," + std::string(extra_json_members) + "}";
    return mobile_->authenticate(client_, params(body));
  }

  void set_allow_client_challenges(bool on) {
    app_.allow_client_challenges = on;
    ASSERT_TRUE(store_->update_app(app_).has_value());
  }

  std::string dir_;
  ManualClock clock_;
  RecordingEmail email_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<auth::TokenService> tokens_;
  std::unique_ptr<challenge::ChallengeStore> challenges_;
  std::unique_ptr<ServiceContext> ctx_;
  std::unique_ptr<MobileBiometrics> mobile_;
  store::App app_, other_app_;
  store::User alice_, bob_;
  auth::Principal client_, alice_p_, bob_p_;
};

// --- login ---------------------------------------------------------------------------------------------

TEST_F(MobileBiometricsTest, EcKeyLoginIssuesUserTokens) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  EXPECT_EQ(crypto::base64url_decode(challenge)->size(), 32u);
  auto r = authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const std::string access = json_string(*r, "access_token");
  EXPECT_FALSE(json_string(*r, "id_token").empty());
  EXPECT_FALSE(json_string(*r, "refresh_token").empty());
  EXPECT_FALSE(json_string(*r, "session_id").empty());
  EXPECT_EQ(json_string(*r, "token_type"), "Bearer");
  auto p = tokens_->authenticate_bearer("Bearer " + access);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->user_id, alice_.id);
  EXPECT_NE(jwt_payload(access).find(R"("amr":["mobile_biometrics"])"), std::string::npos);
  // Last use of the key is recorded.
  clock_.advance_ms(5000);
  auto stored = store_->find_mobile_key(app_.id, "k1");
  ASSERT_TRUE(stored.has_value() && stored->has_value());
  EXPECT_GT((*stored)->last_used_at, 0);
}

TEST_F(MobileBiometricsTest, StartByEmailIdentifierWorks) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  auto r = mobile_->start(client_, params(R"({"identifier":"Alice@Example.com","identifier_type":"email"})"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const std::string challenge = json_string(*r, "challenge");
  EXPECT_TRUE(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge)).has_value());
}

TEST_F(MobileBiometricsTest, ExpiredChallengeIsRefused) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id, R"("timeout":30)");
  clock_.advance_ms(30'001);
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, ChallengeIsValidUntilItsTimeout) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id, R"("timeout":30)");
  clock_.advance_ms(29'000);
  EXPECT_TRUE(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge)).has_value());
}

TEST_F(MobileBiometricsTest, DefaultTimeoutIsFiveMinutes) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  clock_.advance_ms(300'001);
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, ReplayedChallengeIsRefused) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  const std::string sig = key.sign_b64(challenge);
  ASSERT_TRUE(authenticate(alice_.id, "k1", challenge, sig).has_value());
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, sig));
}

TEST_F(MobileBiometricsTest, FailedAttemptConsumesTheChallenge) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, key.sign_b64("something else")));
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, ChallengeOfAnotherUserIsRefused) {
  DeviceKey alice_key = DeviceKey::ec();
  DeviceKey bob_key = DeviceKey::ec();
  must_register(alice_p_, "ka", alice_key);
  must_register(bob_p_, "kb", bob_key);
  const std::string challenge = challenge_for(alice_.id);
  expect_auth_failed(authenticate(bob_.id, "kb", challenge, bob_key.sign_b64(challenge)));
  // Consumed by that attempt: the one attempt it allowed is gone.
  expect_auth_failed(authenticate(alice_.id, "ka", challenge, alice_key.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, ChallengeOfAnotherDeviceIsRefused) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id, R"("device_id":"phone-1")");
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge), R"("device_id":"phone-2")"));
  const std::string again = challenge_for(alice_.id, R"("device_id":"phone-1")");
  EXPECT_TRUE(authenticate(alice_.id, "k1", again, key.sign_b64(again), R"("device_id":"phone-1")").has_value());
}

TEST_F(MobileBiometricsTest, DeviceBoundChallengeNeedsTheDeviceId) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id, R"("device_id":"phone-1")");
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, ChallengeOfAnotherAppIsRefused) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  auth::Principal other = client_principal("client-2");
  JsonWriter w;
  w.begin_object()
      .key("user_id").string(alice_.id)
      .key("key_id").string("k1")
      .key("challenge").string(challenge)
      .key("signature").string(key.sign_b64(challenge))
      .end_object();
  expect_auth_failed(mobile_->authenticate(other, params(w.str())));
}

TEST_F(MobileBiometricsTest, SignatureByAnotherKeyIsRefused) {
  DeviceKey k1 = DeviceKey::ec();
  DeviceKey k2 = DeviceKey::ec();
  must_register(alice_p_, "k1", k1);
  must_register(alice_p_, "k2", k2);
  const std::string challenge = challenge_for(alice_.id);
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, k2.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, MalformedSignatureIsRefused) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  std::string challenge = challenge_for(alice_.id);
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, "%%%not-base64%%%"));
}

TEST_F(MobileBiometricsTest, DeletedKeyIsRefused) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  auto deleted = mobile_->delete_key(alice_p_, params(R"({"publicKeyId":"k1"})"));
  ASSERT_TRUE(deleted.has_value());
  EXPECT_EQ(*deleted, R"({"message":"Key deleted"})");
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, KeyOfAnotherUserIsRefused) {
  DeviceKey alice_key = DeviceKey::ec();
  DeviceKey bob_key = DeviceKey::ec();
  must_register(alice_p_, "ka", alice_key);
  must_register(bob_p_, "kb", bob_key);
  const std::string challenge = challenge_for(alice_.id);
  expect_auth_failed(authenticate(alice_.id, "kb", challenge, bob_key.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, UnknownKeyIdIsRefused) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  expect_auth_failed(authenticate(alice_.id, "nope", challenge, key.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, AuthenticateForUnknownUserIs404) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  expect_status(authenticate("no-such-user", "k1", challenge, key.sign_b64(challenge)), 404);
}

TEST_F(MobileBiometricsTest, Rsa2048SpkiKeyLogsIn) {
  DeviceKey key = DeviceKey::rsa(2048);
  must_register(alice_p_, "rsa", key, "rsa");
  auto stored = store_->find_mobile_key(app_.id, "rsa");
  ASSERT_TRUE(stored.has_value() && stored->has_value());
  EXPECT_EQ((*stored)->key_type, "rsa");
  const std::string challenge = challenge_for(alice_.id);
  EXPECT_TRUE(authenticate(alice_.id, "rsa", challenge, key.sign_b64(challenge)).has_value());
}

TEST_F(MobileBiometricsTest, Pkcs1RsaKeyIsAcceptedAndTypeInferred) {
  DeviceKey key = DeviceKey::rsa(2048);
  auto r = register_key(alice_p_, "rsa1", key.raw_b64());  // no encryptionType: inferred
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto stored = store_->find_mobile_key(app_.id, "rsa1");
  ASSERT_TRUE(stored.has_value() && stored->has_value());
  EXPECT_EQ((*stored)->key_type, "rsa");
  const std::string challenge = challenge_for(alice_.id);
  EXPECT_TRUE(authenticate(alice_.id, "rsa1", challenge, key.sign_b64(challenge)).has_value());
}

TEST_F(MobileBiometricsTest, RawX962PointKeyIsAccepted) {
  DeviceKey key = DeviceKey::ec();
  ASSERT_EQ(crypto::base64_decode(key.raw_b64())->size(), 65u);
  auto r = register_key(alice_p_, "ios", key.raw_b64(), "ec");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const std::string challenge = challenge_for(alice_.id);
  EXPECT_TRUE(authenticate(alice_.id, "ios", challenge, key.sign_b64(challenge)).has_value());
}

TEST_F(MobileBiometricsTest, Base64UrlKeyAndSignatureAreAccepted) {
  DeviceKey key = DeviceKey::ec();
  auto der = crypto::base64_decode(key.spki_b64());
  ASSERT_TRUE(register_key(alice_p_, "k1", crypto::base64url_encode(*der), "ec").has_value());
  const std::string challenge = challenge_for(alice_.id);
  auto sig = crypto::base64_decode(key.sign_b64(challenge));
  EXPECT_TRUE(authenticate(alice_.id, "k1", challenge, crypto::base64url_encode(*sig)).has_value());
}

// --- register ------------------------------------------------------------------------------------------

TEST_F(MobileBiometricsTest, RegisterReturnsTheDocumentedBody) {
  DeviceKey key = DeviceKey::ec();
  auto r = register_key(alice_p_, "k1", key.spki_b64(), "ec");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, R"({"message":"Key registered","publicKeyId":"k1"})");
}

TEST_F(MobileBiometricsTest, EncryptionTypeMismatchIsInvalidKeyType) {
  expect_status(register_key(alice_p_, "k1", DeviceKey::ec().spki_b64(), "rsa"), 400, "auth_invalid_key_type");
  expect_status(register_key(alice_p_, "k2", DeviceKey::rsa().spki_b64(), "ec"), 400, "auth_invalid_key_type");
  expect_status(register_key(alice_p_, "k3", DeviceKey::ec().spki_b64(), "dsa"), 400, "auth_invalid_key_type");
}

TEST_F(MobileBiometricsTest, UnsupportedKeysAreInvalidKeyType) {
  expect_status(register_key(alice_p_, "small", DeviceKey::rsa(1024).spki_b64()), 400, "auth_invalid_key_type");
  expect_status(register_key(alice_p_, "p384", DeviceKey::ec_curve("P-384").spki_b64()), 400,
                "auth_invalid_key_type");
}

TEST_F(MobileBiometricsTest, UndecodableKeyIsInvalidKeyEncoding) {
  expect_status(register_key(alice_p_, "k1", "!!!!", "ec"), 400, "auth_invalid_key_encoding");
  expect_status(register_key(alice_p_, "k2", crypto::base64_encode(as_bytes("not a key")), "ec"), 400,
                "auth_invalid_key_encoding");
}

TEST_F(MobileBiometricsTest, EleventhKeyIsRefused) {
  for (int i = 0; i < 10; ++i) must_register(alice_p_, "k" + std::to_string(i), DeviceKey::ec());
  expect_status(register_key(alice_p_, "k10", DeviceKey::ec().spki_b64(), "ec"), 400,
                "auth_max_authenticators_count_exceeded");
  // Another user is not affected by alice's count.
  must_register(bob_p_, "bob-k", DeviceKey::ec());
  // Deleting one makes room again.
  ASSERT_TRUE(mobile_->delete_key(alice_p_, params(R"({"publicKeyId":"k3"})")).has_value());
  must_register(alice_p_, "k10", DeviceKey::ec());
}

TEST_F(MobileBiometricsTest, DuplicatePublicKeyIdIsConflict) {
  must_register(alice_p_, "k1", DeviceKey::ec());
  auto again = register_key(alice_p_, "k1", DeviceKey::ec().spki_b64(), "ec");
  expect_status(again, 409);
  EXPECT_EQ(again.error().message, "Key already registered");
  // Any user of the same app.
  expect_status(register_key(bob_p_, "k1", DeviceKey::ec().spki_b64(), "ec"), 409);
}

TEST_F(MobileBiometricsTest, MissingRequiredFieldsGiveTheStringInvalidRequestCode) {
  for (std::string_view body : {R"({"publicKeyId":"k1","os":"iOS"})", R"({"publicKey":"","publicKeyId":"k1","os":"iOS"})",
                                R"({"publicKey":null,"publicKeyId":"k1","os":"iOS"})"}) {
    auto r = mobile_->register_key(alice_p_, params(body));
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().status(), 400);
    EXPECT_EQ(r.error().string_error_code, "invalid_request");
    EXPECT_EQ(r.error().message, "Invalid request: property should not be null or undefined");
  }
  JsonWriter w;
  w.begin_object().key("publicKey").string(DeviceKey::ec().spki_b64()).key("os").string("iOS").end_object();
  auto no_id = mobile_->register_key(alice_p_, params(w.str()));
  ASSERT_FALSE(no_id.has_value());
  EXPECT_EQ(no_id.error().string_error_code, "invalid_request");
}

TEST_F(MobileBiometricsTest, AttestationNeedsItsChallengeAndMustDecode) {
  DeviceKey key = DeviceKey::ec();
  JsonWriter w;
  w.begin_object()
      .key("publicKey").string(key.spki_b64())
      .key("publicKeyId").string("k1")
      .key("os").string("Android")
      .key("attestation_encoded_result").string("AAAA")
      .end_object();
  expect_status(mobile_->register_key(alice_p_, params(w.str())), 400, "auth_invalid_attestation");
}

TEST_F(MobileBiometricsTest, RegisterRequiresAUserToken) {
  auto r = register_key(client_, "k1", DeviceKey::ec().spki_b64(), "ec");
  expect_status(r, 403);
}

TEST_F(MobileBiometricsTest, DeleteRequiresAUserTokenAndOnlyDeletesOwnKeys) {
  must_register(alice_p_, "k1", DeviceKey::ec());
  expect_status(mobile_->delete_key(client_, params(R"({"publicKeyId":"k1"})")), 403);
  auto other = mobile_->delete_key(bob_p_, params(R"({"publicKeyId":"k1"})"));
  expect_status(other, 404);
  EXPECT_EQ(other.error().message, "Key not found");
  auto missing = mobile_->delete_key(alice_p_, params("{}"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().string_error_code, "invalid_request");
  EXPECT_TRUE(mobile_->delete_key(alice_p_, params(R"({"publicKeyId":"k1"})")).has_value());
  expect_status(mobile_->delete_key(alice_p_, params(R"({"publicKeyId":"k1"})")), 404);
}

// --- start ---------------------------------------------------------------------------------------------

TEST_F(MobileBiometricsTest, StartRequiresAClientToken) {
  must_register(alice_p_, "k1", DeviceKey::ec());
  expect_status(mobile_->start(alice_p_, params(obj({{"user_id", alice_.id}}))), 403);
}

TEST_F(MobileBiometricsTest, AuthenticateRequiresAClientToken) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  JsonWriter w;
  w.begin_object()
      .key("user_id").string(alice_.id)
      .key("key_id").string("k1")
      .key("challenge").string(challenge)
      .key("signature").string(key.sign_b64(challenge))
      .end_object();
  expect_status(mobile_->authenticate(alice_p_, params(w.str())), 403);
}

TEST_F(MobileBiometricsTest, TimeoutOutsideThirtyToSixHundredIsRefused) {
  must_register(alice_p_, "k1", DeviceKey::ec());
  expect_status(start_for(alice_.id, R"("timeout":29)"), 400);
  expect_status(start_for(alice_.id, R"("timeout":601)"), 400);
  expect_status(start_for(alice_.id, R"("timeout":"soon")"), 400);
  EXPECT_TRUE(start_for(alice_.id, R"("timeout":30)").has_value());
  EXPECT_TRUE(start_for(alice_.id, R"("timeout":600)").has_value());
}

TEST_F(MobileBiometricsTest, BothOrNeitherIdentifierFormsAreRefused) {
  must_register(alice_p_, "k1", DeviceKey::ec());
  JsonWriter both;
  both.begin_object()
      .key("user_id").string(alice_.id)
      .key("identifier").string("alice@example.com")
      .key("identifier_type").string("email")
      .end_object();
  expect_status(mobile_->start(client_, params(both.str())), 400);
  expect_status(mobile_->start(client_, params("{}")), 400);
  // Half of form A is a missing property.
  auto half = mobile_->start(client_, params(R"({"identifier":"alice@example.com"})"));
  ASSERT_FALSE(half.has_value());
  EXPECT_EQ(half.error().status(), 400);
}

TEST_F(MobileBiometricsTest, UnknownIdentifierTypeHasItsStringErrorCode) {
  auto r = mobile_->start(client_, params(R"({"identifier":"x","identifier_type":"passport"})"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status(), 400);
  EXPECT_EQ(r.error().string_error_code, "user_unknown_identifier_type");
}

TEST_F(MobileBiometricsTest, UnknownUserIs404UserNotFound) {
  auto r = start_for("no-such-user");
  expect_status(r, 404);
  EXPECT_EQ(r.error().message, "User not found");
  EXPECT_TRUE(r.error().ts_error_code.empty());
}

TEST_F(MobileBiometricsTest, UserWithoutKeysIs404NoRegisteredAuthenticator) {
  expect_status(start_for(alice_.id), 404, "auth_no_registered_authenticator");
  // Keys of another user, or of the same user in another app, do not count.
  must_register(bob_p_, "kb", DeviceKey::ec());
  must_register(user_principal(alice_, other_app_, "client-2"), "ka-other-app", DeviceKey::ec());
  expect_status(start_for(alice_.id), 404, "auth_no_registered_authenticator");
}

TEST_F(MobileBiometricsTest, ApprovalDataFlowsIntoTheIdToken) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge =
      challenge_for(alice_.id, R"("approval_data":{"payee":"Bob","amount":"10.00"})");
  auto r = authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const std::string payload = jwt_payload(json_string(*r, "id_token"));
  EXPECT_NE(payload.find(R"("approval_data":{"amount":"10.00","payee":"Bob"})"), std::string::npos) << payload;
}

TEST_F(MobileBiometricsTest, LoginWithoutApprovalDataHasNoApprovalClaim) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  auto r = authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(jwt_payload(json_string(*r, "id_token")).find("approval_data"), std::string::npos);
}

TEST_F(MobileBiometricsTest, InvalidApprovalDataAtStartIsRefused) {
  must_register(alice_p_, "k1", DeviceKey::ec());
  expect_status(start_for(alice_.id, R"("approval_data":{"amount":10})"), 400, "system_invalid_input");
  expect_status(start_for(alice_.id, R"("approval_data":{"a":"$"})"), 400, "system_invalid_input");
  expect_status(start_for(alice_.id, R"("approval_data":"nope")"), 400);
}

// --- client-made challenges (API.md 2.2 compat) --------------------------------------------------------

TEST_F(MobileBiometricsTest, ClientMadeChallengeIsRefusedWhenTheAppDoesNotAllowIt) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = "client-made-challenge-0123456789";
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge)));
}

TEST_F(MobileBiometricsTest, ClientMadeChallengeIsAcceptedOnceWhenAllowed) {
  set_allow_client_challenges(true);
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = "client-made-challenge-0123456789";
  const std::string sig = key.sign_b64(challenge);
  auto r = authenticate(alice_.id, "k1", challenge, sig);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  expect_auth_failed(authenticate(alice_.id, "k1", challenge, sig));  // replay within 24 h
  // Too short a client challenge is refused even when allowed.
  const std::string short_challenge = "short";
  expect_auth_failed(authenticate(alice_.id, "k1", short_challenge, key.sign_b64(short_challenge)));
}

TEST_F(MobileBiometricsTest, UsedOrExpiredStartChallengeCannotComeBackAsAClientChallenge) {
  set_allow_client_challenges(true);
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string used = challenge_for(alice_.id);
  ASSERT_TRUE(authenticate(alice_.id, "k1", used, key.sign_b64(used)).has_value());
  expect_auth_failed(authenticate(alice_.id, "k1", used, key.sign_b64(used)));
  const std::string expired = challenge_for(alice_.id, R"("timeout":30)");
  clock_.advance_ms(31'000);
  expect_auth_failed(authenticate(alice_.id, "k1", expired, key.sign_b64(expired)));
}

TEST_F(MobileBiometricsTest, ClientMadeChallengeNeverCarriesApprovalData) {
  set_allow_client_challenges(true);
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = "another-client-made-challenge-42";
  auto r = authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(jwt_payload(json_string(*r, "id_token")).find("approval_data"), std::string::npos);
}

// --- sessions ------------------------------------------------------------------------------------------

TEST_F(MobileBiometricsTest, JoiningAnotherUsersSessionIsInvalidSession) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  const std::string extra = "\"session_id\":" + JsonWriter::quote(bob_p_.session_id);
  expect_status(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge), extra), 400,
                "auth_invalid_session");
}

TEST_F(MobileBiometricsTest, JoiningOwnSessionAddsMfa) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  const std::string extra = "\"session_id\":" + JsonWriter::quote(alice_p_.session_id);
  auto r = authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge), extra);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(json_string(*r, "session_id"), alice_p_.session_id);
  EXPECT_NE(jwt_payload(json_string(*r, "id_token")).find("\"mfa\""), std::string::npos);
}

TEST_F(MobileBiometricsTest, UnknownResourceIsInvalidResource) {
  DeviceKey key = DeviceKey::ec();
  must_register(alice_p_, "k1", key);
  const std::string challenge = challenge_for(alice_.id);
  expect_status(authenticate(alice_.id, "k1", challenge, key.sign_b64(challenge), R"("resource":"https://x")"), 400,
                "invalid_resource");
}

}  // namespace
}  // namespace sigil::service
