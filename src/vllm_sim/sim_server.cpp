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
#include <deque>
#include <exception>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/tokenizer.hpp"
#include "kv_events/recorder.hpp"
#include "metrics/registry.hpp"
#include "openai/request.hpp"
#include "openai/response.hpp"
#include "vllm_sim/api.hpp"
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
constexpr size_t kMaxStoredResponses = 10000;
constexpr size_t kMaxSequencesPerRequest = 4096;

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

// One sequence of a request in the engine: one choice (prompt_index * n + i).
struct Seq {
  RequestId id = 0;
  int index = 0;  // the choice's index
  int prompt_index = 0;
  int max_tokens = 0;
  uint64_t output_seed = 0;
  int tokens_generated = 0;
  int tokens_sent = 0;  // streamed so far
  double last_token_time = 0;
  bool done = false;
  FinishReason reason = FinishReason::kNone;
};

// One HTTP request between its arrival and its last byte: n x prompts sequences.
struct Pending {
  uint64_t key = 0;
  http::ExchangePtr exchange;
  openai::Endpoint endpoint = openai::Endpoint::kCompletions;
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage = false;
  bool echo = false;       // completions: the prompt text leads each choice
  bool echo_only = false;  // echo with max_tokens 0: the prompt is all the text
  int stream_interval = 1;
  int n = 1;
  std::vector<Seq> seqs;
  std::vector<int> prompt_tokens;      // per prompt
  std::vector<std::string> echo_text;  // per prompt, with echo
  int remaining = 0;                   // sequences not finished
  double arrival = 0;
  bool role_sent = false;
  bool gone = false;  // the client left after the engine finished it (delivery pending)
  std::string response_id;
  int64_t created = 0;
  // Which API shapes the answer (OpenAI completions/chat, /v1/responses, /v1/messages), or a
  // pooling / transcription request (prefill only, or fixed output, one body at the end).
  api::Api api = api::Api::kOpenAI;
  std::unique_ptr<api::PoolingRequest> pooling;
  bool transcription = false;
  bool transcription_text = false;  // response_format=text
  double audio_seconds = 0;
  std::string stored_id;  // /v1/responses: the stored response this request fills
  std::unique_ptr<api::ResponseObject> unstored;  // /v1/responses with store=false
  bool detached = false;  // /v1/responses background: answered already, nothing to write
  int64_t event_seq = 0;  // /v1/responses stream: the next sequence_number

  openai::ResponseMeta meta(const std::string& model, int64_t index = 0) const {
    return openai::ResponseMeta{response_id, created, model, index};
  }
  openai::Usage usage() const {
    openai::Usage u;
    for (int p : prompt_tokens) u.prompt_tokens += p;
    for (const Seq& s : seqs) u.completion_tokens += s.tokens_generated;
    return u;
  }
  openai::Usage usage(const Seq& s) const {
    openai::Usage u;
    u.prompt_tokens = prompt_tokens[s.prompt_index];
    u.completion_tokens = s.tokens_sent;
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
        server(io_in, config.http, [this](http::ExchangePtr e) { handle(e); }),
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
    prepare_ctx.media_part_tokens = config.media_part_tokens;
    add_routes();
    metrics.sync_gauges(engine);
    if (config.kv_events.enable) {  // KV-cache events
      kv_recorder = std::make_unique<kv_events::BlockEventRecorder>(config.engine.block_size);
      kv_publisher = std::make_unique<kv_events::Publisher>(config.kv_events);
      engine.set_block_pool_listener(kv_recorder.get());
    }
  }
  // Publishes the events of the step just delivered (one batch per step, as vLLM does).
  void publish_kv_events() {
    if (!kv_recorder || !kv_recorder->take(kv_batch)) return;
    kv_batch.ts =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    kv_publisher->publish(kv_batch);
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
  void add(std::string_view method, const std::string& path, http::Handler handler);
  void handle(const http::ExchangePtr& exchange);
  bool authorized(const http::Request& request) const;
  void handle_generate(const http::ExchangePtr& exchange, openai::Endpoint endpoint);
  void handle_tokenize(const http::ExchangePtr& exchange);
  void handle_detokenize(const http::ExchangePtr& exchange);
  void handle_render(const http::ExchangePtr& exchange, openai::Endpoint endpoint);
  void handle_pooling(const http::ExchangePtr& exchange, api::PoolingKind kind);
  void handle_responses(const http::ExchangePtr& exchange);
  void handle_stored_response(const http::ExchangePtr& exchange, std::string_view rest);
  void handle_messages(const http::ExchangePtr& exchange, bool count_tokens);
  void handle_audio(const http::ExchangePtr& exchange, bool translation);
  // Queues `prompts` x fields.n sequences for `exchange`; answers the error itself and returns
  // nullptr when vLLM would refuse the request.
  Pending* submit(const http::ExchangePtr& exchange, const openai::RequestFields& fields,
                  const std::vector<std::vector<uint32_t>>& prompts, std::string_view request_id);
  void respond_error(const Pending& p, const openai::Error& error);
  std::string seq_delta(Pending& p, Seq& s, const openai::Finish* finish);
  // The /v1/responses object a request fills (stored, or its own with store=false), or null.
  api::ResponseObject* response_of(Pending& p);
  void on_client_gone(uint64_t key);
  void deliver(const engine::StepResult& step);
  void send_token(Pending& p, Seq& s, const engine::TokenEvent& ev);
  void finish_seq(Pending& p, Seq& s, FinishReason reason);
  void complete(Pending& p);
  void append_event(std::string_view json);
  void append_content_chunk(const Pending& p, const Seq& s, std::string_view text,
                            const openai::Finish* finish);
  std::string seq_text(const Pending& p, const Seq& s, int from, int to) const;
  void erase(uint64_t key);
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

  std::unordered_map<uint64_t, std::unique_ptr<Pending>> pending;     // by Pending::key
  std::unordered_map<RequestId, std::pair<Pending*, size_t>> seq_of;  // engine id -> seq
  RequestId next_id = 1;
  uint64_t next_key = 1;
  bool stopped = false;
  bool idle_waiting = false;
  bool delivering = false;
  double last_step_end = -1;  // simulated end of the last executed step
  std::vector<uint64_t> deferred_gone;
  std::FILE* request_log = nullptr;
  uint64_t fault_state = 0;
  std::vector<http::ExchangePtr> hung;  // /metrics requests held by MetricsFault::kHang
  engine::StepResult step_result;
  std::string scratch;
  // /v1/responses objects this replica created (store=true), by id; the oldest are dropped
  // beyond kMaxStoredResponses.
  std::unordered_map<std::string, api::ResponseObject> stored;
  std::unordered_map<std::string, uint64_t> stored_running;  // id -> Pending::key
  std::deque<std::string> stored_order;
  std::unordered_map<std::string, std::string> allowed;  // path -> "GET, POST"
  // KV-cache events (config.kv_events.enable): the pool's listener and the ZeroMQ publisher.
  std::unique_ptr<kv_events::BlockEventRecorder> kv_recorder;
  std::unique_ptr<kv_events::Publisher> kv_publisher;
  kv_events::EventBatch kv_batch;
};

// ---------------------------------------------------------------------------------------------
// Routes

void SimServer::Impl::add_routes() {
  auto empty_ok = [](http::ExchangePtr e) {
    http::Response r;
    r.content_type.clear();
    e->respond(std::move(r));
  };
  add("GET", "/health", empty_ok);
  add("GET", "/ping", empty_ok);
  add("POST", "/ping", empty_ok);
  add("GET", "/version", [](http::ExchangePtr e) {
    http::Response r;
    r.body = openai::version_body(kVllmVersion);
    e->respond(std::move(r));
  });
  add("GET", "/load", [this](http::ExchangePtr e) {
    http::Response r;
    r.body = openai::load_body(static_cast<int64_t>(pending.size()));
    e->respond(std::move(r));
  });
  add("GET", "/v1/models", [this](http::ExchangePtr e) {
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
  add("GET", "/metrics", [this](http::ExchangePtr e) {
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
  add("POST", "/v1/completions",
      [this](http::ExchangePtr e) { handle_generate(e, openai::Endpoint::kCompletions); });
  add("POST", "/v1/chat/completions",
      [this](http::ExchangePtr e) { handle_generate(e, openai::Endpoint::kChat); });
  add("POST", "/tokenize", [this](http::ExchangePtr e) { handle_tokenize(e); });
  add("POST", "/detokenize", [this](http::ExchangePtr e) { handle_detokenize(e); });
  add("POST", "/v1/completions/render",
      [this](http::ExchangePtr e) { handle_render(e, openai::Endpoint::kCompletions); });
  add("POST", "/v1/chat/completions/render",
      [this](http::ExchangePtr e) { handle_render(e, openai::Endpoint::kChat); });
  add("POST", "/v1/responses", [this](http::ExchangePtr e) { handle_responses(e); });
  add("POST", "/v1/messages", [this](http::ExchangePtr e) { handle_messages(e, false); });
  add("POST", "/v1/messages/count_tokens",
      [this](http::ExchangePtr e) { handle_messages(e, true); });
  // Pooling routes, served by the same model (the sim has one model kind; see
  // docs/architecture.md): prefill only in the engine.
  const std::pair<const char*, api::PoolingKind> pooling_routes[] = {
      {"/v1/embeddings", api::PoolingKind::kEmbed}, {"/pooling", api::PoolingKind::kPool},
      {"/classify", api::PoolingKind::kClassify},   {"/score", api::PoolingKind::kScore},
      {"/v1/score", api::PoolingKind::kScore},      {"/rerank", api::PoolingKind::kRerank},
      {"/v1/rerank", api::PoolingKind::kRerank},    {"/v2/rerank", api::PoolingKind::kRerank}};
  for (const auto& [path, kind] : pooling_routes) {
    add("POST", path, [this, kind = kind](http::ExchangePtr e) { handle_pooling(e, kind); });
  }
  add("POST", "/v1/audio/transcriptions", [this](http::ExchangePtr e) { handle_audio(e, false); });
  add("POST", "/v1/audio/translations", [this](http::ExchangePtr e) { handle_audio(e, true); });
}

// vLLM's AuthenticationMiddleware: with --api-key, a path starting with /v1 (any method but
// OPTIONS) needs "Authorization: <scheme> <key>" with the scheme "bearer" in any case.
bool SimServer::Impl::authorized(const http::Request& request) const {
  if (config.api_keys.empty() || request.method == "OPTIONS") return true;
  if (!request.path().starts_with("/v1")) return true;
  const std::string_view value = request.header("authorization");
  const size_t space = value.find(' ');
  const std::string_view scheme = value.substr(0, space);
  if (scheme.size() != 6 || !boost::algorithm::iequals(scheme, "bearer")) return false;
  const std::string_view token =
      space == std::string_view::npos ? std::string_view() : value.substr(space + 1);
  bool match = false;
  for (const auto& key : config.api_keys) match |= (token == key);
  return match;
}

void SimServer::Impl::handle(const http::ExchangePtr& exchange) {
  if (!authorized(exchange->request())) {
    http::Response r;
    r.status = 401;
    r.body = R"({"error":"Unauthorized"})";
    exchange->respond(std::move(r));
    return;
  }
  const std::string_view path = exchange->request().path();
  constexpr std::string_view kResponsesPrefix = "/v1/responses/";
  if (path.starts_with(kResponsesPrefix) && path.size() > kResponsesPrefix.size()) {
    handle_stored_response(exchange, path.substr(kResponsesPrefix.size()));
    return;
  }
  // vLLM 2026 answers unknown paths and methods through its HTTPException handler: the type
  // is the HTTP phrase.
  auto known = allowed.find(std::string(path));
  if (known == allowed.end()) {
    exchange->respond(http::error_response(404, "Not Found", "Not Found"));
    return;
  }
  if (known->second.find(exchange->request().method) == std::string::npos) {
    http::Response r = http::error_response(405, "Method Not Allowed", "Method Not Allowed");
    r.headers.emplace_back("Allow", known->second);
    exchange->respond(std::move(r));
    return;
  }
  routes.dispatch(exchange);
}

void SimServer::Impl::add(std::string_view method, const std::string& path, http::Handler handler) {
  std::string& methods = allowed[path];
  if (!methods.empty()) methods += ", ";
  methods += method;
  routes.add(method, path, std::move(handler));
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
  std::vector<uint32_t> tokens = prompt_token_ids(req, prepare_ctx);
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
  // Every prompt (chat: one; completions: the batch) times n samples, each its own sequence.
  std::vector<std::vector<uint32_t>> prompts;
  if (endpoint == openai::Endpoint::kChat) {
    prompts.push_back(prompt_token_ids(fields, prepare_ctx));
  } else {
    for (const auto& pr : fields.prompts) prompts.push_back(prompt_token_ids(pr));
  }
  Pending* p = submit(exchange, fields, prompts, request_id);
  if (!p) return;
  if (fields.echo) {
    for (const auto& pr : fields.prompts) {
      p->echo_text.push_back(pr.is_tokens ? detokenize(pr.token_ids) : pr.text);
    }
  }
  p->response_id = new_response_id(endpoint);
  if (p->stream) p->exchange->start_stream(200, kSseContentType);
}

Pending* SimServer::Impl::submit(const http::ExchangePtr& exchange,
                                 const openai::RequestFields& fields,
                                 const std::vector<std::vector<uint32_t>>& prompts,
                                 std::string_view request_id) {
  openai::Error error;
  // The simulator's own bound (vLLM has none but its memory): n x prompts sequences at most.
  if (fields.n > static_cast<int64_t>(kMaxSequencesPerRequest) ||
      prompts.size() * static_cast<size_t>(fields.n) > kMaxSequencesPerRequest) {
    log_request("fail", request_id);
    exchange->respond(http::error_response(openai::bad_request(
        "eta vllm-sim serves at most " + std::to_string(kMaxSequencesPerRequest) +
            " sequences (n x prompts) per request.",
        "n")));
    return nullptr;
  }
  auto p = std::make_unique<Pending>();
  const int n = static_cast<int>(fields.n);
  std::vector<PreparedRequest> prepared(prompts.size() * static_cast<size_t>(n));
  for (size_t pi = 0; pi < prompts.size(); ++pi) {
    for (int i = 0; i < n; ++i) {
      if (!prepare_tokens(fields, prompts[pi], prepare_ctx, i, prepared[pi * n + i], error)) {
        log_request("fail", request_id);
        exchange->respond(http::error_response(error));
        return nullptr;
      }
    }
    p->prompt_tokens.push_back(static_cast<int>(prompts[pi].size()));
  }
  // vLLM's --max-num-queued-reqs: in-flight requests (waiting and running; n counts n).
  if (config.max_num_queued_reqs > 0 &&
      seq_of.size() + prepared.size() > static_cast<size_t>(config.max_num_queued_reqs)) {
    log_request("fail", request_id);
    exchange->respond(http::error_response(
        openai::Error{503,
                      "ServiceUnavailableError",
                      "The server's request queue is full (max_num_queued_reqs=" +
                          std::to_string(config.max_num_queued_reqs) + "). Please retry later.",
                      {}}));
    return nullptr;
  }
  const double now = sim_now();
  p->key = next_key++;
  for (size_t k = 0; k < prepared.size(); ++k) {
    PreparedRequest& pr = prepared[k];
    const RequestId id = next_id++;
    engine::EngineRequest er;
    if (kv_recorder) {
      // Before the engine sees it: its blocks are registered from the next step on.
      kv_recorder->add_request(id, prompts[k / static_cast<size_t>(n)], pr.block_hashes,
                               pr.output_seed, pr.output.tokens);
    }
    er.id = id;
    er.prompt_tokens = pr.prompt_tokens;
    er.block_hashes = std::move(pr.block_hashes);
    er.output_tokens = pr.output.tokens;
    er.finish_reason = pr.output.reason;
    er.output_seed = pr.output_seed;
    er.arrival_time = now;
    if (!engine.add_request(std::move(er))) {
      if (kv_recorder) kv_recorder->end_request(id);
      for (const Seq& s : p->seqs) {
        engine.abort_request(s.id);
        if (kv_recorder) kv_recorder->end_request(s.id);
      }
      log_request("fail", request_id);
      exchange->respond(http::error_response(
          openai::bad_request("The request needs more KV cache blocks than the engine has (" +
                              std::to_string(config.engine.num_gpu_blocks) + ").")));
      metrics.sync_gauges(engine);
      return nullptr;
    }
    Seq& s = p->seqs.emplace_back();
    s.id = id;
    s.index = static_cast<int>(k);  // prompt_index * n + i, as vLLM numbers choices
    s.prompt_index = static_cast<int>(k) / n;
    s.max_tokens = pr.max_tokens;
    s.output_seed = pr.output_seed;
  }
  p->exchange = exchange;
  p->endpoint = fields.endpoint;
  p->stream = fields.stream;
  p->include_usage = fields.include_usage;
  p->continuous_usage = fields.continuous_usage_stats;
  p->echo = fields.echo;
  p->echo_only = fields.echo && fields.max_tokens && *fields.max_tokens == 0;
  p->stream_interval = static_cast<int>(
      std::max<int64_t>(config.stream_interval, fields.stream_interval.value_or(1)));
  p->n = n;
  p->remaining = static_cast<int>(p->seqs.size());
  p->arrival = now;
  p->created = static_cast<int64_t>(std::time(nullptr));
  metrics.observe_params_n(n);
  for (size_t k = 0; k < p->seqs.size(); ++k) seq_of.emplace(p->seqs[k].id, std::pair{p.get(), k});
  const uint64_t key = p->key;
  exchange->on_disconnect([this, key] { on_client_gone(key); });
  Pending* raw = p.get();
  pending.emplace(key, std::move(p));
  metrics.sync_gauges(engine);
  wake();
  return raw;
}

void SimServer::Impl::respond_error(const Pending& p, const openai::Error& error) {
  if (p.api == api::Api::kMessages) {
    http::Response r;
    r.status = error.status;
    r.body = api::anthropic_error_body(error);
    p.exchange->respond(std::move(r));
  } else {
    p.exchange->respond(http::error_response(error));
  }
}

void SimServer::Impl::handle_detokenize(const http::ExchangePtr& exchange) {
  std::string model;
  std::vector<uint32_t> tokens;
  openai::Error error;
  if (!api::parse_detokenize(exchange->request().body, model, tokens, error)) {
    exchange->respond(http::error_response(error));
    return;
  }
  if (!prepare_ctx.serves(model)) {
    exchange->respond(http::error_response(openai::model_not_found(model)));
    return;
  }
  http::Response r;
  r.body = openai::detokenize_body(detokenize(tokens));
  exchange->respond(std::move(r));
}

void SimServer::Impl::handle_render(const http::ExchangePtr& exchange, openai::Endpoint endpoint) {
  openai::RequestFields fields;
  openai::Error error;
  if (!openai::parse_request(endpoint, exchange->request().body, fields, error)) {
    exchange->respond(http::error_response(error));
    return;
  }
  if (!prepare_ctx.serves(fields.model)) {
    exchange->respond(http::error_response(openai::model_not_found(fields.model)));
    return;
  }
  std::vector<std::vector<uint32_t>> prompts;
  std::vector<std::string> texts;
  if (endpoint == openai::Endpoint::kChat) {
    prompts.push_back(prompt_token_ids(fields, prepare_ctx));
    texts.push_back(fields.prompt_text);
  } else {
    for (const auto& pr : fields.prompts) {
      prompts.push_back(prompt_token_ids(pr));
      texts.push_back(pr.is_tokens ? detokenize(pr.token_ids) : pr.text);
    }
  }
  http::Response r;
  r.body = api::render_body(prompts, texts, endpoint == openai::Endpoint::kCompletions);
  exchange->respond(std::move(r));
}

void SimServer::Impl::handle_pooling(const http::ExchangePtr& exchange, api::PoolingKind kind) {
  const std::string_view request_id = exchange->request().header("x-request-id");
  log_request("recv", request_id);
  auto req = std::make_unique<api::PoolingRequest>();
  openai::Error error;
  if (!api::parse_pooling(kind, exchange->request().body, *req, error)) {
    log_request("fail", request_id);
    exchange->respond(http::error_response(error));
    return;
  }
  // Prefill only: one output token, which the prefill step itself samples (no decode step).
  openai::RequestFields fields;
  fields.model = req->model;
  fields.max_tokens = 1;
  fields.ignore_eos = true;
  Pending* p = submit(exchange, fields, req->prompts, request_id);
  if (!p) return;
  static constexpr const char* kPrefix[] = {"embd-", "pool-", "classify-", "score-", "rerank-"};
  p->response_id =
      kPrefix[static_cast<int>(kind)] + new_response_id(openai::Endpoint::kChat).substr(9);
  p->pooling = std::move(req);
}

void SimServer::Impl::handle_audio(const http::ExchangePtr& exchange, bool translation) {
  const std::string_view request_id = exchange->request().header("x-request-id");
  log_request("recv", request_id);
  std::vector<api::FormField> form;
  if (!api::parse_multipart(exchange->request().header("content-type"), exchange->request().body,
                            form)) {
    log_request("fail", request_id);
    exchange->respond(http::error_response(openai::validation_error(
        "1 validation error: body: the body must be multipart/form-data with a `file`")));
    return;
  }
  const api::FormField* file = nullptr;
  openai::RequestFields fields;
  bool text_format = false;
  for (const auto& f : form) {
    if (f.name == "file") file = &f;
    if (f.name == "model") fields.model = f.value;
    if (f.name == "response_format") text_format = f.value == "text";
    if (f.name == "stream")
      fields.stream = f.value == "true" || f.value == "True" || f.value == "1";
  }
  if (!file) {
    log_request("fail", request_id);
    exchange->respond(http::error_response(
        openai::validation_error("1 validation error: body.file: Field required")));
    return;
  }
  (void)translation;  // both produce text the same way here
  const double seconds = api::audio_seconds(file->value);
  // The prompt: placeholder ids from the file's bytes (the same audio hits the prefix cache).
  std::vector<uint32_t> tokens;
  uint64_t h = engine::hash_block(
      engine::kRootBlockHash,
      std::span<const uint32_t>(engine::tokenize(std::string_view(file->value).substr(0, 4096))));
  const int prompt = api::audio_prompt_tokens(seconds);
  for (int i = 0; i < prompt; ++i)
    tokens.push_back(static_cast<uint32_t>(splitmix(h) % engine::kToyVocab));
  const int output = api::audio_output_tokens(seconds);
  fields.max_tokens = output;
  fields.sim_output_tokens = output;
  Pending* p = submit(exchange, fields, {tokens}, request_id);
  if (!p) return;
  p->transcription = true;
  p->transcription_text = text_format;
  p->audio_seconds = seconds;
  p->response_id = "trsc-" + new_response_id(openai::Endpoint::kCompletions).substr(5);
  if (p->stream) p->exchange->start_stream(200, kSseContentType);
}

void SimServer::Impl::handle_responses(const http::ExchangePtr& exchange) {
  const std::string_view request_id = exchange->request().header("x-request-id");
  log_request("recv", request_id);
  openai::RequestFields fields;
  bool store = true;
  bool background = false;
  openai::Error error;
  if (!api::parse_responses(exchange->request().body, fields, store, background, error)) {
    log_request("fail", request_id);
    exchange->respond(http::error_response(error));
    return;
  }
  Pending* p = submit(exchange, fields, {prompt_token_ids(fields, prepare_ctx)}, request_id);
  if (!p) return;
  p->api = api::Api::kResponses;
  const uint64_t hi = splitmix(id_state);
  const uint64_t lo = splitmix(id_state);
  api::ResponseObject r;
  r.id = "resp_" + openai::make_response_id(openai::Endpoint::kCompletions, hi, lo).substr(5);
  r.item_id = "msg_" + openai::make_response_id(openai::Endpoint::kCompletions, lo, hi).substr(5);
  r.created_at = p->created;
  r.model = config.model;
  r.status = background ? "queued" : "in_progress";
  r.input_tokens = p->prompt_tokens[0];
  r.max_output_tokens = fields.max_tokens;
  r.background = background;
  p->response_id = r.id;
  if (!store) p->unstored = std::make_unique<api::ResponseObject>(r);
  if (store) {
    p->stored_id = r.id;
    stored[r.id] = r;
    stored_running[r.id] = p->key;
    stored_order.push_back(r.id);
    while (stored_order.size() > kMaxStoredResponses) {
      stored.erase(stored_order.front());
      stored_running.erase(stored_order.front());
      stored_order.pop_front();
    }
  }
  if (background) {
    // Answered now; the client polls GET /v1/responses/{id}.
    http::Response resp;
    resp.body = api::response_json(r);
    p->exchange->respond(std::move(resp));
    p->detached = true;
    return;
  }
  if (p->stream) {
    p->exchange->start_stream(200, kSseContentType);
    p->exchange->write(api::responses_stream_start(r, p->event_seq));
  }
}

void SimServer::Impl::handle_stored_response(const http::ExchangePtr& exchange,
                                             std::string_view rest) {
  const bool cancel = rest.ends_with("/cancel");
  const std::string id(cancel ? rest.substr(0, rest.size() - 7) : rest);
  const std::string& method = exchange->request().method;
  if ((cancel && method != "POST") || (!cancel && method != "GET") ||
      id.find('/') != std::string::npos) {
    exchange->respond(http::error_response(405, "Method Not Allowed", "Method Not Allowed"));
    return;
  }
  auto it = stored.find(id);
  if (it == stored.end()) {
    openai::Error e{404, "invalid_request_error", "Response with id '" + id + "' not found.",
                    "response_id"};
    exchange->respond(http::error_response(e));
    return;
  }
  api::ResponseObject& r = it->second;
  if (cancel) {
    if (r.status != "queued" && r.status != "in_progress") {
      exchange->respond(http::error_response(openai::Error{
          400, "invalid_request_error", "Cannot cancel a synchronous response.", {}}));
      return;
    }
    r.status = "cancelled";
    if (auto run = stored_running.find(id); run != stored_running.end()) {
      const uint64_t key = run->second;
      stored_running.erase(run);
      if (auto pit = pending.find(key); pit != pending.end()) {
        Pending& p = *pit->second;
        if (!p.detached && p.exchange) {
          p.exchange->respond(http::error_response(
              openai::Error{400, "invalid_request_error", "The response was cancelled.", {}}));
          p.exchange->end_stream();
        }
        on_client_gone(key);
      }
    }
  }
  http::Response resp;
  resp.body = api::response_json(r);
  exchange->respond(std::move(resp));
}

void SimServer::Impl::handle_messages(const http::ExchangePtr& exchange, bool count_tokens) {
  const std::string_view request_id = exchange->request().header("x-request-id");
  openai::RequestFields fields;
  openai::Error error;
  auto anthropic_error = [&](const openai::Error& e) {
    http::Response r;
    r.status = e.status;
    r.body = api::anthropic_error_body(e);
    exchange->respond(std::move(r));
  };
  if (!api::parse_messages(exchange->request().body, count_tokens, fields, error)) {
    anthropic_error(error);
    return;
  }
  if (count_tokens) {
    if (!prepare_ctx.serves(fields.model)) {
      anthropic_error(openai::model_not_found(fields.model));
      return;
    }
    http::Response r;
    r.body =
        "{\"input_tokens\":" + std::to_string(prompt_token_ids(fields, prepare_ctx).size()) + "}";
    exchange->respond(std::move(r));
    return;
  }
  log_request("recv", request_id);
  // Errors before the engine (unknown model, context length) in the Anthropic shape.
  PreparedRequest probe;
  const std::vector<uint32_t> tokens = prompt_token_ids(fields, prepare_ctx);
  if (!prepare_tokens(fields, tokens, prepare_ctx, 0, probe, error)) {
    log_request("fail", request_id);
    anthropic_error(error);
    return;
  }
  Pending* p = submit(exchange, fields, {tokens}, request_id);
  if (!p) return;
  p->api = api::Api::kMessages;
  p->response_id = "msg_" + new_response_id(openai::Endpoint::kCompletions).substr(5);
  if (p->stream) {
    p->exchange->start_stream(200, kSseContentType);
    p->exchange->write(
        api::messages_stream_start(p->response_id, config.model, p->prompt_tokens[0]));
  }
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
    publish_kv_events();
  }
}

void SimServer::Impl::deliver(const engine::StepResult& step) {
  delivering = true;
  for (const auto& ev : step.tokens) {
    auto it = seq_of.find(ev.id);
    if (it == seq_of.end()) continue;
    Pending& p = *it->second.first;
    Seq& s = p.seqs[it->second.second];
    if (ev.index == 0) {
      metrics.observe_first_token(step.end - p.arrival);
    } else {
      metrics.observe_inter_token(step.end - s.last_token_time);
    }
    s.last_token_time = step.end;
    s.tokens_generated = ev.index + 1;
    if (!p.gone) send_token(p, s, ev);
  }
  for (const auto& f : step.finished) {
    auto it = seq_of.find(f.id);
    if (it == seq_of.end()) {
      metrics.observe_finished(f, f.output_tokens);
      continue;
    }
    Pending& p = *it->second.first;
    Seq& s = p.seqs[it->second.second];
    metrics.observe_finished(f, s.max_tokens);
    s.done = true;
    s.reason = f.reason;
    --p.remaining;
    seq_of.erase(it);
    if (!p.gone) finish_seq(p, s, f.reason);
    if (p.remaining == 0) {
      if (!p.gone) complete(p);
      erase(p.key);
    }
  }
  metrics.sync_counters(engine);
  metrics.sync_gauges(engine);
  delivering = false;
  auto gone = std::move(deferred_gone);
  deferred_gone.clear();
  for (uint64_t key : gone) on_client_gone(key);
}

void SimServer::Impl::append_event(std::string_view json) {
  scratch.append("data: ");
  scratch.append(json);
  scratch.append("\n\n");
}

void SimServer::Impl::append_content_chunk(const Pending& p, const Seq& s, std::string_view text,
                                           const openai::Finish* finish) {
  const auto meta = p.meta(config.model, s.index);
  const openai::Usage usage = p.usage(s);
  const openai::Usage* u = p.continuous_usage ? &usage : nullptr;
  if (p.endpoint == openai::Endpoint::kChat) {
    append_event(openai::chat_chunk(meta, text, finish, u));
  } else {
    append_event(openai::completion_chunk(meta, text, finish, u));
  }
}

// The text of output tokens [from, to) of a sequence, led by the echoed prompt when it starts
// the choice.
std::string SimServer::Impl::seq_text(const Pending& p, const Seq& s, int from, int to) const {
  std::string text;
  if (p.echo && from == 0) text = p.echo_text[s.prompt_index];
  if (p.echo_only) return text;
  for (int i = from; i < to; ++i) text += engine::output_token_text(s.output_seed, i);
  return text;
}

api::ResponseObject* SimServer::Impl::response_of(Pending& p) {
  if (p.unstored) return p.unstored.get();
  auto it = stored.find(p.stored_id);
  return it == stored.end() ? nullptr : &it->second;
}

// The not yet streamed tokens of a sequence as one event in the request's API shape.
std::string SimServer::Impl::seq_delta(Pending& p, Seq& s, const openai::Finish* finish) {
  const std::string text = seq_text(p, s, s.tokens_sent, s.tokens_generated);
  s.tokens_sent = s.tokens_generated;
  if (p.api == api::Api::kResponses) {
    if (text.empty()) return {};
    const api::ResponseObject* r = response_of(p);
    return r ? api::responses_delta(*r, p.event_seq, text) : std::string();
  }
  if (p.api == api::Api::kMessages) return text.empty() ? std::string() : api::messages_delta(text);
  if (p.transcription) {
    return api::transcription_chunk(p.response_id, p.created, config.model, text,
                                    finish ? finish->reason : std::string_view());
  }
  scratch.clear();
  append_content_chunk(p, s, text, finish);
  return scratch;
}

void SimServer::Impl::send_token(Pending& p, Seq& s, const engine::TokenEvent& ev) {
  if (!p.stream || p.detached || p.pooling) return;
  std::string out;
  if (!p.role_sent && p.endpoint == openai::Endpoint::kChat && p.api == api::Api::kOpenAI) {
    // vLLM sends the role chunks (one per choice) with the first output, not before (TTFT
    // clients key on it).
    scratch.clear();
    for (const Seq& c : p.seqs) {
      openai::Usage zero;
      zero.prompt_tokens = p.prompt_tokens[c.prompt_index];
      append_event(openai::chat_role_chunk(p.meta(config.model, c.index),
                                           p.continuous_usage ? &zero : nullptr));
    }
    out = scratch;
    p.role_sent = true;
  }
  // The last tokens go out in finish_seq(), merged with the finish_reason as vLLM does. The
  // first token goes out at once; later ones in events of stream_interval tokens.
  if (ev.finished == FinishReason::kNone && !p.echo_only &&
      (ev.index == 0 || s.tokens_generated - s.tokens_sent >= p.stream_interval)) {
    out += seq_delta(p, s, nullptr);
  }
  if (!out.empty()) p.exchange->write(out);
}

void SimServer::Impl::finish_seq(Pending& p, Seq& s, FinishReason reason) {
  if (!p.stream || p.detached || p.pooling) return;
  openai::Finish fin;
  fin.reason = finish_reason_name(reason);
  const std::string out = seq_delta(p, s, &fin);
  if (!out.empty()) p.exchange->write(out);
}

void SimServer::Impl::complete(Pending& p) {
  log_request("ok", p.exchange->request().header("x-request-id"));
  if (p.pooling) {
    http::Response resp;
    resp.body =
        api::pooling_body(*p.pooling, p.response_id, p.created, config.model, p.prompt_tokens);
    p.exchange->respond(std::move(resp));
    return;
  }
  const Seq& first = p.seqs.front();
  if (p.transcription && p.stream) {
    p.exchange->write("data: [DONE]\n\n");
    p.exchange->end_stream();
    return;
  }
  if (p.transcription) {
    const std::string text = seq_text(p, first, 0, first.tokens_generated);
    http::Response resp;
    if (p.transcription_text) {
      resp.content_type = "text/plain; charset=utf-8";
      resp.body = text;
    } else {
      resp.body = api::transcription_json(text, p.audio_seconds);
    }
    p.exchange->respond(std::move(resp));
    return;
  }
  if (p.api == api::Api::kResponses) {
    api::ResponseObject* r = response_of(p);
    if (!r) {  // dropped from the store while it ran (kMaxStoredResponses newer ones)
      if (!p.detached) respond_error(p, openai::internal_error("The response was evicted."));
      if (p.stream && !p.detached) p.exchange->end_stream();
      return;
    }
    stored_running.erase(p.stored_id);
    r->text = seq_text(p, first, 0, first.tokens_generated);
    r->output_tokens = first.tokens_generated;
    if (first.reason == FinishReason::kLength && r->max_output_tokens) {
      r->status = "incomplete";
      r->incomplete_reason = "max_output_tokens";
    } else {
      r->status = "completed";
    }
    if (p.detached) return;
    if (p.stream) {
      p.exchange->write(api::responses_stream_end(*r, p.event_seq));
      p.exchange->end_stream();
      return;
    }
    http::Response resp;
    resp.body = api::response_json(*r);
    p.exchange->respond(std::move(resp));
    return;
  }
  if (p.api == api::Api::kMessages) {
    const char* stop = first.reason == FinishReason::kLength ? "max_tokens" : "end_turn";
    if (p.stream) {
      p.exchange->write(api::messages_stream_end(stop, first.tokens_generated));
      p.exchange->end_stream();
      return;
    }
    http::Response resp;
    resp.body = api::message_json(p.response_id, config.model,
                                  seq_text(p, first, 0, first.tokens_generated), stop,
                                  p.prompt_tokens[0], first.tokens_generated);
    p.exchange->respond(std::move(resp));
    return;
  }
  if (p.stream) {
    scratch.clear();
    if (p.include_usage)
      append_event(openai::usage_chunk(p.endpoint, p.meta(config.model), p.usage()));
    scratch.append("data: [DONE]\n\n");
    p.exchange->write(scratch);
    p.exchange->end_stream();
    return;
  }
  std::vector<openai::Choice> choices;
  choices.reserve(p.seqs.size());
  for (const Seq& s : p.seqs) {
    openai::Choice& c = choices.emplace_back();
    c.index = s.index;
    c.text = seq_text(p, s, 0, s.tokens_generated);
    c.finish.reason = finish_reason_name(s.reason);
  }
  http::Response resp;
  if (p.endpoint == openai::Endpoint::kChat) {
    resp.body = openai::chat_completion_body(p.meta(config.model), choices, p.usage());
  } else {
    resp.body = openai::completion_body(p.meta(config.model), choices, p.usage());
  }
  p.exchange->respond(std::move(resp));
}

void SimServer::Impl::erase(uint64_t key) {
  if (kv_recorder) {
    if (auto it = pending.find(key); it != pending.end()) {
      for (const Seq& s : it->second->seqs) kv_recorder->end_request(s.id);
    }
  }
  pending.erase(key);
}

void SimServer::Impl::on_client_gone(uint64_t key) {
  if (delivering) {
    // A write inside deliver() found the client gone: handle it once delivery is over.
    deferred_gone.push_back(key);
    return;
  }
  auto it = pending.find(key);
  if (it == pending.end()) return;
  Pending& p = *it->second;
  if (p.detached && p.stored_id.size() && stored_running.count(p.stored_id)) {
    return;  // a background response runs on without its (answered) client
  }
  bool aborted = false;
  for (Seq& s : p.seqs) {
    if (s.done) continue;
    if (engine.abort_request(s.id)) {
      metrics.count_abort();
      aborted = true;
    }
    seq_of.erase(s.id);
  }
  if (aborted) log_request("abort", p.exchange->request().header("x-request-id"));
  if (api::ResponseObject* r = p.api == api::Api::kResponses ? response_of(p) : nullptr;
      r && (r->status == "queued" || r->status == "in_progress")) {
    r->status = "cancelled";  // its client left: a stored response does not stay in progress
  }
  stored_running.erase(p.stored_id);
  metrics.sync_gauges(engine);
  erase(key);
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
  if (impl_->kv_publisher && !impl_->kv_publisher->start(error)) return false;
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
  if (impl_->kv_publisher) impl_->kv_publisher->stop();
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
