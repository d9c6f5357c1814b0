// `eta vllm-sim`: a simulated vLLM OpenAI-compatible server. One io_context, one thread: the
// HTTP server (src/http/server.hpp) and the engine loop share it.
//
// Engine loop: while the engine has unfinished work it calls engine.step(sim_now), waits on a
// timer until the step's end in wall time (sim duration / time_scale), then delivers the step's
// tokens to the waiting requests (one SSE event per step that produced a token for a streaming
// request), updates the `vllm:` metrics and steps again; when idle it sleeps until a request
// arrives. Requests that arrive during a step join at the next one. The simulated clock is
// sim_now = (wall time since start) * time_scale, and every time in /metrics is simulated.
// A client that disconnects is aborted in the engine at once (request_success{abort}).
//
// Endpoints: GET /health, GET|POST /ping, GET /version, GET /load, GET /v1/models,
// POST /v1/completions, POST /v1/chat/completions, POST /tokenize, GET /metrics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/engine.hpp"
#include "http/server.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace eta::vllm_sim {

struct SimConfig {
  engine::EngineConfig engine;  // resolved (EngineConfig::resolved())
  std::string model;            // served model name
  double time_scale = 1.0;      // simulated seconds per wall second
  uint64_t seed = 0;
  bool num_gpu_blocks_override = false;  // shown in vllm:cache_config_info
  http::ServerOptions http;
};

class SimServer {
 public:
  SimServer(boost::asio::io_context& io, SimConfig config);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  // Binds the listening socket; returns false with one line in `error` on failure.
  bool listen(std::string& error);
  uint16_t port() const;
  // Starts accepting and the engine loop.
  void start();
  // Stops accepting, closes connections, stops the engine loop.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs a SimServer on this thread until SIGINT or SIGTERM. Prints
// "listening on http://HOST:PORT" on stdout (flushed) once listening. Returns the exit code:
// 0 after a signal, 2 if it cannot listen.
int run_until_signal(const SimConfig& config);

}  // namespace eta::vllm_sim
