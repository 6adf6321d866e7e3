// HTTP/1.1 server adapter on Boost.Beast: keep-alive, a fixed pool of I/O threads, bounded requests.
//
// Guarantees: a body over `body_limit` gets 413 with the API error body and the connection closes;
// malformed HTTP gets 400 and a close; headers over `header_limit` get 431; a client that stalls
// longer than `idle_timeout` is disconnected. The handler is called on an I/O thread and must not block;
// it answers by calling the Responder exactly once, from any thread (an answer given synchronously, on
// the connection's strand, is written at once; one from another thread is posted back to the connection's
// strand). No exception escapes to the I/O threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/result.h"

namespace sigil::http {

struct Request {
  std::string method;   // "GET", "POST", ...
  std::string target;   // as received: path + "?" + query
  std::string path;     // percent-decoding NOT applied
  std::string query;    // without the '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote_address;

  // First header with this (lower-case) name, or empty.
  [[nodiscard]] std::string_view header(std::string_view lower_name) const noexcept;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

using Responder = std::function<void(Response)>;
using Handler = std::function<void(Request&&, Responder)>;

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0 = pick a free port (tests)
  int io_threads = 2;
  size_t body_limit = 64 * 1024;
  size_t header_limit = 16 * 1024;
  int idle_timeout_s = 30;
};

class Server {
 public:
  Server(ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the I/O threads. kUnavailable when the address cannot be bound.
  [[nodiscard]] Result<void> start();
  // The bound port (useful with port 0).
  [[nodiscard]] uint16_t port() const noexcept;
  // Stops accepting, closes connections, joins the I/O threads. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// application/x-www-form-urlencoded and query strings ('+' is a space, %XX decoded). Rejects bad
// percent escapes and decoded NULs with kInvalidArgument.
[[nodiscard]] Result<std::vector<std::pair<std::string, std::string>>> parse_form(std::string_view in);
[[nodiscard]] Result<std::string> percent_decode(std::string_view in, bool plus_is_space);
[[nodiscard]] std::string percent_encode(std::string_view in);  // RFC 3986 unreserved kept

}  // namespace sigil::http
