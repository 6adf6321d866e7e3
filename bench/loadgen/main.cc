// sigil-loadgen: full logins against a running sigild over keep-alive HTTP/1.1, with the server's and the
// client's CPU measured around the run. See bench/loadgen/README.md.
#include <fmt/format.h>
#include <simdjson.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/verb.hpp>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/loadgen/histogram.h"
#include "bench/loadgen/http_client.h"
#include "bench/loadgen/soft_key.h"

namespace loadgen {
namespace {

namespace asio = boost::asio;
using boost::beast::http::verb;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kUsage = R"(usage: sigil-loadgen --target http://127.0.0.1:PORT --demo-app DATA_DIR/demo-app.json [options]

  --scenario webauthn|mobile   login measured (default webauthn)
  --mode closed|open           closed: --connections virtual users loop back to back (default);
                               open: logins arrive at --rate per second on a fixed schedule, latency
                               measured from the scheduled time (coordinated omission corrected)
  --connections N              keep-alive connections (default 16); in closed mode also the concurrency
  --rate R                     open mode: arrivals per second
  --users N                    users created in setup (default max(2 x connections, 64))
  --duration S                 measured seconds (default 10)
  --warmup S                   seconds run before measuring (default 2)
  --drain S                    longest wait for in-flight logins after the end (default 5); then a hard stop
  --threads N                  client threads, each with its own share of connections and rate (default 1)
  --server-pid PID             read the server's CPU time from /proc/PID/stat around the measured window
  --timeout-ms MS              per request (default 10000)
  --json                       print the result as one JSON object on stdout (the table goes to stderr)

Loopback targets only. Setup: a client token (client_credentials), N users registered with a software ES256
passkey (register/start + external/register); for --scenario mobile each user also logs in once with WebAuthn
and registers a P-256 device key with that user token.
)";

// ---- options ---------------------------------------------------------------------------------------------

struct Options {
  std::string target;
  std::string demo_app;
  std::string scenario = "webauthn";
  std::string mode = "closed";
  int connections = 16;
  double rate = 0;
  int users = 0;
  double duration = 10, warmup = 2, drain = 5;
  int threads = 1;
  int server_pid = 0;
  int timeout_ms = 10000;
  bool json = false;
};

[[noreturn]] void die(const std::string& msg) {
  fmt::print(stderr, "sigil-loadgen: {}\n", msg);
  std::exit(2);
}

template <typename T>
T parse_num(const std::string& name, const std::string& v) {
  T out{};
  if constexpr (std::is_floating_point_v<T>) {
    try {
      size_t pos = 0;
      out = static_cast<T>(std::stod(v, &pos));
      if (pos != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      die(fmt::format("--{}: not a number: '{}'", name, v));
    }
  } else {
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || p != v.data() + v.size()) die(fmt::format("--{}: not an integer: '{}'", name, v));
  }
  return out;
}

Options parse_options(int argc, char** argv) {
  Options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "-h" || a == "--help") {
      fmt::print("{}", kUsage);
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0) die("unexpected argument '" + a + "' (see --help)");
    a = a.substr(2);
    std::string v;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    if (a == "json") {
      o.json = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) die("--" + a + " needs a value");
      v = args[++i];
    }
    if (a == "target") o.target = v;
    else if (a == "demo-app") o.demo_app = v;
    else if (a == "scenario") o.scenario = v;
    else if (a == "mode") o.mode = v;
    else if (a == "connections") o.connections = parse_num<int>(a, v);
    else if (a == "rate") o.rate = parse_num<double>(a, v);
    else if (a == "users") o.users = parse_num<int>(a, v);
    else if (a == "duration") o.duration = parse_num<double>(a, v);
    else if (a == "warmup") o.warmup = parse_num<double>(a, v);
    else if (a == "drain") o.drain = parse_num<double>(a, v);
    else if (a == "threads") o.threads = parse_num<int>(a, v);
    else if (a == "server-pid") o.server_pid = parse_num<int>(a, v);
    else if (a == "timeout-ms") o.timeout_ms = parse_num<int>(a, v);
    else die("unknown option --" + a + " (see --help)");
  }
  if (o.target.empty() || o.demo_app.empty()) die("--target and --demo-app are required (see --help)");
  if (o.scenario != "webauthn" && o.scenario != "mobile") die("--scenario must be webauthn or mobile");
  if (o.mode != "closed" && o.mode != "open") die("--mode must be closed or open");
  if (o.mode == "open" && !(o.rate > 0)) die("--mode open needs --rate > 0");
  if (o.connections < 1 || o.connections > 10000) die("--connections must be 1..10000");
  if (o.threads < 1 || o.threads > 64) die("--threads must be 1..64");
  if (o.threads > o.connections) o.threads = o.connections;
  if (!(o.duration > 0) || o.duration > 3600) die("--duration must be in (0, 3600]");
  if (o.warmup < 0 || o.drain < 0) die("--warmup and --drain must be >= 0");
  if (o.users == 0) o.users = std::max(2 * o.connections, 64);
  if (o.users < o.connections) die("--users must be at least --connections (a user is never used twice at once)");
  return o;
}

// ---- target and demo app ---------------------------------------------------------------------------------

struct Target {
  std::string host_header;
  tcp::endpoint endpoint;
};

Target resolve_target(asio::io_context& io, const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) die("--target must be http://HOST:PORT (loopback only; no TLS)");
  std::string rest = url.substr(kScheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    if (rest.substr(slash) != "/") die("--target takes no path");
    rest = rest.substr(0, slash);
  }
  std::string host, port;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') die("--target: bad host");
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string::npos) die("--target needs an explicit port");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty()) die(fmt::format("--target: cannot resolve {}:{}: {}", host, port, ec.message()));
  Target t;
  bool first = true;
  for (const auto& r : results) {
    // Every address the name resolves to must be loopback: this tool never loads another machine.
    if (!r.endpoint().address().is_loopback()) {
      die(fmt::format("--target {} resolves to {}, which is not a loopback address: refused", url,
                      r.endpoint().address().to_string()));
    }
    if (first) t.endpoint = r.endpoint();
    first = false;
  }
  t.host_header = rest;
  return t;
}

struct DemoApp {
  std::string client_id, client_secret, origin, rp_id;
};

DemoApp read_demo_app(const std::string& path) {
  simdjson::padded_string text;
  if (simdjson::padded_string::load(path).get(text)) die("cannot read --demo-app " + path);
  simdjson::dom::parser p;
  simdjson::dom::element root;
  if (p.parse(text).get(root)) die(path + " is not JSON");
  DemoApp d;
  std::string_view s;
  if (root["client_id"].get_string().get(s)) die(path + ": no client_id");
  d.client_id = s;
  if (root["client_secret"].get_string().get(s)) die(path + ": no client_secret");
  d.client_secret = s;
  if (root["rp_id"].get_string().get(s)) die(path + ": no rp_id");
  d.rp_id = s;
  simdjson::dom::array origins;
  if (root["origins"].get_array().get(origins) || origins.size() == 0 || origins.at(0).get_string().get(s)) {
    die(path + ": no origins");
  }
  d.origin = s;
  return d;
}

std::string form_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// ---- CPU accounting --------------------------------------------------------------------------------------

std::optional<double> process_cpu_s(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(f, line)) return std::nullopt;
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return std::nullopt;
  std::istringstream in(line.substr(rp + 2));
  std::vector<std::string> fields;
  for (std::string x; in >> x;) fields.push_back(x);
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  if (fields.size() < 13) return std::nullopt;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

double self_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// Busy CPU-seconds of the whole machine (all cores) from /proc/stat.
std::optional<double> machine_busy_s() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  uint64_t v[8] = {};
  if (!(f >> cpu) || cpu != "cpu") return std::nullopt;
  for (auto& x : v) f >> x;
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return static_cast<double>(busy) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct CpuSample {
  std::optional<double> server, machine;
  double client = 0;
  Clock::time_point at;
};

CpuSample sample_cpu(int pid) { return {process_cpu_s(pid), machine_busy_s(), self_cpu_s(), Clock::now()}; }

// ---- users and shared context ----------------------------------------------------------------------------

struct User {
  std::string username, external_id, user_id;
  Passkey passkey;
  std::string key_id;
  Pkey device_key;
};

struct Context {
  Options opt;
  Target target;
  DemoApp app;
  std::string client_token;
  std::string run_id;
};

// ---- one shard: an io_context on one thread with its connections, users and results ----------------------

struct Stats {
  Histogram login, start, finish;
  uint64_t ok = 0, failed = 0, incomplete = 0;
  std::map<std::string, uint64_t> failures;  // "401 /cis/..." -> count
  std::vector<std::string> samples;

  void fail(const std::string& what, const Response& r) {
    ++failed;
    const std::string key = r.status ? fmt::format("{} {}", r.status, what) : fmt::format("transport {}", what);
    ++failures[key];
    if (samples.size() < 5) {
      samples.push_back(fmt::format("{}: {}", key, r.status ? r.body.substr(0, 300) : r.error));
    }
  }
  void merge(const Stats& o) {
    login.merge(o.login);
    start.merge(o.start);
    finish.merge(o.finish);
    ok += o.ok;
    failed += o.failed;
    incomplete += o.incomplete;
    for (const auto& [k, v] : o.failures) failures[k] += v;
    for (const auto& s : o.samples) {
      if (samples.size() < 5) samples.push_back(s);
    }
  }
};

uint64_t us_between(Clock::time_point a, Clock::time_point b) {
  return b <= a ? 0 : static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(b - a).count());
}

std::string_view get_str(simdjson::dom::element e, const char* pointer) {
  std::string_view s;
  if (e.at_pointer(pointer).get_string().get(s)) return {};
  return s;
}

class Shard {
 public:
  Shard(const Context& ctx, int connections, std::vector<User*> users)
      : ctx_(ctx), users_(users.begin(), users.end()) {
    for (int i = 0; i < connections; ++i) {
      conns_.push_back(std::make_unique<Connection>(io_, ctx.target.endpoint, ctx.target.host_header,
                                                    std::chrono::milliseconds(ctx.opt.timeout_ms)));
    }
    in_flight_.assign(conns_.size(), std::nullopt);
  }

  asio::io_context& io() { return io_; }
  Stats& stats() { return stats_; }
  size_t max_backlog() const { return max_backlog_; }

  // One login; `token` receives the user access token when non-null. Service times of the two steps go to
  // the stats when `record`.
  awaitable<bool> login(Connection& c, User& u, bool record, std::string* token = nullptr) {
    const bool webauthn = ctx_.opt.scenario == "webauthn" || token != nullptr;
    const auto t0 = Clock::now();
    Response r;
    if (webauthn) {
      r = co_await c.request(verb::post, "/cis/v1/auth/webauthn/authenticate/start",
                             "{\"client_id\":" + json_string(ctx_.app.client_id) +
                                 ",\"username\":" + json_string(u.username) + "}",
                             "json", {}, ctx_.app.origin);
    } else {
      r = co_await c.request(verb::post, "/cis/v1/auth/mobile-biometrics/start",
                             "{\"user_id\":" + json_string(u.user_id) + "}", "json", ctx_.client_token);
    }
    const auto t1 = Clock::now();
    if (r.status != 200) {
      if (record) stats_.fail(webauthn ? "authenticate/start" : "mobile start", r);
      co_return false;
    }
    simdjson::dom::element root;
    if (parser_.parse(r.body).get(root)) {
      if (record) stats_.fail("start: response is not JSON", r);
      co_return false;
    }
    std::string body;
    try {
      if (webauthn) {
        const auto sid = get_str(root, "/webauthn_session_id");
        const auto challenge = get_str(root, "/credential_request_options/challenge");
        body = "{\"webauthn_encoded_result\":\"" + passkey_assert(u.passkey, sid, challenge, ctx_.app.origin) + "\"}";
      } else {
        const auto challenge = get_str(root, "/challenge");
        const Bytes sig = es256_sign(u.device_key.get(), challenge.data(), challenge.size());
        body = "{\"user_id\":" + json_string(u.user_id) + ",\"key_id\":" + json_string(u.key_id) +
               ",\"challenge\":" + json_string(challenge) + ",\"signature\":\"" + base64(sig) + "\"}";
      }
    } catch (const std::exception& e) {
      r.error = e.what();
      r.body = std::string(e.what()) + ": " + r.body.substr(0, 200);
    }
    if (body.empty()) {
      if (record) stats_.fail("signing the start response", r);
      co_return false;
    }
    const auto t2 = Clock::now();
    r = co_await c.request(verb::post,
                           webauthn ? "/cis/v1/auth/webauthn/authenticate" : "/cis/v1/auth/mobile-biometrics/authenticate",
                           body, "json", ctx_.client_token);
    const auto t3 = Clock::now();
    if (r.status != 200) {
      if (record) stats_.fail(webauthn ? "webauthn authenticate" : "mobile authenticate", r);
      co_return false;
    }
    if (token) {
      if (parser_.parse(r.body).get(root)) co_return false;
      *token = std::string(get_str(root, "/access_token"));
      if (token->empty()) co_return false;
    }
    if (record) {
      stats_.start.record(us_between(t0, t1));
      stats_.finish.record(us_between(t2, t3));
    }
    co_return true;
  }

  // Measured phase. The run's time line is shared by every shard.
  void run(Clock::time_point begin, Clock::time_point measure, Clock::time_point end, double rate) {
    begin_ = begin;
    measure_ = measure;
    end_ = end;
    if (ctx_.opt.mode == "closed") {
      for (size_t i = 0; i < conns_.size(); ++i) asio::co_spawn(io_, closed_worker(i), asio::detached);
    } else {
      idle_timers_.reserve(conns_.size());
      for (size_t i = 0; i < conns_.size(); ++i) {
        timers_.push_back(std::make_unique<asio::steady_timer>(io_));
        asio::co_spawn(io_, open_worker(i), asio::detached);
      }
      asio::co_spawn(io_, producer(rate), asio::detached);
    }
    // Hard stop: whatever is still running `drain` seconds after the end is cut off and counted as incomplete.
    asio::steady_timer stop(io_);
    stop.expires_at(end + std::chrono::microseconds(static_cast<int64_t>(ctx_.opt.drain * 1e6)));
    stop.async_wait([this](boost::system::error_code ec) {
      if (!ec) hard_stop();
    });
    io_.run();
  }

 private:
  bool measured(Clock::time_point t) const { return t >= measure_ && t < end_; }

  User* take_user() {
    User* u = users_.front();
    users_.pop_front();
    return u;
  }

  void done(size_t idx, Clock::time_point intended, bool ok) {
    in_flight_[idx].reset();
    if (!measured(intended)) return;
    if (ok) {
      ++stats_.ok;
      stats_.login.record(us_between(intended, Clock::now()));
    }
  }

  awaitable<void> closed_worker(size_t idx) {
    asio::steady_timer t(io_);
    t.expires_at(begin_);
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
    while (!stopping_) {
      const auto t0 = Clock::now();
      if (t0 >= end_) break;
      in_flight_[idx] = t0;
      User* u = take_user();
      const bool ok = co_await login(*conns_[idx], *u, measured(t0));
      users_.push_back(u);
      if (stopping_) break;
      done(idx, t0, ok);
    }
    finish_worker();
  }

  awaitable<void> producer(double rate) {
    asio::steady_timer t(io_);
    const double interval_ns = 1e9 / rate;
    for (uint64_t i = 0;; ++i) {
      const auto at = begin_ + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(i) * interval_ns));
      if (at >= end_ || stopping_) break;
      if (Clock::now() < at) {
        t.expires_at(at);
        boost::system::error_code ec;
        co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
        if (stopping_) break;
      }
      pending_.push_back(at);
      max_backlog_ = std::max(max_backlog_, pending_.size());
      wake_one();
    }
    producing_ = false;
    while (!idle_timers_.empty()) wake_one();
  }

  void wake_one() {
    if (idle_timers_.empty()) return;
    idle_timers_.back()->cancel();
    idle_timers_.pop_back();
  }

  awaitable<void> open_worker(size_t idx) {
    auto& timer = *timers_[idx];
    for (;;) {
      while (pending_.empty() && producing_ && !stopping_) {
        timer.expires_at(Clock::time_point::max());
        idle_timers_.push_back(&timer);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      if (stopping_ || pending_.empty()) break;
      const auto intended = pending_.front();
      pending_.pop_front();
      in_flight_[idx] = intended;
      User* u = take_user();
      const bool ok = co_await login(*conns_[idx], *u, measured(intended));
      users_.push_back(u);
      if (stopping_) break;
      done(idx, intended, ok);
    }
    finish_worker();
  }

  void finish_worker() {
    if (++finished_ == conns_.size()) io_.stop();
  }

  // Logins still queued or in flight are recorded with the latency they had reached (a lower bound), so an
  // overloaded run cannot hide its backlog.
  void hard_stop() {
    stopping_ = true;
    const auto now = Clock::now();
    auto cut = [&](Clock::time_point intended) {
      if (!measured(intended)) return;
      ++stats_.incomplete;
      stats_.login.record(us_between(intended, now));
    };
    for (auto& f : in_flight_) {
      if (f) cut(*f);
    }
    for (auto t : pending_) cut(t);
    pending_.clear();
    io_.stop();
  }

  const Context& ctx_;
  asio::io_context io_{1};
  std::deque<User*> users_;
  std::vector<std::unique_ptr<Connection>> conns_;
  std::vector<std::unique_ptr<asio::steady_timer>> timers_;
  std::vector<asio::steady_timer*> idle_timers_;
  std::vector<std::optional<Clock::time_point>> in_flight_;
  std::deque<Clock::time_point> pending_;
  simdjson::dom::parser parser_;
  Stats stats_;
  Clock::time_point begin_, measure_, end_;
  bool producing_ = true, stopping_ = false;
  size_t finished_ = 0, max_backlog_ = 0;
};

// ---- setup -----------------------------------------------------------------------------------------------

class Setup {
 public:
  Setup(Context& ctx, std::vector<std::unique_ptr<User>>& users) : ctx_(ctx), users_(users) {}

  void run() {
    asio::io_context io{1};
    conn_ = std::make_unique<Connection>(io, ctx_.target.endpoint, ctx_.target.host_header, 10s);
    asio::co_spawn(io, token(), asio::detached);
    io.run();
    conn_.reset();
    if (ctx_.client_token.empty()) die("setup: no client token: " + error_);

    io.restart();
    const int workers = std::min(ctx_.opt.connections, 16);
    std::vector<std::unique_ptr<Connection>> conns;
    Shard helper(ctx_, 0, {});  // its login() serves the mobile setup's WebAuthn logins
    for (int i = 0; i < workers; ++i) {
      conns.push_back(std::make_unique<Connection>(io, ctx_.target.endpoint, ctx_.target.host_header, 10s));
      asio::co_spawn(io, worker(*conns.back(), helper), asio::detached);
    }
    io.run();
    if (!error_.empty()) die("setup: " + error_);
  }

 private:
  awaitable<void> token() {
    const auto& a = ctx_.app;
    Response r = co_await conn_->request(verb::post, "/oidc/token",
                                         "grant_type=client_credentials&client_id=" + form_escape(a.client_id) +
                                             "&client_secret=" + form_escape(a.client_secret),
                                         "form");
    if (r.status != 200) {
      error_ = fmt::format("POST /oidc/token: {} {}{}", r.status, r.body.substr(0, 300), r.error);
      co_return;
    }
    simdjson::dom::parser p;
    simdjson::dom::element root;
    if (!p.parse(r.body).get(root)) ctx_.client_token = get_str(root, "/access_token");
  }

  awaitable<void> worker(Connection& c, Shard& helper) {
    simdjson::dom::parser p;
    while (next_ < users_.size() && error_.empty()) {
      User& u = *users_[next_++];
      std::string err = co_await create(c, p, u, helper);
      if (!err.empty() && error_.empty()) error_ = fmt::format("user {}: {}", u.username, err);
    }
  }

  awaitable<std::string> create(Connection& c, simdjson::dom::parser& p, User& u, Shard& helper) {
    const auto& a = ctx_.app;
    Response r = co_await c.request(verb::post, "/cis/v1/auth/webauthn/register/start",
                                    "{\"client_id\":" + json_string(a.client_id) +
                                        ",\"username\":" + json_string(u.username) + "}",
                                    "json", {}, a.origin);
    if (r.status != 200) co_return fmt::format("register/start: {} {}{}", r.status, r.body.substr(0, 300), r.error);
    simdjson::dom::element root;
    if (p.parse(r.body).get(root)) co_return "register/start: not JSON";
    const std::string sid(get_str(root, "/webauthn_session_id"));
    std::string cred;
    try {
      cred = passkey_create(u.passkey, get_str(root, "/credential_creation_options/rp/id"),
                            get_str(root, "/credential_creation_options/challenge"),
                            get_str(root, "/credential_creation_options/user/id"), a.origin);
    } catch (const std::exception& e) {
      co_return std::string("passkey: ") + e.what() + ": " + r.body.substr(0, 300);
    }
    const std::string envelope = "{\"webauthnSessionId\":" + json_string(sid) + ",\"publicKeyCredential\":" + cred +
                                 ",\"userAgent\":\"sigil-loadgen\"}";
    r = co_await c.request(verb::post, "/cis/v1/auth/webauthn/external/register",
                           "{\"webauthn_encoded_result\":\"" + base64(envelope) +
                               "\",\"external_user_id\":" + json_string(u.external_id) + "}",
                           "json", ctx_.client_token);
    if (r.status != 200) co_return fmt::format("external/register: {} {}{}", r.status, r.body.substr(0, 300), r.error);
    if (p.parse(r.body).get(root)) co_return "external/register: not JSON";
    u.user_id = get_str(root, "/user_id");
    if (u.user_id.empty()) co_return "external/register: no user_id: " + r.body.substr(0, 300);
    if (ctx_.opt.scenario != "mobile") co_return "";

    // A WebAuthn login gives the user token that registering a device key requires.
    std::string user_token;
    if (!co_await helper.login(c, u, false, &user_token)) {
      co_return "WebAuthn login for a user token failed (rerun with --scenario webauthn to see why)";
    }
    u.device_key = p256_generate();
    u.key_id = "lg-" + ctx_.run_id + "-" + u.external_id + "-key";
    r = co_await c.request(verb::post, "/cis/v1/auth/mobile-biometrics/register",
                           "{\"publicKey\":\"" + spki_base64(u.device_key.get()) + "\",\"publicKeyId\":" +
                               json_string(u.key_id) + ",\"encryptionType\":\"ec\",\"os\":\"Android\"}",
                           "json", user_token);
    if (r.status != 200) {
      co_return fmt::format("mobile-biometrics/register: {} {}{}", r.status, r.body.substr(0, 300), r.error);
    }
    co_return "";
  }

  Context& ctx_;
  std::vector<std::unique_ptr<User>>& users_;
  std::unique_ptr<Connection> conn_;
  size_t next_ = 0;
  std::string error_;
};

// ---- report ----------------------------------------------------------------------------------------------

std::string fmt_us(uint64_t us) {
  if (us >= 10'000) return fmt::format("{:.1f} ms", static_cast<double>(us) / 1e3);
  if (us >= 1'000) return fmt::format("{:.2f} ms", static_cast<double>(us) / 1e3);
  return fmt::format("{} µs", us);
}

std::string opt_num(const std::optional<double>& v, int prec = 6) {
  return v ? fmt::format("{:.{}f}", *v, prec) : "null";
}

std::string hist_json(const Histogram& h) {
  return fmt::format(R"({{"count":{},"p50":{},"p90":{},"p99":{},"p999":{},"max":{},"mean":{:.1f}}})", h.count(),
                     h.percentile(0.5), h.percentile(0.9), h.percentile(0.99), h.percentile(0.999), h.max(), h.mean());
}

int report(const Context& ctx, const Stats& s, const CpuSample& a, const CpuSample& b, size_t backlog,
           double setup_s) {
  const auto& o = ctx.opt;
  const double window = o.duration;
  const double rate = static_cast<double>(s.ok) / window;
  std::optional<double> server_cpu, machine_cpu;
  if (a.server && b.server) server_cpu = *b.server - *a.server;
  if (a.machine && b.machine) machine_cpu = *b.machine - *a.machine;
  const double elapsed = std::chrono::duration<double>(b.at - a.at).count();
  const double client_cpu = b.client - a.client;
  const double n = s.ok ? static_cast<double>(s.ok) : 1.0;
  std::optional<double> server_per_login, per_core, server_cores, others;
  if (server_cpu && s.ok) {
    server_per_login = *server_cpu / n;
    per_core = *server_cpu > 0 ? n / *server_cpu : 0.0;
    server_cores = *server_cpu / elapsed;
  }
  if (machine_cpu) others = (*machine_cpu - server_cpu.value_or(0) - client_cpu) / elapsed;

  FILE* table = o.json ? stderr : stdout;
  fmt::print(table, "sigil-loadgen: {} logins, {} loop, {} connections{}, {} users, {:.1f} s measured after {:.1f} s warmup "
                    "(setup {:.1f} s)\n",
             o.scenario, o.mode, o.connections, o.mode == "open" ? fmt::format(", {:.0f}/s offered", o.rate) : "",
             o.users, o.duration, o.warmup, setup_s);
  fmt::print(table, "  logins       {} ok, {} failed, {} incomplete at the hard stop: {:.1f} logins/s\n", s.ok,
             s.failed, s.incomplete, rate);
  fmt::print(table, "  {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "latency", "p50", "p90", "p99", "p99.9",
             "max", "mean");
  auto row = [&](const char* name, const Histogram& h) {
    fmt::print(table, "  {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", name, fmt_us(h.percentile(0.5)),
               fmt_us(h.percentile(0.9)), fmt_us(h.percentile(0.99)), fmt_us(h.percentile(0.999)), fmt_us(h.max()),
               fmt_us(static_cast<uint64_t>(h.mean())));
  };
  row(o.mode == "open" ? "login (CO)" : "login", s.login);
  row("  start", s.start);
  row("  finish", s.finish);
  if (server_cpu) {
    fmt::print(table, "  server CPU   {:.2f} s = {:.1f} µs per login; {:.0f} logins/s per core of server CPU; "
                      "{:.2f} cores busy\n",
               *server_cpu, server_per_login.value_or(0) * 1e6, per_core.value_or(0), server_cores.value_or(0));
  } else {
    fmt::print(table, "  server CPU   not measured (--server-pid)\n");
  }
  fmt::print(table, "  client CPU   {:.2f} s = {:.1f} µs per login; {:.2f} cores busy\n", client_cpu,
             client_cpu / n * 1e6, client_cpu / elapsed);
  if (machine_cpu) {
    fmt::print(table, "  machine      {:.2f} of {} cores busy; {:.2f} cores used by other processes\n",
               *machine_cpu / elapsed, std::thread::hardware_concurrency(), others.value_or(0));
  }
  if (o.mode == "open") fmt::print(table, "  backlog      at most {} logins waited for a connection\n", backlog);
  for (const auto& [k, v] : s.failures) fmt::print(table, "  failure      {} x {}\n", v, k);
  for (const auto& x : s.samples) fmt::print(table, "  sample       {}\n", x);

  if (o.json) {
    std::string failures = "{";
    for (const auto& [k, v] : s.failures) failures += (failures.size() > 1 ? "," : "") + json_string(k) + ":" + std::to_string(v);
    failures += "}";
    std::string samples = "[";
    for (const auto& x : s.samples) samples += (samples.size() > 1 ? "," : "") + json_string(x);
    samples += "]";
    fmt::print(
        "{{\"scenario\":{},\"mode\":{},\"connections\":{},\"threads\":{},\"users\":{},\"offered_rate\":{},"
        "\"duration_s\":{},\"warmup_s\":{},\"setup_s\":{:.3f},\"logins\":{},\"failed\":{},\"incomplete\":{},"
        "\"logins_per_s\":{:.3f},\"latency_us\":{},\"start_us\":{},\"finish_us\":{},"
        "\"server_cpu_s\":{},\"server_cpu_per_login_s\":{},\"logins_per_server_core_s\":{},\"server_cores_busy\":{},"
        "\"client_cpu_s\":{:.6f},\"client_cpu_per_login_s\":{:.9f},\"client_cores_busy\":{:.4f},"
        "\"machine_cores_busy\":{},\"other_cores_busy\":{},\"cores\":{},\"window_s\":{:.4f},\"max_backlog\":{},"
        "\"failures\":{},\"samples\":{}}}\n",
        json_string(o.scenario), json_string(o.mode), o.connections, o.threads, o.users,
        o.mode == "open" ? fmt::format("{}", o.rate) : "null", o.duration, o.warmup, setup_s, s.ok, s.failed,
        s.incomplete, rate, hist_json(s.login), hist_json(s.start), hist_json(s.finish), opt_num(server_cpu),
        opt_num(server_per_login, 9), opt_num(per_core, 1), opt_num(server_cores, 4), client_cpu, client_cpu / n,
        client_cpu / elapsed, machine_cpu ? opt_num(*machine_cpu / elapsed, 4) : "null", opt_num(others, 4),
        std::thread::hardware_concurrency(), elapsed, backlog, failures, samples);
  }
  return s.ok > 0 ? 0 : 1;
}

int run(int argc, char** argv) {
  Context ctx;
  ctx.opt = parse_options(argc, argv);
  {
    asio::io_context io;
    ctx.target = resolve_target(io, ctx.opt.target);
  }
  ctx.app = read_demo_app(ctx.opt.demo_app);
  ctx.run_id = base64(random_bytes(6), true, false);
  if (ctx.opt.server_pid && !process_cpu_s(ctx.opt.server_pid)) {
    die(fmt::format("--server-pid {}: cannot read /proc/{}/stat", ctx.opt.server_pid, ctx.opt.server_pid));
  }

  // Hard stop for the whole program, whatever happens to the server.
  const double budget = 120 + ctx.opt.users * 0.05 + ctx.opt.warmup + ctx.opt.duration + ctx.opt.drain;
  std::thread([budget] {
    std::this_thread::sleep_for(std::chrono::duration<double>(budget));
    fmt::print(stderr, "sigil-loadgen: hard stop after {:.0f} s\n", budget);
    std::_Exit(3);
  }).detach();

  std::vector<std::unique_ptr<User>> users;
  for (int i = 0; i < ctx.opt.users; ++i) {
    auto u = std::make_unique<User>();
    u->external_id = fmt::format("lg-{}-{}", ctx.run_id, i);
    u->username = u->external_id + "@loadgen.example";
    users.push_back(std::move(u));
  }
  const auto setup_begin = Clock::now();
  Setup(ctx, users).run();
  const double setup_s = std::chrono::duration<double>(Clock::now() - setup_begin).count();
  if (!ctx.opt.json) fmt::print(stderr, "sigil-loadgen: setup done: {} users in {:.1f} s\n", users.size(), setup_s);

  // Shards: connections, users and rate split evenly.
  const int T = ctx.opt.threads;
  std::vector<std::unique_ptr<Shard>> shards;
  for (int t = 0; t < T; ++t) {
    std::vector<User*> mine;
    for (size_t i = static_cast<size_t>(t); i < users.size(); i += static_cast<size_t>(T)) mine.push_back(users[i].get());
    const int conns = ctx.opt.connections / T + (t < ctx.opt.connections % T ? 1 : 0);
    shards.push_back(std::make_unique<Shard>(ctx, conns, std::move(mine)));
  }
  auto us = [](double s) { return std::chrono::microseconds(static_cast<int64_t>(s * 1e6)); };
  const auto begin = Clock::now() + 50ms;
  const auto measure = begin + us(ctx.opt.warmup);
  const auto end = measure + us(ctx.opt.duration);
  std::vector<std::thread> threads;
  for (auto& s : shards) {
    threads.emplace_back([&, sh = s.get()] { sh->run(begin, measure, end, ctx.opt.rate / T); });
  }
  std::this_thread::sleep_until(measure);
  const CpuSample a = sample_cpu(ctx.opt.server_pid);
  for (auto& t : threads) t.join();
  const CpuSample b = sample_cpu(ctx.opt.server_pid);

  Stats total;
  size_t backlog = 0;
  for (auto& s : shards) {
    total.merge(s->stats());
    backlog += s->max_backlog();
  }
  const int rc = report(ctx, total, a, b, backlog, setup_s);
  std::fflush(stdout);
  std::_Exit(rc);  // shards' sockets and the watchdog need no orderly teardown
}

}  // namespace
}  // namespace loadgen

int main(int argc, char** argv) {
  try {
    return loadgen::run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "sigil-loadgen: {}\n", e.what());
    return 2;
  }
}
