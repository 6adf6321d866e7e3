#include "api/server/config.h"

#include <charconv>
#include <cstdlib>
#include <fmt/format.h>

#include <toml++/toml.h>

namespace sigil::server {
namespace {

std::unexpected<Error> config_error(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

template <typename T>
Result<T> parse_number(std::string_view what, std::string_view text, T min, T max) {
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return config_error(fmt::format("{}: '{}' is not a number in [{}, {}]", what, text, min, max));
  }
  return v;
}

Result<void> set_listen(Config& c, std::string_view v) {
  const size_t colon = v.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return config_error("listen must be HOST:PORT");
  SIGIL_ASSIGN_OR_RETURN(c.port, parse_number<uint16_t>("listen port", v.substr(colon + 1), 0, 65535));
  std::string_view host = v.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  c.listen_address = std::string(host);
  return {};
}

Result<bool> parse_bool(std::string_view what, std::string_view v) {
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  return config_error(fmt::format("{}: '{}' is not a boolean", what, v));
}

// One setting by name, from any source.
Result<void> apply(Config& c, std::string_view key, std::string_view value) {
  if (key == "listen") return set_listen(c, value);
  if (key == "data_dir") { c.data_dir = std::string(value); return {}; }
  if (key == "issuer") { c.issuer = std::string(value); return {}; }
  if (key == "public_url") { c.public_url = std::string(value); return {}; }
  if (key == "io_threads") {
    SIGIL_ASSIGN_OR_RETURN(c.io_threads, parse_number<int>("io_threads", value, 1, 256));
    return {};
  }
  if (key == "challenge_capacity") {
    SIGIL_ASSIGN_OR_RETURN(c.challenge_capacity,
                           parse_number<size_t>("challenge_capacity", value, 1, 100'000'000));
    return {};
  }
  if (key == "demo") {
    SIGIL_ASSIGN_OR_RETURN(c.demo, parse_bool("demo", value));
    return {};
  }
  if (key == "demo_rp") {
    SIGIL_ASSIGN_OR_RETURN(c.demo_rp, parse_bool("demo_rp", value));
    return {};
  }
  return config_error(fmt::format("unknown setting '{}'", key));
}

Result<void> apply_toml(Config& c, const std::string& path) {
  // The packaged toml++ reports parse errors by exception; this runs once at start-up, never on a
  // request path, and the exception does not escape this function.
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return config_error(fmt::format("{}: {}", path, e.description()));
  }
  for (auto&& [k, node] : table) {
    std::string value;
    if (auto s = node.value<std::string>()) value = *s;
    else if (auto i = node.value<int64_t>()) value = std::to_string(*i);
    else if (auto b = node.value<bool>()) value = *b ? "true" : "false";
    else return config_error(fmt::format("{}: '{}' must be a string, integer or boolean", path, k.str()));
    SIGIL_TRY(apply(c, k.str(), value));
  }
  return {};
}

}  // namespace

std::string usage() {
  return "usage: sigild [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--issuer URL]\n"
         "              [--public-url URL] [--io-threads N] [--challenge-capacity N] [--demo|--no-demo]\n"
         "              [--demo-rp|--no-demo-rp]\n";
}

Result<Config> load_config(const std::vector<std::string>& args) {
  Config c;
  // The config file first (flag beats environment for its location too).
  std::string config_path;
  if (const char* e = std::getenv("SIGIL_CONFIG")) config_path = e;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--config") config_path = args[i + 1];
  }
  if (!config_path.empty()) SIGIL_TRY(apply_toml(c, config_path));

  static constexpr std::pair<const char*, const char*> kEnv[] = {
      {"SIGIL_LISTEN", "listen"},         {"SIGIL_DATA_DIR", "data_dir"},
      {"SIGIL_ISSUER", "issuer"},         {"SIGIL_PUBLIC_URL", "public_url"},
      {"SIGIL_IO_THREADS", "io_threads"}, {"SIGIL_CHALLENGE_CAPACITY", "challenge_capacity"},
      {"SIGIL_DEMO", "demo"},             {"SIGIL_DEMO_RP", "demo_rp"}};
  for (const auto& [env, key] : kEnv) {
    if (const char* v = std::getenv(env); v != nullptr && *v != '\0') SIGIL_TRY(apply(c, key, v));
  }

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--demo") { c.demo = true; continue; }
    if (a == "--no-demo") { c.demo = false; continue; }
    if (a == "--demo-rp") { c.demo_rp = true; continue; }
    if (a == "--no-demo-rp") { c.demo_rp = false; continue; }
    if (a.rfind("--", 0) != 0 || i + 1 >= args.size()) {
      return config_error(fmt::format("unexpected argument '{}'\n{}", a, usage()));
    }
    std::string key = a.substr(2);
    for (char& ch : key) {
      if (ch == '-') ch = '_';
    }
    const std::string& value = args[++i];
    if (key == "config") continue;
    SIGIL_TRY(apply(c, key, value));
  }
  return c;
}

void finalize_urls(Config& c) {
  if (c.public_url.empty()) {
    const bool loopback = c.listen_address == "127.0.0.1" || c.listen_address == "::1" ||
                          c.listen_address == "localhost";
    // WebAuthn refuses IP addresses as rpId, so loopback deployments are addressed as localhost.
    c.public_url = fmt::format("http://{}:{}", loopback ? "localhost" : c.listen_address, c.port);
  }
  while (!c.public_url.empty() && c.public_url.back() == '/') c.public_url.pop_back();
  if (c.issuer.empty()) c.issuer = c.public_url;
}

}  // namespace sigil::server
