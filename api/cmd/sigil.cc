// sigil: the admin command-line tool. Works on the same store as a running sigild (SQLite WAL).
//
//   sigil [--data-dir DIR] app create --name NAME [--redirect-uri URI]... [--origin ORIGIN]...
//         [--rp-id ID] [--resource URI]... [--allow-client-challenges] [--no-public-signup]
//         [--user-verification required|preferred|discouraged] [--attestation-trust none|direct]
//         [--trust-anchors PEM_FILE]... [--top-origin ORIGIN]...
//   sigil [--data-dir DIR] app list
//   sigil [--data-dir DIR] client create --app APP_ID [--public]
//   sigil verify < lines.jsonl      (offline WebAuthn verification; see api/service/webauthn_offline.h)
#include <cstdlib>
#include <iostream>
#include <fmt/format.h>
#include <string>
#include <vector>

#include "api/server/setup.h"
#include "api/service/webauthn_offline.h"
#include "api/store/sqlite_store.h"
#include "engine/base/clock.h"
#include "engine/base/json_writer.h"

namespace {

int usage() {
  fmt::print(stderr,
             "usage:\n"
             "  sigil [--data-dir DIR] app create --name NAME [--redirect-uri URI]... [--origin ORIGIN]...\n"
             "        [--rp-id ID] [--resource URI]... [--allow-client-challenges] [--no-public-signup]\n"
             "        [--user-verification required|preferred|discouraged] [--attestation-trust none|direct]\n"
             "        [--trust-anchors PEM_FILE]... [--top-origin ORIGIN]...\n"
             "  sigil [--data-dir DIR] app list\n"
             "  sigil [--data-dir DIR] client create --app APP_ID [--public]\n"
             "  sigil verify < lines.jsonl\n");
  return 2;
}

int fail(const sigil::Error& e) {
  fmt::print(stderr, "sigil: {}\n", e.message);
  return 1;
}

std::string created_json(const sigil::server::CreatedApp& c) {
  sigil::JsonWriter w;
  w.begin_object();
  w.key("app_id").string(c.app.id);
  w.key("tenant_id").string(c.app.tenant_id);
  w.key("name").string(c.app.name);
  w.key("client_id").string(c.client_id);
  if (c.client_secret.empty()) w.key("public_client").boolean(true);
  else w.key("client_secret").string(c.client_secret);
  w.end_object();
  return std::move(w).str();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string data_dir = "var";
  if (const char* e = std::getenv("SIGIL_DATA_DIR"); e != nullptr && *e != '\0') data_dir = e;
  if (args.size() >= 2 && args[0] == "--data-dir") {
    data_dir = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  sigil::SystemClock clock;
  if (args.size() == 1 && args[0] == "verify") {
    // One JSON line in, one JSON line out; lines over 1 MiB are refused, not buffered.
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      if (line.size() > 1024 * 1024) {
        fmt::print("{}\n", R"({"ok":false,"error":"line too long"})");
        continue;
      }
      fmt::print("{}\n", sigil::service::verify_offline_line(line, clock.now_s()));
    }
    return 0;
  }
  if (args.size() < 2) return usage();
  if (auto r = sigil::server::ensure_data_dir(data_dir); !r) return fail(r.error());
  auto store = sigil::store::SqliteStore::open(data_dir + "/sigil.db", clock);
  if (!store) return fail(store.error());

  const std::string noun = args[0], verb = args[1];
  if (noun == "app" && verb == "create") {
    sigil::server::NewApp spec;
    for (size_t i = 2; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "--allow-client-challenges") { spec.allow_client_challenges = true; continue; }
      if (a == "--no-public-signup") { spec.public_signup = false; continue; }
      if (i + 1 >= args.size()) return usage();
      const std::string& v = args[++i];
      if (a == "--name") spec.name = v;
      else if (a == "--redirect-uri") spec.redirect_uris.push_back(v);
      else if (a == "--origin") spec.origins.push_back(v);
      else if (a == "--rp-id") spec.rp_id = v;
      else if (a == "--resource") spec.resources.push_back(v);
      else if (a == "--tenant") spec.tenant_id = v;
      else if (a == "--user-verification") spec.user_verification = v;
      else if (a == "--attestation-trust") spec.attestation_trust = v;
      else if (a == "--trust-anchors") spec.trust_anchor_files.push_back(v);
      else if (a == "--top-origin") spec.top_origins.push_back(v);
      else return usage();
    }
    auto created = sigil::server::create_app(**store, spec, clock);
    if (!created) return fail(created.error());
    fmt::print("{}\n", created_json(*created));
    return 0;
  }
  if (noun == "app" && verb == "list") {
    auto apps = (*store)->list_apps();
    if (!apps) return fail(apps.error());
    for (const auto& app : *apps) {
      auto clients = (*store)->list_clients(app.id);
      if (!clients) return fail(clients.error());
      std::vector<std::string> ids;
      for (const auto& c : *clients) ids.push_back(c.client_id);
      fmt::print("{}\n", sigil::server::app_json(app, ids));
    }
    return 0;
  }
  if (noun == "client" && verb == "create" && args.size() >= 4 && args.size() <= 5 && args[2] == "--app") {
    // --public: a browser or native app without a secret (PKCE S256 required on the code flow).
    const bool public_client = args.size() == 5 && args[4] == "--public";
    if (args.size() == 5 && !public_client) return usage();
    auto app = (*store)->find_app(args[3]);
    if (!app) return fail(app.error());
    if (!*app) {
      fmt::print(stderr, "sigil: no app '{}'\n", args[3]);
      return 1;
    }
    auto created = sigil::server::create_client(**store, **app, clock, public_client);
    if (!created) return fail(created.error());
    fmt::print("{}\n", created_json(*created));
    return 0;
  }
  return usage();
}
