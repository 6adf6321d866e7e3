// service::WebAuthn (API.md 3) over real parts: SQLite in a temporary folder, a TokenService with a fresh
// signing key, and a ManualClock to move past ceremony expiry. The browser and authenticator are
// testing::SoftAuthenticator, which answers the server's own options with the toJSON() text a browser gives.
#include "api/service/webauthn.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "api/service/params.h"
#include "api/store/sqlite_store.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"
#include "tests/support/soft_authenticator.h"

namespace sigil::service {
namespace {

constexpr std::string_view kOrigin = "https://app.example";
constexpr std::string_view kRpId = "app.example";

// --- JSON helpers ----------------------------------------------------------------------------------------

std::string jstr(const std::string& json, std::string_view pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return {};
  std::string_view v;
  if (root.at_pointer(pointer).get_string().get(v)) return {};
  return std::string(v);
}
int64_t jint(const std::string& json, std::string_view pointer, int64_t fallback = -1) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return fallback;
  int64_t v = 0;
  if (root.at_pointer(pointer).get_int64().get(v)) return fallback;
  return v;
}
// The minified JSON text of the value at `pointer`; empty when absent.
std::string jraw(const std::string& json, std::string_view pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return {};
  simdjson::dom::element e;
  if (root.at_pointer(pointer).get(e)) return {};
  return simdjson::minify(e);
}
bool jbool(const std::string& json, std::string_view pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return false;
  bool v = false;
  if (root.at_pointer(pointer).get_bool().get(v)) return false;
  return v;
}
size_t jsize(const std::string& json, std::string_view pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return 0;
  simdjson::dom::array a;
  if (root.at_pointer(pointer).get_array().get(a)) return 0;
  return a.size();
}

std::string jwt_payload(const std::string& jwt) {
  const size_t a = jwt.find('.');
  const size_t b = jwt.find('.', a + 1);
  if (a == std::string::npos || b == std::string::npos) return {};
  auto decoded = crypto::base64url_decode(std::string_view(jwt).substr(a + 1, b - a - 1));
  if (!decoded) return {};
  return std::string(as_chars(*decoded));
}

Params params(std::string_view json) {
  auto p = Params::from_json(json);
  SIGIL_CHECK(p.has_value());
  return std::move(*p);
}

std::string obj(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  JsonWriter w;
  w.begin_object();
  for (const auto& [k, v] : fields) w.key(k).string(v);
  w.end_object();
  return std::move(w).str();
}

std::string result_params(std::string_view credential_json) {
  return obj({{"webauthn_encoded_result", testing::encode_result(credential_json)}});
}

bool alnum(const std::string& s) {
  // No std::regex: GCC 12 reports false maybe-uninitialized warnings inside <regex> under sanitizers.
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

// A credential's toJSON() text taken apart, so tests can re-encode or recombine members.
struct CredentialJson {
  std::string id;
  std::string attachment;
  Bytes raw_id, client_data_json, attestation_object, authenticator_data, signature, user_handle;

  static CredentialJson parse(const std::string& json) {
    CredentialJson c;
    c.id = jstr(json, "/id");
    c.attachment = jstr(json, "/authenticatorAttachment");
    auto bin = [&](std::string_view pointer) {
      const std::string s = jstr(json, pointer);
      if (s.empty()) return Bytes();
      auto b = crypto::base64url_decode(s);
      SIGIL_CHECK(b.has_value());
      return *b;
    };
    c.raw_id = bin("/rawId");
    c.client_data_json = bin("/response/clientDataJSON");
    c.attestation_object = bin("/response/attestationObject");
    c.authenticator_data = bin("/response/authenticatorData");
    c.signature = bin("/response/signature");
    c.user_handle = bin("/response/userHandle");
    return c;
  }
  // `standard`: binary members in standard base64 with padding (the vendor SDK's envelope).
  [[nodiscard]] std::string to_json(bool standard) const {
    auto enc = [&](const Bytes& b) { return standard ? crypto::base64_encode(b) : crypto::base64url_encode(b); };
    JsonWriter w;
    w.begin_object();
    w.key("id").string(id);
    w.key("rawId").string(enc(raw_id));
    w.key("type").string("public-key");
    w.key("authenticatorAttachment").string(attachment);
    w.key("response").begin_object();
    w.key("clientDataJSON").string(enc(client_data_json));
    if (!attestation_object.empty()) w.key("attestationObject").string(enc(attestation_object));
    if (!authenticator_data.empty()) w.key("authenticatorData").string(enc(authenticator_data));
    if (!signature.empty()) w.key("signature").string(enc(signature));
    if (!authenticator_data.empty()) w.key("userHandle").string(enc(user_handle));
    w.end_object();
    w.end_object();
    return std::move(w).str();
  }
};

// The vendor SDK's webauthn_encoded_result: base64 of {webauthnSessionId, publicKeyCredential, userAgent}.
std::string envelope(const std::string& session_id, const std::string& credential_json) {
  const std::string cred = CredentialJson::parse(credential_json).to_json(true);
  std::string json = "{\"webauthnSessionId\":" + JsonWriter::quote(session_id) + ",\"publicKeyCredential\":" +
                     cred + ",\"userAgent\":\"Mozilla/5.0 (test)\"}";
  return crypto::base64_encode(as_bytes(json));
}

void expect_error(const Result<std::string>& r, int status, std::string_view ts = {}) {
  ASSERT_FALSE(r.has_value()) << *r;
  EXPECT_EQ(r.error().status(), status) << r.error().message << " " << r.error().ts_error_code;
  if (!ts.empty()) {
    EXPECT_EQ(r.error().ts_error_code, ts) << r.error().message;
  }
}
void expect_auth_failed(const Result<std::string>& r) {
  ASSERT_FALSE(r.has_value()) << *r;
  EXPECT_EQ(r.error().status(), 401) << r.error().message;
  EXPECT_EQ(r.error().message, "Authentication failed");
  EXPECT_EQ(r.error().ts_error_code, "auth_webauthn_failed");
}

std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sigil-webauthn-XXXXXX").string();
  SIGIL_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

class NullEmail final : public EmailSender {
 public:
  Result<void> send(const EmailMessage&) override { return {}; }
};

// --- fixture ---------------------------------------------------------------------------------------------

class WebAuthnServiceTest : public ::testing::Test {
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
    webauthn_ = std::make_unique<WebAuthn>(*ctx_);

    ASSERT_TRUE(store_->create_tenant({"tenant-1", "t1", clock_.now_s()}).has_value());
    app_ = make_app("app-1");
    other_app_ = make_app("app-2");
    make_client("client-1", app_);
    make_client("client-2", other_app_);
    alice_ = make_user("user-alice", "alice@example.com", "+15550001");
    bob_ = make_user("user-bob", "bob@example.com", "+15550002");
    client_ = client_principal("client-1");
    other_client_ = client_principal("client-2");
    alice_p_ = user_principal(alice_, app_, "client-1");
    bob_p_ = user_principal(bob_, app_, "client-1");
  }

  void TearDown() override {
    webauthn_.reset();
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
    app.name = "App " + id;
    app.redirect_uris = {"https://app.example/cb"};
    app.origins = {std::string(kOrigin)};
    app.rp_id = std::string(kRpId);
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
  store::User make_user(const std::string& id, const std::string& email, const std::string& phone) {
    store::User u;
    u.id = id;
    u.tenant_id = "tenant-1";
    u.email = email;
    u.phone = phone;
    u.email_verified = true;
    u.created_at = clock_.now_s();
    SIGIL_CHECK(store_->create_user(u).has_value());
    return u;
  }
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
  // A user who logged in with another method (email OTP), authenticated as the router would.
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

  // register/start for `username` on client-1; the response body ("" on failure, which fails the test).
  std::string start_registration(const std::string& username, std::string_view extra_members = {}) {
    std::string body = "{\"client_id\":\"client-1\",\"username\":" + JsonWriter::quote(username);
    if (!extra_members.empty()) body += "," + std::string(extra_members);
    body += "}";
    auto r = webauthn_->register_start(params(body));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? r->body : std::string();
  }
  std::string start_login(std::string_view members = R"("username":"alice")", std::string_view client = "client-1") {
    std::string body = "{\"client_id\":" + JsonWriter::quote(client);
    if (!members.empty()) body += "," + std::string(members);
    body += "}";
    auto r = webauthn_->authenticate_start(params(body));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? r->body : std::string();
  }

  // The whole registration of a new soft credential for `who` under `username`.
  Result<std::string> register_new(const auth::Principal& who, const std::string& username,
                                   std::string_view origin = kOrigin) {
    const std::string start = start_registration(username);
    const std::string cred = soft_.create(start, origin);
    return webauthn_->register_credential(who, params(result_params(cred)));
  }
  void must_register(const auth::Principal& who, const std::string& username) {
    auto r = register_new(who, username);
    ASSERT_TRUE(r.has_value()) << r.error().message << " " << r.error().ts_error_code;
  }
  // login/start with `members`, then the soft credential at `index` answers; completed by `caller`.
  Result<std::string> login(size_t index, std::string_view members = R"("username":"alice")",
                            const auth::Principal* caller = nullptr, std::string_view origin = kOrigin) {
    const std::string start = start_login(members);
    const std::string cred = soft_.get(start, origin, index);
    return webauthn_->authenticate(caller ? *caller : client_, params(result_params(cred)));
  }

  std::string dir_;
  ManualClock clock_;
  NullEmail email_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<auth::TokenService> tokens_;
  std::unique_ptr<challenge::ChallengeStore> challenges_;
  std::unique_ptr<ServiceContext> ctx_;
  std::unique_ptr<WebAuthn> webauthn_;
  store::App app_, other_app_;
  store::User alice_, bob_;
  auth::Principal client_, other_client_, alice_p_, bob_p_;
  testing::SoftAuthenticator soft_;
};

// --- registration ----------------------------------------------------------------------------------------

TEST_F(WebAuthnServiceTest, RegisterForLoggedInUserReturnsTheNewCredential) {
  const std::string start = start_registration("alice", R"("display_name":"Alice A.")");
  const std::string session_id = jstr(start, "/webauthn_session_id");
  EXPECT_FALSE(session_id.empty());
  const std::string cred = soft_.create(start, kOrigin);
  auto r = webauthn_->register_credential(alice_p_, params(result_params(cred)));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(jstr(*r, "/webauthn_session_id"), session_id);
  EXPECT_EQ(jstr(*r, "/user_id"), alice_.id);
  EXPECT_EQ(jstr(*r, "/webauthn_username"), "alice");
  EXPECT_EQ(jstr(*r, "/credential_id"), crypto::base64url_encode(soft_.credentials()[0].id));
  EXPECT_EQ(jstr(*r, "/authenticator_attachment"), "platform");
  EXPECT_EQ(jstr(*r, "/aaguid"), "00000000-0000-0000-0000-000000000000");
  EXPECT_TRUE(jraw(*r, "/external_user_id").empty());

  auto stored = store_->find_webauthn_credential(soft_.credentials()[0].id);
  ASSERT_TRUE(stored.has_value() && stored->has_value());
  EXPECT_EQ((*stored)->user_id, alice_.id);
  EXPECT_EQ((*stored)->app_id, app_.id);
  EXPECT_EQ((*stored)->alg, -7);
  EXPECT_EQ((*stored)->sign_count, 1);
  EXPECT_EQ((*stored)->fmt, "none");
  EXPECT_EQ((*stored)->transports, std::vector<std::string>{"internal"});
  EXPECT_EQ((*stored)->user_handle, soft_.credentials()[0].user_handle);
  auto account = store_->find_webauthn_account(app_.id, "alice");
  ASSERT_TRUE(account.has_value() && account->has_value());
  EXPECT_EQ((*account)->display_name, "Alice A.");
  EXPECT_EQ((*account)->user_id, alice_.id);
}

TEST_F(WebAuthnServiceTest, CreationOptionsFollowTheContract) {
  const std::string start = start_registration("alice", R"("timeout":60)");
  const std::string o = "/credential_creation_options";
  EXPECT_EQ(jint(start, o + "/timeout"), 60000) << "milliseconds";
  EXPECT_EQ(jstr(start, o + "/rp/id"), kRpId);
  EXPECT_EQ(jstr(start, o + "/rp/name"), app_.name);
  EXPECT_EQ(jstr(start, o + "/user/name"), "alice");
  EXPECT_EQ(jstr(start, o + "/user/displayName"), "alice") << "defaults to the username";
  const std::string user_id = jstr(start, o + "/user/id");
  EXPECT_TRUE(alnum(user_id)) << user_id;
  EXPECT_EQ(crypto::base64url_decode(user_id)->size(), 32u);
  const std::string challenge = jstr(start, o + "/challenge");
  EXPECT_TRUE(alnum(challenge)) << challenge;
  EXPECT_EQ(crypto::base64url_decode(challenge)->size(), 32u);
  EXPECT_EQ(jstr(start, o + "/attestation"), "none");
  std::vector<int64_t> algs;
  for (size_t i = 0; i < jsize(start, o + "/pubKeyCredParams"); ++i) {
    const std::string p = o + "/pubKeyCredParams/" + std::to_string(i);
    EXPECT_EQ(jstr(start, p + "/type"), "public-key");
    algs.push_back(jint(start, p + "/alg", 0));
  }
  EXPECT_EQ(algs, (std::vector<int64_t>{-7, -8, -35, -37, -257}));
  EXPECT_EQ(jraw(start, o + "/authenticatorSelection"),
            R"({"residentKey":"preferred","requireResidentKey":false,"userVerification":"preferred"})");
  EXPECT_EQ(jraw(start, o + "/excludeCredentials"), "[]");
  EXPECT_EQ(jraw(start, o + "/extensions"), R"({"credProps":true})");
  // Default timeout: 300 s.
  EXPECT_EQ(jint(start_registration("alice"), o + "/timeout"), 300000);
}

TEST_F(WebAuthnServiceTest, CreationOptionsReuseTheAccountHandleAndExcludeOnlyWhenAsked) {
  const std::string first = start_registration("alice");
  const std::string cred = soft_.create(first, kOrigin);
  ASSERT_TRUE(webauthn_->register_credential(alice_p_, params(result_params(cred))).has_value());
  const std::string o = "/credential_creation_options";
  const std::string again = start_registration("alice");
  EXPECT_EQ(jstr(again, o + "/user/id"), jstr(first, o + "/user/id")) << "stable per account";
  EXPECT_EQ(jraw(again, o + "/excludeCredentials"), "[]");
  const std::string single = start_registration("alice", R"("limit_single_credential_to_device":true)");
  ASSERT_EQ(jsize(single, o + "/excludeCredentials"), 1u);
  EXPECT_EQ(jstr(single, o + "/excludeCredentials/0/type"), "public-key");
  const std::string id = jstr(single, o + "/excludeCredentials/0/id");
  EXPECT_EQ(id, crypto::base64_encode(soft_.credentials()[0].id)) << "standard base64 with padding";
  EXPECT_EQ(id.back(), '=');
  // A new username gets a fresh handle.
  EXPECT_NE(jstr(start_registration("alice2"), o + "/user/id"), jstr(first, o + "/user/id"));
}

TEST_F(WebAuthnServiceTest, RegisterStartRefusesBadInput) {
  auto no_client = webauthn_->register_start(params(R"({"client_id":"nope","username":"alice"})"));
  ASSERT_FALSE(no_client.has_value());
  EXPECT_EQ(no_client.error().status(), 404);
  EXPECT_EQ(no_client.error().message, "Client not found");
  EXPECT_EQ(no_client.error().ts_error_code, "client_not_exist");
  EXPECT_FALSE(webauthn_->register_start(params(R"({"client_id":"client-1"})")).has_value());
  auto long_name = webauthn_->register_start(
      params("{\"client_id\":\"client-1\",\"username\":\"" + std::string(65, 'a') + "\"}"));
  ASSERT_FALSE(long_name.has_value());
  EXPECT_EQ(long_name.error().status(), 400);
  for (const char* timeout : {"29", "601"}) {
    auto r = webauthn_->register_start(
        params(std::string(R"({"client_id":"client-1","username":"alice","timeout":)") + timeout + "}"));
    ASSERT_FALSE(r.has_value()) << timeout;
    EXPECT_EQ(r.error().status(), 400);
  }
}

TEST_F(WebAuthnServiceTest, StartRepliesCarryTheAppOrigins) {
  auto r = webauthn_->register_start(params(R"({"client_id":"client-1","username":"alice"})"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->cors_origins, std::vector<std::string>{std::string(kOrigin)});
  EXPECT_TRUE(*webauthn_->origin_known(kOrigin));
  EXPECT_FALSE(*webauthn_->origin_known("https://evil.example"));
  EXPECT_FALSE(*webauthn_->origin_known(""));
}

TEST_F(WebAuthnServiceTest, EnvelopeFormWithStandardBase64Registers) {
  const std::string start = start_registration("alice");
  const std::string cred = soft_.create(start, kOrigin);
  auto r = webauthn_->register_credential(
      alice_p_, params(obj({{"webauthn_encoded_result", envelope(jstr(start, "/webauthn_session_id"), cred)}})));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(jstr(*r, "/credential_id"), crypto::base64url_encode(soft_.credentials()[0].id));
}

TEST_F(WebAuthnServiceTest, UsernameOfAnotherUserIsRefused) {
  must_register(alice_p_, "alice");
  auto r = register_new(bob_p_, "alice");
  expect_error(r, 409, "auth_username_taken");
  EXPECT_EQ(store_->list_webauthn_credentials(app_.id, bob_.id)->size(), 0u);
}

TEST_F(WebAuthnServiceTest, SameCredentialRegisteredTwiceIsRefused) {
  const std::string first = start_registration("alice");
  const std::string cred = soft_.create(first, kOrigin);
  ASSERT_TRUE(webauthn_->register_credential(alice_p_, params(result_params(cred))).has_value());
  // A second ceremony answered with the same authenticator output (same credential id), new client data.
  const std::string second = start_registration("alice");
  CredentialJson again = CredentialJson::parse(cred);
  again.client_data_json = CredentialJson::parse(soft_.create(second, kOrigin)).client_data_json;
  auto r = webauthn_->register_credential(alice_p_, params(result_params(again.to_json(false))));
  expect_error(r, 409, "auth_credential_exists");
}

TEST_F(WebAuthnServiceTest, RegistrationCeremonyIsSingleUseAndBoundToItsApp) {
  const std::string start = start_registration("alice");
  const std::string cred = soft_.create(start, kOrigin);
  // A user of another app cannot complete it (and it is spent).
  const auth::Principal alice_other = user_principal(alice_, other_app_, "client-2");
  expect_error(webauthn_->register_credential(alice_other, params(result_params(cred))), 403);
  expect_error(webauthn_->register_credential(alice_p_, params(result_params(cred))), 400,
               "auth_invalid_attestation");
}

TEST_F(WebAuthnServiceTest, RegistrationNeedsAUserTokenAndAnAttestation) {
  const std::string start = start_registration("alice");
  const std::string cred = soft_.create(start, kOrigin);
  expect_error(webauthn_->register_credential(client_, params(result_params(cred))), 403);
  // An assertion is not an attestation.
  must_register(alice_p_, "alice");
  const std::string assertion = soft_.get(start_login(), kOrigin, 0);
  expect_error(webauthn_->register_credential(alice_p_, params(result_params(assertion))), 400,
               "auth_invalid_attestation");
}

TEST_F(WebAuthnServiceTest, RegistrationFromWrongOriginIsRefused) {
  expect_error(register_new(alice_p_, "alice", "https://evil.example"), 400, "auth_invalid_attestation");
  EXPECT_TRUE(store_->list_webauthn_credentials(app_.id, alice_.id)->empty());
}

TEST_F(WebAuthnServiceTest, RegistrationWithoutUserVerificationIsRefusedWhenTheAppRequiresIt) {
  app_.user_verification = "required";
  ASSERT_TRUE(store_->update_app(app_).has_value());
  const std::string start = start_registration("alice");
  EXPECT_EQ(jstr(start, "/credential_creation_options/authenticatorSelection/userVerification"), "required");
  soft_.user_verified = false;
  const std::string cred = soft_.create(start, kOrigin);
  expect_error(webauthn_->register_credential(alice_p_, params(result_params(cred))), 400,
               "auth_invalid_attestation");
  soft_.user_verified = true;
  must_register(alice_p_, "alice");
}

TEST_F(WebAuthnServiceTest, ExpiredRegistrationCeremonyIsRefused) {
  const std::string start = start_registration("alice", R"("timeout":30)");
  const std::string cred = soft_.create(start, kOrigin);
  clock_.advance_ms(60'001);  // timeout + 30 s grace
  expect_error(webauthn_->register_credential(alice_p_, params(result_params(cred))), 400,
               "auth_invalid_attestation");
}

TEST_F(WebAuthnServiceTest, ExternalRegisterCreatesTheUserOnceThenReusesIt) {
  const std::string start = start_registration("carol");
  const std::string cred = soft_.create(start, kOrigin);
  auto r = webauthn_->external_register(
      client_, params(obj({{"webauthn_encoded_result", testing::encode_result(cred)},
                           {"external_user_id", "ext-carol"},
                           {"user_email", "Carol@Example.com"}})));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(jstr(*r, "/external_user_id"), "ext-carol");
  EXPECT_TRUE(jbool(*r, "/is_user_created"));
  EXPECT_EQ(jstr(*r, "/webauthn_username"), "carol");
  EXPECT_EQ(jstr(*r, "/credential_id"), crypto::base64url_encode(soft_.credentials()[0].id));
  const std::string user_id = jstr(*r, "/user_id");
  auto user = store_->find_user_by_external_id("tenant-1", "ext-carol");
  ASSERT_TRUE(user.has_value() && user->has_value());
  EXPECT_EQ((*user)->id, user_id);
  EXPECT_EQ((*user)->email, "carol@example.com");
  EXPECT_FALSE((*user)->email_verified);

  const std::string start2 = start_registration("carol");
  const std::string cred2 = soft_.create(start2, kOrigin);
  auto r2 = webauthn_->external_register(
      client_, params(obj({{"webauthn_encoded_result", testing::encode_result(cred2)},
                           {"external_user_id", "ext-carol"},
                           {"user_email", "other@example.com"}})));
  ASSERT_TRUE(r2.has_value()) << r2.error().message;
  EXPECT_FALSE(jbool(*r2, "/is_user_created"));
  EXPECT_EQ(jraw(*r2, "/is_user_created"), "false");
  EXPECT_EQ(jstr(*r2, "/user_id"), user_id);
  EXPECT_EQ((*store_->find_user(user_id))->email, "carol@example.com") << "email of an existing user is kept";
  EXPECT_EQ(store_->list_webauthn_credentials(app_.id, user_id)->size(), 2u);

  // And the new user logs in with it.
  auto login_r = login(1, R"("username":"carol")");
  ASSERT_TRUE(login_r.has_value()) << login_r.error().message;
  EXPECT_EQ(jstr(jwt_payload(jstr(*login_r, "/id_token")), "/sub"), user_id);
}

TEST_F(WebAuthnServiceTest, ExternalRegisterWithUsernameOfAnotherUserConflictsAndCreatesNobody) {
  must_register(alice_p_, "alice");
  const std::string start = start_registration("alice");
  const std::string cred = soft_.create(start, kOrigin);
  auto r = webauthn_->external_register(
      client_, params(obj({{"webauthn_encoded_result", testing::encode_result(cred)},
                           {"external_user_id", "ext-mallory"}})));
  expect_error(r, 409, "auth_username_taken");
  EXPECT_FALSE(store_->find_user_by_external_id("tenant-1", "ext-mallory")->has_value());
}

TEST_F(WebAuthnServiceTest, ExternalRegisterNeedsAClientTokenAndAnExternalId) {
  const std::string start = start_registration("carol");
  const std::string cred = soft_.create(start, kOrigin);
  expect_error(webauthn_->external_register(
                   alice_p_, params(obj({{"webauthn_encoded_result", testing::encode_result(cred)},
                                         {"external_user_id", "ext-carol"}}))),
               403);
  expect_error(webauthn_->external_register(client_, params(result_params(cred))), 400);
  expect_error(webauthn_->external_register(
                   client_, params(obj({{"webauthn_encoded_result", testing::encode_result(cred)},
                                        {"external_user_id", "ext-carol"},
                                        {"user_email", "not an email"}}))),
               400);
}

// --- authentication --------------------------------------------------------------------------------------

TEST_F(WebAuthnServiceTest, LoginByUsernameIssuesTokensWithWebAuthnClaims) {
  must_register(alice_p_, "alice");
  auto r = login(0);
  ASSERT_TRUE(r.has_value()) << r.error().message << " " << r.error().ts_error_code;
  for (const char* field : {"/access_token", "/id_token", "/refresh_token", "/session_id"}) {
    EXPECT_FALSE(jstr(*r, field).empty()) << field;
  }
  EXPECT_EQ(jstr(*r, "/token_type"), "Bearer");
  EXPECT_EQ(jint(*r, "/expires_in"), 3600);
  auto p = tokens_->authenticate_bearer("Bearer " + jstr(*r, "/access_token"));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->user_id, alice_.id);

  const std::string id = jwt_payload(jstr(*r, "/id_token"));
  EXPECT_EQ(jstr(id, "/sub"), alice_.id);
  EXPECT_EQ(jraw(id, "/amr"), R"(["webauthn"])");
  EXPECT_EQ(jstr(id, "/webauthn_username"), "alice");
  EXPECT_EQ(jstr(id, "/webauthn/credential_id"), crypto::base64url_encode(soft_.credentials()[0].id));
  EXPECT_EQ(jstr(id, "/webauthn/aaguid"), "00000000-0000-0000-0000-000000000000");
  EXPECT_TRUE(jraw(id, "/approval_data").empty());

  // The sign count and last use are recorded.
  auto stored = *store_->find_webauthn_credential(soft_.credentials()[0].id);
  EXPECT_EQ(stored->sign_count, 2);
  EXPECT_EQ(stored->last_used_at, clock_.now_s());
}

TEST_F(WebAuthnServiceTest, RequestOptionsFollowTheContract) {
  must_register(alice_p_, "alice");
  must_register(alice_p_, "alice");
  const std::string start = start_login(R"("username":"alice","timeout":120)");
  const std::string o = "/credential_request_options";
  EXPECT_FALSE(jstr(start, "/webauthn_session_id").empty());
  EXPECT_EQ(jint(start, o + "/timeout"), 120000);
  EXPECT_EQ(jstr(start, o + "/rpId"), kRpId);
  EXPECT_EQ(jstr(start, o + "/userVerification"), "preferred");
  EXPECT_EQ(jstr(start, o + "/attestation"), "none");
  EXPECT_EQ(jraw(start, o + "/extensions"), "{}");
  EXPECT_TRUE(alnum(jstr(start, o + "/challenge")));
  EXPECT_TRUE(jraw(start, o + "/rawChallenge").empty()) << "only in approval flows";
  ASSERT_EQ(jsize(start, o + "/allowCredentials"), 2u);
  std::vector<std::string> ids;
  for (size_t i = 0; i < 2; ++i) {
    const std::string p = o + "/allowCredentials/" + std::to_string(i);
    EXPECT_EQ(jstr(start, p + "/type"), "public-key");
    ids.push_back(jstr(start, p + "/id"));
    EXPECT_EQ(jraw(start, p + "/transports"), R"(["internal"])");
  }
  std::vector<std::string> expected{crypto::base64_encode(soft_.credentials()[0].id),
                                    crypto::base64_encode(soft_.credentials()[1].id)};
  std::sort(ids.begin(), ids.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ids, expected) << "standard base64 with padding";
  EXPECT_EQ(jint(start_login(), o + "/timeout"), 300000);
}

TEST_F(WebAuthnServiceTest, UsernamelessLoginFindsTheUserByTheCredential) {
  must_register(alice_p_, "alice");
  const std::string start = start_login("");
  EXPECT_EQ(jraw(start, "/credential_request_options/allowCredentials"), "[]");
  auto r = login(0, "");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const std::string id = jwt_payload(jstr(*r, "/id_token"));
  EXPECT_EQ(jstr(id, "/sub"), alice_.id);
  EXPECT_EQ(jstr(id, "/webauthn_username"), "alice");
}

TEST_F(WebAuthnServiceTest, LoginByEmailIdentifier) {
  must_register(alice_p_, "alice");
  const std::string members = R"("identifier":"Alice@Example.com","identifier_type":"email")";
  const std::string start = start_login(members);
  ASSERT_EQ(jsize(start, "/credential_request_options/allowCredentials"), 1u);
  EXPECT_EQ(jstr(start, "/credential_request_options/allowCredentials/0/id"),
            crypto::base64_encode(soft_.credentials()[0].id));
  auto r = login(0, members);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(jstr(jwt_payload(jstr(*r, "/id_token")), "/sub"), alice_.id);
  // Another user's credential does not answer a ceremony that named alice.
  must_register(bob_p_, "bob");
  expect_auth_failed(login(1, members));
}

TEST_F(WebAuthnServiceTest, ApprovalLoginBindsTheChallengeAndCarriesTheData) {
  must_register(alice_p_, "alice");
  const std::string approval = R"({"tx_id":"tx-42","amount":"10.00 EUR","payee":"Bob:Shop"})";
  const std::string members = R"("username":"alice","approval_data":)" + approval;
  const std::string start = start_login(members);
  const std::string o = "/credential_request_options";
  const std::string challenge = jstr(start, o + "/challenge");
  const std::string raw = jstr(start, o + "/rawChallenge");
  ASSERT_FALSE(raw.empty());
  EXPECT_NE(challenge, raw);
  EXPECT_TRUE(alnum(challenge)) << challenge;
  EXPECT_TRUE(alnum(raw)) << raw;
  // challenge = SHA-256(rawChallenge bytes || canonical JSON of approval_data).
  auto canonical = canonical_approval_data(approval);
  ASSERT_TRUE(canonical.has_value());
  Bytes material = *crypto::base64url_decode(raw);
  material.insert(material.end(), canonical->begin(), canonical->end());
  const auto digest = crypto::sha256(material);
  EXPECT_EQ(challenge, crypto::base64url_encode(ByteView(digest.data(), digest.size())));

  const std::string cred = soft_.get(start, kOrigin, 0);
  auto r = webauthn_->authenticate(client_, params(result_params(cred)));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const std::string id = jwt_payload(jstr(*r, "/id_token"));
  EXPECT_EQ(jstr(id, "/approval_data/tx_id"), "tx-42");
  EXPECT_EQ(jstr(id, "/approval_data/amount"), "10.00 EUR");
  EXPECT_EQ(jstr(id, "/approval_data/payee"), "Bob:Shop");
}

TEST_F(WebAuthnServiceTest, BadApprovalDataIsRefusedAtStart) {
  auto r = webauthn_->authenticate_start(
      params(R"({"client_id":"client-1","username":"alice","approval_data":{"bad key!":"x"}})"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status(), 400);
  EXPECT_EQ(r.error().ts_error_code, "system_invalid_input");
}

TEST_F(WebAuthnServiceTest, EnvelopeFormWithStandardBase64LogsIn) {
  must_register(alice_p_, "alice");
  const std::string start = start_login();
  const std::string cred = soft_.get(start, kOrigin, 0);
  auto r = webauthn_->authenticate(
      client_, params(obj({{"webauthn_encoded_result", envelope(jstr(start, "/webauthn_session_id"), cred)}})));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // An envelope naming another (unknown) session fails, whatever the challenge says.
  const std::string start2 = start_login();
  const std::string cred2 = soft_.get(start2, kOrigin, 0);
  expect_auth_failed(webauthn_->authenticate(client_, params(obj({{"webauthn_encoded_result",
                                                                   envelope("AAAAAAAAAAAAAAAAAAAAAA", cred2)}}))));
}

TEST_F(WebAuthnServiceTest, UnknownUsernameGetsStableDecoyOptionsAndFails) {
  must_register(alice_p_, "alice");
  const std::string first = start_login(R"("username":"nobody")");
  const std::string second = start_login(R"("username":"nobody")");
  const std::string o = "/credential_request_options/allowCredentials";
  const size_t n = jsize(first, o);
  EXPECT_GE(n, 1u);
  EXPECT_LE(n, 3u);
  EXPECT_EQ(jraw(first, o), jraw(second, o)) << "same answer for the same unknown name";
  for (size_t i = 0; i < n; ++i) {
    const std::string id = jstr(first, o + "/" + std::to_string(i) + "/id");
    EXPECT_EQ(crypto::base64_decode(id)->size(), 32u) << id;
  }
  EXPECT_NE(jraw(first, o), jraw(start_login(R"("username":"nobody2")"), o));
  // Whatever credential answers, the ceremony fails.
  expect_auth_failed(login(0, R"("username":"nobody")"));
}

TEST_F(WebAuthnServiceTest, CeremonyIsSingleUse) {
  must_register(alice_p_, "alice");
  const std::string cred = soft_.get(start_login(), kOrigin, 0);
  ASSERT_TRUE(webauthn_->authenticate(client_, params(result_params(cred))).has_value());
  expect_auth_failed(webauthn_->authenticate(client_, params(result_params(cred))));
}

TEST_F(WebAuthnServiceTest, FailedAttemptSpendsTheCeremony) {
  must_register(alice_p_, "alice");
  const std::string start = start_login();
  const std::string good = soft_.get(start, kOrigin, 0);
  CredentialJson bad = CredentialJson::parse(good);
  bad.signature.back() ^= 0x01;
  expect_auth_failed(webauthn_->authenticate(client_, params(result_params(bad.to_json(false)))));
  expect_auth_failed(webauthn_->authenticate(client_, params(result_params(good))));
}

TEST_F(WebAuthnServiceTest, CeremonyOfAnotherAppIsForbidden) {
  must_register(alice_p_, "alice");
  auto r = login(0, R"("username":"alice")", &other_client_);
  expect_error(r, 403);
  // A user token cannot complete a login.
  expect_error(login(0, R"("username":"alice")", &alice_p_), 403);
}

TEST_F(WebAuthnServiceTest, ExpiredCeremonyFails) {
  must_register(alice_p_, "alice");
  const std::string members = R"("username":"alice","timeout":30)";
  {
    const std::string cred = soft_.get(start_login(members), kOrigin, 0);
    clock_.advance_ms(59'000);  // within timeout + 30 s grace
    ASSERT_TRUE(webauthn_->authenticate(client_, params(result_params(cred))).has_value());
  }
  const std::string cred = soft_.get(start_login(members), kOrigin, 0);
  clock_.advance_ms(60'001);
  expect_auth_failed(webauthn_->authenticate(client_, params(result_params(cred))));
}

TEST_F(WebAuthnServiceTest, CredentialOfAnotherUserThanTheNamedUsernameFails) {
  must_register(alice_p_, "alice");
  must_register(bob_p_, "bob");
  expect_auth_failed(login(1, R"("username":"alice")"));
  ASSERT_TRUE(login(1, R"("username":"bob")").has_value());
}

TEST_F(WebAuthnServiceTest, UserHandleMismatchFails) {
  must_register(alice_p_, "alice");
  soft_.credentials()[0].user_handle = Bytes(32, 0x42);
  expect_auth_failed(login(0, ""));
  expect_auth_failed(login(0));
}

TEST_F(WebAuthnServiceTest, SignCountRegressionFailsAndFlagsTheCredential) {
  must_register(alice_p_, "alice");
  ASSERT_TRUE(login(0).has_value());  // counter 2 stored
  soft_.credentials()[0].counter = 0;  // a clone: next assertion carries 1
  expect_auth_failed(login(0));
  auto stored = *store_->find_webauthn_credential(soft_.credentials()[0].id);
  EXPECT_NE(stored->flagged_at, 0);
  // Its id is no longer offered; the decoys in its place look like an unknown name's (no transports).
  const std::string after = start_login();
  const std::string o = "/credential_request_options/allowCredentials";
  ASSERT_GE(jsize(after, o), 1u);
  for (size_t i = 0; i < jsize(after, o); ++i) {
    const std::string p = o + "/" + std::to_string(i);
    EXPECT_NE(jstr(after, p + "/id"), crypto::base64_encode(soft_.credentials()[0].id));
    EXPECT_TRUE(jraw(after, p + "/transports").empty()) << after;
  }
  // The genuine authenticator is refused from now on too.
  soft_.credentials()[0].counter = 100;
  expect_auth_failed(login(0));
  expect_auth_failed(login(0, ""));
}

TEST_F(WebAuthnServiceTest, ZeroCountersAreAccepted) {
  soft_.counter_step = 0;
  must_register(alice_p_, "alice");
  ASSERT_TRUE(login(0).has_value());
  ASSERT_TRUE(login(0).has_value());
}

TEST_F(WebAuthnServiceTest, MissingUserVerificationFailsWhenTheAppRequiresIt) {
  must_register(alice_p_, "alice");
  app_.user_verification = "required";
  ASSERT_TRUE(store_->update_app(app_).has_value());
  EXPECT_EQ(jstr(start_login(), "/credential_request_options/userVerification"), "required");
  soft_.user_verified = false;
  expect_auth_failed(login(0));
  soft_.user_verified = true;
  ASSERT_TRUE(login(0).has_value());
}

TEST_F(WebAuthnServiceTest, WrongOriginFails) {
  must_register(alice_p_, "alice");
  expect_auth_failed(login(0, R"("username":"alice")", nullptr, "https://evil.example"));
  expect_auth_failed(login(0, R"("username":"alice")", nullptr, "https://app.example:8443"));
}

TEST_F(WebAuthnServiceTest, DeletedCredentialCannotLogIn) {
  must_register(alice_p_, "alice");
  const std::string id = crypto::base64url_encode(soft_.credentials()[0].id);
  expect_error(webauthn_->delete_credential(bob_p_, id), 404);
  expect_error(webauthn_->delete_credential(client_, id), 403);
  auto r = webauthn_->delete_credential(alice_p_, id);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(store_->find_webauthn_credential(soft_.credentials()[0].id)->has_value());
  expect_auth_failed(login(0));
  expect_auth_failed(login(0, ""));
  expect_error(webauthn_->delete_credential(alice_p_, id), 404);
}

TEST_F(WebAuthnServiceTest, MalformedEncodedResultIsInvalidInput) {
  must_register(alice_p_, "alice");
  for (const std::string& bad : {std::string("!!! not base64 !!!"), testing::encode_result("not json"),
                                 testing::encode_result("[1,2]"), testing::encode_result(R"({"type":"public-key"})"),
                                 testing::encode_result(R"({"publicKeyCredential":{"id":"AAAA"}})")}) {
    expect_error(webauthn_->authenticate(client_, params(obj({{"webauthn_encoded_result", bad}}))), 400,
                 "system_invalid_input");
    expect_error(webauthn_->register_credential(alice_p_, params(obj({{"webauthn_encoded_result", bad}}))), 400);
  }
  expect_error(webauthn_->authenticate(client_, params("{}")), 400);
  // Over the 32 KiB cap.
  const std::string huge = testing::encode_result("{\"x\":\"" + std::string(40 * 1024, 'a') + "\"}");
  expect_error(webauthn_->authenticate(client_, params(obj({{"webauthn_encoded_result", huge}}))), 400);
}

TEST_F(WebAuthnServiceTest, AuthenticateStartRefusesBadInput) {
  auto no_client = webauthn_->authenticate_start(params(R"({"client_id":"nope"})"));
  ASSERT_FALSE(no_client.has_value());
  EXPECT_EQ(no_client.error().status(), 404);
  EXPECT_EQ(no_client.error().ts_error_code, "client_not_exist");
  for (const char* body : {R"({"client_id":"client-1","timeout":10})", R"({"client_id":"client-1","username":""})",
                           R"({"client_id":"client-1","identifier":"x@example.com"})",
                           R"({"client_id":"client-1","identifier":"x","identifier_type":"shoe_size"})"}) {
    auto r = webauthn_->authenticate_start(params(body));
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().status(), 400) << body;
  }
}

// --- hosted registration hint ----------------------------------------------------------------------------

TEST_F(WebAuthnServiceTest, HostedHintReturnsATokenForAnAllowedRedirect) {
  auto r = webauthn_->hosted_hint(client_, params(R"({"webauthn_identifier":"dana","external_user_id":"ext-d",)"
                                                  R"("redirect_uri":"https://app.example/cb"})"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const std::string token = jstr(*r, "/register_webauthn_cred_token");
  EXPECT_GE(token.size(), 40u);
  auto again = webauthn_->hosted_hint(client_, params(R"({"webauthn_identifier":"dana",)"
                                                      R"("redirect_uri":"https://app.example/cb"})"));
  ASSERT_TRUE(again.has_value());
  EXPECT_NE(jstr(*again, "/register_webauthn_cred_token"), token);
}

TEST_F(WebAuthnServiceTest, HostedHintRefusesAnUnregisteredRedirectAndMissingIdentifier) {
  auto r = webauthn_->hosted_hint(client_, params(R"({"webauthn_identifier":"dana",)"
                                                  R"("redirect_uri":"https://evil.example/cb"})"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status(), 400);
  EXPECT_EQ(r.error().message, "Invalid redirect_uri");
  auto no_id = webauthn_->hosted_hint(client_, params(R"({"redirect_uri":"https://app.example/cb"})"));
  ASSERT_FALSE(no_id.has_value());
  EXPECT_EQ(no_id.error().status(), 400);
  EXPECT_EQ(no_id.error().string_error_code, "user_unknown_identifier_type");
  expect_error(webauthn_->hosted_hint(alice_p_, params(R"({"webauthn_identifier":"dana",)"
                                                       R"("redirect_uri":"https://app.example/cb"})")),
               403);
}

}  // namespace
}  // namespace sigil::service
