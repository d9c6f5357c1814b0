#include "vllm_sim/sim_server.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frames (awaitable_frame_base
// has matching class-specific operator new/delete).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/tokenizer.hpp"
#include "metrics/registry.hpp"
#include "openai/request.hpp"
#include "openai/response.hpp"
#include "vllm_sim/prepare.hpp"
#include "vllm_sim/sim_metrics.hpp"

namespace eta::vllm_sim {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using engine::FinishReason;
using engine::RequestId;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kSseContentType = "text/event-stream; charset=utf-8";
constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
// The vLLM version whose API the simulator reproduces (nested error bodies: >= 0.10.1;
// context-length messages: >= 0.10.2).
constexpr std::string_view kVllmVersion = "0.10.2";
// A step that starts within this much wall time of the previous step's end starts exactly at it
// (timer wake-up latency and CPU contention do not leak into the simulated timeline); further
// behind, the simulated timeline re-anchors to the wall clock.
constexpr double kChainTolerance = 0.020;

void report_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "vllm-sim: unexpected exception: %s\n", ex.what());
  } catch (...) {
    std::fprintf(stderr, "vllm-sim: unexpected exception\n");
  }
}

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kAbort:
      return "abort";
    default:
      return "length";
  }
}

}  // namespace

// One request between its arrival and its last byte.
struct Pending {
  RequestId id = 0;
  http::ExchangePtr exchange;
  openai::Endpoint endpoint = openai::Endpoint::kCompletions;
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage = false;
  int prompt_tokens = 0;
  int max_tokens = 0;
  uint64_t output_seed = 0;
  int tokens_generated = 0;
  double arrival = 0;
  double last_token_time = 0;
  bool gone = false;  // the client left after the engine finished it (delivery pending)
  std::string response_id;
  int64_t created = 0;

  openai::ResponseMeta meta(const std::string& model) const {
    return openai::ResponseMeta{response_id, created, model};
  }
  openai::Usage usage() const {
    openai::Usage u;
    u.prompt_tokens = prompt_tokens;
    u.completion_tokens = tokens_generated;
    return u;
  }
};

struct SimServer::Impl {
  Impl(asio::io_context& io_in, SimConfig config_in)
      : io(io_in),
        config(std::move(config_in)),
        engine(config.engine),
        metrics(registry,
                SimMetricsConfig{config.model, config.engine, config.num_gpu_blocks_override}),
        server(io_in, config.http, [this](http::ExchangePtr e) { routes.dispatch(e); }),
        step_timer(io_in),
        wake_timer(io_in),
        start_wall(Clock::now()),
        created(static_cast<int64_t>(std::time(nullptr))),
        id_state(config.seed ^ static_cast<uint64_t>(created)),
        fault_state(config.seed * 0x2545f4914f6cdd1dull + 1) {
    prepare_ctx.model = config.model;
    prepare_ctx.model_aliases = config.served_model_aliases;
    prepare_ctx.max_model_len = config.engine.max_model_len;
    prepare_ctx.block_size = config.engine.block_size;
    prepare_ctx.enable_prefix_caching = config.engine.enable_prefix_caching;
    prepare_ctx.seed = config.seed;
    add_routes();
    metrics.sync_gauges(engine);
  }

  double sim_now() const {
    std::chrono::duration<double> wall = Clock::now() - start_wall;
    return wall.count() * config.time_scale;
  }
  Clock::time_point wall_at(double sim_time) const {
    return start_wall + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(sim_time / config.time_scale));
  }

  void add_routes();
  void handle_generate(const http::ExchangePtr& exchange, openai::Endpoint endpoint);
  void handle_tokenize(const http::ExchangePtr& exchange);
  void on_client_gone(RequestId id);
  void deliver(const engine::StepResult& step);
  void send_token(Pending& p, const engine::TokenEvent& ev);
  void finish(Pending& p, FinishReason reason);
  void append_event(std::string_view json);
  void append_content_chunk(const Pending& p, std::string_view text, const openai::Finish* finish);
  void erase(RequestId id);
  void wake();
  std::string new_response_id(openai::Endpoint endpoint);
  void log_request(std::string_view event, std::string_view request_id);
  bool inject_failure();
  asio::awaitable<void> engine_loop();

  asio::io_context& io;
  SimConfig config;
  engine::Engine engine;
  metrics::Registry registry;
  SimMetrics metrics;
  http::Routes routes;
  http::Server server;
  asio::steady_timer step_timer;
  asio::steady_timer wake_timer;
  Clock::time_point start_wall;
  int64_t created;
  uint64_t id_state;
  PrepareContext prepare_ctx;

  std::unordered_map<RequestId, std::unique_ptr<Pending>> pending;
  RequestId next_id = 1;
  bool stopped = false;
  bool idle_waiting = false;
  bool delivering = false;
  double last_step_end = -1;  // simulated end of the last executed step
  std::vector<RequestId> deferred_gone;
  std::FILE* request_log = nullptr;
  uint64_t fault_state = 0;
  std::vector<http::ExchangePtr> hung;  // /metrics requests held by MetricsFault::kHang
  engine::StepResult step_result;
  std::string scratch;
};

// ---------------------------------------------------------------------------------------------
// Routes

void SimServer::Impl::add_routes() {
  auto empty_ok = [](http::ExchangePtr e) {
    http::Response r;
    r.content_type.clear();
    e->respond(std::move(r));
  };
  routes.add("GET", "/health", empty_ok);
  routes.add("GET", "/ping", empty_ok);
  routes.add("POST", "/ping", empty_ok);
  routes.add("GET", "/version", [](http::ExchangePtr e) {
    http::Response r;
    r.body = openai::version_body(kVllmVersion);
    e->respond(std::move(r));
  });
  routes.add("GET", "/load", [this](http::ExchangePtr e) {
    http::Response r;
    r.body = openai::load_body(static_cast<int64_t>(pending.size()));
    e->respond(std::move(r));
  });
  routes.add("GET", "/v1/models", [this](http::ExchangePtr e) {
    // One card per served name (vLLM's base_model_paths), each rooted at the --model path.
    std::vector<openai::ModelCard> cards;
    std::vector<std::string> names = {config.model};
    names.insert(names.end(), config.served_model_aliases.begin(),
                 config.served_model_aliases.end());
    for (const std::string& name : names) {
      openai::ModelCard card;
      card.id = name;
      card.root = config.model_root.empty() ? config.model : config.model_root;
      card.created = created;
      card.max_model_len = config.engine.max_model_len;
      card.eta_time_scale = config.time_scale;
      cards.push_back(std::move(card));
    }
    http::Response r;
    r.body = openai::models_body(cards);
    e->respond(std::move(r));
  });
  routes.add("GET", "/metrics", [this](http::ExchangePtr e) {
    if (config.metrics_fault == MetricsFault::kHang) {
      // Never answered; dropped when the client leaves (or at the next scrape after that).
      std::erase_if(hung, [](const http::ExchangePtr& h) { return h->disconnected(); });
      hung.push_back(std::move(e));
      return;
    }
    http::Response r;
    r.content_type = std::string(kMetricsContentType);
    r.body = config.metrics_fault == MetricsFault::kGarbage
                 ? std::string("vllm:num_requests_running{ 12 garbage\n\x01\x02 not prometheus\n")
             : config.disable_log_stats ? std::string()  // --disable-log-stats: no vllm: series
                                        : registry.render();
    e->respond(std::move(r));
  });
  routes.add("POST", "/v1/completions",
             [this](http::ExchangePtr e) { handle_generate(e, openai::Endpoint::kCompletions); });
  routes.add("POST", "/v1/chat/completions",
             [this](http::ExchangePtr e) { handle_generate(e, openai::Endpoint::kChat); });
  routes.add("POST", "/tokenize", [this](http::ExchangePtr e) { handle_tokenize(e); });
}

std::string SimServer::Impl::new_response_id(openai::Endpoint endpoint) {
  const uint64_t hi = splitmix(id_state);
  const uint64_t lo = splitmix(id_state);
  return openai::make_response_id(endpoint, hi, lo);
}

void SimServer::Impl::log_request(std::string_view event, std::string_view request_id) {
  if (!request_log) return;
  const double t =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::fprintf(request_log, "%.6f %.*s %.*s\n", t, static_cast<int>(event.size()), event.data(),
               request_id.empty() ? 1 : static_cast<int>(request_id.size()),
               request_id.empty() ? "-" : request_id.data());
  std::fflush(request_log);
}

bool SimServer::Impl::inject_failure() {
  if (config.fail_rate <= 0) return false;
  const double u = static_cast<double>(splitmix(fault_state) >> 11) * 0x1.0p-53;
  return u < config.fail_rate;
}

void SimServer::Impl::handle_tokenize(const http::ExchangePtr& exchange) {
  openai::RequestFields req;
  openai::Error error;
  if (!openai::parse_tokenize_request(exchange->request().body, req, error)) {
    exchange->respond(http::error_response(error));
    return;
  }
  if (!prepare_ctx.serves(req.model)) {
    exchange->respond(http::error_response(openai::model_not_found(req.model)));
    return;
  }
  std::vector<uint32_t> tokens = prompt_token_ids(req);
  http::Response r;
  r.body = openai::tokenize_body(tokens, config.engine.max_model_len);
  exchange->respond(std::move(r));
}

void SimServer::Impl::handle_generate(const http::ExchangePtr& exchange,
                                      openai::Endpoint endpoint) {
  const std::string_view request_id = exchange->request().header("x-request-id");
  log_request("recv", request_id);
  openai::RequestFields fields;
  openai::Error error;
  if (!openai::parse_request(endpoint, exchange->request().body, fields, error)) {
    log_request("fail", request_id);
    exchange->respond(http::error_response(error));
    return;
  }
  if (inject_failure()) {
    log_request("fail", request_id);
    exchange->respond(
        http::error_response(openai::internal_error("Injected failure (--fail-rate).")));
    return;
  }
  PreparedRequest prepared;
  if (!prepare_request(fields, prepare_ctx, prepared, error)) {
    log_request("fail", request_id);
    exchange->respond(http::error_response(error));
    return;
  }
  const RequestId id = next_id++;
  const double now = sim_now();
  engine::EngineRequest er;
  er.id = id;
  er.prompt_tokens = prepared.prompt_tokens;
  er.block_hashes = std::move(prepared.block_hashes);
  er.output_tokens = prepared.output.tokens;
  er.finish_reason = prepared.output.reason;
  er.output_seed = prepared.output_seed;
  er.arrival_time = now;
  if (!engine.add_request(std::move(er))) {
    log_request("fail", request_id);
    exchange->respond(http::error_response(
        openai::bad_request("The request needs more KV cache blocks than the engine has (" +
                            std::to_string(config.engine.num_gpu_blocks) + ").")));
    return;
  }
  auto p = std::make_unique<Pending>();
  p->id = id;
  p->exchange = exchange;
  p->endpoint = endpoint;
  p->stream = fields.stream;
  p->include_usage = fields.include_usage;
  p->continuous_usage = fields.continuous_usage_stats;
  p->prompt_tokens = prepared.prompt_tokens;
  p->max_tokens = prepared.max_tokens;
  p->output_seed = prepared.output_seed;
  p->arrival = now;
  p->response_id = new_response_id(endpoint);
  p->created = static_cast<int64_t>(std::time(nullptr));
  if (p->stream) exchange->start_stream(200, kSseContentType);
  exchange->on_disconnect([this, id] { on_client_gone(id); });
  pending.emplace(id, std::move(p));
  metrics.sync_gauges(engine);
  wake();
}

// ---------------------------------------------------------------------------------------------
// Engine loop and delivery

void SimServer::Impl::wake() {
  if (idle_waiting) wake_timer.cancel();
}

asio::awaitable<void> SimServer::Impl::engine_loop() {
  while (!stopped) {
    if (!engine.has_unfinished()) {
      last_step_end = -1;  // the next step starts at the arrival that wakes the loop
      idle_waiting = true;
      wake_timer.expires_at(Clock::time_point::max());
      co_await wake_timer.async_wait(kTuple);
      idle_waiting = false;
      continue;
    }
    // Back-to-back steps chain exactly in simulated time (the timer's wake-up latency does not
    // leak into the simulated timeline); after an idle gap, or if the process fell behind, the
    // step starts at the current simulated time.
    double now = sim_now();
    if (last_step_end >= 0 && now - last_step_end <= kChainTolerance * config.time_scale) {
      now = last_step_end;
    }
    engine.step(now, step_result);
    metrics.sync_gauges(engine);
    if (step_result.idle()) {
      // Unfinished work but nothing schedulable: wait for an arrival or an abort.
      idle_waiting = true;
      wake_timer.expires_after(std::chrono::milliseconds(10));
      co_await wake_timer.async_wait(kTuple);
      idle_waiting = false;
      continue;
    }
    metrics.observe_iteration_tokens(step_result.num_scheduled_tokens);
    step_timer.expires_at(wall_at(step_result.end));
    co_await step_timer.async_wait(kTuple);
    if (stopped) break;
    last_step_end = step_result.end;
    deliver(step_result);
  }
}

void SimServer::Impl::deliver(const engine::StepResult& step) {
  delivering = true;
  for (const auto& ev : step.tokens) {
    auto it = pending.find(ev.id);
    if (it == pending.end()) continue;
    Pending& p = *it->second;
    if (ev.index == 0) {
      metrics.observe_first_token(step.end - p.arrival);
    } else {
      metrics.observe_inter_token(step.end - p.last_token_time);
    }
    p.last_token_time = step.end;
    p.tokens_generated = ev.index + 1;
    if (!p.gone) send_token(p, ev);
  }
  for (const auto& f : step.finished) {
    auto it = pending.find(f.id);
    int max_tokens = it != pending.end() ? it->second->max_tokens : f.output_tokens;
    metrics.observe_finished(f, max_tokens);
    if (it == pending.end()) continue;
    Pending& p = *it->second;
    if (!p.gone) finish(p, f.reason);
    erase(f.id);
  }
  metrics.sync_counters(engine);
  metrics.sync_gauges(engine);
  delivering = false;
  auto gone = std::move(deferred_gone);
  deferred_gone.clear();
  for (RequestId id : gone) on_client_gone(id);
}

void SimServer::Impl::append_event(std::string_view json) {
  scratch.append("data: ");
  scratch.append(json);
  scratch.append("\n\n");
}

void SimServer::Impl::append_content_chunk(const Pending& p, std::string_view text,
                                           const openai::Finish* finish) {
  const auto meta = p.meta(config.model);
  const openai::Usage usage = p.usage();
  const openai::Usage* u = p.continuous_usage ? &usage : nullptr;
  if (p.endpoint == openai::Endpoint::kChat) {
    append_event(openai::chat_chunk(meta, text, finish, u));
  } else {
    append_event(openai::completion_chunk(meta, text, finish, u));
  }
}

void SimServer::Impl::send_token(Pending& p, const engine::TokenEvent& ev) {
  if (!p.stream) return;
  scratch.clear();
  if (ev.index == 0 && p.endpoint == openai::Endpoint::kChat) {
    // vLLM sends the role chunk with the first output, not before (TTFT clients key on it).
    openai::Usage zero;
    zero.prompt_tokens = p.prompt_tokens;
    append_event(
        openai::chat_role_chunk(p.meta(config.model), p.continuous_usage ? &zero : nullptr));
  }
  // The last token goes out in finish(), merged with its finish_reason as vLLM does.
  if (ev.finished == FinishReason::kNone) {
    append_content_chunk(p, engine::output_token_text(p.output_seed, ev.index), nullptr);
  }
  if (!scratch.empty()) p.exchange->write(scratch);
}

void SimServer::Impl::finish(Pending& p, FinishReason reason) {
  log_request("ok", p.exchange->request().header("x-request-id"));
  openai::Finish fin;
  fin.reason = finish_reason_name(reason);
  if (p.stream) {
    scratch.clear();
    const int last = p.tokens_generated - 1;
    append_content_chunk(p, last >= 0 ? engine::output_token_text(p.output_seed, last) : "", &fin);
    if (p.include_usage)
      append_event(openai::usage_chunk(p.endpoint, p.meta(config.model), p.usage()));
    scratch.append("data: [DONE]\n\n");
    p.exchange->write(scratch);
    p.exchange->end_stream();
    return;
  }
  const std::string text = generated_text(p.output_seed, p.tokens_generated);
  http::Response resp;
  if (p.endpoint == openai::Endpoint::kChat) {
    resp.body = openai::chat_completion_body(p.meta(config.model), text, fin, p.usage());
  } else {
    resp.body = openai::completion_body(p.meta(config.model), text, fin, p.usage());
  }
  p.exchange->respond(std::move(resp));
}

void SimServer::Impl::erase(RequestId id) {
  pending.erase(id);
}

void SimServer::Impl::on_client_gone(RequestId id) {
  if (delivering) {
    // A write inside deliver() found the client gone: handle it once delivery is over.
    deferred_gone.push_back(id);
    return;
  }
  auto it = pending.find(id);
  if (it == pending.end()) return;
  if (engine.abort_request(id)) {
    log_request("abort", it->second->exchange->request().header("x-request-id"));
    metrics.count_abort();
    metrics.sync_gauges(engine);
    erase(id);
  } else {
    // The engine already finished it in the step being delivered; deliver() erases it.
    it->second->gone = true;
  }
}

// ---------------------------------------------------------------------------------------------
// SimServer

SimServer::SimServer(asio::io_context& io, SimConfig config)
    : impl_(std::make_unique<Impl>(io, std::move(config))) {}

SimServer::~SimServer() {
  stop();
}

bool SimServer::listen(std::string& error) {
  if (!impl_->config.request_log.empty() && !impl_->request_log) {
    impl_->request_log = std::fopen(impl_->config.request_log.c_str(), "a");
    if (!impl_->request_log) {
      error =
          "cannot open --request-log " + impl_->config.request_log + ": " + std::strerror(errno);
      return false;
    }
  }
  return impl_->server.listen(error);
}
uint16_t SimServer::port() const {
  return impl_->server.port();
}

void SimServer::start() {
  impl_->server.start();
  asio::co_spawn(impl_->io, impl_->engine_loop(), report_exception);
}

void SimServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.stop();
  impl_->step_timer.cancel();
  impl_->wake_timer.cancel();
  impl_->pending.clear();
  impl_->hung.clear();
  if (impl_->request_log) {
    std::fclose(impl_->request_log);
    impl_->request_log = nullptr;
  }
}

int run_until_signal(const SimConfig& config) {
  asio::io_context io(1);
  SimServer server(io, config);
  std::string error;
  if (!server.listen(error)) {
    std::fprintf(stderr, "eta vllm-sim: %s\n", error.c_str());
    return 2;
  }
  std::string host = config.http.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::printf("listening on %s://%s:%u\n", config.http.tls_cert_file.empty() ? "http" : "https",
              host.c_str(), static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  server.start();
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    server.stop();
    io.stop();
  });
  io.run();
  return 0;
}

}  // namespace eta::vllm_sim
