// `eta route`: an HTTP reverse proxy for the OpenAI API in front of N vLLM replicas that sends
// each request where the configured policy (by default `eta`: predicted completion time) says.
// This header is free of Beast and Asio (only a forward declaration of asio::io_context);
// router.cpp is the only translation unit of src/router/ that includes Asio, and it uses Beast
// only through src/http/'s Beast-free headers.
//
// Threading: one io_context run by one thread carries everything: the client listener, the admin
// listener, every replica's upstream pool, the scrape / health / models timers, the admission
// queue and the ClusterState (ledger, speed models, prefix index, output predictor). All of it
// is touched only from that thread, so nothing on the data path takes a lock.
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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs a Router on this thread until SIGINT or SIGTERM. Prints "listening on http://HOST:PORT"
// and then "admin on http://HOST:PORT" on stdout (flushed) once the replicas have been probed.
// Returns the exit code: 0 after a signal, 2 if it cannot listen.
int run_until_signal(const RouterConfig& config);

}  // namespace eta::router
