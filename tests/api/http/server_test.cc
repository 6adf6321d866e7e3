// Drives a real sigil::http::Server on loopback with a small blocking client on raw sockets (so the
// client shares no code with the server and receive timeouts are honoured).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/beast/http.hpp>

#include "api/http/server.h"
#include "engine/base/json_writer.h"

namespace sigil::http {
namespace {

using namespace std::chrono_literals;

struct ParsedResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Blocking HTTP/1.1 client over a raw socket. Every receive gives up after 5 s so a broken server
// fails the test instead of hanging it.
class RawClient {
 public:
  RawClient() = default;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }

  [[nodiscard]] bool connect(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    timeval tv{};
    tv.tv_sec = 5;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }

  [[nodiscard]] bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One response; nullopt when the connection closes or times out first. `head`: no body follows.
  std::optional<ParsedResponse> read_response(bool head = false) {
    size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    const std::string head_text = pending_.substr(0, end + 2);
    pending_.erase(0, end + 4);
    ParsedResponse r;
    const size_t sp = head_text.find(' ');
    if (sp == std::string::npos) return std::nullopt;
    r.status = std::stoi(head_text.substr(sp + 1, 3));
    size_t pos = head_text.find("\r\n") + 2;
    while (pos < head_text.size()) {
      const size_t eol = head_text.find("\r\n", pos);
      const std::string line = head_text.substr(pos, eol - pos);
      pos = eol + 2;
      const size_t colon = line.find(':');
      if (colon == std::string::npos) return std::nullopt;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers.emplace(std::move(name), std::move(value));
    }
    if (head || r.status / 100 == 1) return r;
    const size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    while (pending_.size() < length) {
      if (!fill()) return std::nullopt;
    }
    r.body = pending_.substr(0, length);
    pending_.erase(0, length);
    return r;
  }

  // One response's bytes exactly as received (head and body); empty when the connection closes first.
  std::string read_raw_response(bool head = false) {
    size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return {};
    }
    size_t length = 0;
    const std::string head_text = pending_.substr(0, end + 4);
    std::string lower = head_text;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (const size_t at = lower.find("\r\ncontent-length: "); !head && at != std::string::npos) {
      length = std::stoul(lower.substr(at + 18));
    }
    while (pending_.size() < end + 4 + length) {
      if (!fill()) return {};
    }
    std::string raw = pending_.substr(0, end + 4 + length);
    pending_.erase(0, end + 4 + length);
    return raw;
  }

  // True when the server closed (FIN or RST) within the receive timeout, with no further bytes.
  [[nodiscard]] bool wait_closed() {
    if (!pending_.empty()) return false;
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool fill() {
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string pending_;
};

std::string get(std::string_view target, std::string_view extra_headers = "") {
  return std::string("GET ") + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra_headers) + "\r\n";
}

std::string post(std::string_view target, std::string_view body) {
  return std::string("POST ") + std::string(target) + " HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

std::string echo_json(const Request& req) {
  JsonWriter w;
  w.begin_object();
  w.key("method").string(req.method);
  w.key("path").string(req.path);
  w.key("query").string(req.query);
  w.key("body").string(req.body);
  w.key("x_test").string(req.header("x-test"));
  w.key("remote").string(req.remote_address);
  w.end_object();
  return std::move(w).str();
}

std::string expected_echo(std::string_view method, std::string_view path, std::string_view query,
                          std::string_view body, std::string_view x_test = "") {
  Request r;
  r.method = method;
  r.path = path;
  r.query = query;
  r.body = body;
  if (!x_test.empty()) r.headers.emplace_back("x-test", x_test);
  r.remote_address = "127.0.0.1";
  return echo_json(r);
}

// Starts a Server whose handler echoes the request, with a few paths that misbehave on purpose:
//   /throw        the handler throws
//   /drop         the handler drops its Responder unanswered
//   /delay?ms=N   answers from another thread after N ms
//   /twice        calls the Responder twice
//   /hold         parks the Responder in `held` (answered or dropped by the test)
class EchoServer {
 public:
  explicit EchoServer(ServerOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<Server>(options, [this](Request&& req, Responder respond) { handle(std::move(req), std::move(respond)); });
    auto started = server_->start();
    EXPECT_TRUE(started.has_value()) << (started ? "" : started.error().message);
  }
  ~EchoServer() {
    join_workers();
    server_.reset();
  }

  Server& server() { return *server_; }
  uint16_t port() const { return server_->port(); }
  void join_workers() {
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mu_);
      workers.swap(workers_);
    }
    for (auto& t : workers) t.join();
  }

  std::mutex held_mu;
  std::vector<Responder> held;
  std::promise<void> held_ready;

 private:
  void handle(Request&& req, Responder respond) {
    if (req.path == "/throw") throw std::runtime_error("boom");
    if (req.path == "/drop") return;
    Response res;
    res.body = echo_json(req);
    res.headers.emplace_back("X-Echo", "yes");
    if (req.path == "/delay") {
      const int ms = std::stoi(req.query.substr(req.query.find('=') + 1));
      std::lock_guard lock(mu_);
      workers_.emplace_back([ms, respond = std::move(respond), res = std::move(res)]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        respond(std::move(res));
      });
      return;
    }
    if (req.path == "/hold") {
      std::lock_guard lock(held_mu);
      held.push_back(std::move(respond));
      held_ready.set_value();
      return;
    }
    if (req.path == "/twice") {
      Response second;
      second.status = 418;
      respond(std::move(res));
      respond(std::move(second));
      return;
    }
    respond(std::move(res));
  }

  std::unique_ptr<Server> server_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

TEST(HttpServer, GetRoundTripsMethodPathQueryAndHeaders) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/v1/echo?a=1&b=two", "X-Test: hello\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, expected_echo("GET", "/v1/echo", "a=1&b=two", "", "hello"));
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->header("server"), "sigil");
  EXPECT_EQ(r->header("x-echo"), "yes");
  EXPECT_EQ(r->header("content-length"), std::to_string(r->body.size()));
}

// The bytes Beast's serializer wrote for a response before the server serialised responses itself: the
// same operations on a beast response, printed. The hand-written head must match it byte for byte.
std::string beast_reference(Response r, unsigned version, bool keep_alive_in, bool head) {
  namespace bhttp = boost::beast::http;
  bhttp::response<bhttp::string_body> res;
  res.version(version == 10 ? 10 : 11);
  res.result(static_cast<unsigned>(r.status));
  res.set(bhttp::field::server, "sigil");
  bool keep_alive = keep_alive_in;
  auto lower = [](std::string v) {
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  for (auto& [name, value] : r.headers) {
    if (name.find_first_of("\r\n: ") != std::string::npos || value.find_first_of("\r\n") != std::string::npos) continue;
    const std::string n = lower(name);
    if (n == "content-length" || n == "transfer-encoding") continue;
    if (n == "connection") {
      if (lower(value) == "close") keep_alive = false;
      continue;
    }
    res.insert(name, value);
  }
  const bool no_body = r.status == 204 || r.status == 304;
  if (!no_body) {
    if (!r.content_type.empty()) res.set(bhttp::field::content_type, r.content_type);
    res.content_length(r.body.size());
    if (!head) res.body() = r.body;
  }
  res.keep_alive(keep_alive);
  std::ostringstream os;
  os << res;
  return os.str();
}

TEST(HttpServer, ResponseBytesMatchBeastSerializer) {
  // Each case: the request, whether it is HEAD, its version and keep-alive, and the handler's response.
  struct Case {
    std::string request;
    unsigned version;
    bool keep_alive;
    bool head;
    Response response;
  };
  auto make = [](int status, std::string content_type, std::vector<std::pair<std::string, std::string>> headers,
                 std::string body) {
    Response r;
    r.status = status;
    r.content_type = std::move(content_type);
    r.headers = std::move(headers);
    r.body = std::move(body);
    return r;
  };
  std::vector<Case> cases = {
      {get("/0"), 11, true, false, make(200, "application/json", {{"Cache-Control", "no-store"}}, R"({"a":1})")},
      {get("/1"), 11, true, false,
       make(201, "application/json",
            {{"X-A", "1"}, {"content-type", "text/evil"}, {"Content-Length", "999"}, {"Transfer-Encoding", "chunked"},
             {"Bad Name", "x"}, {"X-Split", "a\r\nInjected: 1"}, {"Retry-After", "1"}},
            "{}")},
      {get("/2"), 11, true, false, make(503, "application/json", {{"Retry-After", "1"}}, R"({"message":"x"})")},
      {get("/3"), 11, true, false, make(204, "text/plain", {{"Vary", "Origin"}}, "")},
      {get("/4"), 11, true, false, make(302, "text/plain", {{"Location", "https://x/"}}, "")},
      {get("/5"), 11, true, false, make(200, "", {{"Content-Type", "text/html"}}, "<p>")},
      {get("/6"), 11, true, false, make(299, "application/json", {}, "{}")},
      {"HEAD /7 HTTP/1.1\r\nHost: t\r\n\r\n", 11, true, true, make(200, "application/json", {}, "{\"x\":2}")},
      {"GET /8 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 10, true, false, make(200, "application/json", {}, "{}")},
      {get("/9"), 11, false, false, make(200, "application/json", {{"Connection", "close"}}, "{}")},
  };
  std::mutex mu;
  std::map<std::string, Response> by_path;
  for (const auto& c : cases) {
    const size_t sp = c.request.find(' ');
    by_path[c.request.substr(sp + 1, c.request.find(' ', sp + 1) - sp - 1)] = c.response;
  }
  ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  Server server(options, [&](Request&& req, Responder respond) {
    std::lock_guard lock(mu);
    respond(by_path.at(req.path));
  });
  ASSERT_TRUE(server.start());
  for (const auto& c : cases) {
    RawClient client;
    ASSERT_TRUE(client.connect(server.port()));
    ASSERT_TRUE(client.send(c.request));
    const std::string raw = client.read_raw_response(c.head);
    EXPECT_EQ(raw, beast_reference(c.response, c.version, c.keep_alive, c.head)) << c.request;
  }
}

TEST(HttpServer, ManyConnectionsOverSeveralIoThreadsAnswerSynchronouslyAndFromOtherThreads) {
  ServerOptions options;
  options.io_threads = 3;
  EchoServer s(options);
  constexpr int kConnections = 9;
  constexpr int kRequests = 20;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&, c] {
      RawClient client;
      if (!client.connect(s.port())) return;
      for (int i = 0; i < kRequests; ++i) {
        // Every third answer comes from another thread (after 1 ms); the rest from the I/O thread itself.
        const bool delayed = (i + c) % 3 == 0;
        const std::string body = std::to_string(c) + ":" + std::to_string(i);
        if (!client.send(delayed ? get("/delay?ms=1") : post("/p", body))) return;
        auto r = client.read_response();
        if (!r || r->status != 200) return;
        const std::string want = delayed ? expected_echo("GET", "/delay", "ms=1", "") : expected_echo("POST", "/p", "", body);
        if (r->body != want) return;
        ok.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kConnections * kRequests);
}

TEST(HttpServer, PostRoundTripsBody) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(post("/v1/things", "hello=world&x=1")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, expected_echo("POST", "/v1/things", "", "hello=world&x=1"));
}

TEST(HttpServer, HeaderNamesAreLowerCased) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/", "X-TEST: upper\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, expected_echo("GET", "/", "", "", "upper"));
}

TEST(HttpServer, KeepsConnectionAliveAcrossThreeRequests) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  for (int i = 0; i < 3; ++i) {
    const std::string body = "n=" + std::to_string(i);
    ASSERT_TRUE(c.send(post("/k", body)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, expected_echo("POST", "/k", "", body));
    EXPECT_NE(r->header("connection"), "close");
  }
}

TEST(HttpServer, AnswersPipelinedRequestsInOrder) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  // The first answer is slower than the second would be; order must still hold.
  ASSERT_TRUE(c.send(get("/delay?ms=200") + post("/second", "2") + get("/third")));
  auto r1 = c.read_response();
  auto r2 = c.read_response();
  auto r3 = c.read_response();
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->body, expected_echo("GET", "/delay", "ms=200", ""));
  EXPECT_EQ(r2->body, expected_echo("POST", "/second", "", "2"));
  EXPECT_EQ(r3->body, expected_echo("GET", "/third", "", ""));
}

TEST(HttpServer, ClosesAfterConnectionClose) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/", "Connection: close\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.wait_closed());
}

TEST(HttpServer, ClosesAfterHttp10WithoutKeepAlive) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, expected_echo("GET", "/old", "", ""));
  EXPECT_TRUE(c.wait_closed());
}

TEST(HttpServer, HeadAnswersWithoutBody) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response(/*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-length"), std::to_string(expected_echo("HEAD", "/h", "", "").size()));
  // No body bytes follow: the next response on the connection parses cleanly.
  ASSERT_TRUE(c.send(get("/after")));
  auto next = c.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, expected_echo("GET", "/after", "", ""));
}

TEST(HttpServer, AcceptsBodyOfExactlyBodyLimit) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  const std::string body(64 * 1024, 'b');
  ASSERT_TRUE(c.send(post("/big", body)));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, expected_echo("POST", "/big", "", body));
}

TEST(HttpServer, RejectsBodyOverLimitWith413AndCloses) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(post("/big", std::string(64 * 1024 + 1, 'b'))));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, R"({"message":"Request body too large","error_code":413})");
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_TRUE(c.wait_closed());
}

TEST(HttpServer, RejectsDeclaredContentLengthOverLimitBeforeTheBodyArrives) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, R"({"message":"Request body too large","error_code":413})");
}

TEST(HttpServer, RejectsChunkedBodyOverLimitWith413) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  std::string req = "POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) req += "8000\r\n" + std::string(0x8000, 'c') + "\r\n";
  req += "0\r\n\r\n";
  ASSERT_TRUE(c.send(req));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST(HttpServer, RejectsOversizedHeaderWith431AndCloses) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/", "X-Big: " + std::string(20 * 1024, 'h') + "\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(r->body, R"({"message":"Request header fields too large","error_code":431})");
  EXPECT_TRUE(c.wait_closed());
}

TEST(HttpServer, RejectsGarbageWith400AndCloses) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send("GARBAGE\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, R"({"message":"Malformed HTTP request","error_code":400})");
  EXPECT_TRUE(c.wait_closed());
}

TEST(HttpServer, RejectsBadContentLengthWith400) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c.wait_closed());
}

TEST(HttpServer, SendsContinueForExpect100) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, expected_echo("POST", "/e", "", "hello"));
}

TEST(HttpServer, ResponderCalledFromAnotherThreadAfterDelayIsWritten) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/delay?ms=150")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, expected_echo("GET", "/delay", "ms=150", ""));
  // The connection is still usable afterwards.
  ASSERT_TRUE(c.send(get("/again")));
  auto next = c.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST(HttpServer, HandlerThatThrowsGets500AndServerKeepsServing) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/throw")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, R"({"message":"Internal error","error_code":500})");

  RawClient other;
  ASSERT_TRUE(other.connect(s.port()));
  ASSERT_TRUE(other.send(get("/fine")));
  auto ok = other.read_response();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpServer, DroppedResponderGets500) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/drop")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, R"({"message":"Internal error","error_code":500})");
}

TEST(HttpServer, SecondResponderCallIsIgnored) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/twice")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(c.send(get("/next")));
  auto next = c.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(next->body, expected_echo("GET", "/next", "", ""));
}

TEST(HttpServer, HandlerThatNeverAnswersTimesOutWith503) {
  ServerOptions options;
  options.idle_timeout_s = 1;
  EchoServer s(options);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/hold")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_TRUE(c.wait_closed());
  // Answering late is harmless.
  std::lock_guard lock(s.held_mu);
  ASSERT_EQ(s.held.size(), 1u);
  s.held.front()(Response{});
}

TEST(HttpServer, SlowClientIsDisconnectedAfterIdleTimeoutAndOthersAreServed) {
  ServerOptions options;
  options.idle_timeout_s = 1;
  EchoServer s(options);
  RawClient slow;
  ASSERT_TRUE(slow.connect(s.port()));
  const std::string partial = "GET /slow HTTP/1.1\r\nHost";
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(slow.send(partial.substr(i, 1)));
    std::this_thread::sleep_for(100ms);
  }
  // Served while the slow client trickles.
  RawClient other;
  ASSERT_TRUE(other.connect(s.port()));
  ASSERT_TRUE(other.send(get("/ok")));
  auto r = other.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // Then it stalls and gets dropped.
  EXPECT_TRUE(slow.wait_closed());
  // The server still answers new connections.
  RawClient after;
  ASSERT_TRUE(after.connect(s.port()));
  ASSERT_TRUE(after.send(get("/ok")));
  auto r2 = after.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
}

TEST(HttpServer, TricklingClientIsDroppedEvenWhileSendingBytes) {
  ServerOptions options;
  options.idle_timeout_s = 1;
  EchoServer s(options);
  RawClient slow;
  ASSERT_TRUE(slow.connect(s.port()));
  // The request deadline covers the whole request, not each byte: keep sending for well past it.
  const std::string bytes = "GET /slow HTTP/1.1\r\nX-Pad: " + std::string(100, 'p');
  bool send_failed = false;
  for (size_t i = 0; i < bytes.size() && i < 40; ++i) {
    if (!slow.send(bytes.substr(i, 1))) {
      send_failed = true;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(send_failed || slow.wait_closed());
}

TEST(HttpServer, IdleKeepAliveConnectionIsClosed) {
  ServerOptions options;
  options.idle_timeout_s = 1;
  EchoServer s(options);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/")));
  ASSERT_TRUE(c.read_response());
  EXPECT_TRUE(c.wait_closed());
}

TEST(HttpServer, StopIsIdempotentClosesConnectionsAndRefusesNewOnes) {
  EchoServer s;
  RawClient c;
  ASSERT_TRUE(c.connect(s.port()));
  ASSERT_TRUE(c.send(get("/")));
  ASSERT_TRUE(c.read_response());
  const uint16_t port = s.port();
  s.server().stop();
  s.server().stop();
  EXPECT_TRUE(c.wait_closed());
  RawClient late;
  EXPECT_FALSE(late.connect(port));
}

TEST(HttpServer, StopFromAnotherThreadJoins) {
  EchoServer s;
  std::thread stopper([&] { s.server().stop(); });
  stopper.join();
  s.server().stop();
  SUCCEED();
}

TEST(HttpServer, ResponderCalledAfterServerIsGoneIsHarmless) {
  Responder saved;
  {
    EchoServer s;
    auto ready = s.held_ready.get_future();
    RawClient c;
    ASSERT_TRUE(c.connect(s.port()));
    ASSERT_TRUE(c.send(get("/hold")));
    ASSERT_EQ(ready.wait_for(5s), std::future_status::ready);
    std::lock_guard lock(s.held_mu);
    saved = s.held.front();
    s.held.clear();
  }
  saved(Response{});  // nothing to write to; must not touch freed state
  SUCCEED();
}

TEST(HttpServer, BindFailureIsUnavailableAndNamesTheAddress) {
  EchoServer first;
  ServerOptions options;
  options.address = "127.0.0.1";
  options.port = first.port();
  Server second(options, [](Request&&, Responder r) { r(Response{}); });
  auto started = second.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(started.error().message.find("127.0.0.1"), std::string::npos) << started.error().message;
}

TEST(HttpServer, PortZeroPicksAnEphemeralPort) {
  EchoServer s;
  EXPECT_NE(s.port(), 0);
}

}  // namespace
}  // namespace sigil::http
