// `eta vllm-sim`: a simulated vLLM OpenAI-compatible server. One io_context, one thread: the
// HTTP server (src/http/server.hpp) and the engine loop share it.
//
// Engine loop: while the engine has unfinished work it calls engine.step(sim_now), waits on a
// timer until the step's end in wall time (sim duration / time_scale), then delivers the step's
// tokens to the waiting requests (an SSE event per step that produced a token for a streaming
// request, or per --stream-interval tokens), updates the `vllm:` metrics and steps again; when idle
// it sleeps until a request arrives. Requests that arrive during a step join at the next one. The
// simulated clock is sim_now = (wall time since start) * time_scale, and every time in /metrics is
// simulated. A client that disconnects is aborted in the engine at once (request_success{abort}).
//
// Endpoints (vLLM's 2026 set; docs/architecture.md lists the rules): GET /health,
// GET|POST /ping, GET /version, GET /load, GET /v1/models, GET /metrics, POST /v1/completions,
// /v1/chat/completions, /v1/responses (+ GET /v1/responses/{id}, POST .../{id}/cancel),
// /v1/messages, /v1/messages/count_tokens, /v1/completions/render, /v1/chat/completions/render,
// /v1/embeddings, /pooling, /classify, /score, /v1/score, /rerank, /v1/rerank, /v2/rerank,
// /v1/audio/transcriptions, /v1/audio/translations, /tokenize, /detokenize. A request with n
// samples of P prompts is n x P engine sequences.
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
  // vLLM's --api-key / VLLM_API_KEY: when not empty, every path starting with /v1 needs
  // "Authorization: Bearer <one of these>" (OPTIONS excepted); otherwise 401
  // {"error":"Unauthorized"}. Other paths (/health, /metrics, /tokenize, ...) stay open.
  std::vector<std::string> api_keys;
  // vLLM's --stream-interval: a streamed choice sends its first token at once, then events of
  // this many tokens (a request's stream_interval may raise it), the rest with its finish.
  int stream_interval = 1;
  // vLLM's --max-num-queued-reqs: more in-flight sequences (waiting + running; a request with
  // n counts n) than this get 503. 0: no limit.
  int max_num_queued_reqs = 0;
  // Prompt tokens counted per non-text chat content part (image, audio, video).
  int media_part_tokens = 576;
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
