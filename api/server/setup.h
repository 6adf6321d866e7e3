// Provisioning shared by sigild (first start) and the `sigil` admin tool: data folder, apps and clients.
#pragma once

#include <string>
#include <vector>

#include "api/server/config.h"
#include "api/store/store.h"
#include "engine/base/clock.h"
#include "engine/base/result.h"

namespace sigil::server {

// Creates the folder with mode 0700 if it does not exist.
[[nodiscard]] Result<void> ensure_data_dir(const std::string& dir);

struct NewApp {
  std::string tenant_id;  // empty: the first tenant, created as "default" if there is none
  std::string name;
  std::vector<std::string> redirect_uris, origins, resources;
  std::string rp_id;
  bool allow_client_challenges = false;
  bool public_signup = true;
  std::string user_verification = "preferred";   // WebAuthn: required | preferred | discouraged
  std::string attestation_trust = "none";        // WebAuthn: none | direct
  std::vector<std::string> trust_anchor_files;   // PEM files, for "direct"
  std::vector<std::string> top_origins;          // cross-origin iframe parents allowed
};

struct CreatedApp {
  store::App app;
  std::string client_id;
  std::string client_secret;  // shown once; stored hashed
};

[[nodiscard]] Result<CreatedApp> create_app(store::Store& store, const NewApp& spec, const Clock& clock);
// A new client (id + secret) for an existing app. A public client (browser or native app) gets no secret:
// it authenticates with its client_id alone and must use PKCE S256 (client_secret comes back empty).
[[nodiscard]] Result<CreatedApp> create_client(store::Store& store, const store::App& app, const Clock& clock,
                                               bool public_client = false);

// First start: a demo tenant and app whose redirect URIs (<public_url>/demo/callback, and <public_url>/demo for
// the demo relying party's logout), origin and rpId follow public_url; their credentials go to
// <data_dir>/demo-app.json (0600) and are printed. Later starts reuse them (adding a missing /demo URI).
[[nodiscard]] Result<void> ensure_demo_app(store::Store& store, const Config& config, const Clock& clock);

// The demo client's credentials from <data_dir>/demo-app.json (for the demo relying party).
struct DemoCredentials {
  std::string client_id, client_secret;
};
[[nodiscard]] Result<DemoCredentials> read_demo_credentials(const std::string& data_dir);

[[nodiscard]] std::string app_json(const store::App& app, const std::vector<std::string>& client_ids);

}  // namespace sigil::server
