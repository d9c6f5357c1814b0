// `eta route`: an HTTP reverse proxy for the OpenAI API in front of N vLLM replicas that sends
// each request where the configured policy (by default `eta`: predicted completion time) says.
// This header is free of Beast and Asio (only a forward declaration of asio::io_context). What
// the router decides lives in its pure core (router/core/: RouterCore, admission, the retry
// policy, the replica set, the settings and the reload plan); the parts around it are listed in
// router_impl.hpp. router.cpp and net_env.cpp are the only translation units of src/router/
// that include Asio, and they use Beast only through src/http/'s Beast-free headers.
//
// Threading (`threads:`; docs/architecture.md "Threading"): worker 0 is the io_context given
// here (admin listener, poller, timers, signals, peer sync, KV events, plus a client listener);
// workers 1..N-1 run their own io_context, client listener (SO_REUSEPORT) and upstream pools. A
// call stays on the worker that accepted it; the core's shared state is touched under its one
// mutex, and a streamed answer's relaying and scanning run outside it.
//
// What it serves, how it routes, retries and sheds: docs/architecture.md ("eta route").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "router/config.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace eta::router {

class AccessLog;

class Router {
 public:
  // `config` must have passed validate_config.
  Router(boost::asio::io_context& io, RouterConfig config);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Binds the client listener and (unless admin_port is -1) the admin listener. One line in
  // `error` on failure.
  bool listen(std::string& error);
  uint16_t port() const;
  uint16_t admin_port() const;  // 0 without an admin listener

  // Starts accepting and polling the replicas. `on_ready` runs once every replica has answered
  // (or failed) its first health check and model list, or after a short start-up bound.
  void start(std::function<void()> on_ready = {});
  // Stops accepting, closes connections, stops polling.
  void stop();
  // Writes one access-log line per finished request from now on (null: none).
  void set_access_log(std::unique_ptr<AccessLog> log);

  // Graceful shutdown: stops accepting connections; new requests on open connections get 503
  // (and the connection closes); /health answers 503. Requests in flight or queued may finish
  // for up to the configuration's shutdown_grace_s; then queued and buffered ones get 503 and
  // open streams an SSE error event, and `on_done` runs (at once when nothing is in flight).
  // Call stop() after.
  void shutdown(std::function<void()> on_done);

  // Applies a new configuration (from validate_config) without dropping a request: replicas
  // added (probed at once) and removed (as the admin API's remove: in-flight requests finish),
  // the policy rebuilt if its name, parameters or seed changed, and every other setting taken,
  // except those fixed at start (listeners, max_body_bytes, decision_log_size, stale_after_s,
  // health thresholds of existing replicas, a known replica's weight/gpu/arch), which keep their
  // values with a warning each. Returns false (nothing applied) with one line in `error`.
  bool reload(RouterConfig config, std::string& error);

  struct Impl;  // router_impl.hpp (internal to src/router/)

 private:
  std::unique_ptr<Impl> impl_;
};

// Loads a fresh configuration (the file and the flags again) for SIGHUP; false with one line.
using ConfigLoader = std::function<bool(RouterConfig& out, std::string& error)>;

// Runs a Router on this thread until SIGINT or SIGTERM. Prints "listening on http://HOST:PORT"
// and then "admin on http://HOST:PORT" on stdout (flushed) once the replicas have been probed.
// SIGTERM (or SIGINT) shuts down gracefully (Router::shutdown with config.shutdown_grace_s); a
// second one stops at once. SIGHUP calls `reload` (if set) and applies the result; a failure
// is logged ("reload rejected: ...") and the running configuration kept.
// Returns the exit code: 0 after a signal, 2 if it cannot listen.
int run_until_signal(const RouterConfig& config, const ConfigLoader& reload = {});

}  // namespace eta::router
