#include "api/server/setup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <simdjson.h>

#include "engine/base/json_writer.h"
#include "engine/crypto/digest.h"

namespace sigil::server {
namespace {

constexpr std::string_view kDemoAppName = "demo";

void write_array(JsonWriter& w, const std::vector<std::string>& v) {
  w.begin_array();
  for (const auto& s : v) w.string(s);
  w.end_array();
}

// host of "scheme://host[:port][/...]"
std::string host_of(std::string_view url) {
  size_t start = url.find("://");
  start = start == std::string_view::npos ? 0 : start + 3;
  std::string_view rest = url.substr(start);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest.front() == '[') return std::string(rest.substr(1, rest.find(']') - 1));
  return std::string(rest.substr(0, rest.find(':')));
}

Result<void> write_file_0600(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorCode::kUnavailable, fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  const bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return make_error(ErrorCode::kUnavailable, fmt::format("cannot write {}", path));
  }
  return {};
}

}  // namespace

Result<void> ensure_data_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return make_error(ErrorCode::kUnavailable, fmt::format("cannot create {}: {}", dir, std::strerror(errno)));
  }
  return {};
}

Result<CreatedApp> create_client(store::Store& store, const store::App& app, const Clock& clock,
                                 bool public_client) {
  CreatedApp out;
  out.app = app;
  out.client_id = crypto::random_token(16);
  store::Client client;
  client.client_id = out.client_id;
  client.app_id = app.id;
  client.tenant_id = app.tenant_id;
  client.public_client = public_client;
  if (!public_client) {
    out.client_secret = crypto::random_token(32);
    auto h = crypto::sha256(as_bytes(out.client_secret));
    client.secret_hash.assign(h.begin(), h.end());
  }
  client.name = app.name;
  client.created_at = clock.now_s();
  SIGIL_TRY(store.create_client(client));
  return out;
}

Result<CreatedApp> create_app(store::Store& store, const NewApp& spec, const Clock& clock) {
  if (spec.name.empty() || spec.name.size() > 128) return invalid_argument("app name must be 1..128 characters");
  std::string tenant_id = spec.tenant_id;
  if (tenant_id.empty()) {
    SIGIL_ASSIGN_OR_RETURN(auto tenants, store.list_tenants());
    if (tenants.empty()) {
      store::Tenant t{crypto::random_token(12), "default", clock.now_s()};
      SIGIL_TRY(store.create_tenant(t));
      tenant_id = t.id;
    } else {
      tenant_id = tenants.front().id;
    }
  } else {
    SIGIL_ASSIGN_OR_RETURN(auto t, store.find_tenant(tenant_id));
    if (!t) return make_error(ErrorCode::kNotFound, fmt::format("no tenant '{}'", tenant_id));
  }
  SIGIL_ASSIGN_OR_RETURN(auto existing, store.find_app_by_name(tenant_id, spec.name));
  if (existing) return make_error(ErrorCode::kConflict, fmt::format("an app named '{}' exists", spec.name));
  store::App app;
  app.id = crypto::random_token(12);
  app.tenant_id = tenant_id;
  app.name = spec.name;
  app.redirect_uris = spec.redirect_uris;
  app.origins = spec.origins;
  app.rp_id = spec.rp_id;
  app.resources = spec.resources;
  app.allow_client_challenges = spec.allow_client_challenges;
  app.public_signup = spec.public_signup;
  if (spec.user_verification != "required" && spec.user_verification != "preferred" &&
      spec.user_verification != "discouraged") {
    return invalid_argument("user verification must be required, preferred or discouraged");
  }
  if (spec.attestation_trust != "none" && spec.attestation_trust != "direct") {
    return invalid_argument("attestation trust must be none or direct");
  }
  if (spec.attestation_trust == "direct" && spec.trust_anchor_files.empty()) {
    return invalid_argument("attestation trust 'direct' needs --trust-anchors");
  }
  app.user_verification = spec.user_verification;
  app.attestation_trust = spec.attestation_trust;
  app.trust_anchor_files = spec.trust_anchor_files;
  app.top_origins = spec.top_origins;
  app.created_at = clock.now_s();
  SIGIL_TRY(store.create_app(app));
  return create_client(store, app, clock);
}

Result<DemoCredentials> read_demo_credentials(const std::string& data_dir) {
  const std::string path = data_dir + "/demo-app.json";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kUnavailable, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 1024 * 1024) text.append(buf, static_cast<size_t>(n));
  ::close(fd);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view id, secret;
  if (parser.parse(text).get(root) || root["client_id"].get_string().get(id) ||
      root["client_secret"].get_string().get(secret) || id.empty()) {
    return make_error(ErrorCode::kUnavailable, fmt::format("{} is malformed", path));
  }
  return DemoCredentials{std::string(id), std::string(secret)};
}

std::string app_json(const store::App& app, const std::vector<std::string>& client_ids) {
  JsonWriter w;
  w.begin_object();
  w.key("app_id").string(app.id);
  w.key("tenant_id").string(app.tenant_id);
  w.key("name").string(app.name);
  w.key("redirect_uris");
  write_array(w, app.redirect_uris);
  w.key("origins");
  write_array(w, app.origins);
  w.key("rp_id").string(app.rp_id);
  w.key("resources");
  write_array(w, app.resources);
  w.key("allow_client_challenges").boolean(app.allow_client_challenges);
  w.key("public_signup").boolean(app.public_signup);
  w.key("user_verification").string(app.user_verification);
  w.key("attestation_trust").string(app.attestation_trust);
  w.key("trust_anchor_files");
  write_array(w, app.trust_anchor_files);
  w.key("top_origins");
  write_array(w, app.top_origins);
  w.key("client_ids");
  write_array(w, client_ids);
  w.end_object();
  return std::move(w).str();
}

Result<void> ensure_demo_app(store::Store& store, const Config& config, const Clock& clock) {
  const std::string path = config.data_dir + "/demo-app.json";
  SIGIL_ASSIGN_OR_RETURN(auto tenants, store.list_tenants());
  std::optional<store::App> app;
  for (const auto& t : tenants) {
    SIGIL_ASSIGN_OR_RETURN(app, store.find_app_by_name(t.id, std::string(kDemoAppName)));
    if (app) break;
  }
  if (app) {
    // Data from before the demo relying party: its logout returns to <public_url>/demo.
    const std::string demo_page = config.public_url + "/demo";
    if (std::find(app->redirect_uris.begin(), app->redirect_uris.end(), demo_page) == app->redirect_uris.end()) {
      app->redirect_uris.push_back(demo_page);
      SIGIL_TRY(store.update_app(*app));
    }
  }
  if (app && ::access(path.c_str(), F_OK) == 0) {
    fmt::print("sigild: demo app '{}' reused; its credentials are in {}\n", app->id, path);
    return {};
  }
  CreatedApp created;
  if (app) {
    // The credentials file was removed: the old secret is unrecoverable (stored hashed), so mint a client.
    SIGIL_ASSIGN_OR_RETURN(created, create_client(store, *app, clock));
  } else {
    store::Tenant tenant{crypto::random_token(12), "demo", clock.now_s()};
    SIGIL_TRY(store.create_tenant(tenant));
    NewApp spec;
    spec.tenant_id = tenant.id;
    spec.name = std::string(kDemoAppName);
    spec.redirect_uris = {config.public_url + "/demo/callback", config.public_url + "/demo"};
    spec.origins = {config.public_url};
    spec.rp_id = host_of(config.public_url);
    SIGIL_ASSIGN_OR_RETURN(created, create_app(store, spec, clock));
  }
  JsonWriter w;
  w.begin_object();
  w.key("tenant_id").string(created.app.tenant_id);
  w.key("app_id").string(created.app.id);
  w.key("app_name").string(created.app.name);
  w.key("client_id").string(created.client_id);
  w.key("client_secret").string(created.client_secret);
  w.key("redirect_uris");
  write_array(w, created.app.redirect_uris);
  w.key("origins");
  write_array(w, created.app.origins);
  w.key("rp_id").string(created.app.rp_id);
  w.key("issuer").string(config.issuer);
  w.key("base_url").string(fmt::format("http://{}:{}", config.listen_address.find(':') != std::string::npos
                                                           ? "[" + config.listen_address + "]"
                                                           : config.listen_address,
                                       config.port));
  w.end_object();
  SIGIL_TRY(write_file_0600(path, std::move(w).str() + "\n"));
  fmt::print("sigild: demo app created; client_id={} (secret in {})\n", created.client_id, path);
  return {};
}

}  // namespace sigil::server
