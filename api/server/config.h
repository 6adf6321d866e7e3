// sigild's configuration: defaults, then an optional TOML file, then environment, then flags.
//
// With nothing configured, sigild serves on 127.0.0.1:8080, keeps its data under ./var/ and creates a
// demo tenant and app (DESIGN.md "Configuration").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/result.h"

namespace sigil::server {

struct Config {
  std::string listen_address = "127.0.0.1";
  uint16_t port = 8080;
  std::string data_dir = "var";
  std::string issuer;      // default: public_url
  std::string public_url;  // default: http://localhost:<port> on loopback, else http://<address>:<port>
  int io_threads = 2;
  size_t body_limit = 64 * 1024;
  size_t challenge_capacity = 1'000'000;
  bool demo = true;        // create the demo tenant and app on first start
  bool demo_rp = false;    // serve the demo relying party at /demo (needs the demo app)
};

// argv-style flags: --config FILE, --listen HOST:PORT, --data-dir DIR, --issuer URL, --public-url URL,
// --io-threads N, --challenge-capacity N, --demo / --no-demo, --demo-rp / --no-demo-rp. Environment:
// SIGIL_CONFIG, SIGIL_LISTEN, SIGIL_DATA_DIR, SIGIL_ISSUER, SIGIL_PUBLIC_URL, SIGIL_IO_THREADS,
// SIGIL_CHALLENGE_CAPACITY, SIGIL_DEMO, SIGIL_DEMO_RP.
// TOML keys: listen, data_dir, issuer, public_url, io_threads, challenge_capacity, demo, demo_rp.
[[nodiscard]] Result<Config> load_config(const std::vector<std::string>& args);

// Fills issuer/public_url defaults from the listen address (call after the port is known).
void finalize_urls(Config& c);

[[nodiscard]] std::string usage();

}  // namespace sigil::server
