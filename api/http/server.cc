// HTTP/1.1 server on Boost.Beast (see server.h for the guarantees).
//
// Design:
// - One io_context run by `io_threads` threads. Each connection is a Session whose socket's executor is
//   its own strand, so all of a Session's state is touched only on that strand (or, after stop() has
//   joined the I/O threads, by stop() alone). Any idle I/O thread serves any ready connection, so a
//   handler that is slow (a store read) delays only its own connection.
// - Requests on a connection are handled one at a time: the next request is read only after the
//   previous response has been written, so pipelined requests are answered in order.
// - One deadline (idle_timeout_s) covers the whole read of a request (header, 100-continue, body): a
//   client that trickles bytes and never finishes is dropped. The same limit applies to each write, to
//   the wait for the handler's answer (then 503 and close) and to the lingering close after an error.
//   One timer per connection enforces it lazily: moving the deadline later is a store, and the timer
//   re-arms itself when it fires early, so a request costs no timer operations in the common case.
// - A handler that answers synchronously (on the connection's strand, as most routes do) has its response
//   written at once, without a hand-off through the scheduler (which would wake another I/O thread);
//   answers from other threads (the arena, the store's writer) are posted to the connection's strand.
// - Responses are serialised by hand into one reused header buffer and written with the body in one
//   gather write (Beast parses requests; its serializer is not used).
// - Ownership: the Server keeps a strong reference to every live Session in a registry; a Session
//   removes itself when it closes. A Responder holds only a weak reference plus a shared "lifetime"
//   flag, so a Responder called (or dropped) after stop() or after the Server is gone does nothing and
//   never touches a destroyed io_context.

#include "api/http/server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "engine/base/json_writer.h"

namespace sigil::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

// Bytes read and thrown away while lingering after an error response, so that unread request bytes do
// not make the kernel answer with a RST that would destroy the response before the client reads it.
constexpr size_t kMaxDrainBytes = 1024 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string error_body(std::string_view message, int status) {
  JsonWriter w;
  w.begin_object();
  w.key("message").string(message);
  w.key("error_code").number(status);
  w.end_object();
  return std::move(w).str();
}

Response error_response(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.body = error_body(message, status);
  return r;
}

std::string_view to_std(beast::string_view s) noexcept { return {s.data(), s.size()}; }

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// Header names/values from a handler must not be able to inject extra lines into the response.
bool safe_header_text(std::string_view s) noexcept {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool safe_header_name(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F || c == ':') return false;
  }
  return true;
}

// Shared between the Server and every Responder: once `stopped` is set (under `mu`), responders stop
// posting to the io_context, which may be about to be destroyed.
struct Lifetime {
  std::mutex mu;
  bool stopped = false;
};

class Session;

// What a Session needs from its Server.
struct ServerState {
  ServerState(ServerOptions o, Handler h)
      : options(std::move(o)), handler(std::move(h)), lifetime(std::make_shared<Lifetime>()) {}

  void forget(uint64_t id) {
    std::lock_guard lock(sessions_mu);
    sessions.erase(id);
  }

  const ServerOptions options;
  const Handler handler;  // called concurrently from the I/O threads
  const std::shared_ptr<Lifetime> lifetime;
  std::mutex sessions_mu;
  std::unordered_map<uint64_t, std::shared_ptr<Session>> sessions;  // every live connection
};

}  // namespace

struct Server::Impl : ServerState {
  Impl(ServerOptions o, Handler h)
      : ServerState(std::move(o), std::move(h)),
        ioc(std::max(1, options.io_threads)),
        work(net::make_work_guard(ioc)),
        acceptor(ioc),
        accept_retry(ioc) {}

  Result<void> start();
  void stop();
  void do_accept();
  void on_accept(const beast::error_code& ec, tcp::socket socket);

  // Destroyed after the acceptor and timers declared below; stop() has emptied `sessions` by then.
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor;          // touched only by the accept chain, then by stop() after the join
  net::steady_timer accept_retry;  // back-off after accept errors such as EMFILE
  std::atomic<uint16_t> bound_port{0};
  uint64_t next_session_id = 0;  // accept chain only

  std::mutex stop_mu;  // serialises start() and stop()
  bool started = false;
  std::vector<std::thread> threads;
};

namespace {

using SteadyClock = std::chrono::steady_clock;
using Strand = net::strand<net::io_context::executor_type>;

// The strand an accepted socket was made on (do_accept makes every socket on one).
Strand strand_of(tcp::socket& socket) {
  const auto executor = socket.get_executor();
  const Strand* strand = executor.target<Strand>();
  SIGIL_CHECK(strand != nullptr);
  return *strand;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `socket`'s executor is the Session's strand.
  Session(ServerState* server, uint64_t id, tcp::socket socket, std::string remote)
      : server_(server),
        lifetime_(server->lifetime),
        id_(id),
        strand_(strand_of(socket)),
        socket_(std::move(socket)),
        timer_(strand_),
        // Bounded: Beast limits headers and bodies but not chunk extensions, which would otherwise grow the
        // read buffer without end (found by tests/system/bad_input_test.py).
        buffer_(server->options.header_limit + server->options.body_limit + 16 * 1024),
        remote_(std::move(remote)),
        idle_(std::chrono::seconds(std::max(1, server->options.idle_timeout_s))) {}

  void start() {
    net::dispatch(strand_, [self = shared_from_this()] { self->read_request(); });
  }

  // Closes the socket and leaves the registry. On the strand, or from stop() once no I/O thread runs.
  void close_now() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    ++timer_gen_;
    timer_.cancel();
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    server_->forget(id_);
  }

  // Called on the strand with the handler's answer to request number `seq`.
  void write_response(uint64_t seq, Response response) {
    if (state_ != State::kHandling || seq != seq_) return;  // late answer: timed out or closed
    write(std::move(response));
  }

  // True while the calling thread runs a handler on this Session's strand.
  [[nodiscard]] bool on_strand() const noexcept { return strand_.running_in_this_thread(); }
  const Strand& strand() const noexcept { return strand_; }

 private:
  enum class State { kReading, kHandling, kWriting, kLingering, kClosed };

  // ---- the deadline ----
  // `deadline_` is the time the current phase must end by; the timer fires at or before it and re-arms
  // itself while the deadline has moved later in the meantime.
  void set_deadline(SteadyClock::duration d) {
    deadline_ = SteadyClock::now() + d;
    if (!timer_armed_ || deadline_ < timer_expiry_) arm_timer(deadline_);
  }

  void arm_timer(SteadyClock::time_point at) {
    timer_armed_ = true;
    timer_expiry_ = at;
    const uint64_t gen = ++timer_gen_;  // a wait this replaces is cancelled and must do nothing
    timer_.expires_at(at);
    timer_.async_wait([self = shared_from_this(), gen](beast::error_code) { self->on_timer(gen); });
  }

  void on_timer(uint64_t gen) {
    if (gen != timer_gen_ || state_ == State::kClosed) return;
    timer_armed_ = false;
    if (SteadyClock::now() < deadline_) return arm_timer(deadline_);
    switch (state_) {
      case State::kHandling:
        // A handler that never answers (or holds its Responder forever) must not pin the connection.
        return write_error(503, "Request timed out");
      default:
        // A client that stalls (or trickles) while we read, write or linger: nobody to answer.
        return close_now();
    }
  }

  // ---- reading ----
  void read_request() {
    if (state_ == State::kClosed) return;
    state_ = State::kReading;
    parser_.emplace();
    parser_->body_limit(static_cast<std::uint64_t>(server_->options.body_limit));
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(server_->options.header_limit, std::numeric_limits<std::uint32_t>::max())));
    // One deadline for the whole request: header, optional 100-continue and body.
    set_deadline(idle_);
    bhttp::async_read_header(socket_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(const beast::error_code& ec) {
    if (state_ == State::kClosed) return;
    if (ec) return on_read_error(ec);
    if (parser_->is_done()) return on_request();
    const auto& msg = parser_->get();
    if (msg.version() >= 11 && iequals(to_std(msg[bhttp::field::expect]), "100-continue")) {
      net::async_write(socket_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code wec, size_t) {
                         if (self->state_ == State::kClosed) return;
                         if (wec) return self->close_now();
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (self->state_ == State::kClosed) return;
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(const beast::error_code& ec) {
    if (ec == bhttp::error::body_limit) return write_error(413, "Request body too large");
    if (ec == bhttp::error::header_limit) return write_error(431, "Request header fields too large");
    if (ec == bhttp::error::buffer_overflow) return write_error(413, "Request too large");
    // Client went away, or the socket was closed: nobody to answer.
    if (ec.category() != bhttp::make_error_code(bhttp::error::bad_target).category() ||
        ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
      return close_now();
    }
    write_error(400, "Malformed HTTP request");
  }

  void on_request() {
    bhttp::request<bhttp::string_body> msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == bhttp::verb::head;
    version_ = msg.version();

    Request req;
    req.method.assign(to_std(msg.method_string()));
    req.target.assign(to_std(msg.target()));
    const size_t q = req.target.find('?');
    if (q == std::string::npos) {
      req.path = req.target;
    } else {
      req.path.assign(req.target, 0, q);
      req.query.assign(req.target, q + 1);
    }
    req.headers.reserve(static_cast<size_t>(std::distance(msg.begin(), msg.end())));
    for (const auto& f : msg) {
      auto& [name, value] = req.headers.emplace_back(to_std(f.name_string()), to_std(f.value()));
      (void)value;
      for (char& c : name) c = ascii_lower(c);
    }
    req.body = std::move(msg.body());
    req.remote_address = remote_;

    state_ = State::kHandling;
    const uint64_t seq = ++seq_;
    set_deadline(idle_);  // then 503 (on_timer)

    auto core = std::make_shared<ResponderCore>(lifetime_, weak_from_this(), seq);
    try {
      server_->handler(std::move(req), [core](Response r) { core->respond(std::move(r)); });
    } catch (...) {
      core->respond(error_response(500, "Internal error"));
    }
    // If the handler dropped every copy of the Responder without calling it, `core`'s destructor answers.
  }

  // ---- writing ----
  void write_error(int status, std::string_view message) {
    keep_alive_ = false;
    head_ = false;
    if (version_ == 0) version_ = 11;
    write(error_response(status, message));
  }

  void append_number(size_t n) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);  // cannot fail: 24 digits fit
    (void)ec;
    out_head_.append(digits, end);
  }

  void append_field(std::string_view name, std::string_view value) {
    out_head_.append(name).append(": ").append(value).append("\r\n");
  }

  // Serialises the status line and fields as Beast's serializer would for the same message (Server first,
  // then the handler's headers in order, Content-Type, Content-Length, Connection), then writes the head and
  // the body in one gather write.
  void write(Response r) {
    if (r.status < 200 || r.status > 999) r = error_response(500, "Internal error");
    const bool http10 = version_ == 10;
    out_head_.clear();
    out_head_.append(http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    append_number(static_cast<size_t>(r.status));
    out_head_.push_back(' ');
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
    out_head_.append(reason.data(), reason.size()).append("\r\n");
    append_field("Server", "sigil");
    const bool no_body = r.status == 204 || r.status == 304;
    // The response's content type replaces any the handler put among its headers.
    const bool set_type = !no_body && !r.content_type.empty() && safe_header_text(r.content_type);
    bool keep_alive = keep_alive_;
    for (const auto& [name, value] : r.headers) {
      if (!safe_header_name(name) || !safe_header_text(value)) continue;
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
      if (iequals(name, "connection")) {
        if (iequals(value, "close")) keep_alive = false;
        continue;
      }
      if (set_type && iequals(name, "content-type")) continue;
      append_field(name, value);
    }
    out_body_.clear();
    if (!no_body) {
      if (set_type) append_field("Content-Type", r.content_type);
      out_head_.append("Content-Length: ");
      append_number(r.body.size());
      out_head_.append("\r\n");
      if (!head_) out_body_ = std::move(r.body);
    }
    if (!http10 && !keep_alive) append_field("Connection", "close");
    if (http10 && keep_alive) append_field("Connection", "keep-alive");
    out_head_.append("\r\n");
    keep_alive_ = keep_alive;

    state_ = State::kWriting;
    set_deadline(idle_);
    const std::array<net::const_buffer, 2> buffers{net::buffer(out_head_), net::buffer(out_body_)};
    net::async_write(socket_, buffers, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (self->state_ == State::kClosed) return;
      if (ec) return self->close_now();
      if (!self->keep_alive_) return self->linger();
      self->read_request();
    });
  }

  // Half-close, then read and discard what the client still sends (bounded in time and bytes) before
  // closing, so the response is not lost to a RST caused by unread request bytes.
  void linger() {
    state_ = State::kLingering;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    set_deadline(std::min<SteadyClock::duration>(idle_, std::chrono::seconds(5)));
    drain();
  }

  void drain() {
    socket_.async_read_some(net::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (self->state_ == State::kClosed) return;
      self->drained_ += n;
      if (ec || self->drained_ > kMaxDrainBytes) return self->close_now();
      self->drain();
    });
  }

  // Shared by every copy of one request's Responder. Answers at most once; answers 500 if every copy
  // is destroyed unanswered.
  struct ResponderCore {
    ResponderCore(std::shared_ptr<Lifetime> life, std::weak_ptr<Session> s, uint64_t q)
        : lifetime(std::move(life)), session(std::move(s)), seq(q) {}
    ResponderCore(const ResponderCore&) = delete;
    ResponderCore& operator=(const ResponderCore&) = delete;
    ~ResponderCore() {
      if (!used.load(std::memory_order_relaxed)) respond(error_response(500, "Internal error"));
    }

    void respond(Response r) noexcept {
      if (used.exchange(true)) return;
      try {
        std::shared_ptr<Session> here;
        {
          std::lock_guard lock(lifetime->mu);
          if (lifetime->stopped) return;
          // Released before `lock` (declared after it): off the Session's strand a Responder holds the Session
          // only under the lock, so once stop() has set `stopped`, the last reference to a Session can never
          // be dropped here, after its io_context is gone.
          std::shared_ptr<Session> s = session.lock();
          if (!s) return;
          if (!s->on_strand()) {
            net::post(s->strand(),
                      [s, seq = seq, r = std::move(r)]() mutable { s->write_response(seq, std::move(r)); });
            return;
          }
          here = std::move(s);
        }
        // On the connection's strand (the handler answered synchronously): this I/O thread is inside run(),
        // which stop() joins before it drops the registry's reference, so the Session and the io_context
        // outlive this call; write without a hand-off.
        here->write_response(seq, std::move(r));
      } catch (...) {
        // Allocation failure while posting: the deadline closes the connection.
      }
    }

    std::shared_ptr<Lifetime> lifetime;
    std::weak_ptr<Session> session;
    uint64_t seq;
    std::atomic<bool> used{false};
  };

  ServerState* const server_;  // valid while any handler of this Session can run
  const std::shared_ptr<Lifetime> lifetime_;
  const uint64_t id_;
  const Strand strand_;
  tcp::socket socket_;
  net::steady_timer timer_;
  SteadyClock::time_point deadline_{};
  SteadyClock::time_point timer_expiry_{};
  uint64_t timer_gen_ = 0;
  bool timer_armed_ = false;
  beast::flat_buffer buffer_;  // persists across requests: may hold pipelined bytes
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string out_head_;  // the response's status line and fields, reused across requests
  std::string out_body_;
  const std::string remote_;
  const SteadyClock::duration idle_;
  State state_ = State::kReading;
  uint64_t seq_ = 0;
  bool keep_alive_ = false;
  bool head_ = false;
  unsigned version_ = 0;
  size_t drained_ = 0;
  std::array<char, 4096> drain_buf_{};
};

}  // namespace

Result<void> Server::Impl::start() {
  std::lock_guard lock(stop_mu);
  {
    std::lock_guard life_lock(lifetime->mu);
    if (lifetime->stopped || started) return make_error(ErrorCode::kUnavailable, "Server already started or stopped");
  }
  const std::string where = fmt::format("{}:{}", options.address, options.port);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  const auto endpoints = resolver.resolve(options.address, std::to_string(options.port),
                                          tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return make_error(ErrorCode::kUnavailable, fmt::format("Cannot resolve {}: {}", where, ec.message()));
  bool bound = false;
  for (const auto& entry : endpoints) {
    ec = {};
    acceptor.open(entry.endpoint().protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(entry.endpoint(), ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) {
      bound = true;
      break;
    }
    beast::error_code ignored;
    acceptor.close(ignored);
  }
  if (!bound) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("Cannot bind {}: {}", where, ec ? ec.message() : "no address"));
  }
  bound_port.store(acceptor.local_endpoint(ec).port());
  started = true;
  do_accept();
  try {
    const int n = std::max(1, options.io_threads);
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([this] {
        for (;;) {
          try {
            ioc.run();
            return;
          } catch (...) {
            // Handlers do not throw; if one ever does, keep this thread serving.
          }
        }
      });
    }
  } catch (const std::system_error& e) {
    return make_error(ErrorCode::kUnavailable, fmt::format("Cannot start I/O threads: {}", e.what()));
  }
  return {};
}

void Server::Impl::do_accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(const beast::error_code& ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    // EMFILE and friends: back off briefly instead of spinning.
    accept_retry.expires_after(std::chrono::milliseconds(50));
    accept_retry.async_wait([this](beast::error_code wec) {
      if (!wec) do_accept();
    });
    return;
  }
  beast::error_code ep_ec;
  const auto remote = socket.remote_endpoint(ep_ec);
  std::string remote_address = ep_ec ? std::string() : remote.address().to_string();
  const uint64_t id = next_session_id++;
  try {
    auto session = std::make_shared<Session>(this, id, std::move(socket), std::move(remote_address));
    {
      std::lock_guard lock(sessions_mu);
      sessions.emplace(id, session);
    }
    session->start();
  } catch (...) {
    // Out of memory: the socket (if it was moved) closes with the half-built session.
  }
  do_accept();
}

void Server::Impl::stop() {
  std::lock_guard lock(stop_mu);
  {
    std::lock_guard life_lock(lifetime->mu);
    if (lifetime->stopped) return;
    lifetime->stopped = true;  // from here on, Responders no longer post
  }
  for (const auto& t : threads) {
    // Joining itself would deadlock: stop() must not be called from a handler on an I/O thread.
    SIGIL_CHECK(t.get_id() != std::this_thread::get_id());
  }
  work.reset();
  ioc.stop();
  for (auto& t : threads) t.join();
  threads.clear();
  // No I/O thread runs any more: Sessions and the acceptor can be touched from here.
  beast::error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  std::unordered_map<uint64_t, std::shared_ptr<Session>> live;
  {
    std::lock_guard sessions_lock(sessions_mu);
    live.swap(sessions);
  }
  for (auto& [id, session] : live) session->close_now();
  // Handlers still queued in the io_context (holding Sessions) are destroyed with it.
}

std::string_view Request::header(std::string_view lower_name) const noexcept {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

Server::Server(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() { stop(); }

Result<void> Server::start() { return impl_->start(); }

uint16_t Server::port() const noexcept { return impl_->bound_port.load(); }

void Server::stop() { impl_->stop(); }

}  // namespace sigil::http
