#include "bench/loadgen/http_client.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>

namespace loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

void Connection::close() {
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
  buffer_.clear();
  open_ = false;
}

asio::awaitable<Response> Connection::request(http::verb verb, std::string_view target, const std::string& body,
                                              std::string_view content_type, std::string_view bearer,
                                              std::string_view origin) {
  Response out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    beast::error_code ec;
    const bool reused = open_;
    if (!open_) {
      stream_.expires_after(timeout_);
      co_await stream_.async_connect(ep_, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        out.error = "connect: " + ec.message();
        close();
        co_return out;
      }
      stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
      open_ = true;
      ++connects_;
    }
    http::request<http::string_body> req{verb, beast::string_view(target.data(), target.size()), 11};
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "sigil-loadgen");
    if (!bearer.empty()) req.set(http::field::authorization, std::string("Bearer ").append(bearer));
    if (!origin.empty()) req.set(http::field::origin, beast::string_view(origin.data(), origin.size()));
    if (!body.empty() || verb == http::verb::post) {
      req.set(http::field::content_type,
              content_type == "form" ? "application/x-www-form-urlencoded" : "application/json");
      req.body() = body;
    }
    req.keep_alive(true);
    req.prepare_payload();

    stream_.expires_after(timeout_);
    co_await http::async_write(stream_, req, asio::redirect_error(asio::use_awaitable, ec));
    http::response<http::string_body> res;
    if (!ec) co_await http::async_read(stream_, buffer_, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      close();
      // A kept-alive connection the server had already closed: retry once on a fresh one.
      if (reused && attempt == 0 &&
          (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == asio::error::eof)) {
        continue;
      }
      out.error = std::string(attempt ? "retry: " : "") + ec.message();
      co_return out;
    }
    stream_.expires_never();
    if (!res.keep_alive()) close();
    out.status = res.result_int();
    out.body = std::move(res.body());
    co_return out;
  }
  co_return out;
}

}  // namespace loadgen
