// run_until_signal: `eta route`'s main loop (router.hpp): one io_context on this thread, the
// Router on it, and the signals (SIGTERM/SIGINT: graceful shutdown, then at once; SIGHUP: reload).
#include <csignal>
#include <cstdio>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "router/access_log.hpp"
#include "router/router.hpp"

namespace eta::router {

namespace asio = boost::asio;

int run_until_signal(const RouterConfig& config, const ConfigLoader& reload) {
  std::string error;
  if (!setup_logging(config.log_level, config.log_format, error)) {
    std::fprintf(stderr, "eta route: %s\n", error.c_str());
    return 2;
  }
  std::unique_ptr<AccessLog> access_log = AccessLog::open(config.access_log, error);
  if (!access_log && !error.empty()) {
    std::fprintf(stderr, "eta route: %s\n", error.c_str());
    return 2;
  }

  asio::io_context io(1);
  Router router(io, config);
  router.set_access_log(std::move(access_log));
  if (!router.listen(error)) {
    std::fprintf(stderr, "eta route: %s\n", error.c_str());
    return 2;
  }
  auto url = [](std::string host, uint16_t port) {
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return "http://" + host + ":" + std::to_string(port);
  };
  router.start([&] {
    std::string listen_url = url(config.listen.host, router.port());
    if (!config.tls.cert_file.empty()) listen_url.insert(4, "s");  // https://
    std::printf("listening on %s\n", listen_url.c_str());
    if (config.admin.port >= 0) {
      std::printf("admin on %s\n", url(config.admin.host, router.admin_port()).c_str());
    }
    std::fflush(stdout);
  });
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  bool terminating = false;
  bool drain = false;  // graceful shutdown done: let the last bytes out before returning
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          if (terminating) {
            spdlog::warn("SIGHUP ignored: shutting down");
          } else if (!reload) {
            spdlog::warn("SIGHUP ignored: no --config file to reload");
          } else {
            RouterConfig next;
            std::string err;
            if (!reload(next, err) || !router.reload(std::move(next), err)) {
              spdlog::error("reload rejected: {}; keeping the running configuration", err);
            }
          }
        } else if (terminating) {
          spdlog::warn("second signal: stopping now");
          router.stop();
          io.stop();
          return;
        } else {
          terminating = true;
          router.shutdown([&] {
            router.stop();
            drain = true;
            io.stop();
          });
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  io.run();
  if (drain) {
    // Nothing is in flight, but the last responses may still be on their way out: the TLS front
    // relays them from the inner listener after the router has ended them. Run until nothing is
    // left (the front's sessions end once their inner connections are closed), 2 s at most.
    signals.cancel();
    io.restart();
    io.run_for(std::chrono::seconds(2));
  }
  return 0;
}

}  // namespace eta::router
