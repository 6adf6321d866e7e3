// A keep-alive HTTP/1.1 connection on Boost.Beast, driven by C++20 coroutines. One request at a time per
// connection; a connection the server closed is reopened once, transparently, before the request fails.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange without it (Boost 1.74)

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace loadgen {

struct Response {
  unsigned status = 0;  // 0: transport error (see `error`)
  std::string body;
  std::string error;
};

class Connection {
 public:
  Connection(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint ep, std::string host,
             std::chrono::milliseconds timeout)
      : stream_(io), ep_(ep), host_(std::move(host)), timeout_(timeout) {}

  // `content_type` "json" or "form"; `bearer` and `origin` are sent when non-empty.
  boost::asio::awaitable<Response> request(boost::beast::http::verb verb, std::string_view target,
                                           const std::string& body, std::string_view content_type,
                                           std::string_view bearer = {}, std::string_view origin = {});
  void close();
  uint64_t connects() const { return connects_; }

 private:
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  boost::asio::ip::tcp::endpoint ep_;
  std::string host_;
  std::chrono::milliseconds timeout_;
  bool open_ = false;
  uint64_t connects_ = 0;
};

}  // namespace loadgen
