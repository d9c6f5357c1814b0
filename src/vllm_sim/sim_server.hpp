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
//
// Fault injection (for testing routers; all off by default): `fail_rate` answers that fraction
// of generation requests with vLLM's 500 body (seeded, decided at arrival, before the engine
// sees the request); `metrics_fault` makes GET /metrics hang (never answer) or answer 200 with
// text that is not Prometheus; `request_log` appends one line per generation-request event to
// a file ("<unix time> <event> <X-Request-Id or ->", events recv, ok, abort, fail), flushed at
// once so that it survives a SIGKILL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "http/server.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace eta::vllm_sim {

enum class MetricsFault { kNone, kHang, kGarbage };

struct SimConfig {
  engine::EngineConfig engine;  // resolved (EngineConfig::resolved())
  std::string model;            // served model name
  double time_scale = 1.0;      // simulated seconds per wall second
  uint64_t seed = 0;
  bool num_gpu_blocks_override = false;  // shown in vllm:cache_config_info
  http::ServerOptions http;
  double fail_rate = 0;  // fraction of generation requests answered 500
  MetricsFault metrics_fault = MetricsFault::kNone;
  std::string request_log;  // file path; empty: none
  // vLLM's serve flags (issue 16 item 1): the further --served-model-name values (accepted in
  // requests and listed in /v1/models; responses and metrics carry `model`, the first), the
  // --model path (/v1/models' root; empty: `model`), and --disable-log-stats (no vllm: series).
  std::vector<std::string> served_model_aliases;
  std::string model_root;
  bool disable_log_stats = false;
};

class SimServer {
 public:
  SimServer(boost::asio::io_context& io, SimConfig config);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  // Binds the listening socket (and opens the request log); returns false with one line in
  // `error` on failure.
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
