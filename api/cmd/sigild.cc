// sigild: the sigil authentication server.
#include <csignal>
#include <cstdio>
#include <fmt/format.h>
#include <string>
#include <vector>

#include "api/server/app.h"
#include "api/server/config.h"
#include "engine/base/clock.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      fmt::print("{}", sigil::server::usage());
      return 0;
    }
  }
  auto config = sigil::server::load_config(args);
  if (!config) {
    fmt::print(stderr, "sigild: {}\n", config.error().message);
    return 2;
  }
  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // A write past a file-size limit must fail with EFBIG (answered 503 by the store), not kill the server.
  std::signal(SIGXFSZ, SIG_IGN);

  static sigil::SystemClock clock;
  auto server = sigil::server::SigilServer::start(*config, clock);
  if (!server) {
    fmt::print(stderr, "sigild: cannot start: {}\n", server.error().message);
    return 1;
  }
  const auto& c = (*server)->config();
  fmt::print("sigild: listening on {}:{} (issuer {}, data in {})\n", c.listen_address, (*server)->port(),
             c.issuer, c.data_dir);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  fmt::print("sigild: signal {} received, stopping\n", sig);
  (*server)->stop();
  fmt::print("sigild: stopped\n");
  return 0;
}
