// sigild assembled: store, keys, token layer, services, router and the HTTP adapter.
//
// Start-up order: data dir (0700) -> SQLite store -> key-encryption key -> signing keys -> HTTP bind (so the
// real port is known) -> URLs -> services -> demo app (first start only). Stop is idempotent.
#pragma once

#include <memory>
#include <string>

#include "api/server/config.h"
#include "engine/base/clock.h"
#include "engine/base/result.h"

namespace sigil::server {

class SigilServer {
 public:
  // `clock` must outlive the server (tests pass a ManualClock).
  [[nodiscard]] static Result<std::unique_ptr<SigilServer>> start(Config config, const Clock& clock);
  ~SigilServer();

  [[nodiscard]] uint16_t port() const noexcept;
  [[nodiscard]] const Config& config() const noexcept;
  void stop();

 private:
  SigilServer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The demo app's credentials, written to <data_dir>/demo-app.json (mode 0600) on first start.
struct DemoApp {
  std::string tenant_id, app_id, app_name, client_id, client_secret;
};

}  // namespace sigil::server
