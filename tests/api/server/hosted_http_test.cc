// Hosted login, the OpenID Provider surface and the demo relying party through the assembled sigild over
// real HTTP on loopback: vetting of redirect URIs (400, never a Location), the login page and its JSON API
// driven by testing::SoftAuthenticator, the session cookie's flags, ceremony skipping, userinfo, logout, and
// the demo routes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "api/http/server.h"
#include "api/server/app.h"
#include "api/server/config.h"
#include "engine/base/clock.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"
#include "tests/support/soft_authenticator.h"

namespace sigil::server {
namespace {

namespace fs = std::filesystem;

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  [[nodiscard]] bool has(const std::string& name) const { return headers.count(name) != 0; }
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One request per connection (Connection: close); receives give up after 10 s.
HttpResponse http_request(uint16_t port, const std::string& method, const std::string& target,
                          const std::vector<std::pair<std::string, std::string>>& headers = {},
                          const std::string& body = {}) {
  HttpResponse out;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  timeval tv{};
  tv.tv_sec = 10;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return out;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "DELETE") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.size() < 12) return out;
  std::istringstream head(raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  out.status = std::atoi(line.substr(9, 3).c_str());
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out.headers[lower(line.substr(0, colon))] = value;
  }
  out.body = raw.substr(head_end + 4);
  if (auto cl = out.header("content-length"); !cl.empty()) {
    const size_t n = std::stoul(cl);
    if (out.body.size() > n) out.body.resize(n);
  }
  return out;
}

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

std::string json_body(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  JsonWriter w;
  w.begin_object();
  for (const auto& [k, v] : fields) w.key(k).string(v);
  w.end_object();
  return std::move(w).str();
}
std::string form_body(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += http::percent_encode(k) + "=" + http::percent_encode(v);
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}


constexpr std::string_view kVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr std::string_view kChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
constexpr std::string_view kInvalidRedirectBody = R"({"message":"Invalid redirect_uri","error_code":400})";

std::string query_param(const std::string& uri, const std::string& name) {
  const size_t q = uri.find('?');
  if (q == std::string::npos) return {};
  auto pairs = http::parse_form(std::string_view(uri).substr(q + 1));
  if (!pairs) return {};
  for (const auto& [k, v] : *pairs) {
    if (k == name) return v;
  }
  return {};
}

class HostedHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"SIGIL_CONFIG", "SIGIL_LISTEN", "SIGIL_DATA_DIR", "SIGIL_ISSUER", "SIGIL_PUBLIC_URL",
                             "SIGIL_IO_THREADS", "SIGIL_CHALLENGE_CAPACITY", "SIGIL_DEMO", "SIGIL_DEMO_RP", "SIGIL_KEK"}) {
      ::unsetenv(name);
    }
    std::string tmpl = (fs::temp_directory_path() / "sigil-hosted-http-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void start(bool demo_rp, std::string public_url = {}) {
    Config config;
    config.listen_address = "127.0.0.1";
    config.port = 0;
    config.data_dir = dir_ + "/data";
    config.demo = true;
    config.demo_rp = demo_rp;
    config.public_url = public_url;
    config.io_threads = 2;
    auto s = SigilServer::start(config, clock_);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    server_ = std::move(*s);
    port_ = server_->port();
    const std::string demo = read_file(dir_ + "/data/demo-app.json");
    client_id_ = jstr(demo, "/client_id");
    client_secret_ = jstr(demo, "/client_secret");
    origin_ = jstr(demo, "/origins/0");
    redirect_ = jstr(demo, "/redirect_uris/0");
    ASSERT_FALSE(client_id_.empty()) << demo;
  }

  HttpResponse get(const std::string& target, const std::string& cookie = {}) {
    std::vector<std::pair<std::string, std::string>> h;
    if (!cookie.empty()) h.emplace_back("Cookie", cookie);
    return http_request(port_, "GET", target, h);
  }
  HttpResponse api(const std::string& op, const std::string& body) {
    return http_request(port_, "POST", "/cis/hosted/api/" + op, {{"Content-Type", "application/json"}}, body);
  }
  std::string auth_target(const std::string& extra = {}, const std::string& state = "s1") {
    return "/oidc/auth?response_type=code&scope=openid&client_id=" + http::percent_encode(client_id_) +
           "&redirect_uri=" + http::percent_encode(redirect_) + "&state=" + state + "&nonce=n1&code_challenge=" +
           std::string(kChallenge) + "&code_challenge_method=S256" + extra;
  }
  std::string ticket_from(const HttpResponse& r) {
    EXPECT_EQ(r.status, 302) << r.body;
    const std::string location = r.header("location");
    EXPECT_NE(location.find("/cis/hosted/login?ticket="), std::string::npos) << location;
    return query_param(location, "ticket");
  }
  std::string latest_otp() {
    std::string otp;
    for (const auto& e : fs::directory_iterator(dir_ + "/data/outbox")) {
      otp = jstr(read_file(e.path().string()), "/otp");
      fs::remove(e.path());
    }
    return otp;
  }
  // Email, code, passkey through the JSON API; returns the register/finish response.
  HttpResponse sign_up(const std::string& ticket, const std::string& email) {
    std::error_code ec;
    fs::remove_all(dir_ + "/data/outbox", ec);
    fs::create_directories(dir_ + "/data/outbox");
    HttpResponse id = api("identify", json_body({{"ticket", ticket}, {"identifier", email}}));
    EXPECT_EQ(id.status, 200) << id.body;
    EXPECT_EQ(jstr(id.body, "/next"), "otp");
    HttpResponse otp = api("otp/verify", json_body({{"ticket", ticket}, {"otp", latest_otp()}}));
    EXPECT_EQ(otp.status, 200) << otp.body;
    HttpResponse reg = api("register/start", json_body({{"ticket", ticket}}));
    EXPECT_EQ(reg.status, 200) << reg.body;
    const std::string cred = soft_.create(jraw(reg.body, "/publicKey"), origin_);
    return api("register/finish", "{\"ticket\":" + JsonWriter::quote(ticket) + ",\"credential\":" + cred + "}");
  }
  HttpResponse exchange(const std::string& code) {
    return http_request(port_, "POST", "/oidc/token", {{"Content-Type", "application/x-www-form-urlencoded"}},
                        form_body({{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", redirect_},
                                   {"client_id", client_id_}, {"client_secret", client_secret_},
                                   {"code_verifier", kVerifier}}));
  }
  static std::string cookie_pair(const std::string& set_cookie) { return set_cookie.substr(0, set_cookie.find(';')); }

  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<SigilServer> server_;
  uint16_t port_ = 0;
  std::string client_id_, client_secret_, origin_, redirect_;
  testing::SoftAuthenticator soft_;
};

TEST_F(HostedHttpTest, UnvettedRedirectUrisGet400AndNoLocation) {
  start(false);
  const std::string base = redirect_;  // http://localhost:PORT/demo/callback
  const std::string port = std::to_string(port_);
  std::string upper = base;
  upper.replace(upper.find("/demo/callback"), 14, "/Demo/callback");
  for (const std::string& uri :
       {base + "/", base + "?extra=1", "http://localhost:" + std::to_string(port_ + 1) + "/demo/callback",
        "http://evil.example:" + port + "/demo/callback", upper, std::string("https://evil.example/cb")}) {
    for (const std::string prefix : {"/cis", ""}) {
      HttpResponse r = get(prefix + "/v1/auth/webauthn?client_id=" + http::percent_encode(client_id_) +
                           "&redirect_uri=" + http::percent_encode(uri) + "&state=x");
      EXPECT_EQ(r.status, 400) << uri;
      EXPECT_EQ(r.body, kInvalidRedirectBody) << uri;
      EXPECT_FALSE(r.has("location")) << uri;
    }
    HttpResponse o = get("/oidc/auth?response_type=code&scope=openid&client_id=" + http::percent_encode(client_id_) +
                         "&redirect_uri=" + http::percent_encode(uri));
    EXPECT_EQ(o.status, 400) << uri;
    EXPECT_FALSE(o.has("location")) << uri;
    EXPECT_NE(o.body.find("id=\"error\""), std::string::npos);
  }
  HttpResponse unknown = get("/cis/v1/auth/webauthn?client_id=nobody&redirect_uri=" + http::percent_encode(base));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.body, kInvalidRedirectBody);
  EXPECT_FALSE(unknown.has("location"));
  // The registered URI: a ticket.
  HttpResponse ok = get("/cis/v1/auth/webauthn?client_id=" + http::percent_encode(client_id_) +
                        "&redirect_uri=" + http::percent_encode(base));
  EXPECT_FALSE(ticket_from(ok).empty());
  // An unsupported option after vetting: an error redirect carrying the state.
  HttpResponse mfa = get("/cis/v1/auth/webauthn?client_id=" + http::percent_encode(client_id_) +
                         "&redirect_uri=" + http::percent_encode(base) + "&require_mfa=true&state=abc");
  EXPECT_EQ(mfa.status, 302);
  EXPECT_EQ(query_param(mfa.header("location"), "error"), "invalid_request");
  EXPECT_EQ(query_param(mfa.header("location"), "error_description"), "require_mfa is not supported yet");
  EXPECT_EQ(query_param(mfa.header("location"), "state"), "abc");
}

TEST_F(HostedHttpTest, DiscoveryListsTheProviderSurface) {
  start(false);
  HttpResponse r = get("/.well-known/openid-configuration");
  ASSERT_EQ(r.status, 200);
  const std::string base = "http://localhost:" + std::to_string(port_);
  EXPECT_EQ(jstr(r.body, "/authorization_endpoint"), base + "/oidc/auth");
  EXPECT_EQ(jstr(r.body, "/userinfo_endpoint"), base + "/oidc/userinfo");
  EXPECT_EQ(jstr(r.body, "/end_session_endpoint"), base + "/oidc/logout");
  EXPECT_EQ(jraw(r.body, "/code_challenge_methods_supported"), R"(["S256"])");
  EXPECT_EQ(jraw(r.body, "/response_types_supported"), R"(["code"])");
  EXPECT_NE(jraw(r.body, "/token_endpoint_auth_methods_supported").find("\"none\""), std::string::npos);
}

TEST_F(HostedHttpTest, LoginPageShowsTheTicketsParametersInItsLanguage) {
  start(false);
  const std::string ticket = ticket_from(
      get(auth_target("&ui_locales=fr&login_hint=" + http::percent_encode("zoe@example.com") +
                      "&custom_message=" + http::percent_encode("<b>Bonjour</b>"))));
  HttpResponse page = get("/cis/hosted/login?ticket=" + ticket);
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(page.header("content-security-policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(page.header("x-frame-options"), "DENY");
  for (const char* id : {"identifier", "continue", "passkey-button", "otp", "otp-submit", "error", "message",
                         "register-button", "cancel"}) {
    EXPECT_NE(page.body.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  }
  EXPECT_NE(page.body.find("lang=\"fr\""), std::string::npos);
  EXPECT_NE(page.body.find("Se connecter avec une clé d’accès"), std::string::npos);
  EXPECT_NE(page.body.find("value=\"zoe@example.com\""), std::string::npos);
  EXPECT_NE(page.body.find("&lt;b&gt;Bonjour&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(page.body.find("<b>Bonjour"), std::string::npos);
  EXPECT_NE(page.body.find("autocomplete=\"username webauthn\""), std::string::npos);
  HttpResponse js = get("/cis/hosted/assets/hosted.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_NE(js.header("content-type").find("javascript"), std::string::npos);
  EXPECT_NE(js.body.find("mediation: 'conditional'"), std::string::npos);
  EXPECT_EQ(get("/cis/hosted/assets/hosted.css").status, 200);
  EXPECT_EQ(get("/cis/hosted/assets/login.html").status, 404);

  // English by default; the expired ticket shows an error page and the API refuses it.
  HttpResponse en = get("/cis/hosted/login?ticket=" + ticket_from(get(auth_target())));
  EXPECT_NE(en.body.find("Sign in with a passkey"), std::string::npos);
  clock_.advance_ms(11 * 60 * 1000);
  HttpResponse expired = get("/cis/hosted/login?ticket=" + ticket);
  EXPECT_EQ(expired.status, 400);
  EXPECT_NE(expired.body.find("id=\"error\""), std::string::npos);
  EXPECT_NE(expired.body.find("expired"), std::string::npos);
  HttpResponse refused = api("passkey/start", json_body({{"ticket", ticket}}));
  EXPECT_EQ(refused.status, 404) << refused.body;
  // The JSON API wants JSON (no cross-site form posts).
  HttpResponse form = http_request(port_, "POST", "/cis/hosted/api/passkey/start",
                                   {{"Content-Type", "application/x-www-form-urlencoded"}}, "ticket=" + ticket);
  EXPECT_EQ(form.status, 400);
}

TEST_F(HostedHttpTest, SignUpSetsTheSessionCookieAndTheSecondLoginSkipsTheCeremony) {
  start(false);
  const std::string ticket = ticket_from(get(auth_target()));
  HttpResponse done = sign_up(ticket, "nina@example.com");
  ASSERT_EQ(done.status, 200) << done.body;
  const std::string location = jstr(done.body, "/location");
  EXPECT_TRUE(location.starts_with(redirect_ + "?code=")) << location;
  EXPECT_EQ(query_param(location, "state"), "s1");
  const std::string set_cookie = done.header("set-cookie");
  EXPECT_TRUE(set_cookie.starts_with("sigil_session=")) << set_cookie;
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(set_cookie.find("SameSite=Lax"), std::string::npos);
  EXPECT_NE(set_cookie.find("Path=/"), std::string::npos);
  EXPECT_EQ(set_cookie.find("Secure"), std::string::npos);
  EXPECT_EQ(set_cookie.find("Domain"), std::string::npos);
  const std::string cookie = cookie_pair(set_cookie);

  HttpResponse tokens = exchange(query_param(location, "code"));
  ASSERT_EQ(tokens.status, 200) << tokens.body;
  const std::string id_token = jstr(tokens.body, "/id_token");
  EXPECT_EQ(jstr(jwt_payload(id_token), "/nonce"), "n1");
  const std::string access = jstr(tokens.body, "/access_token");
  const auto digest = crypto::sha256(as_bytes(access));
  EXPECT_EQ(jstr(jwt_payload(id_token), "/at_hash"), crypto::base64url_encode(ByteView(digest.data(), 16)));

  // userinfo: the user token works (GET and POST); a client token is 401.
  HttpResponse info = http_request(port_, "GET", "/oidc/userinfo", {{"Authorization", "Bearer " + access}});
  ASSERT_EQ(info.status, 200) << info.body;
  EXPECT_EQ(jstr(info.body, "/email"), "nina@example.com");
  EXPECT_EQ(jraw(info.body, "/email_verified"), "true");
  EXPECT_EQ(http_request(port_, "POST", "/oidc/userinfo", {{"Authorization", "Bearer " + access}}).status, 200);
  HttpResponse cc = http_request(port_, "POST", "/oidc/token", {{"Content-Type", "application/x-www-form-urlencoded"}},
                                 form_body({{"grant_type", "client_credentials"}, {"client_id", client_id_},
                                            {"client_secret", client_secret_}}));
  HttpResponse as_client = http_request(port_, "GET", "/oidc/userinfo",
                                        {{"Authorization", "Bearer " + jstr(cc.body, "/access_token")}});
  EXPECT_EQ(as_client.status, 401);
  EXPECT_EQ(jstr(as_client.body, "/error"), "invalid_token");
  EXPECT_NE(as_client.header("www-authenticate").find("invalid_token"), std::string::npos);
  EXPECT_EQ(get("/oidc/userinfo").status, 401);

  // Second sign-in with the cookie: straight back with a code (also through /v1/auth/webauthn).
  HttpResponse again = get(auth_target("", "s2"), cookie);
  ASSERT_EQ(again.status, 302);
  EXPECT_TRUE(again.header("location").starts_with(redirect_ + "?code=")) << again.header("location");
  EXPECT_EQ(query_param(again.header("location"), "state"), "s2");
  EXPECT_EQ(exchange(query_param(again.header("location"), "code")).status, 200);
  HttpResponse v1 = get("/cis/v1/auth/webauthn?client_id=" + http::percent_encode(client_id_) + "&redirect_uri=" +
                            http::percent_encode(redirect_),
                        cookie);
  EXPECT_TRUE(v1.header("location").starts_with(redirect_ + "?code=")) << v1.header("location");
  // prompt=login forces the ceremony.
  EXPECT_FALSE(ticket_from(get(auth_target("&prompt=login"), cookie)).empty());

  // Logout clears the cookie; the old value no longer skips anything.
  HttpResponse out = get("/oidc/logout?client_id=" + http::percent_encode(client_id_) +
                             "&post_logout_redirect_uri=" + http::percent_encode(origin_ + "/demo") + "&state=bye",
                         cookie);
  EXPECT_EQ(out.status, 302);
  EXPECT_EQ(out.header("location"), origin_ + "/demo?state=bye");
  EXPECT_NE(out.header("set-cookie").find("sigil_session=;"), std::string::npos);
  EXPECT_NE(out.header("set-cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_FALSE(ticket_from(get(auth_target(), cookie)).empty());
  // Tokens minted from that browser session end with it.
  EXPECT_EQ(http_request(port_, "GET", "/oidc/userinfo", {{"Authorization", "Bearer " + access}}).status, 401);
  HttpResponse bad_logout = get("/oidc/logout?client_id=" + http::percent_encode(client_id_) +
                                "&post_logout_redirect_uri=" + http::percent_encode("https://evil.example/"));
  EXPECT_EQ(bad_logout.status, 400);
  EXPECT_FALSE(bad_logout.has("location"));
  EXPECT_EQ(get("/oidc/logout").status, 200);
}

TEST_F(HostedHttpTest, HttpsPublicUrlGivesAHostPrefixedSecureCookie) {
  start(false, "https://sigil.test");
  const std::string ticket = ticket_from(get(auth_target()));
  HttpResponse done = sign_up(ticket, "sam@example.com");
  ASSERT_EQ(done.status, 200) << done.body;
  const std::string set_cookie = done.header("set-cookie");
  EXPECT_TRUE(set_cookie.starts_with("__Host-sigil_session=")) << set_cookie;
  EXPECT_NE(set_cookie.find("; Secure"), std::string::npos);
  EXPECT_NE(set_cookie.find("Path=/;"), std::string::npos);
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(set_cookie.find("SameSite=Lax"), std::string::npos);
  EXPECT_EQ(set_cookie.find("Domain"), std::string::npos);
  // The same cookie skips the ceremony.
  HttpResponse again = get(auth_target(), cookie_pair(set_cookie));
  EXPECT_TRUE(again.header("location").starts_with(redirect_ + "?code=")) << again.header("location");
}

TEST_F(HostedHttpTest, DemoRoutesAreNotFoundWhenTheDemoRpIsOff) {
  start(false);
  for (const char* path : {"/demo", "/demo/login", "/demo/callback?code=x&state=y"}) {
    HttpResponse r = get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body, R"({"message":"Not found","error_code":404})") << path;
  }
}

TEST_F(HostedHttpTest, DemoRelyingPartySignsInEndToEnd) {
  start(true);
  HttpResponse home = get("/demo");
  ASSERT_EQ(home.status, 200);
  EXPECT_NE(home.body.find("id=\"demo-signin\""), std::string::npos);
  HttpResponse login = get("/demo/login");
  ASSERT_EQ(login.status, 302);
  const std::string auth = login.header("location");
  EXPECT_EQ(query_param(auth, "code_challenge_method"), "S256");
  EXPECT_FALSE(query_param(auth, "nonce").empty());
  const std::string demo_cookie = cookie_pair(login.header("set-cookie"));
  EXPECT_TRUE(demo_cookie.starts_with("sigil_demo=")) << demo_cookie;
  // Follow /oidc/auth -> hosted page -> sign up.
  HttpResponse to_login = get(auth.substr(auth.find("/oidc/auth")));
  HttpResponse done = sign_up(ticket_from(to_login), "demo@example.com");
  ASSERT_EQ(done.status, 200) << done.body;
  const std::string callback = jstr(done.body, "/location");
  ASSERT_TRUE(callback.starts_with(redirect_)) << callback;
  // Without the demo cookie the callback refuses; with it, the user is shown.
  EXPECT_EQ(get(callback.substr(callback.find("/demo/callback"))).status, 400);
  HttpResponse shown = get(callback.substr(callback.find("/demo/callback")), demo_cookie);
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_NE(shown.body.find("You are signed in"), std::string::npos);
  EXPECT_NE(shown.body.find("demo@example.com"), std::string::npos);
  EXPECT_NE(shown.body.find("id=\"demo-claims\""), std::string::npos);
  EXPECT_NE(shown.body.find("id=\"demo-logout\""), std::string::npos);
  // The state is single use.
  EXPECT_EQ(get(callback.substr(callback.find("/demo/callback")), demo_cookie).status, 400);
}

}  // namespace
}  // namespace sigil::server
