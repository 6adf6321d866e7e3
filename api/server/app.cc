#include "api/server/app.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "api/auth/tokens.h"
#include "api/http/server.h"
#include "api/server/router.h"
#include "api/server/setup.h"
#include "api/service/context.h"
#include "api/store/sqlite_store.h"
#include "engine/base/json_writer.h"
#include "engine/challenge/challenge_store.h"
#include "engine/crypto/digest.h"

namespace sigil::server {

struct SigilServer::Impl {
  Config config;
  const Clock* clock = nullptr;
  std::unique_ptr<store::SqliteStore> store;
  std::unique_ptr<auth::TokenService> tokens;
  std::unique_ptr<challenge::ChallengeStore> challenges;
  std::unique_ptr<service::OutboxSender> outbox;
  std::unique_ptr<service::ServiceContext> ctx;
  std::unique_ptr<batch::BatchVerifier> verifier;  // after the services it calls, before the router
  std::unique_ptr<Router> router;
  std::atomic<Router*> live_router{nullptr};
  std::unique_ptr<http::Server> http;
};

SigilServer::SigilServer() : impl_(std::make_unique<Impl>()) {}
SigilServer::~SigilServer() { stop(); }

uint16_t SigilServer::port() const noexcept { return impl_->http ? impl_->http->port() : 0; }
const Config& SigilServer::config() const noexcept { return impl_->config; }

void SigilServer::stop() {
  if (impl_ && impl_->http) impl_->http->stop();
}

Result<std::unique_ptr<SigilServer>> SigilServer::start(Config config, const Clock& clock) {
  std::unique_ptr<SigilServer> server(new SigilServer());
  Impl& s = *server->impl_;
  s.clock = &clock;
  SIGIL_TRY(ensure_data_dir(config.data_dir));
  SIGIL_ASSIGN_OR_RETURN(s.store, store::SqliteStore::open(config.data_dir + "/sigil.db", clock));
  SIGIL_ASSIGN_OR_RETURN(Bytes kek, auth::load_or_create_kek(config.data_dir));
  SIGIL_ASSIGN_OR_RETURN(auto keys, auth::load_or_create_signing_keys(*s.store, kek, clock));

  http::ServerOptions options;
  options.address = config.listen_address;
  options.port = config.port;
  options.io_threads = config.io_threads;
  options.body_limit = config.body_limit;
  Impl* impl = &s;
  s.http = std::make_unique<http::Server>(options, [impl](http::Request&& req, http::Responder respond) {
    Router* router = impl->live_router.load(std::memory_order_acquire);
    if (router == nullptr) {
      http::Response r;
      r.status = 503;
      r.body = R"({"message":"Service unavailable","error_code":503})";
      return respond(std::move(r));
    }
    router->handle(std::move(req), respond);
  });
  SIGIL_TRY(s.http->start());
  config.port = s.http->port();
  finalize_urls(config);
  s.config = config;

  auth::AuthConfig auth_config;
  auth_config.issuer = config.issuer;
  s.tokens = std::make_unique<auth::TokenService>(*s.store, clock, auth_config, std::move(keys));
  s.challenges = std::make_unique<challenge::ChallengeStore>(
      clock, challenge::ChallengeStore::Options{config.challenge_capacity});
  SIGIL_ASSIGN_OR_RETURN(s.outbox, service::OutboxSender::open(config.data_dir + "/outbox", clock));
  // OTPs and one-time tokens are stored under a key derived from the KEK, never in clear.
  auto otp_key = crypto::hmac_sha256(kek, as_bytes(std::string_view("sigil otp key v1")));
  crypto::wipe(kek);
  s.ctx = std::unique_ptr<service::ServiceContext>(new service::ServiceContext{
      *s.store, *s.tokens, *s.challenges, *s.outbox, clock, config.public_url,
      Bytes(otp_key.begin(), otp_key.end())});
  if (config.demo) SIGIL_TRY(ensure_demo_app(*s.store, config, clock));
  RouterOptions router_options;
  router_options.issuer = config.issuer;
  if (config.demo_rp) {
    // The demo relying party signs in as the demo app's client, with the credentials written on first start.
    auto demo = read_demo_credentials(config.data_dir);
    if (demo) {
      router_options.demo_rp = DemoRpConfig{demo->client_id, demo->client_secret, config.public_url, config.issuer};
    } else {
      fmt::print(stderr, "sigild: demo_rp is on but the demo app is missing ({}); /demo is not served\n",
                 demo.error().message);
    }
  }
  // Login completions run on the verification arena, sized to the machine (DESIGN.md engine/batch).
  s.verifier = std::make_unique<batch::BatchVerifier>();
  router_options.verifier = s.verifier.get();
  s.router = std::make_unique<Router>(*s.ctx, std::move(router_options));
  s.live_router.store(s.router.get(), std::memory_order_release);
  return server;
}

}  // namespace sigil::server
