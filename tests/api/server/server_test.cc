// The assembled sigild (server::SigilServer) over real HTTP on loopback: SQLite, keys, services, router and
// the Beast adapter, driven by a small blocking client on POSIX sockets. Time is a ManualClock, so challenge
// expiry is reached by moving the clock, never by sleeping. Also: configuration loading (TOML, environment,
// flags) and the demo app's reuse across restarts.
#include "api/server/app.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
#include "api/server/config.h"
#include "engine/base/clock.h"
#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"

namespace sigil::server {
namespace {

namespace fs = std::filesystem;

// --- a tiny HTTP/1.1 client ------------------------------------------------------------------------------

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One request per connection (Connection: close); reads until the server closes. Receives give up after
// 10 s so a broken server fails the test instead of hanging it.
HttpResponse http_request(uint16_t port, const std::string& method, const std::string& target,
                          const std::vector<std::pair<std::string, std::string>>& headers = {},
                          const std::string& body = {}, bool send_length = true) {
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
  if (send_length && (!body.empty() || method == "POST" || method == "DELETE")) {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413) and close before reading everything
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

// --- JSON and key helpers ---------------------------------------------------------------------------------

std::string json_string(const std::string& json, std::string_view pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return {};
  std::string_view v;
  if (root.at_pointer(pointer).get_string().get(v)) return {};
  return std::string(v);
}

std::string b64url_json_member(const std::string& jwt, size_t part, std::string_view member) {
  size_t start = 0;
  for (size_t i = 0; i < part; ++i) start = jwt.find('.', start) + 1;
  const size_t end = jwt.find('.', start);
  auto decoded = crypto::base64url_decode(std::string_view(jwt).substr(start, end - start));
  if (!decoded) return {};
  return json_string(std::string(as_chars(*decoded)), "/" + std::string(member));
}

std::string form_body(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += http::percent_encode(k) + "=" + http::percent_encode(v);
  }
  return out;
}

std::string json_body(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  JsonWriter w;
  w.begin_object();
  for (const auto& [k, v] : fields) w.key(k).string(v);
  w.end_object();
  return std::move(w).str();
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

class DeviceKey {
 public:
  DeviceKey() : pkey_(EVP_EC_gen("P-256"), PkeyFree{}) { SIGIL_CHECK(pkey_ != nullptr); }
  [[nodiscard]] std::string spki_b64() const {
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(pkey_.get(), &der);
    SIGIL_CHECK(n > 0);
    std::string out = crypto::base64_encode(ByteView(der, static_cast<size_t>(n)));
    OPENSSL_free(der);
    return out;
  }
  [[nodiscard]] std::string sign_b64(std::string_view message) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
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
  std::shared_ptr<EVP_PKEY> pkey_;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void clear_sigil_env() {
  for (const char* name : {"SIGIL_CONFIG", "SIGIL_LISTEN", "SIGIL_DATA_DIR", "SIGIL_ISSUER", "SIGIL_PUBLIC_URL",
                           "SIGIL_IO_THREADS", "SIGIL_CHALLENGE_CAPACITY", "SIGIL_DEMO", "SIGIL_KEK"}) {
    ::unsetenv(name);
  }
}

std::string make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "sigil-server-XXXXXX").string();
  SIGIL_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

// --- the server fixture ------------------------------------------------------------------------------------

constexpr std::string_view kAuthFailedBody =
    R"({"message":"Authentication failed","error_code":401,"ts_error_code":"auth_invalid_signature"})";
constexpr std::string_view kNotFoundBody = R"({"message":"Not found","error_code":404})";

struct UserSession {
  std::string user_id, access_token, id_token, refresh_token;
};

class SigilServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_sigil_env();
    dir_ = make_temp_dir();
    data_dir_ = dir_ + "/data";
    start_server();
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void start_server() {
    Config config;
    config.listen_address = "127.0.0.1";
    config.port = 0;
    config.data_dir = data_dir_;
    config.demo = true;
    config.io_threads = 2;
    auto s = SigilServer::start(config, clock_);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    server_ = std::move(*s);
    port_ = server_->port();
    ASSERT_NE(port_, 0);
    demo_json_ = read_file(data_dir_ + "/demo-app.json");
    client_id_ = json_string(demo_json_, "/client_id");
    client_secret_ = json_string(demo_json_, "/client_secret");
    redirect_uri_ = json_string(demo_json_, "/redirect_uris/0");
    ASSERT_FALSE(client_id_.empty()) << demo_json_;
    ASSERT_FALSE(client_secret_.empty());
  }

  HttpResponse get(const std::string& target, std::vector<std::pair<std::string, std::string>> headers = {}) {
    return http_request(port_, "GET", target, headers);
  }
  HttpResponse post_json(const std::string& target, const std::string& body, const std::string& bearer = {}) {
    std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/json"}};
    if (!bearer.empty()) h.emplace_back("Authorization", "Bearer " + bearer);
    return http_request(port_, "POST", target, h, body);
  }
  HttpResponse post_form(const std::string& target, const std::string& body, const std::string& bearer = {}) {
    std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/x-www-form-urlencoded"}};
    if (!bearer.empty()) h.emplace_back("Authorization", "Bearer " + bearer);
    return http_request(port_, "POST", target, h, body);
  }

  std::string client_token() {
    HttpResponse r = post_form("/oidc/token", form_body({{"grant_type", "client_credentials"},
                                                          {"client_id", client_id_},
                                                          {"client_secret", client_secret_}}));
    EXPECT_EQ(r.status, 200) << r.body;
    return json_string(r.body, "/access_token");
  }

  // The passcode of the newest message to `email` in the outbox; the message is removed after reading.
  std::string take_outbox_otp(const std::string& email) {
    for (const auto& entry : fs::directory_iterator(data_dir_ + "/outbox")) {
      if (entry.path().extension() != ".json") continue;
      const std::string text = read_file(entry.path().string());
      if (json_string(text, "/to") != email) continue;
      fs::remove(entry.path());
      return json_string(text, "/otp");
    }
    return {};
  }

  // A user logged in through email OTP, over HTTP, from send to code exchange.
  UserSession login_by_email(const std::string& email) {
    UserSession out;
    const std::string ct = client_token();
    JsonWriter w;
    w.begin_object()
        .key("email").string(email)
        .key("redirect_uri").string(redirect_uri_)
        .key("create_new_user").boolean(true)
        .end_object();
    HttpResponse sent = post_json("/cis/v1/auth/otp/email", w.str(), ct);
    EXPECT_EQ(sent.status, 200) << sent.body;
    const std::string otp = take_outbox_otp(email);
    EXPECT_EQ(otp.size(), 6u);
    HttpResponse validated =
        post_json("/cis/v1/auth/otp/email/validation", json_body({{"email", email}, {"passcode", otp}}), ct);
    EXPECT_EQ(validated.status, 200) << validated.body;
    const std::string result = json_string(validated.body, "/result");
    const size_t path_at = result.find("/cis/");
    EXPECT_NE(path_at, std::string::npos) << result;
    if (path_at == std::string::npos) return out;
    HttpResponse completed = get(result.substr(path_at));
    EXPECT_EQ(completed.status, 302) << completed.body;
    const std::string location = completed.header("location");
    const std::string prefix = redirect_uri_ + "?code=";
    EXPECT_TRUE(location.starts_with(prefix)) << location;
    const std::string code = location.substr(prefix.size());
    HttpResponse tokens = post_form("/oidc/token", form_body({{"grant_type", "authorization_code"},
                                                               {"client_id", client_id_},
                                                               {"client_secret", client_secret_},
                                                               {"code", code},
                                                               {"redirect_uri", redirect_uri_}}));
    EXPECT_EQ(tokens.status, 200) << tokens.body;
    out.access_token = json_string(tokens.body, "/access_token");
    out.id_token = json_string(tokens.body, "/id_token");
    out.refresh_token = json_string(tokens.body, "/refresh_token");
    out.user_id = b64url_json_member(out.id_token, 1, "sub");
    return out;
  }

  std::string dir_, data_dir_;
  ManualClock clock_;
  std::unique_ptr<SigilServer> server_;
  uint16_t port_ = 0;
  std::string demo_json_, client_id_, client_secret_, redirect_uri_;
};

// --- plumbing ------------------------------------------------------------------------------------------------

TEST_F(SigilServerTest, HealthzAnswersOk) {
  HttpResponse r = get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ok"})");
  EXPECT_EQ(r.header("content-type"), "application/json");
}

TEST_F(SigilServerTest, CisAndPlainRoutesAnswerTheSame) {
  EXPECT_EQ(get("/cis/healthz").body, get("/healthz").body);
  HttpResponse cis_jwks = get("/cis/oidc/jwks");
  HttpResponse jwks = get("/oidc/jwks");
  EXPECT_EQ(cis_jwks.status, 200);
  EXPECT_EQ(cis_jwks.body, jwks.body);

  const std::string ct = client_token();
  const std::string body = R"({"user_id":"no-such-user"})";
  HttpResponse a = post_json("/cis/v1/auth/mobile-biometrics/start", body, ct);
  HttpResponse b = post_json("/v1/auth/mobile-biometrics/start", body, ct);
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.body, R"({"message":"User not found","error_code":404})");

  // The token endpoint is served under /cis too.
  HttpResponse t = post_form("/cis/oidc/token", form_body({{"grant_type", "client_credentials"},
                                                            {"client_id", client_id_},
                                                            {"client_secret", client_secret_}}));
  EXPECT_EQ(t.status, 200) << t.body;
}

TEST_F(SigilServerTest, UnknownRoutesAnswer404WithTheStandardBody) {
  for (const char* path : {"/nope", "/cis/v1/nope", "/v1/auth/webauthn/cross-device/x",
                           "/cis/v1/auth/webauthn/cross-device/x", "/v1/auth/session/authenticate"}) {
    HttpResponse r = http_request(port_, "POST", path, {{"Content-Type", "application/json"}}, "{}");
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body, kNotFoundBody) << path;
    HttpResponse g = get(path);
    EXPECT_EQ(g.status, 404) << path;
    EXPECT_EQ(g.body, kNotFoundBody) << path;
  }
  // A known path with the wrong method is not routed either.
  HttpResponse wrong_method = get("/v1/auth/mobile-biometrics/start");
  EXPECT_EQ(wrong_method.status, 404);
}

TEST_F(SigilServerTest, JwksPublishesTheKeyThatSignsTokens) {
  HttpResponse r = get("/cis/oidc/jwks");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json_string(r.body, "/keys/0/kty"), "EC");
  EXPECT_EQ(json_string(r.body, "/keys/0/crv"), "P-256");
  EXPECT_EQ(json_string(r.body, "/keys/0/alg"), "ES256");
  const std::string token = client_token();
  EXPECT_EQ(b64url_json_member(token, 0, "kid"), json_string(r.body, "/keys/0/kid"));
  EXPECT_EQ(b64url_json_member(token, 0, "typ"), "at+jwt");
}

TEST_F(SigilServerTest, OpenidConfigurationNamesTheIssuer) {
  HttpResponse r = get("/.well-known/openid-configuration");
  ASSERT_EQ(r.status, 200);
  const std::string issuer = "http://localhost:" + std::to_string(port_);
  EXPECT_EQ(json_string(r.body, "/issuer"), issuer);
  EXPECT_EQ(json_string(r.body, "/jwks_uri"), issuer + "/cis/oidc/jwks");
  EXPECT_EQ(json_string(r.body, "/token_endpoint"), issuer + "/oidc/token");
  EXPECT_EQ(server_->config().issuer, issuer);
  EXPECT_EQ(b64url_json_member(client_token(), 1, "iss"), issuer);
  EXPECT_EQ(json_string(demo_json_, "/issuer"), issuer);
}

TEST_F(SigilServerTest, BearerEndpointsRefuseMissingAndWrongKindTokens) {
  HttpResponse none = post_json("/v1/auth/mobile-biometrics/start", R"({"user_id":"x"})");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.body, R"({"message":"Invalid token","error_code":401})");
  EXPECT_EQ(none.header("www-authenticate"), "Bearer");
  HttpResponse garbage = post_json("/v1/auth/mobile-biometrics/start", R"({"user_id":"x"})", "not.a.jwt");
  EXPECT_EQ(garbage.status, 401);
  // A client token where a user token is required.
  HttpResponse wrong_kind = post_json("/v1/auth/mobile-biometrics/register",
                                      json_body({{"publicKey", DeviceKey().spki_b64()}, {"publicKeyId", "k"},
                                                 {"os", "iOS"}}),
                                      client_token());
  EXPECT_EQ(wrong_kind.status, 403);
  EXPECT_EQ(json_string(wrong_kind.body, "/message"), "A user access token is required");
}

TEST_F(SigilServerTest, TokenEndpointErrorsUseTheOAuthShape) {
  HttpResponse r = post_form("/oidc/token", form_body({{"grant_type", "client_credentials"},
                                                        {"client_id", client_id_},
                                                        {"client_secret", "wrong"}}));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json_string(r.body, "/error"), "invalid_client");
  EXPECT_EQ(r.header("cache-control"), "no-store");
  HttpResponse basic = http_request(port_, "POST", "/oidc/token",
                                    {{"Content-Type", "application/x-www-form-urlencoded"},
                                     {"Authorization", "Basic " + crypto::base64_encode(as_bytes(client_id_ + ":x"))}},
                                    "grant_type=client_credentials");
  EXPECT_EQ(basic.status, 401);
  EXPECT_FALSE(basic.header("www-authenticate").empty());
  HttpResponse grant = post_form("/oidc/token", form_body({{"grant_type", "password"},
                                                            {"client_id", client_id_},
                                                            {"client_secret", client_secret_}}));
  EXPECT_EQ(grant.status, 400);
  EXPECT_EQ(json_string(grant.body, "/error"), "unsupported_grant_type");
}

// --- the flows --------------------------------------------------------------------------------------------

TEST_F(SigilServerTest, ExpiredChallengeIsRefusedWithTheExactBodyAndTheServerCarriesOn) {
  UserSession alice = login_by_email("alice@example.com");
  ASSERT_FALSE(alice.user_id.empty());
  DeviceKey key;
  HttpResponse reg = post_json("/cis/v1/auth/mobile-biometrics/register",
                               json_body({{"publicKey", key.spki_b64()}, {"publicKeyId", "k1"},
                                          {"encryptionType", "ec"}, {"os", "Android"}}),
                               alice.access_token);
  ASSERT_EQ(reg.status, 200) << reg.body;
  EXPECT_EQ(reg.body, R"({"message":"Key registered","publicKeyId":"k1"})");

  const std::string ct = client_token();
  JsonWriter start;
  start.begin_object().key("user_id").string(alice.user_id).key("timeout").number(30).end_object();
  HttpResponse started = post_json("/cis/v1/auth/mobile-biometrics/start", start.str(), ct);
  ASSERT_EQ(started.status, 200) << started.body;
  const std::string challenge = json_string(started.body, "/challenge");
  ASSERT_FALSE(challenge.empty());

  clock_.advance_ms(31'000);
  const std::string auth_body = json_body({{"user_id", alice.user_id}, {"key_id", "k1"}, {"challenge", challenge},
                                           {"signature", key.sign_b64(challenge)}});
  HttpResponse expired = post_json("/cis/v1/auth/mobile-biometrics/authenticate", auth_body, ct);
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.body, kAuthFailedBody);

  // The next requests are answered normally.
  HttpResponse health = get("/healthz");
  EXPECT_EQ(health.status, 200);
  HttpResponse again = post_json("/cis/v1/auth/mobile-biometrics/start", start.str(), ct);
  ASSERT_EQ(again.status, 200) << again.body;
  const std::string fresh = json_string(again.body, "/challenge");
  HttpResponse ok = post_json("/cis/v1/auth/mobile-biometrics/authenticate",
                              json_body({{"user_id", alice.user_id}, {"key_id", "k1"}, {"challenge", fresh},
                                         {"signature", key.sign_b64(fresh)}}),
                              ct);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json_string(ok.body, "/token_type"), "Bearer");
  EXPECT_FALSE(json_string(ok.body, "/session_id").empty());
  EXPECT_EQ(b64url_json_member(json_string(ok.body, "/access_token"), 1, "sub"), alice.user_id);
}

TEST_F(SigilServerTest, FormEncodedBodiesAreAcceptedOnRegisterAndAuthenticate) {
  UserSession bob = login_by_email("bob@example.com");
  ASSERT_FALSE(bob.user_id.empty());
  DeviceKey key;
  const std::string spki = key.spki_b64();
  ASSERT_NE(spki.find_first_of("+/="), std::string::npos);  // exercises percent-encoding
  HttpResponse reg = post_form("/v1/auth/mobile-biometrics/register",
                               form_body({{"publicKey", spki}, {"publicKeyId", "rn-key"}, {"os", "iOS"}}),
                               bob.access_token);
  ASSERT_EQ(reg.status, 200) << reg.body;

  const std::string ct = client_token();
  HttpResponse started = post_form("/v1/auth/mobile-biometrics/start",
                                   form_body({{"user_id", bob.user_id}, {"approval_data", R"({"tx":"7"})"}}), ct);
  ASSERT_EQ(started.status, 200) << started.body;
  const std::string challenge = json_string(started.body, "/challenge");
  HttpResponse ok = post_form("/v1/auth/mobile-biometrics/authenticate",
                              form_body({{"user_id", bob.user_id}, {"key_id", "rn-key"}, {"challenge", challenge},
                                         {"signature", key.sign_b64(challenge)}}),
                              ct);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(b64url_json_member(json_string(ok.body, "/id_token"), 1, "approval_data/tx"), "7");
}

TEST_F(SigilServerTest, RegisterWithoutPublicKeyGivesTheDocumentedBody) {
  UserSession carol = login_by_email("carol@example.com");
  HttpResponse r = post_json("/v1/auth/mobile-biometrics/register", R"({"publicKeyId":"k","os":"iOS"})",
                             carol.access_token);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            R"({"message":"Invalid request: property should not be null or undefined","error_code":"invalid_request"})");
}

TEST_F(SigilServerTest, OtpValidationErrorsUseTheArrayMessage) {
  const std::string ct = client_token();
  HttpResponse r = post_json("/v1/auth/otp/email/validation",
                             json_body({{"email", "nobody@example.com"}, {"passcode", "123456"}}), ct);
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(r.body.starts_with(R"({"message":[")")) << r.body;
  EXPECT_FALSE(json_string(r.body, "/message/0").empty()) << r.body;
  EXPECT_NE(r.body.find(R"("error_code":400)"), std::string::npos) << r.body;
  EXPECT_EQ(json_string(r.body, "/ts_error_code"), "auth_otp_invalid_request_id");
  // Token failures keep the string message even on this array-style endpoint.
  HttpResponse no_token = post_json("/v1/auth/otp/email/validation",
                                    json_body({{"email", "nobody@example.com"}, {"passcode", "123456"}}));
  EXPECT_EQ(no_token.status, 401);
  EXPECT_EQ(no_token.body, R"({"message":"Invalid token","error_code":401})");
}

TEST_F(SigilServerTest, LogoutEndsTheSessionOverHttp) {
  UserSession dave = login_by_email("dave@example.com");
  HttpResponse out = post_json("/v1/auth/logout", "", dave.access_token);
  EXPECT_EQ(out.status, 200) << out.body;
  EXPECT_EQ(out.body, R"({"sessions_count":1})");
  HttpResponse again = post_json("/v1/auth/logout", "", dave.access_token);
  EXPECT_EQ(again.status, 401);
  EXPECT_EQ(again.body, R"({"message":"Invalid token","error_code":401})");
}

TEST_F(SigilServerTest, V1TokenExchangeReportsANewUser) {
  const std::string ct = client_token();
  JsonWriter w;
  w.begin_object()
      .key("email").string("erin@example.com")
      .key("redirect_uri").string(redirect_uri_)
      .key("create_new_user").boolean(true)
      .end_object();
  ASSERT_EQ(post_json("/v1/auth/otp/email", w.str(), ct).status, 200);
  const std::string otp = take_outbox_otp("erin@example.com");
  HttpResponse v = post_json("/v1/auth/otp/email/validation", json_body({{"email", "erin@example.com"}, {"passcode", otp}}), ct);
  ASSERT_EQ(v.status, 200) << v.body;
  const std::string result = json_string(v.body, "/result");
  HttpResponse c = get(result.substr(result.find("/cis/")));
  ASSERT_EQ(c.status, 302);
  const std::string code = c.header("location").substr(redirect_uri_.size() + std::string("?code=").size());
  HttpResponse t = post_json("/v1/token", json_body({{"code", code}, {"client_id", client_id_}, {"client_secret", client_secret_}}));
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_NE(t.body.find(R"("is_user_created":true)"), std::string::npos);
  HttpResponse reused =
      post_json("/v1/token", json_body({{"code", code}, {"client_id", client_id_}, {"client_secret", client_secret_}}));
  EXPECT_EQ(reused.status, 400);
  EXPECT_EQ(json_string(reused.body, "/message/0").empty(), false) << reused.body;
}

// --- transport limits ---------------------------------------------------------------------------------------

TEST_F(SigilServerTest, BodyOver64KiBIsRefusedWith413) {
  const std::string ct = client_token();
  std::string big = R"({"user_id":")" + std::string(70 * 1024, 'a') + R"("})";
  HttpResponse r = post_json("/v1/auth/mobile-biometrics/start", big, ct);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json_string(r.body, "/message").empty(), false) << r.body;
  // The server carries on.
  EXPECT_EQ(get("/healthz").status, 200);
}

TEST_F(SigilServerTest, UnsupportedContentTypeIs400) {
  const std::string ct = client_token();
  HttpResponse r = http_request(port_, "POST", "/v1/auth/mobile-biometrics/start",
                                {{"Content-Type", "text/plain"}, {"Authorization", "Bearer " + ct}},
                                R"({"user_id":"x"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(json_string(r.body, "/message").find("Unsupported content type"), std::string::npos) << r.body;
}

TEST_F(SigilServerTest, MalformedJsonBodyIs400) {
  const std::string ct = client_token();
  for (const char* body : {R"({"user_id":"x","user_id":"y"})", R"({"user_id":"x"} trailing)", "[1]"}) {
    HttpResponse r = post_json("/v1/auth/mobile-biometrics/start", body, ct);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(json_string(r.body, "/ts_error_code"), "system_invalid_input") << r.body;
  }
}

// --- restarts ------------------------------------------------------------------------------------------------

TEST_F(SigilServerTest, DemoAppIsReusedOnASecondStartWithTheSameDataDir) {
  const std::string first_client = client_id_;
  const std::string first_secret = client_secret_;
  const std::string first_jwks = get("/oidc/jwks").body;
  const std::string first_file = demo_json_;
  server_->stop();
  server_.reset();

  start_server();
  EXPECT_EQ(client_id_, first_client);
  EXPECT_EQ(client_secret_, first_secret);
  EXPECT_EQ(json_string(demo_json_, "/app_id"), json_string(first_file, "/app_id"));
  // Same signing key across the restart.
  EXPECT_EQ(get("/oidc/jwks").body, first_jwks);
  // The credentials of the first start still authenticate.
  EXPECT_FALSE(client_token().empty());
}

TEST_F(SigilServerTest, DemoCredentialsFileIsPrivate) {
  struct stat st {};
  ASSERT_EQ(::stat((data_dir_ + "/demo-app.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(::stat(data_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);
}

// --- configuration -------------------------------------------------------------------------------------------

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_sigil_env();
    dir_ = make_temp_dir();
    toml_ = dir_ + "/sigil.toml";
    std::ofstream f(toml_);
    f << "listen = \"127.0.0.1:9001\"\n"
         "data_dir = \"/srv/sigil\"\n"
         "issuer = \"https://id.example\"\n"
         "io_threads = 3\n"
         "challenge_capacity = 5000\n"
         "demo = false\n";
  }
  void TearDown() override {
    clear_sigil_env();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_, toml_;
};

TEST_F(ConfigTest, DefaultsWithNothingConfigured) {
  auto c = load_config({});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->listen_address, "127.0.0.1");
  EXPECT_EQ(c->port, 8080);
  EXPECT_EQ(c->data_dir, "var");
  EXPECT_TRUE(c->demo);
  finalize_urls(*c);
  EXPECT_EQ(c->public_url, "http://localhost:8080");
  EXPECT_EQ(c->issuer, "http://localhost:8080");
}

TEST_F(ConfigTest, ReadsATomlFile) {
  auto c = load_config({"--config", toml_});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->listen_address, "127.0.0.1");
  EXPECT_EQ(c->port, 9001);
  EXPECT_EQ(c->data_dir, "/srv/sigil");
  EXPECT_EQ(c->issuer, "https://id.example");
  EXPECT_EQ(c->io_threads, 3);
  EXPECT_EQ(c->challenge_capacity, 5000u);
  EXPECT_FALSE(c->demo);
  finalize_urls(*c);
  EXPECT_EQ(c->issuer, "https://id.example");  // an explicit issuer is kept
}

TEST_F(ConfigTest, TomlFileFromTheEnvironment) {
  ASSERT_EQ(::setenv("SIGIL_CONFIG", toml_.c_str(), 1), 0);
  auto c = load_config({});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->port, 9001);
}

TEST_F(ConfigTest, EnvironmentBeatsTheFile) {
  ASSERT_EQ(::setenv("SIGIL_LISTEN", "0.0.0.0:9100", 1), 0);
  ASSERT_EQ(::setenv("SIGIL_DEMO", "yes", 1), 0);
  auto c = load_config({"--config", toml_});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->listen_address, "0.0.0.0");
  EXPECT_EQ(c->port, 9100);
  EXPECT_TRUE(c->demo);
  EXPECT_EQ(c->data_dir, "/srv/sigil");  // not overridden
}

TEST_F(ConfigTest, FlagsBeatTheEnvironment) {
  ASSERT_EQ(::setenv("SIGIL_LISTEN", "0.0.0.0:9100", 1), 0);
  ASSERT_EQ(::setenv("SIGIL_DATA_DIR", "/env/dir", 1), 0);
  auto c = load_config({"--config", toml_, "--listen", "[::1]:9200", "--data-dir", "/flag/dir", "--demo"});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->listen_address, "::1");
  EXPECT_EQ(c->port, 9200);
  EXPECT_EQ(c->data_dir, "/flag/dir");
  EXPECT_TRUE(c->demo);
  finalize_urls(*c);
  EXPECT_EQ(c->issuer, "https://id.example");
}

TEST_F(ConfigTest, ConfigFlagBeatsTheConfigEnvironment) {
  const std::string other = dir_ + "/other.toml";
  {
    std::ofstream f(other);
    f << "listen = \"127.0.0.1:9300\"\n";
  }
  ASSERT_EQ(::setenv("SIGIL_CONFIG", toml_.c_str(), 1), 0);
  auto c = load_config({"--config", other});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->port, 9300);
  EXPECT_EQ(c->data_dir, "var");  // the environment's file was not read
}

TEST_F(ConfigTest, BadSettingsAreErrors) {
  EXPECT_FALSE(load_config({"--listen", "no-port"}).has_value());
  EXPECT_FALSE(load_config({"--listen", "127.0.0.1:70000"}).has_value());
  EXPECT_FALSE(load_config({"--io-threads", "0"}).has_value());
  EXPECT_FALSE(load_config({"--bogus", "1"}).has_value());
  EXPECT_FALSE(load_config({"--listen"}).has_value());
  EXPECT_FALSE(load_config({"stray"}).has_value());
  ASSERT_EQ(::setenv("SIGIL_DEMO", "maybe", 1), 0);
  EXPECT_FALSE(load_config({}).has_value());
  ::unsetenv("SIGIL_DEMO");
  const std::string bad = dir_ + "/bad.toml";
  {
    std::ofstream f(bad);
    f << "listen = [1, 2]\n";
  }
  EXPECT_FALSE(load_config({"--config", bad}).has_value());
  const std::string broken = dir_ + "/broken.toml";
  {
    std::ofstream f(broken);
    f << "listen = \n";
  }
  EXPECT_FALSE(load_config({"--config", broken}).has_value());
  const std::string unknown = dir_ + "/unknown.toml";
  {
    std::ofstream f(unknown);
    f << "colour = \"blue\"\n";
  }
  EXPECT_FALSE(load_config({"--config", unknown}).has_value());
}

TEST_F(ConfigTest, PublicUrlFollowsTheListenAddress) {
  auto c = load_config({"--listen", "10.1.2.3:8443"});
  ASSERT_TRUE(c.has_value());
  finalize_urls(*c);
  EXPECT_EQ(c->public_url, "http://10.1.2.3:8443");
  auto d = load_config({"--public-url", "https://id.example/"});
  ASSERT_TRUE(d.has_value());
  finalize_urls(*d);
  EXPECT_EQ(d->public_url, "https://id.example");
  EXPECT_EQ(d->issuer, "https://id.example");
}

}  // namespace
}  // namespace sigil::server
