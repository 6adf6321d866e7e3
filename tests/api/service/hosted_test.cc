// service::Hosted (API.md 4.1, 3.7; /oidc/auth) with service::Oidc's PKCE and code rules, over real parts:
// SQLite in a temporary folder, a TokenService with a fresh key, a recording EmailSender, the software
// authenticator playing browser + passkey, and a ManualClock to move past ticket and code expiry.
#include "api/service/hosted.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "api/auth/jwt.h"
#include "api/service/oidc.h"
#include "api/service/passwordless.h"
#include "api/service/webauthn.h"
#include "api/store/sqlite_store.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"
#include "tests/support/soft_authenticator.h"

namespace sigil::service {
namespace {

constexpr std::string_view kRedirect = "https://app.example/cb";
constexpr std::string_view kOrigin = "https://sigil.example";
constexpr std::string_view kVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";  // RFC 7636 appendix B
constexpr std::string_view kChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

class RecordingEmail final : public EmailSender {
 public:
  Result<void> send(const EmailMessage& m) override {
    sent.push_back(m);
    return {};
  }
  std::vector<EmailMessage> sent;
};

std::string jstr(const std::string& json, std::string_view pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return {};
  std::string_view v;
  if (root.at_pointer(pointer).get_string().get(v)) return {};
  return std::string(v);
}
std::string jraw(const std::string& json, std::string_view pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return {};
  simdjson::dom::element e;
  if (root.at_pointer(pointer).get(e)) return {};
  return simdjson::minify(e);
}
std::string jwt_payload(const std::string& jwt) {
  const size_t a = jwt.find('.');
  const size_t b = jwt.find('.', a + 1);
  if (a == std::string::npos || b == std::string::npos) return {};
  auto decoded = crypto::base64url_decode(std::string_view(jwt).substr(a + 1, b - a - 1));
  return decoded ? std::string(as_chars(*decoded)) : std::string();
}
// Query parameter of a URI, percent-decoded.
std::string query_param(const std::string& uri, std::string_view name) {
  const size_t q = uri.find('?');
  if (q == std::string::npos) return {};
  std::string_view rest = std::string_view(uri).substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      std::string out;
      std::string_view v = pair.substr(eq + 1);
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          out.push_back(static_cast<char>(std::stoi(std::string(v.substr(i + 1, 2)), nullptr, 16)));
          i += 2;
        } else {
          out.push_back(v[i] == '+' ? ' ' : v[i]);
        }
      }
      return out;
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return {};
}

Params query(std::vector<std::pair<std::string, std::string>> pairs) {
  auto p = Params::from_pairs(std::move(pairs));
  SIGIL_CHECK(p.has_value());
  return std::move(*p);
}

class HostedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sigil-hosted-XXXXXX").string();
    SIGIL_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
    auto opened = store::SqliteStore::open(dir_ + "/sigil.db", clock_);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    store_ = std::move(*opened);
    auto keys = auth::load_or_create_signing_keys(*store_, crypto::random_bytes(32), clock_);
    ASSERT_TRUE(keys.has_value());
    auth::AuthConfig config;
    config.issuer = "https://sigil.test";
    tokens_ = std::make_unique<auth::TokenService>(*store_, clock_, config, *keys);
    challenges_ = std::make_unique<challenge::ChallengeStore>(clock_, challenge::ChallengeStore::Options{1000});
    ctx_ = std::unique_ptr<ServiceContext>(new ServiceContext{*store_, *tokens_, *challenges_, email_, clock_,
                                                              std::string(kOrigin), crypto::random_bytes(32)});
    oidc_ = std::make_unique<Oidc>(*ctx_);
    webauthn_ = std::make_unique<WebAuthn>(*ctx_);
    hosted_ = std::make_unique<Hosted>(*ctx_, *oidc_, *webauthn_);

    ASSERT_TRUE(store_->create_tenant({"tenant-1", "t1", clock_.now_s()}).has_value());
    app_.id = "app-1";
    app_.tenant_id = "tenant-1";
    app_.name = "Acme";
    app_.redirect_uris = {std::string(kRedirect), "http://127.0.0.1:9000/cb"};
    app_.origins = {"https://app.example"};
    app_.rp_id = "sigil.example";
    app_.created_at = clock_.now_s();
    ASSERT_TRUE(store_->create_app(app_).has_value());
    make_client("client-1", false);
    make_client("client-2", false);
    make_client("public-1", true);
  }
  void TearDown() override {
    hosted_.reset();
    webauthn_.reset();
    oidc_.reset();
    ctx_.reset();
    challenges_.reset();
    tokens_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void make_client(const std::string& id, bool is_public) {
    store::Client c;
    c.client_id = id;
    c.app_id = app_.id;
    c.tenant_id = app_.tenant_id;
    c.public_client = is_public;
    if (!is_public) {
      auto h = crypto::sha256(as_bytes(id + "-secret"));
      c.secret_hash.assign(h.begin(), h.end());
    }
    c.created_at = clock_.now_s();
    SIGIL_CHECK(store_->create_client(c).has_value());
  }

  // /oidc/auth parameters for client-1 (confidential) unless overridden.
  std::vector<std::pair<std::string, std::string>> oidc_params(std::string client = "client-1") {
    return {{"response_type", "code"}, {"client_id", client},       {"redirect_uri", std::string(kRedirect)},
            {"scope", "openid email"}, {"state", "st-123"},         {"nonce", "n-456"},
            {"code_challenge", std::string(kChallenge)}, {"code_challenge_method", "S256"}};
  }
  static std::vector<std::pair<std::string, std::string>> with(std::vector<std::pair<std::string, std::string>> p,
                                                               const std::string& key, const std::string& value) {
    std::erase_if(p, [&](const auto& kv) { return kv.first == key; });
    if (!value.empty()) p.emplace_back(key, value);
    return p;
  }

  std::string ticket_of(const std::string& location) {
    EXPECT_TRUE(location.starts_with(std::string(kOrigin) + "/cis/hosted/login?ticket=")) << location;
    return query_param(location, "ticket");
  }

  // A new user through the whole hosted flow: email, code, passkey. Returns the redirect to the app.
  HostedStep sign_up(const std::string& ticket, const std::string& email) {
    auto id = hosted_->identify(ticket, email);
    EXPECT_TRUE(id.has_value()) << id.error().message;
    EXPECT_EQ(*id, R"({"next":"otp"})");
    EXPECT_FALSE(email_.sent.empty());
    auto verified = hosted_->verify_otp(ticket, email_.sent.back().otp);
    EXPECT_TRUE(verified.has_value()) << verified.error().message;
    auto start = hosted_->register_start(ticket);
    EXPECT_TRUE(start.has_value()) << start.error().message;
    const std::string cred = soft_.create(jraw(*start, "/publicKey"), kOrigin);
    auto done = hosted_->register_finish(ticket, cred);
    EXPECT_TRUE(done.has_value()) << done.error().message;
    return done.value_or(HostedStep{});
  }

  Result<std::string> exchange(const std::string& code, std::string verifier = std::string(kVerifier),
                               std::string client = "client-1", std::string secret = "client-1-secret") {
    std::vector<std::pair<std::string, std::string>> p = {
        {"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", std::string(kRedirect)},
        {"client_id", client}};
    if (!secret.empty()) p.emplace_back("client_secret", secret);
    if (!verifier.empty()) p.emplace_back("code_verifier", verifier);
    return oidc_->token(query(std::move(p)), "");
  }

  std::string dir_;
  ManualClock clock_;
  RecordingEmail email_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<auth::TokenService> tokens_;
  std::unique_ptr<challenge::ChallengeStore> challenges_;
  std::unique_ptr<ServiceContext> ctx_;
  std::unique_ptr<Oidc> oidc_;
  std::unique_ptr<WebAuthn> webauthn_;
  std::unique_ptr<Hosted> hosted_;
  store::App app_;
  testing::SoftAuthenticator soft_;
};

TEST_F(HostedTest, RedirectUriVariantsAndUnknownClientsAreNeverRedirectedTo) {
  for (const std::string uri : {"https://app.example/cb/", "https://app.example/cb?x=1", "https://app.example:8443/cb",
                                "http://app.example/cb", "https://app.example/CB", "https://APP.example.evil/cb",
                                "http://127.0.0.1:9001/cb", ""}) {
    for (auto flavor : {HostedFlavor::kHostedV1, HostedFlavor::kOidc}) {
      auto r = hosted_->begin(query(with(oidc_params(), "redirect_uri", uri)), flavor, "");
      ASSERT_FALSE(r.has_value()) << uri << " -> " << r->location;
      EXPECT_EQ(r.error().status(), 400);
      EXPECT_EQ(r.error().message, "Invalid redirect_uri");
    }
  }
  for (const std::string client : {"no-such-client", ""}) {
    auto r = hosted_->begin(query(with(oidc_params(), "client_id", client)), HostedFlavor::kOidc, "");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status(), 400);
  }
  // The registered loopback URI itself is fine.
  auto ok = hosted_->begin(query(with(oidc_params(), "redirect_uri", "http://127.0.0.1:9000/cb")), HostedFlavor::kOidc, "");
  ASSERT_TRUE(ok.has_value());
}

TEST_F(HostedTest, NewUserSignsUpWithEmailCodeAndPasskeyThenExchangesWithPkce) {
  auto begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  ASSERT_TRUE(begin.has_value());
  const std::string ticket = ticket_of(begin->location);
  auto view = hosted_->login_view(ticket);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->app_name, "Acme");
  EXPECT_EQ(view->locale, "en");

  HostedStep done = sign_up(ticket, "New.User@Example.com");
  ASSERT_TRUE(done.location.starts_with(std::string(kRedirect) + "?code=")) << done.location;
  EXPECT_EQ(query_param(done.location, "state"), "st-123");
  EXPECT_FALSE(done.new_browser_session.empty());
  EXPECT_EQ(email_.sent.back().to, "new.user@example.com");
  // The ticket is used up.
  EXPECT_FALSE(hosted_->login_view(ticket).has_value());

  auto tokens = exchange(query_param(done.location, "code"));
  ASSERT_TRUE(tokens.has_value()) << tokens.error().message;
  const std::string id = jwt_payload(jstr(*tokens, "/id_token"));
  EXPECT_EQ(jstr(id, "/nonce"), "n-456");
  EXPECT_EQ(jraw(id, "/new_user"), "true");
  EXPECT_EQ(jraw(id, "/amr"), R"(["eotp"])");
  // at_hash: left half of SHA-256 of the access token, base64url.
  const std::string access = jstr(*tokens, "/access_token");
  const auto digest = crypto::sha256(as_bytes(access));
  EXPECT_EQ(jstr(id, "/at_hash"), crypto::base64url_encode(ByteView(digest.data(), 16)));
  auto user = store_->find_user_by_email("tenant-1", "new.user@example.com");
  ASSERT_TRUE(user.has_value() && user->has_value());
  EXPECT_TRUE((*user)->email_verified);
  EXPECT_EQ(jstr(id, "/sub"), (*user)->id);

  // Userinfo with the user token; a client token is refused.
  auto who = tokens_->authenticate_bearer("Bearer " + access);
  ASSERT_TRUE(who.has_value());
  auto info = oidc_->userinfo(*who);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(jstr(*info, "/sub"), (*user)->id);
  EXPECT_EQ(jstr(*info, "/email"), "new.user@example.com");
  EXPECT_EQ(jraw(*info, "/email_verified"), "true");
  auto client = store_->find_client("client-1");
  auto client_token = tokens_->issue_client_token(**client, app_, "", "");
  auto client_who = tokens_->authenticate_bearer("Bearer " + client_token->access_token);
  ASSERT_TRUE(client_who.has_value());
  auto refused = oidc_->userinfo(*client_who);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().status(), 401);
}

TEST_F(HostedTest, ReturningUserSignsInWithPasskeyByNameAndUsernameless) {
  auto first = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  sign_up(ticket_of(first->location), "erin@example.com");
  const size_t mails = email_.sent.size();

  // By name: identify answers with a passkey ceremony, no email.
  auto begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  std::string ticket = ticket_of(begin->location);
  auto id = hosted_->identify(ticket, "erin@example.com");
  ASSERT_TRUE(id.has_value()) << id.error().message;
  EXPECT_EQ(jstr(*id, "/next"), "passkey");
  EXPECT_EQ(email_.sent.size(), mails);
  auto done = hosted_->passkey_finish(ticket, soft_.get(jraw(*id, "/publicKey"), kOrigin));
  ASSERT_TRUE(done.has_value()) << done.error().message;
  auto tokens = exchange(query_param(done->location, "code"));
  ASSERT_TRUE(tokens.has_value()) << tokens.error().message;
  const std::string claims = jwt_payload(jstr(*tokens, "/id_token"));
  EXPECT_EQ(jraw(claims, "/amr"), R"(["webauthn"])");
  EXPECT_EQ(jstr(claims, "/webauthn_username"), "erin@example.com");

  // Usernameless (the passkey button / conditional mediation).
  begin = hosted_->begin(query(oidc_params()), HostedFlavor::kHostedV1, "");
  ticket = ticket_of(begin->location);
  auto start = hosted_->passkey_start(ticket);
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(jraw(*start, "/publicKey/allowCredentials"), "[]");
  done = hosted_->passkey_finish(ticket, soft_.get(jraw(*start, "/publicKey"), kOrigin));
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_TRUE(done->location.starts_with(std::string(kRedirect) + "?code="));
  // A wrong origin is refused and the page may try again.
  begin = hosted_->begin(query(oidc_params()), HostedFlavor::kHostedV1, "");
  ticket = ticket_of(begin->location);
  start = hosted_->passkey_start(ticket);
  auto evil = hosted_->passkey_finish(ticket, soft_.get(jraw(*start, "/publicKey"), "https://evil.example"));
  ASSERT_FALSE(evil.has_value());
  EXPECT_EQ(evil.error().status(), 401);
  EXPECT_TRUE(hosted_->login_view(ticket).has_value());
}

TEST_F(HostedTest, ExpiredTicketShowsNothingAndTheApiRefuses) {
  auto begin = hosted_->begin(query(oidc_params()), HostedFlavor::kHostedV1, "");
  const std::string ticket = ticket_of(begin->location);
  ASSERT_TRUE(hosted_->login_view(ticket).has_value());
  clock_.advance_ms(11 * 60 * 1000);
  auto view = hosted_->login_view(ticket);
  ASSERT_FALSE(view.has_value());
  EXPECT_EQ(view.error().status(), 404);
  EXPECT_FALSE(hosted_->passkey_start(ticket).has_value());
  EXPECT_FALSE(hosted_->identify(ticket, "a@example.com").has_value());
  EXPECT_FALSE(hosted_->cancel(ticket).has_value());
}

TEST_F(HostedTest, CodeIsSingleUseAndReuseRevokesItsTokens) {
  auto begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  const std::string code = query_param(sign_up(ticket_of(begin->location), "a@example.com").location, "code");
  auto tokens = exchange(code);
  ASSERT_TRUE(tokens.has_value());
  const std::string access = jstr(*tokens, "/access_token");
  ASSERT_TRUE(tokens_->authenticate_bearer("Bearer " + access).has_value());
  auto again = exchange(code);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().ts_error_code, "invalid_grant");
  EXPECT_FALSE(tokens_->authenticate_bearer("Bearer " + access).has_value());
  auto refreshed = oidc_->token(query({{"grant_type", "refresh_token"},
                                       {"refresh_token", jstr(*tokens, "/refresh_token")},
                                       {"client_id", "client-1"},
                                       {"client_secret", "client-1-secret"}}),
                                "");
  EXPECT_FALSE(refreshed.has_value());
}

TEST_F(HostedTest, CodeFromAnotherClientIsInvalidGrant) {
  auto begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  const std::string code = query_param(sign_up(ticket_of(begin->location), "a@example.com").location, "code");
  auto other = exchange(code, std::string(kVerifier), "client-2", "client-2-secret");
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().ts_error_code, "invalid_grant");
}

TEST_F(HostedTest, PkceIsEnforced) {
  // Public client without a challenge: error redirect, state echoed.
  auto no_pkce = hosted_->begin(query(with(with(oidc_params("public-1"), "code_challenge", ""), "code_challenge_method", "")),
                                HostedFlavor::kOidc, "");
  ASSERT_TRUE(no_pkce.has_value());
  EXPECT_EQ(query_param(no_pkce->location, "error"), "invalid_request");
  EXPECT_EQ(query_param(no_pkce->location, "state"), "st-123");
  EXPECT_TRUE(no_pkce->location.starts_with(std::string(kRedirect) + "?"));
  // plain is refused.
  auto plain = hosted_->begin(query(with(with(oidc_params(), "code_challenge", std::string(kVerifier)),
                                         "code_challenge_method", "plain")),
                              HostedFlavor::kOidc, "");
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(query_param(plain->location, "error"), "invalid_request");
  EXPECT_NE(query_param(plain->location, "error_description").find("S256"), std::string::npos);

  // Wrong verifier; then the code is gone.
  auto begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  std::string code = query_param(sign_up(ticket_of(begin->location), "a@example.com").location, "code");
  auto wrong = exchange(code, "wrong-verifier-wrong-verifier-wrong-verifier-0000");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().ts_error_code, "invalid_grant");
  EXPECT_FALSE(exchange(code).has_value());

  // Downgrade: challenge sent, no verifier at the exchange.
  begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  auto ticket = ticket_of(begin->location);
  auto start = hosted_->passkey_start(ticket);
  code = query_param(hosted_->passkey_finish(ticket, soft_.get(jraw(*start, "/publicKey"), kOrigin))->location, "code");
  auto downgraded = exchange(code, "");
  ASSERT_FALSE(downgraded.has_value());
  EXPECT_EQ(downgraded.error().ts_error_code, "invalid_grant");

  // A verifier for a code issued without a challenge.
  begin = hosted_->begin(query(with(with(oidc_params(), "code_challenge", ""), "code_challenge_method", "")),
                         HostedFlavor::kOidc, "");
  ticket = ticket_of(begin->location);
  start = hosted_->passkey_start(ticket);
  code = query_param(hosted_->passkey_finish(ticket, soft_.get(jraw(*start, "/publicKey"), kOrigin))->location, "code");
  auto unexpected = exchange(code);
  ASSERT_FALSE(unexpected.has_value());
  EXPECT_EQ(unexpected.error().ts_error_code, "invalid_grant");

  // Public client: client_id alone + the right verifier works; a secret or no verifier does not.
  begin = hosted_->begin(query(oidc_params("public-1")), HostedFlavor::kOidc, "");
  ticket = ticket_of(begin->location);
  start = hosted_->passkey_start(ticket);
  code = query_param(hosted_->passkey_finish(ticket, soft_.get(jraw(*start, "/publicKey"), kOrigin))->location, "code");
  auto with_secret = exchange(code, std::string(kVerifier), "public-1", "guess");
  ASSERT_FALSE(with_secret.has_value());
  EXPECT_EQ(with_secret.error().ts_error_code, "invalid_client");
  auto pub = exchange(code, std::string(kVerifier), "public-1", "");
  ASSERT_TRUE(pub.has_value()) << pub.error().message;
  EXPECT_FALSE(jstr(*pub, "/id_token").empty());
  auto cc = oidc_->token(query({{"grant_type", "client_credentials"}, {"client_id", "public-1"}}), "");
  ASSERT_FALSE(cc.has_value());
  EXPECT_EQ(cc.error().ts_error_code, "unauthorized_client");
}

TEST_F(HostedTest, UnsupportedOptionsAreRefusedWithAnErrorRedirect) {
  struct Case {
    std::string key, value, error, description;
  };
  const Case cases[] = {
      {"require_mfa", "true", "invalid_request", "require_mfa is not supported yet"},
      {"verifications", "phone", "invalid_request", "phone verification is not supported yet"},
      {"response_type", "token", "unsupported_response_type", ""},
      {"scope", "email", "invalid_scope", ""},
      {"resource", "https://api.unknown", "invalid_target", ""},
      {"claims", "{not json", "invalid_request", ""},
  };
  for (const Case& c : cases) {
    auto r = hosted_->begin(query(with(oidc_params(), c.key, c.value)), HostedFlavor::kOidc, "");
    ASSERT_TRUE(r.has_value()) << c.key;
    EXPECT_TRUE(r->location.starts_with(std::string(kRedirect) + "?error=")) << r->location;
    EXPECT_EQ(query_param(r->location, "error"), c.error) << c.key;
    if (!c.description.empty()) {
      EXPECT_EQ(query_param(r->location, "error_description"), c.description);
    }
    EXPECT_EQ(query_param(r->location, "state"), "st-123") << c.key;
  }
  // The hosted v1 door needs no scope or response_type.
  auto v1 = hosted_->begin(query({{"client_id", "client-1"}, {"redirect_uri", std::string(kRedirect)},
                                  {"require_mfa", "true"}}),
                           HostedFlavor::kHostedV1, "");
  ASSERT_TRUE(v1.has_value());
  EXPECT_EQ(query_param(v1->location, "error_description"), "require_mfa is not supported yet");
  EXPECT_EQ(query_param(v1->location, "state"), "");
}

TEST_F(HostedTest, BrowserSessionSkipsTheCeremonyUntilPromptLoginOrLogout) {
  auto begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  const HostedStep first = sign_up(ticket_of(begin->location), "a@example.com");
  const std::string cookie = first.new_browser_session;
  ASSERT_FALSE(cookie.empty());

  clock_.advance_ms(60 * 60 * 1000);
  auto again = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, cookie);
  ASSERT_TRUE(again.has_value());
  ASSERT_TRUE(again->location.starts_with(std::string(kRedirect) + "?code=")) << again->location;
  EXPECT_EQ(query_param(again->location, "state"), "st-123");
  auto tokens = exchange(query_param(again->location, "code"));
  ASSERT_TRUE(tokens.has_value()) << tokens.error().message;
  const std::string claims = jwt_payload(jstr(*tokens, "/id_token"));
  // auth_time is the sign-in an hour ago, not this exchange.
  EXPECT_EQ(jraw(claims, "/auth_time"), std::to_string(clock_.now_s() - 3600));
  EXPECT_EQ(jstr(claims, "/nonce"), "n-456");

  auto forced = hosted_->begin(query(with(oidc_params(), "prompt", "login")), HostedFlavor::kOidc, cookie);
  ASSERT_TRUE(forced.has_value());
  EXPECT_FALSE(ticket_of(forced->location).empty());
  auto max_age = hosted_->begin(query(with(oidc_params(), "max_age", "60")), HostedFlavor::kOidc, cookie);
  EXPECT_FALSE(ticket_of(max_age->location).empty());
  auto mfa = hosted_->begin(query(with(oidc_params(), "require_mfa", "true")), HostedFlavor::kOidc, cookie);
  EXPECT_EQ(query_param(mfa->location, "error"), "invalid_request");

  // Logout ends the browser session and the token sessions minted from it.
  const std::string access = jstr(*tokens, "/access_token");
  auto who = tokens_->authenticate_bearer("Bearer " + access);
  ASSERT_TRUE(who.has_value());
  ASSERT_TRUE(oidc_->logout(*who).has_value());
  auto after = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, cookie);
  EXPECT_FALSE(ticket_of(after->location).empty());
  auto none = hosted_->begin(query(with(oidc_params(), "prompt", "none")), HostedFlavor::kOidc, cookie);
  EXPECT_EQ(query_param(none->location, "error"), "login_required");

  // Past 24 hours the session is over as well.
  begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  auto ticket = ticket_of(begin->location);
  auto start = hosted_->passkey_start(ticket);
  const std::string cookie2 =
      hosted_->passkey_finish(ticket, soft_.get(jraw(*start, "/publicKey"), kOrigin))->new_browser_session;
  ASSERT_TRUE(hosted_->end_browser_session("not-a-session").has_value());
  clock_.advance_ms(25LL * 3600 * 1000);
  auto stale = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, cookie2);
  EXPECT_FALSE(ticket_of(stale->location).empty());
}

TEST_F(HostedTest, OtpAttemptsAreLimitedAndCancelRedirectsWithAccessDenied) {
  auto begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  const std::string ticket = ticket_of(begin->location);
  ASSERT_TRUE(hosted_->identify(ticket, "a@example.com").has_value());
  EXPECT_FALSE(hosted_->register_start(ticket).has_value());  // email not proven yet
  for (int i = 0; i < 4; ++i) {
    auto wrong = hosted_->verify_otp(ticket, "000000x");
    ASSERT_FALSE(wrong.has_value());
    EXPECT_EQ(wrong.error().ts_error_code, "auth_invalid_credentials");
  }
  auto last = hosted_->verify_otp(ticket, "000000x");
  ASSERT_TRUE(last.has_value());
  const std::string location = jstr(*last, "/location");
  EXPECT_EQ(query_param(location, "error"), "access_denied");
  EXPECT_EQ(query_param(location, "state"), "st-123");
  EXPECT_FALSE(hosted_->login_view(ticket).has_value());

  begin = hosted_->begin(query(oidc_params()), HostedFlavor::kOidc, "");
  auto cancelled = hosted_->cancel(ticket_of(begin->location));
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(query_param(cancelled->location, "error"), "access_denied");
  EXPECT_EQ(query_param(cancelled->location, "state"), "st-123");

  // No sign-up: an unknown address is refused.
  begin = hosted_->begin(query(with(oidc_params(), "create_new_user", "false")), HostedFlavor::kHostedV1, "");
  auto unknown = hosted_->identify(ticket_of(begin->location), "b@example.com");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().status(), 404);
}

TEST_F(HostedTest, LocaleAndPageParametersComeFromTheTicket) {
  auto begin = hosted_->begin(query(with(with(with(oidc_params(), "ui_locales", "fr-CA en"), "login_hint", "x@example.com"),
                                         "custom_message", "Bienvenue")),
                              HostedFlavor::kHostedV1, "");
  auto view = hosted_->login_view(ticket_of(begin->location));
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->locale, "fr");
  EXPECT_EQ(view->login_hint, "x@example.com");
  EXPECT_EQ(view->custom_message, "Bienvenue");
  EXPECT_EQ(pick_locale("de en-GB"), "en");
  EXPECT_EQ(pick_locale(""), "en");
}

TEST_F(HostedTest, HostedRegistrationRegistersAPasskeyAndRedirectsWithItsId) {
  auto client = store_->find_client("client-1");
  auto token = tokens_->issue_client_token(**client, app_, "", "");
  auto caller = tokens_->authenticate_bearer("Bearer " + token->access_token);
  ASSERT_TRUE(caller.has_value());
  auto hint = webauthn_->hosted_hint(*caller, query({{"webauthn_identifier", "dana@example.com"},
                                                      {"external_user_id", "ext-dana"},
                                                      {"redirect_uri", std::string(kRedirect)}}));
  ASSERT_TRUE(hint.has_value()) << hint.error().message;
  const std::string reg = jstr(*hint, "/register_webauthn_cred_token");
  auto view = hosted_->registration_view(reg, "fr");
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->identifier, "dana@example.com");
  EXPECT_EQ(view->locale, "fr");
  auto start = hosted_->registration_start(reg);
  ASSERT_TRUE(start.has_value()) << start.error().message;
  auto done = hosted_->registration_finish(reg, soft_.create(jraw(*start, "/publicKey"), kOrigin));
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(query_param(done->location, "user_identifier"), "dana@example.com");
  EXPECT_EQ(query_param(done->location, "external_user_id"), "ext-dana");
  EXPECT_EQ(query_param(done->location, "credential_id"), crypto::base64url_encode(soft_.credentials()[0].id));
  EXPECT_EQ(query_param(done->location, "register_webauthn_cred_token"), reg);
  auto user = store_->find_user_by_external_id("tenant-1", "ext-dana");
  ASSERT_TRUE(user.has_value() && user->has_value());
  // Single use.
  EXPECT_FALSE(hosted_->registration_view(reg, "").has_value());
  EXPECT_FALSE(hosted_->registration_start(reg).has_value());

  // A failed ceremony redirects with error and error_description.
  hint = webauthn_->hosted_hint(*caller, query({{"webauthn_identifier", "eve"}, {"redirect_uri", std::string(kRedirect)}}));
  const std::string reg2 = jstr(*hint, "/register_webauthn_cred_token");
  start = hosted_->registration_start(reg2);
  auto bad = hosted_->registration_finish(reg2, soft_.create(jraw(*start, "/publicKey"), "https://evil.example"));
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(query_param(bad->location, "error"), "access_denied");
  EXPECT_FALSE(query_param(bad->location, "error_description").empty());
  EXPECT_EQ(query_param(bad->location, "credential_id"), "");
}

}  // namespace
}  // namespace sigil::service
