// auth::TokenService over real parts: a SQLite file in a temporary folder, a fresh sealed signing key and a
// ManualClock that moves past expiry instead of sleeping.
#include "api/auth/tokens.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "api/store/sqlite_store.h"
#include "engine/base/clock.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::auth {
namespace {

constexpr std::string_view kIssuer = "https://sigil.test";

std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sigil-tokens-XXXXXX").string();
  SIGIL_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

// The payload of a compact JWS, as JSON text (unverified; the service verified it already).
std::string jwt_payload(const std::string& jwt) {
  const size_t a = jwt.find('.');
  const size_t b = jwt.find('.', a + 1);
  SIGIL_CHECK(a != std::string::npos && b != std::string::npos);
  auto decoded = crypto::base64url_decode(std::string_view(jwt).substr(a + 1, b - a - 1));
  SIGIL_CHECK(decoded.has_value());
  return std::string(as_chars(*decoded));
}

std::vector<std::string> string_array_claim(const std::string& payload, std::string_view name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(payload);
  std::vector<std::string> out;
  for (auto v : root[name].get_array()) out.emplace_back(std::string_view(v.get_string()));
  return out;
}

std::string string_claim(const std::string& payload, std::string_view name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(payload);
  std::string_view v;
  if (root[name].get_string().get(v)) return {};
  return std::string(v);
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class TokenServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    auto opened = store::SqliteStore::open(dir_ + "/sigil.db", clock_);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    store_ = std::move(*opened);
    kek_ = crypto::random_bytes(32);
    auto keys = load_or_create_signing_keys(*store_, kek_, clock_);
    ASSERT_TRUE(keys.has_value()) << keys.error().message;
    AuthConfig config;
    config.issuer = std::string(kIssuer);
    tokens_ = std::make_unique<TokenService>(*store_, clock_, config, *keys);

    ASSERT_TRUE(store_->create_tenant({"tenant-1", "t1", clock_.now_s()}).has_value());
    app_ = make_app("app-1");
    other_app_ = make_app("app-2");
    client_ = make_client("client-1", app_, "secret-1");
    other_client_ = make_client("client-2", app_, "secret-2");
    other_app_client_ = make_client("client-3", other_app_, "secret-3");
    alice_ = make_user("user-alice", "alice@example.com");
    bob_ = make_user("user-bob", "bob@example.com");
  }

  void TearDown() override {
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
    app.resources = {"https://api.example"};
    app.created_at = clock_.now_s();
    SIGIL_CHECK(store_->create_app(app).has_value());
    return app;
  }

  store::Client make_client(const std::string& id, const store::App& app, std::string_view secret) {
    store::Client c;
    c.client_id = id;
    c.app_id = app.id;
    c.tenant_id = app.tenant_id;
    auto h = crypto::sha256(as_bytes(secret));
    c.secret_hash.assign(h.begin(), h.end());
    c.name = id;
    c.created_at = clock_.now_s();
    SIGIL_CHECK(store_->create_client(c).has_value());
    return c;
  }

  store::User make_user(const std::string& id, const std::string& email) {
    store::User u;
    u.id = id;
    u.tenant_id = "tenant-1";
    u.email = email;
    u.email_verified = true;
    u.created_at = clock_.now_s();
    SIGIL_CHECK(store_->create_user(u).has_value());
    return u;
  }

  LoginRequest login_request(const store::User& user, std::string amr = "eotp", const store::App* app = nullptr,
                             std::string client_id = "client-1") {
    LoginRequest req;
    req.app = app != nullptr ? app : &app_;
    req.client_id = std::move(client_id);
    req.user = user;
    req.amr = std::move(amr);
    return req;
  }

  TokenSet login(const store::User& user, std::string amr = "eotp") {
    auto t = tokens_->login(login_request(user, std::move(amr)));
    SIGIL_CHECK(t.has_value());
    return *t;
  }

  Result<Principal> bearer(const std::string& token) { return tokens_->authenticate_bearer("Bearer " + token); }

  static void expect_invalid_grant(const Result<TokenSet>& r) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().status(), 400);
    EXPECT_EQ(r.error().ts_error_code, "invalid_grant");
  }

  static void expect_unauthenticated(const Result<Principal>& r) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status(), 401);
    EXPECT_EQ(r.error().message, "Invalid token");
  }

  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<store::SqliteStore> store_;
  Bytes kek_;
  std::unique_ptr<TokenService> tokens_;
  store::App app_, other_app_;
  store::Client client_, other_client_, other_app_client_;
  store::User alice_, bob_;
};

// --- token kinds -------------------------------------------------------------------------------------

TEST_F(TokenServiceTest, ClientTokenAuthenticatesAsClientPrincipal) {
  auto issued = tokens_->issue_client_token(client_, app_, "", "");
  ASSERT_TRUE(issued.has_value());
  EXPECT_TRUE(issued->refresh_token.empty());
  EXPECT_TRUE(issued->id_token.empty());
  EXPECT_EQ(issued->expires_in, 3600);
  auto p = bearer(issued->access_token);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_EQ(p->kind, Principal::Kind::kClient);
  EXPECT_FALSE(p->is_user());
  EXPECT_EQ(p->client_id, "client-1");
  EXPECT_EQ(p->app_id, "app-1");
  EXPECT_EQ(p->tenant_id, "tenant-1");
  EXPECT_TRUE(p->user_id.empty());
  EXPECT_TRUE(p->session_id.empty());
  const std::string payload = jwt_payload(issued->access_token);
  EXPECT_EQ(string_claim(payload, "sub"), "client-1");
  EXPECT_EQ(string_claim(payload, "aud"), "userid-api");
  EXPECT_EQ(string_claim(payload, "sid"), "");
}

TEST_F(TokenServiceTest, ClientTokenWithConfiguredResourceHasThatAudienceAndUnknownResourceIsRefused) {
  auto issued = tokens_->issue_client_token(client_, app_, "https://api.example", "");
  ASSERT_TRUE(issued.has_value());
  EXPECT_EQ(string_claim(jwt_payload(issued->access_token), "aud"), "https://api.example");
  auto refused = tokens_->issue_client_token(client_, app_, "https://other.example", "");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().status(), 400);
  EXPECT_EQ(refused.error().ts_error_code, "invalid_resource");
}

TEST_F(TokenServiceTest, TokensForAnotherResourceServerAreNotAcceptedAsBearer) {
  auto client_token = tokens_->issue_client_token(client_, app_, "https://api.example", "");
  ASSERT_TRUE(client_token.has_value());
  expect_unauthenticated(bearer(client_token->access_token));
  LoginRequest req = login_request(alice_);
  req.resource = "https://api.example";
  auto user_token = tokens_->login(req);
  ASSERT_TRUE(user_token.has_value());
  EXPECT_EQ(string_claim(jwt_payload(user_token->access_token), "aud"), "https://api.example");
  expect_unauthenticated(bearer(user_token->access_token));
}

TEST_F(TokenServiceTest, ClientScopeMayNarrowButNeverWiden) {
  auto narrowed = tokens_->issue_client_token(client_, app_, "", "auth:execute");
  ASSERT_TRUE(narrowed.has_value());
  EXPECT_EQ(narrowed->scope, "auth:execute");
  auto full = tokens_->issue_client_token(client_, app_, "", "");
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->scope, "apps:execute app-1:execute auth:execute");
  for (std::string_view wider : {"admin", "auth:execute app-2:execute", "   "}) {
    auto r = tokens_->issue_client_token(client_, app_, "", wider);
    ASSERT_FALSE(r.has_value()) << wider;
    EXPECT_EQ(r.error().status(), 400);
    EXPECT_EQ(r.error().ts_error_code, "invalid_scope");
  }
}

TEST_F(TokenServiceTest, AcrListsAVerifiedEmailOnly) {
  store::User verified = make_user("user-carol", "carol@example.com");
  store::User dan{"user-dan", "tenant-1", "dan@example.com", "", false, 0};
  ASSERT_TRUE(store_->create_user(dan).has_value());
  EXPECT_EQ(string_claim(jwt_payload(login(verified).id_token), "acr"), "urn:sigil:verified:email");
  const std::string payload = jwt_payload(login(dan).id_token);
  EXPECT_EQ(payload.find("\"acr\""), std::string::npos) << payload;
}

TEST_F(TokenServiceTest, UserTokenAuthenticatesAsUserPrincipal) {
  TokenSet t = login(alice_);
  EXPECT_FALSE(t.refresh_token.empty());
  EXPECT_FALSE(t.id_token.empty());
  EXPECT_FALSE(t.session_id.empty());
  auto p = bearer(t.access_token);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_EQ(p->kind, Principal::Kind::kUser);
  EXPECT_TRUE(p->is_user());
  EXPECT_EQ(p->user_id, alice_.id);
  EXPECT_EQ(p->session_id, t.session_id);
  EXPECT_EQ(p->client_id, "client-1");
  EXPECT_EQ(p->app_id, "app-1");
  const std::string payload = jwt_payload(t.access_token);
  EXPECT_EQ(string_claim(payload, "sid"), t.session_id);
  EXPECT_EQ(string_claim(payload, "sub"), alice_.id);
  const std::string id_payload = jwt_payload(t.id_token);
  EXPECT_EQ(string_claim(id_payload, "aud"), "client-1");
  EXPECT_EQ(string_array_claim(id_payload, "amr"), std::vector<std::string>{"eotp"});
}

TEST_F(TokenServiceTest, IdTokenIsNotAcceptedAsBearer) {
  TokenSet t = login(alice_);
  expect_unauthenticated(bearer(t.id_token));
}

TEST_F(TokenServiceTest, MalformedAuthorizationHeadersAreRefused) {
  TokenSet t = login(alice_);
  expect_unauthenticated(tokens_->authenticate_bearer(""));
  expect_unauthenticated(tokens_->authenticate_bearer("Bearer "));
  expect_unauthenticated(tokens_->authenticate_bearer("Basic " + t.access_token));
  expect_unauthenticated(tokens_->authenticate_bearer("Bearer " + t.access_token + "x"));
  // The scheme is case-insensitive.
  EXPECT_TRUE(tokens_->authenticate_bearer("bearer " + t.access_token).has_value());
}

TEST_F(TokenServiceTest, UserTokenRefusedAfterLogout) {
  TokenSet t = login(alice_);
  auto p = bearer(t.access_token);
  ASSERT_TRUE(p.has_value());
  auto ended = tokens_->logout(*p);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(*ended, 1);
  expect_unauthenticated(bearer(t.access_token));
  // A second logout of the same (already ended) session ends nothing.
  auto again = tokens_->logout(*p);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, 0);
  // Logout revokes the session's refresh token too.
  expect_invalid_grant(tokens_->refresh(client_, t.refresh_token));
}

TEST_F(TokenServiceTest, LogoutWithClientPrincipalIsForbidden) {
  auto issued = tokens_->issue_client_token(client_, app_, "", "");
  ASSERT_TRUE(issued.has_value());
  auto p = bearer(issued->access_token);
  ASSERT_TRUE(p.has_value());
  auto r = tokens_->logout(*p);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status(), 403);
}

TEST_F(TokenServiceTest, UserTokenRefusedAfterRevokeSession) {
  TokenSet t = login(alice_);
  TokenSet other = login(alice_);
  ASSERT_TRUE(tokens_->revoke_session(t.session_id).has_value());
  expect_unauthenticated(bearer(t.access_token));
  expect_invalid_grant(tokens_->refresh(client_, t.refresh_token));
  // Only that session: another session of the same user is untouched.
  EXPECT_TRUE(bearer(other.access_token).has_value());
}

// --- refresh rotation ----------------------------------------------------------------------------------

TEST_F(TokenServiceTest, RefreshRotatesToANewToken) {
  TokenSet t = login(alice_);
  clock_.advance_ms(10'000);
  auto r = tokens_->refresh(client_, t.refresh_token);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_NE(r->refresh_token, t.refresh_token);
  EXPECT_FALSE(r->refresh_token.empty());
  EXPECT_NE(r->access_token, t.access_token);
  EXPECT_EQ(r->session_id, t.session_id);
  auto p = bearer(r->access_token);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->user_id, alice_.id);
  EXPECT_EQ(p->session_id, t.session_id);
  // The rotated chain keeps going.
  auto r2 = tokens_->refresh(client_, r->refresh_token);
  ASSERT_TRUE(r2.has_value());
  EXPECT_NE(r2->refresh_token, r->refresh_token);
}

TEST_F(TokenServiceTest, ReusedRefreshTokenFailsAndRevokesTheFamilyAndSession) {
  TokenSet t = login(alice_);
  auto rotated = tokens_->refresh(client_, t.refresh_token);
  ASSERT_TRUE(rotated.has_value());
  ASSERT_TRUE(bearer(rotated->access_token).has_value());

  expect_invalid_grant(tokens_->refresh(client_, t.refresh_token));  // reuse: theft
  expect_invalid_grant(tokens_->refresh(client_, rotated->refresh_token));
  expect_unauthenticated(bearer(t.access_token));
  expect_unauthenticated(bearer(rotated->access_token));
  auto session = store_->find_session(t.session_id);
  ASSERT_TRUE(session.has_value() && session->has_value());
  EXPECT_NE((*session)->ended_at, 0);
}

TEST_F(TokenServiceTest, RefreshByAnotherClientFailsAndDoesNotConsumeTheToken) {
  TokenSet t = login(alice_);
  expect_invalid_grant(tokens_->refresh(other_client_, t.refresh_token));
  expect_invalid_grant(tokens_->refresh(other_app_client_, t.refresh_token));
  auto r = tokens_->refresh(client_, t.refresh_token);
  EXPECT_TRUE(r.has_value());
}

TEST_F(TokenServiceTest, UnknownOrEmptyRefreshTokenFails) {
  expect_invalid_grant(tokens_->refresh(client_, ""));
  expect_invalid_grant(tokens_->refresh(client_, "not-a-refresh-token"));
  expect_invalid_grant(tokens_->refresh(client_, std::string(600, 'a')));
}

TEST_F(TokenServiceTest, RefreshAfterFourteenDaysFails) {
  TokenSet t = login(alice_);
  clock_.advance_ms(15LL * 24 * 3600 * 1000);
  expect_invalid_grant(tokens_->refresh(client_, t.refresh_token));
}

TEST_F(TokenServiceTest, RefreshJustBeforeFourteenDaysSucceeds) {
  TokenSet t = login(alice_);
  clock_.advance_ms(14LL * 24 * 3600 * 1000 - 1000);
  EXPECT_TRUE(tokens_->refresh(client_, t.refresh_token).has_value());
}

TEST_F(TokenServiceTest, AccessTokenExpiresAfterOneHour) {
  TokenSet t = login(alice_);
  auto client_token = tokens_->issue_client_token(client_, app_, "", "");
  ASSERT_TRUE(client_token.has_value());
  clock_.advance_ms(3599'000);
  EXPECT_TRUE(bearer(t.access_token).has_value());
  EXPECT_TRUE(bearer(client_token->access_token).has_value());
  clock_.advance_ms(2'000);  // 3601 s after issue
  expect_unauthenticated(bearer(t.access_token));
  expect_unauthenticated(bearer(client_token->access_token));
}

// --- sessions ------------------------------------------------------------------------------------------

TEST_F(TokenServiceTest, JoiningASessionOfAnotherUserIsRefused) {
  TokenSet t = login(alice_);
  LoginRequest req = login_request(bob_, "mobile_biometrics");
  req.join_session_id = t.session_id;
  auto r = tokens_->login(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status(), 400);
  EXPECT_EQ(r.error().ts_error_code, "auth_invalid_session");
}

TEST_F(TokenServiceTest, JoiningASessionOfAnotherAppIsRefused) {
  TokenSet t = login(alice_);
  LoginRequest req = login_request(alice_, "mobile_biometrics", &other_app_, "client-3");
  req.join_session_id = t.session_id;
  auto r = tokens_->login(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().ts_error_code, "auth_invalid_session");
}

TEST_F(TokenServiceTest, JoiningAnEndedOrUnknownSessionIsRefused) {
  TokenSet t = login(alice_);
  ASSERT_TRUE(tokens_->revoke_session(t.session_id).has_value());
  LoginRequest req = login_request(alice_, "mobile_biometrics");
  req.join_session_id = t.session_id;
  auto ended = tokens_->login(req);
  ASSERT_FALSE(ended.has_value());
  EXPECT_EQ(ended.error().ts_error_code, "auth_invalid_session");
  req.join_session_id = "no-such-session";
  auto unknown = tokens_->login(req);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().ts_error_code, "auth_invalid_session");
}

TEST_F(TokenServiceTest, AmrGainsMfaWhenASecondMethodJoins) {
  TokenSet first = login(alice_, "eotp");
  LoginRequest same = login_request(alice_, "eotp");
  same.join_session_id = first.session_id;
  auto again = tokens_->login(same);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(string_array_claim(jwt_payload(again->access_token), "amr"), std::vector<std::string>{"eotp"});

  LoginRequest second = login_request(alice_, "mobile_biometrics");
  second.join_session_id = first.session_id;
  auto joined = tokens_->login(second);
  ASSERT_TRUE(joined.has_value()) << joined.error().message;
  EXPECT_EQ(joined->session_id, first.session_id);
  for (const std::string& jwt : {joined->access_token, joined->id_token}) {
    auto amr = string_array_claim(jwt_payload(jwt), "amr");
    EXPECT_TRUE(contains(amr, "eotp"));
    EXPECT_TRUE(contains(amr, "mobile_biometrics"));
    EXPECT_TRUE(contains(amr, "mfa"));
  }
  auto session = store_->find_session(first.session_id);
  ASSERT_TRUE(session.has_value() && session->has_value());
  EXPECT_TRUE(contains((*session)->amr, "mfa"));
}

TEST_F(TokenServiceTest, LoginRecordsNonceApprovalDataAndNewUserInTheIdToken) {
  LoginRequest req = login_request(alice_);
  req.nonce = "n-123";
  req.approval_data_json = R"({"amount":"10"})";
  req.new_user = true;
  req.claims_json = R"({"id_token":{"email":null,"roles":null}})";
  auto t = tokens_->login(req);
  ASSERT_TRUE(t.has_value());
  const std::string payload = jwt_payload(t->id_token);
  EXPECT_EQ(string_claim(payload, "nonce"), "n-123");
  EXPECT_EQ(string_claim(payload, "email"), "alice@example.com");
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(payload);
  EXPECT_EQ(std::string_view(root["approval_data"]["amount"].get_string()), "10");
  EXPECT_TRUE(bool(root["new_user"].get_bool()));
}

// --- client authentication ------------------------------------------------------------------------------

TEST_F(TokenServiceTest, AuthenticateClientAcceptsTheRightSecret) {
  auto c = tokens_->authenticate_client("client-1", "secret-1");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->client_id, "client-1");
  EXPECT_EQ(c->app_id, "app-1");
}

TEST_F(TokenServiceTest, AuthenticateClientWrongSecretAndUnknownClientGiveTheSameError) {
  auto wrong = tokens_->authenticate_client("client-1", "secret-2");
  auto unknown = tokens_->authenticate_client("no-such-client", "secret-1");
  auto empty = tokens_->authenticate_client("client-1", "");
  ASSERT_FALSE(wrong.has_value());
  ASSERT_FALSE(unknown.has_value());
  ASSERT_FALSE(empty.has_value());
  for (const auto* r : {&wrong, &unknown, &empty}) {
    EXPECT_EQ(r->error().code, ErrorCode::kUnauthenticated);
    EXPECT_EQ(r->error().message, unknown.error().message);
    EXPECT_EQ(r->error().ts_error_code, "invalid_client");
  }
  EXPECT_FALSE(tokens_->authenticate_client("", "secret-1").has_value());
  EXPECT_FALSE(tokens_->authenticate_client(std::string(151, 'c'), "secret-1").has_value());
}

// --- key material ---------------------------------------------------------------------------------------

TEST_F(TokenServiceTest, SigningKeysAreStableAcrossReopen) {
  const std::string kid = tokens_->keys().signing_key()->kid;
  TokenSet t = login(alice_);
  tokens_.reset();
  store_.reset();

  auto reopened = store::SqliteStore::open(dir_ + "/sigil.db", clock_);
  ASSERT_TRUE(reopened.has_value());
  store_ = std::move(*reopened);
  auto keys = load_or_create_signing_keys(*store_, kek_, clock_);
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  ASSERT_NE((*keys)->signing_key(), nullptr);
  EXPECT_EQ((*keys)->signing_key()->kid, kid);
  auto rows = store_->list_signing_keys();
  ASSERT_TRUE(rows.has_value());
  EXPECT_EQ(rows->size(), 1u);
  // A token signed before the restart still verifies after it.
  AuthConfig config;
  config.issuer = std::string(kIssuer);
  tokens_ = std::make_unique<TokenService>(*store_, clock_, config, *keys);
  EXPECT_TRUE(bearer(t.access_token).has_value());
}

TEST_F(TokenServiceTest, WrongKekFailsToOpenTheSigningKeys) {
  Bytes wrong = crypto::random_bytes(32);
  auto keys = load_or_create_signing_keys(*store_, wrong, clock_);
  ASSERT_FALSE(keys.has_value());
  EXPECT_EQ(keys.error().code, ErrorCode::kUnavailable);
  // And no second key was created beside the one that did not open.
  auto rows = store_->list_signing_keys();
  ASSERT_TRUE(rows.has_value());
  EXPECT_EQ(rows->size(), 1u);
}

TEST_F(TokenServiceTest, JwksPublishesTheSigningKid) {
  const std::string jwks = tokens_->keys().jwks_json();
  EXPECT_NE(jwks.find(tokens_->keys().signing_key()->kid), std::string::npos);
  EXPECT_NE(jwks.find("\"ES256\""), std::string::npos);
}

class KekTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("SIGIL_KEK");
    dir_ = make_temp_dir();
  }
  void TearDown() override {
    ::unsetenv("SIGIL_KEK");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(KekTest, CreatesA0600FileAndReadsItBack) {
  auto created = load_or_create_kek(dir_);
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(created->size(), 32u);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/kek").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto again = load_or_create_kek(dir_);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *created);
}

TEST_F(KekTest, EnvironmentOverridesTheFile) {
  auto file_kek = load_or_create_kek(dir_);
  ASSERT_TRUE(file_kek.has_value());
  Bytes env_kek(32, 0x42);
  const std::string encoded = crypto::base64_encode(env_kek);
  ASSERT_EQ(::setenv("SIGIL_KEK", encoded.c_str(), 1), 0);
  auto loaded = load_or_create_kek(dir_);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(*loaded, env_kek);
  ::unsetenv("SIGIL_KEK");
  auto back = load_or_create_kek(dir_);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, *file_kek);
}

TEST_F(KekTest, EnvironmentKekDoesNotCreateAFile) {
  const std::string encoded = crypto::base64_encode(Bytes(32, 0x07));
  ASSERT_EQ(::setenv("SIGIL_KEK", encoded.c_str(), 1), 0);
  ASSERT_TRUE(load_or_create_kek(dir_).has_value());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/kek"));
}

TEST_F(KekTest, MalformedEnvironmentKekIsRefused) {
  ASSERT_EQ(::setenv("SIGIL_KEK", crypto::base64_encode(Bytes(16, 1)).c_str(), 1), 0);
  auto short_key = load_or_create_kek(dir_);
  ASSERT_FALSE(short_key.has_value());
  EXPECT_EQ(short_key.error().code, ErrorCode::kUnavailable);
  ASSERT_EQ(::setenv("SIGIL_KEK", "not base64!", 1), 0);
  EXPECT_FALSE(load_or_create_kek(dir_).has_value());
}

TEST_F(KekTest, CorruptKekFileIsRefused) {
  {
    std::ofstream f(dir_ + "/kek");
    f << "garbage\n";
  }
  auto r = load_or_create_kek(dir_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
}

TEST_F(KekTest, MissingDataDirIsUnavailable) {
  auto r = load_or_create_kek(dir_ + "/does/not/exist");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace sigil::auth
