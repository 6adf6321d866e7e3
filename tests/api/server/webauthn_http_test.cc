// WebAuthn (API.md 3) through the assembled sigild over real HTTP on loopback: CORS on the browser-called
// start endpoints (preflight included), the documented 404 bodies, and a whole registration and login with
// testing::SoftAuthenticator playing browser and authenticator.
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

constexpr std::string_view kAuthFailedBody =
    R"({"message":"Authentication failed","error_code":401,"ts_error_code":"auth_webauthn_failed"})";
constexpr std::string_view kClientNotFoundBody =
    R"({"message":"Client not found","error_code":404,"ts_error_code":"client_not_exist"})";
constexpr std::string_view kNotFoundBody = R"({"message":"Not found","error_code":404})";

class WebAuthnHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"SIGIL_CONFIG", "SIGIL_LISTEN", "SIGIL_DATA_DIR", "SIGIL_ISSUER", "SIGIL_PUBLIC_URL",
                             "SIGIL_IO_THREADS", "SIGIL_CHALLENGE_CAPACITY", "SIGIL_DEMO", "SIGIL_KEK"}) {
      ::unsetenv(name);
    }
    std::string tmpl = (fs::temp_directory_path() / "sigil-wahttp-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Config config;
    config.listen_address = "127.0.0.1";
    config.port = 0;
    config.data_dir = dir_ + "/data";
    config.demo = true;
    config.io_threads = 2;
    auto s = SigilServer::start(config, clock_);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    server_ = std::move(*s);
    port_ = server_->port();
    const std::string demo = read_file(dir_ + "/data/demo-app.json");
    client_id_ = jstr(demo, "/client_id");
    client_secret_ = jstr(demo, "/client_secret");
    origin_ = jstr(demo, "/origins/0");
    ASSERT_FALSE(client_id_.empty()) << demo;
    ASSERT_FALSE(origin_.empty()) << demo;
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  HttpResponse post_json(const std::string& target, const std::string& body, const std::string& bearer = {},
                         const std::string& origin = {}) {
    std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/json"}};
    if (!bearer.empty()) h.emplace_back("Authorization", "Bearer " + bearer);
    if (!origin.empty()) h.emplace_back("Origin", origin);
    return http_request(port_, "POST", target, h, body);
  }
  HttpResponse post_form(const std::string& target, const std::string& body, const std::string& bearer = {}) {
    std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/x-www-form-urlencoded"}};
    if (!bearer.empty()) h.emplace_back("Authorization", "Bearer " + bearer);
    return http_request(port_, "POST", target, h, body);
  }
  HttpResponse preflight(const std::string& target, const std::string& origin) {
    return http_request(port_, "OPTIONS", target,
                        {{"Origin", origin},
                         {"Access-Control-Request-Method", "POST"},
                         {"Access-Control-Request-Headers", "content-type"}});
  }
  std::string client_token() {
    HttpResponse r = post_form("/oidc/token", form_body({{"grant_type", "client_credentials"},
                                                          {"client_id", client_id_},
                                                          {"client_secret", client_secret_}}));
    EXPECT_EQ(r.status, 200) << r.body;
    return jstr(r.body, "/access_token");
  }
  // register/start + the soft authenticator + external/register; returns the registration response.
  HttpResponse register_external(const std::string& username, const std::string& external_id,
                                 const std::string& token) {
    HttpResponse start = post_json("/cis/v1/auth/webauthn/register/start",
                                   json_body({{"client_id", client_id_}, {"username", username}}), {}, origin_);
    EXPECT_EQ(start.status, 200) << start.body;
    const std::string cred = soft_.create(start.body, origin_);
    return post_json("/cis/v1/auth/webauthn/external/register",
                     json_body({{"webauthn_encoded_result", testing::encode_result(cred)},
                                {"external_user_id", external_id}}),
                     token);
  }
  // authenticate/start for `username`, answered by soft credential `index`; the encoded result.
  std::string assertion_for(const std::string& username, size_t index, const std::string& prefix = "/cis") {
    HttpResponse start = post_json(prefix + "/v1/auth/webauthn/authenticate/start",
                                   json_body({{"client_id", client_id_}, {"username", username}}), {}, origin_);
    EXPECT_EQ(start.status, 200) << start.body;
    return testing::encode_result(soft_.get(start.body, origin_, index));
  }

  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<SigilServer> server_;
  uint16_t port_ = 0;
  std::string client_id_, client_secret_, origin_;
  testing::SoftAuthenticator soft_;
};

TEST_F(WebAuthnHttpTest, PreflightFromTheAppOriginIsAllowed) {
  for (const char* path : {"/cis/v1/auth/webauthn/register/start", "/cis/v1/auth/webauthn/authenticate/start",
                           "/v1/auth/webauthn/authenticate/start"}) {
    HttpResponse r = preflight(path, origin_);
    EXPECT_EQ(r.status, 204) << path << " " << r.body;
    EXPECT_EQ(r.header("access-control-allow-origin"), origin_) << path;
    EXPECT_NE(r.header("access-control-allow-methods").find("POST"), std::string::npos) << path;
    EXPECT_NE(lower(r.header("access-control-allow-headers")).find("content-type"), std::string::npos) << path;
  }
}

TEST_F(WebAuthnHttpTest, PreflightFromAnUnknownOriginGetsNoAllowOrigin) {
  HttpResponse r = preflight("/cis/v1/auth/webauthn/register/start", "https://evil.example");
  EXPECT_FALSE(r.has("access-control-allow-origin")) << r.header("access-control-allow-origin");
  HttpResponse none = http_request(port_, "OPTIONS", "/cis/v1/auth/webauthn/register/start");
  EXPECT_FALSE(none.has("access-control-allow-origin"));
}

TEST_F(WebAuthnHttpTest, StartCarriesAllowOriginOnlyForTheAppOrigins) {
  HttpResponse known = post_json("/cis/v1/auth/webauthn/authenticate/start", json_body({{"client_id", client_id_}}),
                                 {}, origin_);
  EXPECT_EQ(known.status, 200) << known.body;
  EXPECT_EQ(known.header("access-control-allow-origin"), origin_);
  EXPECT_FALSE(jstr(known.body, "/webauthn_session_id").empty());
  EXPECT_EQ(jraw(known.body, "/credential_request_options/allowCredentials"), "[]");
  HttpResponse reg = post_json("/cis/v1/auth/webauthn/register/start",
                               json_body({{"client_id", client_id_}, {"username", "erin"}}), {}, origin_);
  EXPECT_EQ(reg.status, 200) << reg.body;
  EXPECT_EQ(reg.header("access-control-allow-origin"), origin_);
  HttpResponse unknown = post_json("/cis/v1/auth/webauthn/authenticate/start",
                                   json_body({{"client_id", client_id_}}), {}, "https://evil.example");
  EXPECT_EQ(unknown.status, 200);
  EXPECT_FALSE(unknown.has("access-control-allow-origin"));
}

TEST_F(WebAuthnHttpTest, UnknownClientIsNotFoundWithTheDocumentedBody) {
  for (const char* path : {"/cis/v1/auth/webauthn/authenticate/start", "/cis/v1/auth/webauthn/register/start"}) {
    HttpResponse r = post_json(path, json_body({{"client_id", "no-such-client"}, {"username", "erin"}}), {}, origin_);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body, kClientNotFoundBody) << path;
    // The page may read why it failed.
    EXPECT_EQ(r.header("access-control-allow-origin"), origin_) << path;
  }
}

TEST_F(WebAuthnHttpTest, CrossDeviceEndpointsAreNotFound) {
  for (const char* path : {"/cis/v1/auth/webauthn/cross-device/anything", "/v1/auth/webauthn/cross-device/register/init",
                           "/cis/v1/auth/session/authenticate"}) {
    HttpResponse r = post_json(path, json_body({{"client_id", client_id_}}), {}, origin_);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body, kNotFoundBody) << path;
  }
}

TEST_F(WebAuthnHttpTest, RegisterThenLoginOverHttp) {
  const std::string token = client_token();
  HttpResponse reg = register_external("erin", "ext-erin", token);
  ASSERT_EQ(reg.status, 200) << reg.body;
  EXPECT_EQ(jraw(reg.body, "/is_user_created"), "true");
  EXPECT_EQ(jstr(reg.body, "/external_user_id"), "ext-erin");
  EXPECT_EQ(jstr(reg.body, "/credential_id"), crypto::base64url_encode(soft_.credentials()[0].id));
  const std::string user_id = jstr(reg.body, "/user_id");
  ASSERT_FALSE(user_id.empty());

  // JSON body.
  HttpResponse login = post_json("/cis/v1/auth/webauthn/authenticate",
                                 json_body({{"webauthn_encoded_result", assertion_for("erin", 0)}}), token);
  ASSERT_EQ(login.status, 200) << login.body;
  EXPECT_EQ(jstr(login.body, "/token_type"), "Bearer");
  const std::string id = jwt_payload(jstr(login.body, "/id_token"));
  EXPECT_EQ(jstr(id, "/sub"), user_id);
  EXPECT_EQ(jraw(id, "/amr"), R"(["webauthn"])");
  EXPECT_EQ(jstr(id, "/webauthn_username"), "erin");
  EXPECT_EQ(jstr(id, "/webauthn/credential_id"), crypto::base64url_encode(soft_.credentials()[0].id));

  // Form body (the React Native sample) and the path without /cis.
  HttpResponse form = post_form("/v1/auth/webauthn/authenticate",
                                form_body({{"webauthn_encoded_result", assertion_for("erin", 0, "")}}), token);
  ASSERT_EQ(form.status, 200) << form.body;

  // A replayed assertion is the generic 401.
  const std::string once = assertion_for("erin", 0);
  ASSERT_EQ(post_json("/cis/v1/auth/webauthn/authenticate", json_body({{"webauthn_encoded_result", once}}), token)
                .status,
            200);
  HttpResponse replay =
      post_json("/cis/v1/auth/webauthn/authenticate", json_body({{"webauthn_encoded_result", once}}), token);
  EXPECT_EQ(replay.status, 401);
  EXPECT_EQ(replay.body, kAuthFailedBody);

  // The second external registration reuses the user.
  HttpResponse again = register_external("erin", "ext-erin", token);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(jraw(again.body, "/is_user_created"), "false");
  EXPECT_EQ(jstr(again.body, "/user_id"), user_id);
}

TEST_F(WebAuthnHttpTest, LoggedInUserRegistersAndDeletesACredential) {
  const std::string token = client_token();
  ASSERT_EQ(register_external("erin", "ext-erin", token).status, 200);
  HttpResponse login = post_json("/cis/v1/auth/webauthn/authenticate",
                                 json_body({{"webauthn_encoded_result", assertion_for("erin", 0)}}), token);
  ASSERT_EQ(login.status, 200) << login.body;
  const std::string user_token = jstr(login.body, "/access_token");

  // A second credential, bound to the logged-in user.
  HttpResponse start = post_json("/cis/v1/auth/webauthn/register/start",
                                 json_body({{"client_id", client_id_}, {"username", "erin"}}), {}, origin_);
  ASSERT_EQ(start.status, 200);
  const std::string cred = soft_.create(start.body, origin_);
  HttpResponse reg = post_json("/cis/v1/auth/webauthn/register",
                               json_body({{"webauthn_encoded_result", testing::encode_result(cred)}}), user_token);
  ASSERT_EQ(reg.status, 200) << reg.body;
  EXPECT_EQ(jstr(reg.body, "/credential_id"), crypto::base64url_encode(soft_.credentials()[1].id));
  // A client token is the wrong kind for this endpoint.
  HttpResponse wrong_kind = post_json("/cis/v1/auth/webauthn/register",
                                      json_body({{"webauthn_encoded_result", testing::encode_result(cred)}}), token);
  EXPECT_EQ(wrong_kind.status, 403) << wrong_kind.body;
  HttpResponse no_token = post_json("/cis/v1/auth/webauthn/register",
                                    json_body({{"webauthn_encoded_result", testing::encode_result(cred)}}));
  EXPECT_EQ(no_token.status, 401) << no_token.body;

  // Delete the first credential: it cannot log in any more; the second still can.
  const std::string first_id = crypto::base64url_encode(soft_.credentials()[0].id);
  HttpResponse del = http_request(port_, "DELETE", "/cis/v1/auth/webauthn/credentials/" + first_id,
                                  {{"Authorization", "Bearer " + user_token}});
  EXPECT_EQ(del.status, 200) << del.body;
  HttpResponse dead = post_json("/cis/v1/auth/webauthn/authenticate",
                                json_body({{"webauthn_encoded_result", assertion_for("erin", 0)}}), token);
  EXPECT_EQ(dead.status, 401);
  EXPECT_EQ(dead.body, kAuthFailedBody);
  HttpResponse alive = post_json("/cis/v1/auth/webauthn/authenticate",
                                 json_body({{"webauthn_encoded_result", assertion_for("erin", 1)}}), token);
  EXPECT_EQ(alive.status, 200) << alive.body;
}

TEST_F(WebAuthnHttpTest, CompletionErrorsHaveTheDocumentedBodies) {
  const std::string token = client_token();
  HttpResponse no_token = post_json("/cis/v1/auth/webauthn/authenticate",
                                    json_body({{"webauthn_encoded_result", "e30="}}));
  EXPECT_EQ(no_token.status, 401);
  EXPECT_EQ(no_token.body, R"({"message":"Invalid token","error_code":401})");
  HttpResponse garbage = post_json("/cis/v1/auth/webauthn/authenticate",
                                   json_body({{"webauthn_encoded_result", "%%%"}}), token);
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(jstr(garbage.body, "/ts_error_code"), "system_invalid_input") << garbage.body;
  HttpResponse hint = post_json("/cis/v1/auth/webauthn/external/register/hosted/hint",
                                json_body({{"webauthn_identifier", "erin"}, {"redirect_uri", "https://evil.example/"}}),
                                token);
  EXPECT_EQ(hint.status, 400);
  EXPECT_EQ(hint.body, R"({"message":"Invalid redirect_uri","error_code":400})");
}

}  // namespace
}  // namespace sigil::server
