// service::Passwordless (email OTP, API.md 5.3, 5.4, 5.7) and service::Oidc (token endpoint 1.1, /v1/token 4.2,
// logout 4.3) over real parts: SQLite in a temporary folder, a TokenService with a fresh signing key, an
// in-test EmailSender that records messages, and a ManualClock to move past OTP and window expiry.
#include "api/service/passwordless.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "api/service/oidc.h"
#include "api/store/sqlite_store.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::service {
namespace {

constexpr std::string_view kRedirect = "https://app.example/cb";

class RecordingEmail final : public EmailSender {
 public:
  Result<void> send(const EmailMessage& m) override {
    sent.push_back(m);
    return {};
  }
  std::vector<EmailMessage> sent;
};

std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sigil-otp-XXXXXX").string();
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

std::string json_string(const std::string& json, std::string_view name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return {};
  std::string_view v;
  if (root[name].get_string().get(v)) return {};
  return std::string(v);
}

std::optional<bool> json_bool(const std::string& json, std::string_view name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return std::nullopt;
  bool v;
  if (root[name].get_bool().get(v)) return std::nullopt;
  return v;
}

// Value of query parameter `name` in a URI (no percent-decoding needed for the base64url values here).
std::string query_param(const std::string& uri, std::string_view name) {
  const std::string needle = std::string(name) + "=";
  size_t pos = uri.find('?');
  while (pos != std::string::npos) {
    ++pos;
    if (uri.compare(pos, needle.size(), needle) == 0) {
      const size_t end = uri.find('&', pos);
      return uri.substr(pos + needle.size(), end == std::string::npos ? std::string::npos : end - pos - needle.size());
    }
    pos = uri.find('&', pos);
  }
  return {};
}

Params params(std::string_view json) {
  auto p = Params::from_json(json);
  SIGIL_CHECK(p.has_value());
  return std::move(*p);
}

Params form(std::vector<std::pair<std::string, std::string>> pairs) {
  auto p = Params::from_pairs(std::move(pairs));
  SIGIL_CHECK(p.has_value());
  return std::move(*p);
}

void expect_status(const Result<std::string>& r, int status, std::string_view ts = {}) {
  ASSERT_FALSE(r.has_value()) << *r;
  EXPECT_EQ(r.error().status(), status) << r.error().message;
  if (!ts.empty()) {
    EXPECT_EQ(r.error().ts_error_code, ts) << r.error().message;
  }
}

class PasswordlessTest : public ::testing::Test {
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
    oidc_ = std::make_unique<Oidc>(*ctx_);
    otp_ = std::make_unique<Passwordless>(*ctx_, *oidc_);

    ASSERT_TRUE(store_->create_tenant({"tenant-1", "t1", clock_.now_s()}).has_value());
    app_.id = "app-1";
    app_.tenant_id = "tenant-1";
    app_.name = "Acme";
    app_.redirect_uris = {std::string(kRedirect), "https://app.example/other"};
    app_.created_at = clock_.now_s();
    ASSERT_TRUE(store_->create_app(app_).has_value());
    make_client("client-1");
    make_client("client-2");
    alice_.id = "user-alice";
    alice_.tenant_id = "tenant-1";
    alice_.email = "alice@example.com";
    alice_.created_at = clock_.now_s();
    ASSERT_TRUE(store_->create_user(alice_).has_value());
    client_ = client_principal("client-1");
    client2_ = client_principal("client-2");
  }

  void TearDown() override {
    otp_.reset();
    oidc_.reset();
    ctx_.reset();
    challenges_.reset();
    tokens_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void make_client(const std::string& id) {
    store::Client c;
    c.client_id = id;
    c.app_id = app_.id;
    c.tenant_id = app_.tenant_id;
    auto h = crypto::sha256(as_bytes(id + "-secret"));
    c.secret_hash.assign(h.begin(), h.end());
    c.created_at = clock_.now_s();
    SIGIL_CHECK(store_->create_client(c).has_value());
  }

  auth::Principal client_principal(const std::string& client_id) {
    auto client = store_->find_client(client_id);
    SIGIL_CHECK(client.has_value() && client->has_value());
    auto t = tokens_->issue_client_token(**client, app_, "", "");
    SIGIL_CHECK(t.has_value());
    auto p = tokens_->authenticate_bearer("Bearer " + t->access_token);
    SIGIL_CHECK(p.has_value());
    return *p;
  }

  Result<std::string> send(std::string_view email, std::string_view extra_members = {},
                           const auth::Principal* who = nullptr) {
    std::string body = "{\"email\":" + JsonWriter::quote(email) + ",\"redirect_uri\":" + JsonWriter::quote(kRedirect);
    if (!extra_members.empty()) body += "," + std::string(extra_members);
    body += "}";
    return otp_->send_email_otp(who != nullptr ? *who : client_, params(body));
  }
  // Sends and returns the passcode from the recorded email.
  std::string send_ok(std::string_view email, std::string_view extra_members = {}) {
    auto r = send(email, extra_members);
    SIGIL_CHECK(r.has_value());
    SIGIL_CHECK(!email_.sent.empty());
    return email_.sent.back().otp;
  }

  Result<std::string> validate(std::string_view email, std::string_view passcode, std::string_view extra = {},
                               const auth::Principal* who = nullptr) {
    std::string body = "{\"email\":" + JsonWriter::quote(email) + ",\"passcode\":" + JsonWriter::quote(passcode);
    if (!extra.empty()) body += "," + std::string(extra);
    body += "}";
    return otp_->validate_email_otp(who != nullptr ? *who : client_, params(body));
  }

  // send -> validate -> complete: the Location of the final redirect.
  std::string location_after_login(std::string_view email, std::string_view send_extra = {},
                                   std::string_view validate_extra = {}) {
    const std::string otp = send_ok(email, send_extra);
    auto v = validate(email, otp, validate_extra);
    SIGIL_CHECK(v.has_value());
    const std::string result = json_string(*v, "result");
    SIGIL_CHECK(result.starts_with("http://localhost:8080/cis/v1/auth/complete?t="));
    auto location = otp_->complete(query_param(result, "t"));
    SIGIL_CHECK(location.has_value());
    return *location;
  }
  std::string code_after_login(std::string_view email, std::string_view send_extra = {}) {
    const std::string location = location_after_login(email, send_extra);
    SIGIL_CHECK(location.starts_with(std::string(kRedirect) + "?code="));
    return query_param(location, "code");
  }

  Result<std::string> token_by_code(const std::string& code, const std::string& client_id = "client-1",
                                    std::string_view redirect_uri = kRedirect) {
    return oidc_->token(form({{"grant_type", "authorization_code"},
                              {"client_id", client_id},
                              {"client_secret", client_id + "-secret"},
                              {"code", code},
                              {"redirect_uri", std::string(redirect_uri)}}),
                        "");
  }

  std::string dir_;
  ManualClock clock_;
  RecordingEmail email_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<auth::TokenService> tokens_;
  std::unique_ptr<challenge::ChallengeStore> challenges_;
  std::unique_ptr<ServiceContext> ctx_;
  std::unique_ptr<Oidc> oidc_;
  std::unique_ptr<Passwordless> otp_;
  store::App app_;
  store::User alice_;
  auth::Principal client_, client2_;
};

std::string other_digits(const std::string& otp) {
  std::string wrong = otp;
  wrong[0] = wrong[0] == '9' ? '0' : static_cast<char>(wrong[0] + 1);
  return wrong;
}

// --- the whole flow ------------------------------------------------------------------------------------

TEST_F(PasswordlessTest, SendValidateCompleteAndExchangeTheCodeForTokens) {
  auto sent = send("Alice@Example.com");
  ASSERT_TRUE(sent.has_value()) << sent.error().message;
  EXPECT_EQ(*sent, R"({"message":"OTP email sent"})");
  ASSERT_EQ(email_.sent.size(), 1u);
  const EmailMessage& m = email_.sent.back();
  EXPECT_EQ(m.to, "alice@example.com");
  ASSERT_EQ(m.otp.size(), 6u);
  EXPECT_TRUE(std::all_of(m.otp.begin(), m.otp.end(), [](char c) { return c >= '0' && c <= '9'; }));
  EXPECT_NE(m.text.find(m.otp), std::string::npos);
  EXPECT_NE(m.text.find("Acme"), std::string::npos);

  auto v = validate("alice@example.com", m.otp);
  ASSERT_TRUE(v.has_value()) << v.error().message;
  const std::string result = json_string(*v, "result");
  ASSERT_TRUE(result.starts_with("http://localhost:8080/cis/v1/auth/complete?t=")) << result;
  auto location = otp_->complete(query_param(result, "t"));
  ASSERT_TRUE(location.has_value());
  ASSERT_TRUE(location->starts_with("https://app.example/cb?code=")) << *location;

  auto tokens = token_by_code(query_param(*location, "code"));
  ASSERT_TRUE(tokens.has_value()) << tokens.error().message;
  EXPECT_EQ(json_string(*tokens, "token_type"), "Bearer");
  EXPECT_FALSE(json_string(*tokens, "refresh_token").empty());
  const std::string id_token = json_string(*tokens, "id_token");
  EXPECT_NE(jwt_payload(id_token).find(R"("amr":["eotp"])"), std::string::npos);
  EXPECT_NE(jwt_payload(id_token).find(R"("acr":"urn:sigil:verified:email")"), std::string::npos);
  auto p = tokens_->authenticate_bearer("Bearer " + json_string(*tokens, "access_token"));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->user_id, alice_.id);
  EXPECT_EQ(p->client_id, "client-1");
  // The email is now verified.
  auto user = store_->find_user(alice_.id);
  ASSERT_TRUE(user.has_value() && user->has_value());
  EXPECT_TRUE((*user)->email_verified);
}

TEST_F(PasswordlessTest, ApprovalDataIsEchoedAndReachesTheIdToken) {
  auto sent = send("alice@example.com", R"("approval_data":{"tx":"42","amount":"5"})");
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(*sent, R"({"message":"OTP email sent","approval_data":{"amount":"5","tx":"42"}})");
  auto v = validate("alice@example.com", email_.sent.back().otp);
  ASSERT_TRUE(v.has_value());
  auto location = otp_->complete(query_param(json_string(*v, "result"), "t"));
  ASSERT_TRUE(location.has_value());
  auto tokens = token_by_code(query_param(*location, "code"));
  ASSERT_TRUE(tokens.has_value());
  EXPECT_NE(jwt_payload(json_string(*tokens, "id_token")).find(R"("approval_data":{"amount":"5","tx":"42"})"),
            std::string::npos);
}

TEST_F(PasswordlessTest, CompletionLinkIsSingleUseAndExpiresAfterTwoMinutes) {
  const std::string otp = send_ok("alice@example.com");
  auto v = validate("alice@example.com", otp);
  ASSERT_TRUE(v.has_value());
  const std::string t = query_param(json_string(*v, "result"), "t");
  ASSERT_TRUE(otp_->complete(t).has_value());
  expect_status(otp_->complete(t), 400);

  const std::string otp2 = send_ok("alice@example.com");
  auto v2 = validate("alice@example.com", otp2);
  ASSERT_TRUE(v2.has_value());
  clock_.advance_ms(2 * 60 * 1000 + 1);
  expect_status(otp_->complete(query_param(json_string(*v2, "result"), "t")), 400);
  expect_status(otp_->complete(""), 400);
}

TEST_F(PasswordlessTest, ResponseTypeIdTokenRedirectsWithAnIdTokenInsteadOfACode) {
  const std::string location =
      location_after_login("alice@example.com", {}, R"("response_type":"id_token","nonce":"n-1")");
  ASSERT_TRUE(location.starts_with(std::string(kRedirect) + "?id_token=")) << location;
  EXPECT_EQ(location.find("code="), std::string::npos);
  const std::string payload = jwt_payload(query_param(location, "id_token"));
  EXPECT_NE(payload.find("\"sub\":\"user-alice\""), std::string::npos);
  EXPECT_NE(payload.find("\"nonce\":\"n-1\""), std::string::npos);
  EXPECT_NE(payload.find("\"aud\":\"client-1\""), std::string::npos);
}

TEST_F(PasswordlessTest, UnknownResponseTypeIsRefused) {
  const std::string otp = send_ok("alice@example.com");
  expect_status(validate("alice@example.com", otp, R"("response_type":"token")"), 400);
}

// --- OTP rules -----------------------------------------------------------------------------------------

TEST_F(PasswordlessTest, WrongPasscodeIsInvalidCredentials) {
  const std::string otp = send_ok("alice@example.com");
  auto r = validate("alice@example.com", other_digits(otp));
  expect_status(r, 400, "auth_invalid_credentials");
  EXPECT_EQ(r.error().message, "Invalid passcode");
  // Still pending: the right code works after one wrong try.
  EXPECT_TRUE(validate("alice@example.com", otp).has_value());
}

TEST_F(PasswordlessTest, FiveWrongPasscodesLockAndTheRightOneThenFails) {
  const std::string otp = send_ok("alice@example.com");
  const std::string wrong = other_digits(otp);
  for (int i = 0; i < 5; ++i) expect_status(validate("alice@example.com", wrong), 400, "auth_invalid_credentials");
  expect_status(validate("alice@example.com", otp), 403, "auth_locked");
  expect_status(validate("alice@example.com", wrong), 403, "auth_locked");
  expect_status(validate("alice@example.com", otp), 403, "auth_locked");
}

TEST_F(PasswordlessTest, ANewSendReplacesALockedCode) {
  const std::string otp = send_ok("alice@example.com");
  for (int i = 0; i < 5; ++i) (void)validate("alice@example.com", other_digits(otp));
  expect_status(validate("alice@example.com", otp), 403, "auth_locked");
  const std::string fresh = send_ok("alice@example.com");
  EXPECT_TRUE(validate("alice@example.com", fresh).has_value());
}

TEST_F(PasswordlessTest, ExpiredOtpIsPasscodeExpiredThenForgotten) {
  const std::string otp = send_ok("alice@example.com");
  clock_.advance_ms(11 * 60 * 1000);
  expect_status(validate("alice@example.com", otp), 400, "auth_otp_passcode_expired");
  // Reported once; after that there is no pending request at all.
  expect_status(validate("alice@example.com", otp), 400, "auth_otp_invalid_request_id");
}

TEST_F(PasswordlessTest, LongExpiredOtpHasNoPendingRequest) {
  const std::string otp = send_ok("alice@example.com");
  clock_.advance_ms(31 * 60 * 1000);
  expect_status(validate("alice@example.com", otp), 400, "auth_otp_invalid_request_id");
}

TEST_F(PasswordlessTest, OtpIsValidForTenMinutes) {
  const std::string otp = send_ok("alice@example.com");
  clock_.advance_ms(9 * 60 * 1000);
  EXPECT_TRUE(validate("alice@example.com", otp).has_value());
}

TEST_F(PasswordlessTest, PasscodeIsSingleUse) {
  const std::string otp = send_ok("alice@example.com");
  ASSERT_TRUE(validate("alice@example.com", otp).has_value());
  expect_status(validate("alice@example.com", otp), 400, "auth_otp_invalid_request_id");
}

TEST_F(PasswordlessTest, NoPendingOtpIsInvalidRequestId) {
  expect_status(validate("alice@example.com", "123456"), 400, "auth_otp_invalid_request_id");
}

TEST_F(PasswordlessTest, ANewSendReplacesTheOldCode) {
  const std::string first = send_ok("alice@example.com");
  std::string second = send_ok("alice@example.com");
  // 1 in a million the CSPRNG repeats the code; send again so the two differ.
  if (second == first) second = send_ok("alice@example.com");
  ASSERT_NE(first, second);
  expect_status(validate("alice@example.com", first), 400, "auth_invalid_credentials");
  EXPECT_TRUE(validate("alice@example.com", second).has_value());
}

TEST_F(PasswordlessTest, OtpOfAnotherClientIsNotAccepted) {
  const std::string otp = send_ok("alice@example.com");
  auto r = validate("alice@example.com", otp, {}, &client2_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status(), 400);
}

TEST_F(PasswordlessTest, SixthSendInFifteenMinutesIsRateLimited) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(send("alice@example.com").has_value()) << i;
  auto r = send("alice@example.com");
  expect_status(r, 429, "rate_limited");
  EXPECT_EQ(email_.sent.size(), 5u);
  // Another address has its own budget.
  ASSERT_TRUE(store_->create_user({"user-bob", "tenant-1", "bob@example.com", "", false, 0}).has_value());
  EXPECT_TRUE(send("bob@example.com").has_value());
  // The window passes.
  clock_.advance_ms(15 * 60 * 1000 + 1);
  EXPECT_TRUE(send("alice@example.com").has_value());
}

TEST_F(PasswordlessTest, UnknownEmailWithoutCreateNewUserIs404) {
  auto r = send("nobody@example.com");
  expect_status(r, 404);
  EXPECT_EQ(r.error().message, "User Not Found");
  EXPECT_TRUE(email_.sent.empty());
  expect_status(send("nobody@example.com", R"("create_new_user":false)"), 404);
}

TEST_F(PasswordlessTest, UnknownEmailWithCreateNewUserButNoPublicSignupIsForbidden) {
  app_.public_signup = false;
  ASSERT_TRUE(store_->update_app(app_).has_value());
  expect_status(send("nobody@example.com", R"("create_new_user":true)"), 403);
}

TEST_F(PasswordlessTest, SendValidatesItsInput) {
  expect_status(otp_->send_email_otp(client_, params(R"({"redirect_uri":"https://app.example/cb"})")), 400);
  expect_status(send("not-an-email"), 400);
  expect_status(otp_->send_email_otp(client_, params(R"({"email":"alice@example.com","redirect_uri":"https://evil.example/cb"})")),
                400);
  expect_status(send("alice@example.com", R"("approval_data":{"a":1})"), 400, "system_invalid_input");
  expect_status(send("alice@example.com", R"("require_mfa":true)"), 400);
  expect_status(send("alice@example.com", R"("resource":"https://unknown.example")"), 400, "invalid_resource");
  EXPECT_TRUE(email_.sent.empty());
}

TEST_F(PasswordlessTest, EmailContentSubjectIsUsed) {
  ASSERT_TRUE(send("alice@example.com", R"("email_content":{"subject":"Your Acme code"})").has_value());
  EXPECT_EQ(email_.sent.back().subject, "Your Acme code");
}

TEST_F(PasswordlessTest, SendAndValidateRequireAClientToken) {
  auth::LoginRequest req;
  req.app = &app_;
  req.client_id = "client-1";
  req.user = alice_;
  req.amr = "eotp";
  auto t = tokens_->login(req);
  ASSERT_TRUE(t.has_value());
  auto user = tokens_->authenticate_bearer("Bearer " + t->access_token);
  ASSERT_TRUE(user.has_value());
  expect_status(send("alice@example.com", {}, &*user), 403);
  expect_status(validate("alice@example.com", "123456", {}, &*user), 403);
}

// --- authorization codes -------------------------------------------------------------------------------

TEST_F(PasswordlessTest, CodeReuseIsInvalidGrantAndRevokesTheFirstTokens) {
  const std::string code = code_after_login("alice@example.com");
  auto first = token_by_code(code);
  ASSERT_TRUE(first.has_value());
  const std::string access = json_string(*first, "access_token");
  ASSERT_TRUE(tokens_->authenticate_bearer("Bearer " + access).has_value());
  expect_status(token_by_code(code), 400, "invalid_grant");
  auto after = tokens_->authenticate_bearer("Bearer " + access);
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.error().status(), 401);
  // The refresh token of the first exchange died with the session.
  auto refreshed = oidc_->token(form({{"grant_type", "refresh_token"},
                                      {"client_id", "client-1"},
                                      {"client_secret", "client-1-secret"},
                                      {"refresh_token", json_string(*first, "refresh_token")}}),
                                "");
  expect_status(refreshed, 400, "invalid_grant");
}

TEST_F(PasswordlessTest, CodeRedeemedByAnotherClientIsInvalidGrant) {
  const std::string code = code_after_login("alice@example.com");
  expect_status(token_by_code(code, "client-2"), 400, "invalid_grant");
}

TEST_F(PasswordlessTest, RedirectUriMismatchIsInvalidGrant) {
  const std::string code = code_after_login("alice@example.com");
  expect_status(token_by_code(code, "client-1", "https://app.example/other"), 400, "invalid_grant");
}

TEST_F(PasswordlessTest, CodeExpiresAfterFiveMinutes) {
  const std::string code = code_after_login("alice@example.com");
  clock_.advance_ms(5 * 60 * 1000 + 1);
  expect_status(token_by_code(code), 400, "invalid_grant");
}

TEST_F(PasswordlessTest, UnknownCodeIsInvalidGrant) {
  expect_status(token_by_code("no-such-code"), 400, "invalid_grant");
}

TEST_F(PasswordlessTest, ExchangeV1CreatesTheUserAndSaysSo) {
  const std::string code = code_after_login("new@example.com", R"("create_new_user":true)");
  auto r = oidc_->exchange_v1(form({{"code", code}, {"client_id", "client-1"}, {"client_secret", "client-1-secret"}}));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(json_bool(*r, "is_user_created"), std::optional<bool>(true));
  EXPECT_FALSE(json_string(*r, "access_token").empty());
  EXPECT_FALSE(json_string(*r, "refresh_token").empty());
  const std::string payload = jwt_payload(json_string(*r, "id_token"));
  EXPECT_NE(payload.find("\"new_user\":true"), std::string::npos);
  auto user = store_->find_user_by_email("tenant-1", "new@example.com");
  ASSERT_TRUE(user.has_value() && user->has_value());
  EXPECT_TRUE((*user)->email_verified);
  EXPECT_NE(payload.find("\"sub\":\"" + (*user)->id + "\""), std::string::npos);

  // A second login of the same address finds the user: not created again.
  const std::string code2 = code_after_login("new@example.com", R"("create_new_user":true)");
  auto r2 = oidc_->exchange_v1(form({{"code", code2}, {"client_id", "client-1"}, {"client_secret", "client-1-secret"}}));
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(json_bool(*r2, "is_user_created"), std::optional<bool>(false));
}

TEST_F(PasswordlessTest, ExchangeV1ForAnExistingUserIsNotCreated) {
  const std::string code = code_after_login("alice@example.com");
  auto r = oidc_->exchange_v1(form({{"code", code}, {"client_id", "client-1"}, {"client_secret", "client-1-secret"}}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(json_bool(*r, "is_user_created"), std::optional<bool>(false));
}

TEST_F(PasswordlessTest, ExchangeV1RefusesBadCredentialsAndBadRequests) {
  const std::string code = code_after_login("alice@example.com");
  auto wrong = oidc_->exchange_v1(form({{"code", code}, {"client_id", "client-1"}, {"client_secret", "wrong"}}));
  expect_status(wrong, 400);
  EXPECT_EQ(wrong.error().message, "Invalid client credentials");
  auto missing = oidc_->exchange_v1(form({{"client_id", "client-1"}, {"client_secret", "client-1-secret"}}));
  expect_status(missing, 400);
  EXPECT_EQ(missing.error().message, "Bad request");
  expect_status(oidc_->exchange_v1(form({{"code", code}, {"client_id", std::string(51, 'c')},
                                         {"client_secret", "client-1-secret"}})),
                400);
  // Wrong credentials did not burn the code.
  EXPECT_TRUE(
      oidc_->exchange_v1(form({{"code", code}, {"client_id", "client-1"}, {"client_secret", "client-1-secret"}}))
          .has_value());
}

// --- the token endpoint's other grants -------------------------------------------------------------------

TEST_F(PasswordlessTest, ClientCredentialsGrantIssuesAClientToken) {
  auto r = oidc_->token(form({{"grant_type", "client_credentials"}, {"client_id", "client-1"},
                              {"client_secret", "client-1-secret"}}),
                        "");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(json_string(*r, "scope"), "apps:execute app-1:execute auth:execute");
  EXPECT_EQ(r->find("refresh_token"), std::string::npos);
  EXPECT_EQ(r->find("id_token"), std::string::npos);
  auto p = tokens_->authenticate_bearer("Bearer " + json_string(*r, "access_token"));
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->is_user());
}

TEST_F(PasswordlessTest, ClientSecretBasicIsAccepted) {
  const std::string basic = "Basic " + crypto::base64_encode(as_bytes("client-1:client-1-secret"));
  auto r = oidc_->token(form({{"grant_type", "client_credentials"}}), basic);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto bad = oidc_->token(form({{"grant_type", "client_credentials"}}),
                          "Basic " + crypto::base64_encode(as_bytes("client-1:nope")));
  expect_status(bad, 401, "invalid_client");
}

TEST_F(PasswordlessTest, TokenEndpointErrors) {
  expect_status(oidc_->token(form({{"grant_type", "password"}, {"client_id", "client-1"},
                                   {"client_secret", "client-1-secret"}}),
                             ""),
                400, "unsupported_grant_type");
  expect_status(oidc_->token(form({{"client_id", "client-1"}, {"client_secret", "client-1-secret"}}), ""), 400,
                "invalid_request");
  expect_status(oidc_->token(form({{"grant_type", "client_credentials"}, {"client_id", "client-1"},
                                   {"client_secret", "wrong"}}),
                             ""),
                401, "invalid_client");
  expect_status(oidc_->token(form({{"grant_type", "client_credentials"}, {"client_id", "nobody"},
                                   {"client_secret", "client-1-secret"}}),
                             ""),
                401, "invalid_client");
  expect_status(oidc_->token(form({{"grant_type", "client_credentials"}, {"client_id", "client-1"},
                                   {"client_secret", "client-1-secret"}, {"resource", "https://x"}}),
                             ""),
                400, "invalid_target");
  expect_status(oidc_->token(form({{"grant_type", "authorization_code"}, {"client_id", "client-1"},
                                   {"client_secret", "client-1-secret"}}),
                             ""),
                400, "invalid_request");
}

TEST_F(PasswordlessTest, RefreshGrantRotates) {
  const std::string code = code_after_login("alice@example.com");
  auto first = token_by_code(code);
  ASSERT_TRUE(first.has_value());
  auto refresh = [&](const std::string& rt) {
    return oidc_->token(form({{"grant_type", "refresh_token"}, {"client_id", "client-1"},
                              {"client_secret", "client-1-secret"}, {"refresh_token", rt}}),
                        "");
  };
  auto second = refresh(json_string(*first, "refresh_token"));
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_NE(json_string(*second, "refresh_token"), json_string(*first, "refresh_token"));
  EXPECT_FALSE(json_string(*second, "id_token").empty());
  expect_status(refresh(json_string(*first, "refresh_token")), 400, "invalid_grant");
  expect_status(refresh(json_string(*second, "refresh_token")), 400, "invalid_grant");
}

TEST_F(PasswordlessTest, LogoutEndsTheSession) {
  const std::string code = code_after_login("alice@example.com");
  auto tokens = token_by_code(code);
  ASSERT_TRUE(tokens.has_value());
  auto p = tokens_->authenticate_bearer("Bearer " + json_string(*tokens, "access_token"));
  ASSERT_TRUE(p.has_value());
  auto r = oidc_->logout(*p);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, R"({"sessions_count":1})");
  EXPECT_FALSE(tokens_->authenticate_bearer("Bearer " + json_string(*tokens, "access_token")).has_value());
  auto again = oidc_->logout(*p);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, R"({"sessions_count":0})");
}

TEST(AppendQuery, EscapesAndKeepsExistingQueryAndFragment) {
  EXPECT_EQ(append_query("https://a.example/cb", {{"code", "x y&z"}}), "https://a.example/cb?code=x%20y%26z");
  EXPECT_EQ(append_query("https://a.example/cb?s=1#frag", {{"code", "c"}, {"state", "s"}}),
            "https://a.example/cb?s=1&code=c&state=s#frag");
}

TEST(ParseBasicCredentials, DecodesFormEncodedParts) {
  auto r = parse_basic_credentials("Basic " + crypto::base64_encode(as_bytes("my%20id:s%3Acret")));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, "my id");
  EXPECT_EQ(r->second, "s:cret");
  EXPECT_FALSE(parse_basic_credentials("Basic !!!").has_value());
  EXPECT_FALSE(parse_basic_credentials("Bearer abc").has_value());
  EXPECT_FALSE(parse_basic_credentials("Basic " + crypto::base64_encode(as_bytes("nocolon"))).has_value());
}

}  // namespace
}  // namespace sigil::service
