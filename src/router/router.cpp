#include "router/router.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <deque>
#include <limits>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cluster/state.hpp"
#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "metrics/parse.hpp"
#include "openai/extract.hpp"
#include "openai/request.hpp"
#include "policy/registry.hpp"
#include "predict/completion_model.hpp"
#include "router/access_log.hpp"
#include "router/admin.hpp"
#include "router/aliases.hpp"
#include "router/dashboard.hpp"
#include "router/decision_log.hpp"
#include "router/discovery.hpp"
#include "router/features.hpp"
#include "router/headers.hpp"
#include "router/kv_events.hpp"
#include "router/peer_link.hpp"
#include "router/rate_limit.hpp"
#include "router/replica_state.hpp"
#include "router/router_metrics.hpp"
#include "router/routes.hpp"
#include "router/sse.hpp"
#include "router/window_stats.hpp"

namespace eta::router {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kReplicaHeader = "x-eta-replica";
constexpr std::string_view kPredictedTtftHeader = "x-eta-predicted-ttft-ms";
constexpr std::string_view kPredictedE2eHeader = "x-eta-predicted-e2e-ms";
constexpr std::string_view kRequestIdHeader = "x-eta-request-id";
constexpr std::string_view kNone = "none";
constexpr std::string_view kAdminCookie = "eta_admin_token";
constexpr uint64_t kMaxBufferedBody = 256ull << 20;  // a non-streamed upstream body
constexpr uint64_t kMaxModelsBody = 4ull << 20;
constexpr double kReadyTimeoutS = 3.0;

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000.0)));
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool is_event_stream(std::string_view content_type) {
  return content_type.size() >= 17 && iequals(content_type.substr(0, 17), "text/event-stream");
}

std::string error_event(std::string_view message, int status = 502,
                        std::string_view type = "BadGatewayError") {
  openai::Error e;
  e.status = status;
  e.type = std::string(type);
  e.message = std::string(message);
  return "data: " + openai::error_body(e) + "\n\ndata: [DONE]\n\n";
}

// Where a routing attempt ended.
enum class RouteResult {
  kDispatched,
  kAtCapacity,    // in-flight bounds reached: queue or 429
  kSloShed,       // every replica's predicted TTFT is over the SLO: queue or 429
  kNoReplica,     // no routable replica serves the model (or none is left to retry on): 503
  kUnknownModel,  // no replica serves the model at all: 404
};

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Replica {
  int index = 0;  // ClusterState index
  ReplicaConfig config;
  std::shared_ptr<http::UpstreamPool> pool;
  HealthTracker health;
  bool draining = false;
  bool removing = false;
  bool removed = false;
  bool models_known = false;
  ModelList models;
  bool speed_seeded = false;
  bool scrape_busy = false;
  bool health_busy = false;
  bool models_busy = false;
  ScrapeCounters counters;
  metrics::ParsedMetrics parsed;
  double last_scrape_ok = -1;
  uint64_t scrapes = 0;
  uint64_t scrape_failures = 0;
  uint64_t requests = 0;
  uint64_t failures = 0;
  int in_flight = 0;
  std::string last_error;
  // Upstream auth (dropin): its polls were answered 401/403 (logged once; unroutable until a
  // poll succeeds).
  bool unauthorized = false;
  metrics::Gauge* in_flight_gauge = nullptr;
  mutable ReplicaWindow window;  // the last minute's completions (dashboard, /admin/replicas)

  const std::string& url() const { return config.url; }
  bool routable() const {
    return !removed && !removing && !draining && health.healthy() && models_known;
  }
  // Under its own name or, through a model alias, under one of its served names.
  bool serves(std::string_view model, const std::vector<ModelAlias>& aliases) const {
    return served_name_for(aliases, model, models.ids) != nullptr;
  }
};

struct Call {
  uint64_t id = 0;
  http::ExchangePtr exchange;
  const RouteSpec* route = nullptr;  // routes.hpp: how it is read and routed
  std::string stored_id;             // kStored: the response id in the path
  int pinned = -1;                   // kStored: the replica that created it (-1: unknown)
  bool use_ledger = true;            // false: utility routes (no policy, no ledger)
  Clock::time_point arrival_wall;
  double arrival = 0;
  openai::ExtractedRequest req;
  RequestInfo info;
  // The body sent upstream when it is not the client's (a stream the router counts exactly:
  // stream_options with continuous usage), and the rewriter giving the client its own stream.
  std::string forward_body;
  bool rewrite_stream = false;
  UsageStreamRewriter rewriter;
  std::string rewritten;
  cluster::PreparedRequest prepared;
  double decision_s = 0;

  std::vector<int> tried;
  int attempt = 0;
  int replica = -1;  // of the current (or last) attempt
  bool attempt_active = false;
  http::RequestHandle handle;
  double predicted_ttft_s = cluster::kNotPredicted;
  double predicted_e2e_s = cluster::kNotPredicted;
  Clock::time_point dispatch_wall;   // of the current (or last) attempt
  double ttft_s = -1;                // arrival -> first relayed token (SSE streams)
  double e2e_s = -1;                 // arrival -> response complete (2xx and relayed errors)
  std::optional<int> output_tokens;  // of a 2xx response
  std::string error;                 // the last error reason (metrics' reason names)

  enum class Mode { kNone, kHeld, kBuffered, kStreaming };
  Mode mode = Mode::kNone;
  int status = 0;
  std::string content_type;
  http::Headers headers;
  std::string body;
  bool sse = false;
  StreamTokenCounter scanner;
  bool first_token = false;
  int relayed_tokens = 0;

  // The last 5xx held back for a retry, relayed if no retry succeeds.
  int held_status = 0;
  std::string held_type;
  http::Headers held_headers;
  std::string held_body;

  bool queued = false;
  double queue_deadline = 0;
  bool finished = false;

  // Model aliases: when the replica serves the model under another name, its answer's "model"
  // members are rewritten back to the name the client asked for (the stream, the body, a held
  // error). `rewrite` returns what the client gets for `data`; `end` releases what was held.
  FieldRewriter model_rewriter;
  std::string model_rewritten;
  std::string_view rewrite(std::string_view data, bool end) {
    if (!model_rewriter.active()) return data;
    model_rewritten.clear();
    model_rewriter.feed(data, model_rewritten);
    if (end) model_rewriter.finish(model_rewritten);
    return model_rewritten;
  }
};

using CallPtr = std::shared_ptr<Call>;

// ---------------------------------------------------------------------------------------------

struct Router::Impl {
  Impl(asio::io_context& io_in, RouterConfig config_in);

  double now() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  // Replicas
  bool add_replica(ReplicaConfig rc, std::string& error);
  Replica* find_replica(std::string_view url);
  void set_health(Replica& r, bool ok, std::string_view detail);
  void finalize_removal(Replica& r);
  // No new requests; removed once its in-flight ones end (`force`: fail them now).
  void begin_removal(Replica& r, bool force);
  ReplicaReport report(const Replica& r);
  ReplicaReport report(const Replica& r, const cluster::ClusterView& view, double t);
  bool any_routable() const;

  // Polling
  void start_polling();
  void arm_scrape();
  void arm_health();
  void arm_models();
  void scrape(Replica& r);
  void check_health(Replica& r);
  void fetch_models(Replica& r);
  void check_ready();

  // Client API
  void add_routes();
  // Checks the API key (when keys are configured); answers 401 itself. `key` gets the matched
  // key (empty when no keys are configured).
  bool authorized(const http::ExchangePtr& e, std::string_view* key = nullptr);
  bool admin_authorized(const http::ExchangePtr& e);
  // The client listener: every path goes through the routes table (routes.hpp).
  void dispatch_client(const http::ExchangePtr& e);
  void handle_proxy(const http::ExchangePtr& e, const RouteSpec& route, std::string_view id);
  void handle_version(const http::ExchangePtr& e);
  // The one model every replica that reported its models serves, or empty.
  std::string default_model() const;
  // The key sent to this replica (its api_key, else upstream_api_key; empty: none).
  const std::string& upstream_key(const Replica& r) const;
  // GET to a replica with its upstream key (polls).
  void poll_get(Replica& r, std::string target, size_t max_bytes, double timeout_s,
                http::UpstreamPool::GetCallback cb);
  // A poll answered 401/403: the replica is unroutable with the reason (logged once).
  void note_unauthorized(Replica& r, std::string_view what, int status);
  std::string unroutable_reason(const Replica& r) const;
  // Stored responses: which replica created each response id (bounded, with expiry).
  void remember_response(std::string id, int replica);
  int response_owner(const std::string& id);
  void handle_models(const http::ExchangePtr& e);
  void handle_health(const http::ExchangePtr& e);
  void handle_metrics(const http::ExchangePtr& e);

  // Routing
  void admit(const CallPtr& c);
  RouteResult route(const CallPtr& c);
  void start_attempt(const CallPtr& c, int replica);
  void on_head(const CallPtr& c, const http::ResponseHead& head);
  void on_body(const CallPtr& c, std::string_view data);
  void on_complete(const CallPtr& c, const http::ClientResult& result);
  void release_attempt(Call& c);
  bool has_retry_target(const Call& c) const;
  void retry_or_fail(const CallPtr& c, std::string_view reason, std::string_view detail,
                     bool timeout);
  void complete(const CallPtr& c);
  void fail_stream(const CallPtr& c, std::string_view message, int status = 502,
                   std::string_view type = "BadGatewayError");
  void refuse(const CallPtr& c, RouteResult result);
  void respond_error(const CallPtr& c, int status, std::string_view type, std::string message,
                     http::Headers extra = {});
  void add_eta_headers(const Call& c, http::Headers& h) const;
  void finish_call(const CallPtr& c, int status);
  void on_client_gone(const CallPtr& c);
  void abort_calls_on(Replica& r, std::string_view message);
  void fail_over_unanswered(int replica);
  // `chosen`: the replica the request goes to, -1 if it was shed.
  void log_decision(const Call& c, const cluster::Decision& d, int chosen);
  // Counts an error reason in eta_errors_total and remembers it for the access log.
  void note_error(Call& c, std::string_view reason);
  void write_access_log(const Call& c, int status);

  // Admission queue
  void enqueue(const CallPtr& c);
  void pump_queue();
  // Drops the entries of clients that went away (they wait in place until they reach the head).
  void drop_gone_from_queue();
  void arm_queue_timer();

  // Admin API
  void add_admin_routes();
  // Dashboard (GET /dashboard, GET /admin/stream)
  void record_completion(const Call& c, double t, int output_tokens);
  void arm_dashboard();
  std::string dashboard_snapshot(StreamCursor& cursor, const StreamParams& params);

  // Lifecycle: graceful shutdown (SIGTERM) and reload (SIGHUP)
  void begin_shutdown(std::function<void()> done);
  void end_shutdown();
  void maybe_shutdown_done();
  bool reload(RouterConfig next, std::string& error);

  // Peer sync (issue 13): null when off.
  void start_peer_sync();
  void arm_peer_timer();
  void index_rate_keys();  // rate_keys from config.api_keys
  std::unique_ptr<PeerLink> peer;
  // Replicas from DNS (issue 13): null without replica_dns.
  void start_discovery();
  void apply_dns(size_t name, const std::vector<std::string>& urls, const std::string& error);
  std::unique_ptr<DnsDiscovery> discovery;
  std::vector<std::set<std::string>> dns_owned;  // per replica_dns entry: the replicas it added
  std::vector<bool> dns_failing;                 // per entry: the last lookup failed (logged)
  std::shared_ptr<int> dns_alive = std::make_shared<int>(0);
  std::unordered_map<uint64_t, std::string> rate_keys;  // rate_key_hash -> key

  asio::io_context& io;
  RouterConfig config;
  Clock::time_point start_ = Clock::now();
  cluster::ClusterState state;
  std::unique_ptr<policy::Policy> policy;
  policy::Rng rng;
  RouterMetrics metrics;
  std::unique_ptr<AccessLog> access_log;  // null: off
  RateLimiter rate_limiter;
  DecisionLog decisions;
  CompletionLog completions{1000};  // predicted vs actual of the last completed requests
  DashboardStream dashboards;
  uint64_t dashboard_generation = 0;
  http::Routes routes;
  http::Routes admin_routes;
  http::Server server;
  std::unique_ptr<http::Server> admin_server;
  asio::steady_timer scrape_timer;
  asio::steady_timer health_timer;
  asio::steady_timer models_timer;
  asio::steady_timer queue_timer;
  asio::steady_timer ready_timer;
  asio::steady_timer dashboard_timer;
  asio::steady_timer shutdown_timer;
  asio::steady_timer peer_timer;        // peer sync: ticks
  asio::steady_timer peer_flush_timer;  // peer sync: batching of outgoing frames
  bool shutting_down = false;
  std::function<void()> on_shutdown_done;

  std::vector<std::unique_ptr<Replica>> replicas;  // by ClusterState index (removed: tombstones)
  std::unique_ptr<KvEventsConsumer> kv_events;     // KV-cache events (issue 15)
  std::unordered_map<uint64_t, CallPtr> calls;     // dispatched or queued, not finished
  std::deque<CallPtr> queue;
  bool pumping = false;
  bool queue_timer_armed = false;
  int total_in_flight = 0;
  uint64_t next_id = 1;
  bool started = false;
  bool stopped = false;
  bool ready = false;
  std::function<void()> on_ready;
  cluster::Decision decision;  // reused
  // Response id -> (replica URL, expiry), oldest first for eviction (dropin).
  struct StoredResponse {
    std::string replica;
    double expires = 0;
  };
  std::unordered_map<std::string, StoredResponse> responses;
  std::deque<std::pair<std::string, double>> response_order;
};

Router::Impl::Impl(asio::io_context& io_in, RouterConfig config_in)
    : io(io_in),
      config(std::move(config_in)),
      state([&] {
        cluster::ClusterStateOptions o;
        o.stale_after_s = config.scrape.stale_after_s;
        o.hash_block_size = kHashBlockSize;
        return o;
      }()),
      rng(config.policy.seed),
      metrics(config.policy.name),
      decisions(config.decision_log_size),
      server(
          io_in,
          [&] {
            http::ServerOptions o;
            o.host = config.listen.host;
            o.port = static_cast<uint16_t>(config.listen.port);
            o.max_body_bytes = config.max_body_bytes;
            const ClientLimits& l = config.client;
            o.max_header_bytes = l.max_header_bytes;
            o.request_timeout = ms(l.request_timeout_s);
            o.idle_timeout = ms(l.idle_timeout_s);
            // Streams stay open while replicas generate; requests are small.
            o.write_timeout = ms(l.write_timeout_s);
            o.max_buffered_bytes = l.max_buffered_bytes;
            o.tls_cert_file = config.tls.cert_file;
            o.tls_key_file = config.tls.key_file;
            return o;
          }(),
          [this](http::ExchangePtr e) { dispatch_client(e); }),
      scrape_timer(io_in),
      health_timer(io_in),
      models_timer(io_in),
      queue_timer(io_in),
      ready_timer(io_in),
      dashboard_timer(io_in),
      shutdown_timer(io_in),
      peer_timer(io_in),
      peer_flush_timer(io_in) {
  std::string error;
  if (config.peer_sync.enabled()) {
    peer = std::make_unique<PeerLink>(
        config.peer_sync, state, metrics.registry,
        [&io_in](std::function<void()> f) { asio::post(io_in, std::move(f)); },
        [this](std::function<void()> f) {
          peer_flush_timer.expires_after(
              std::chrono::microseconds(static_cast<int64_t>(PeerLink::kFlushDelayS * 1e6)));
          peer_flush_timer.async_wait([f = std::move(f)](const boost::system::error_code& ec) {
            if (!ec) f();
          });
        },
        [this] { return now(); });
  }
  policy = policy::make_policy(config.policy.name, config.policy.params, error);
  if (config.admin.port >= 0) {
    http::ServerOptions o;
    o.host = config.admin.host;
    o.port = static_cast<uint16_t>(config.admin.port);
    admin_server = std::make_unique<http::Server>(io_in, o, [this](http::ExchangePtr e) {
      if (admin_authorized(e)) admin_routes.dispatch(e);
    });
  }
  add_routes();
  add_admin_routes();
  kv_events = std::make_unique<KvEventsConsumer>(io_in, state, [this] { return now(); });
  for (const ReplicaConfig& rc : config.replicas) {
    if (!add_replica(rc, error)) spdlog::error("replica {}: {}", rc.url, error);
  }
}

// ---------------------------------------------------------------------------------------------
// Replicas

bool Router::Impl::add_replica(ReplicaConfig rc, std::string& error) {
  if (!validate_replica(rc, error)) return false;
  if (find_replica(rc.url)) {
    error = "duplicate replica " + rc.url;
    return false;
  }
  cluster::ReplicaSpec spec;
  spec.name = rc.url;
  spec.weight = rc.weight;
  const std::string arch = rc.arch.empty() ? "llama-2-7b" : rc.arch;
  const std::string gpu = rc.gpu.empty() ? "h100" : rc.gpu;
  if (!engine::make_config(engine::ProfileSet::builtin(), arch, gpu, spec.engine, error)) {
    return false;
  }
  auto r = std::make_unique<Replica>();
  r->config = rc;
  r->config.arch = arch;
  r->config.gpu = gpu;
  r->health = HealthTracker(config.health.failure_threshold, config.health.success_threshold);
  http::PoolOptions po;
  po.connect_timeout = ms(config.timeouts.connect_s);
  po.max_idle_connections = 256;
  const http::Url url = *http::parse_url(rc.url);
  if (url.tls) {  // https:// replica: its TLS settings, else upstream_tls
    po.tls = http::make_tls_client_context(tls_options_for(config, rc), error);
    if (!po.tls) {
      error = "replica " + rc.url + ": " + error;
      return false;
    }
  }
  r->pool = std::make_shared<http::UpstreamPool>(io, url, po);
  r->index = state.add_replica(spec);
  state.set_routable(r->index, false);
  r->window = ReplicaWindow(now());
  r->in_flight_gauge = &metrics.in_flight.with({rc.url});
  r->in_flight_gauge->set(0);
  metrics.healthy.with({rc.url}).set(0);
  metrics.routable.with({rc.url}).set(0);
  replicas.push_back(std::move(r));
  if (static_cast<int>(replicas.size()) != state.num_replicas()) {
    error = "internal: replica index mismatch";
    return false;
  }
  Replica& added = *replicas.back();
  if (peer) peer->set_replica(added.index, added.url());
  spdlog::info("replica {} added (gpu {}, arch {}, weight {})", added.url(), gpu, arch,
               added.config.weight);
  // KV-cache events (issue 15): its own endpoints or the pattern's.
  if (const KvEventsEndpoints kv = resolve_kv_events(added.config, config.kv_events);
      !kv.endpoint.empty()) {
    std::string kv_error;
    if (!kv_events->attach(added.index, kv, kv_error))
      spdlog::error("replica {}: {} (its own index is used)", added.url(), kv_error);
  }
  if (started && !stopped) {
    // Running already (admin API): probe at once.
    check_health(added);
    fetch_models(added);
  }
  return true;
}

Replica* Router::Impl::find_replica(std::string_view url) {
  std::string canonical(url);
  if (auto u = http::parse_url(url)) canonical = u->str();
  for (auto& r : replicas)
    if (!r->removed && r->url() == canonical) return r.get();
  return nullptr;
}

bool Router::Impl::any_routable() const {
  for (const auto& r : replicas)
    if (r->routable()) return true;
  return false;
}

void Router::Impl::set_health(Replica& r, bool ok, std::string_view detail) {
  if (!ok) {
    r.last_error = std::string(detail);
    metrics.health_failures.with({r.url()}).inc();
  }
  const bool was_known = r.health.known();
  if (r.health.record(ok)) {
    metrics.healthy.with({r.url()}).set(r.health.healthy() ? 1 : 0);
    if (r.health.healthy()) {
      spdlog::info("replica {} is healthy", r.url());
      if (was_known) {
        // It was down: it probably restarted with an empty prefix cache.
        state.forget_prefix_cache(r.index);
        kv_events->restart(r.index);
        r.counters = ScrapeCounters{};
      }
      fetch_models(r);
    } else if (was_known) {
      spdlog::warn("replica {} is unhealthy: {}", r.url(), detail);
      // Requests it has not begun to answer need not wait for their first-byte timeout. Posted:
      // set_health may run inside one of those calls' own completion.
      asio::post(io, [this, index = r.index] { fail_over_unanswered(index); });
    } else {
      spdlog::warn("replica {} does not answer: {}", r.url(), detail);
    }
  } else if (!ok && !was_known) {
    // Its first result, a failure (it starts unhealthy, so nothing changed): say why once.
    spdlog::warn("replica {} does not answer: {}", r.url(), detail);
  }
  metrics.routable.with({r.url()}).set(r.routable() ? 1 : 0);
  state.set_routable(r.index, r.routable());
  if (r.routable()) pump_queue();
}

void Router::Impl::finalize_removal(Replica& r) {
  if (r.removed) return;
  r.removed = true;
  state.set_routable(r.index, false);
  kv_events->detach(r.index);
  state.forget_prefix_cache(r.index);
  if (peer) peer->set_replica(r.index, "");
  metrics.routable.with({r.url()}).set(0);
  metrics.healthy.with({r.url()}).set(0);
  r.in_flight_gauge->set(0);
  // The pool may be inside one of its own callbacks: destroy it later.
  std::shared_ptr<http::UpstreamPool> pool = std::move(r.pool);
  asio::post(io, [pool] {});
  spdlog::info("replica {} removed", r.url());
}

void Router::Impl::begin_removal(Replica& r, bool force) {
  r.removing = true;
  state.set_routable(r.index, false);
  metrics.routable.with({r.url()}).set(0);
  if (force) abort_calls_on(r, "replica " + r.url() + " was removed");
  if (r.in_flight == 0) finalize_removal(r);
}

ReplicaReport Router::Impl::report(const Replica& r) {
  const double t = now();
  return report(r, state.view(t), t);
}

ReplicaReport Router::Impl::report(const Replica& r, const cluster::ClusterView& view, double t) {
  ReplicaReport out;
  const cluster::ReplicaView& v = state.replica(r.index);
  out.url = r.url();
  out.weight = r.config.weight;
  out.gpu = r.config.gpu;
  out.arch = r.config.arch;
  out.healthy = r.health.healthy();
  out.health_known = r.health.known();
  out.routable = r.routable();
  out.draining = r.draining;
  out.removing = r.removing;
  out.consecutive_failures = r.health.consecutive_failures();
  out.last_error = r.last_error;
  out.unroutable_reason = unroutable_reason(r);
  out.models_known = r.models_known;
  out.models = r.models.ids;
  out.time_scale = r.models.time_scale;
  out.scrape = v.scrape;
  out.scrape_age_s = r.last_scrape_ok >= 0 ? t - r.last_scrape_ok : -1;
  out.scrape_fresh = v.scrape.fresh(t, config.scrape.stale_after_s);
  out.scrapes = r.scrapes;
  out.scrape_failures = r.scrape_failures;
  out.ledger = v.ledger_or_empty();
  out.limits = v.limits;
  const predict::SpeedModel& speed = state.speed(r.index);
  out.prefill_factor = speed.prefill_factor();
  out.decode_factor = speed.decode_factor();
  out.prefill_observations = speed.prefill_observations();
  out.decode_observations = speed.decode_observations();
  predict::CompletionQuery q;
  q.prompt_tokens = std::max(1, static_cast<int>(std::lround(view.averages.prompt_tokens)));
  q.output_tokens = std::max(1, static_cast<int>(std::lround(view.averages.output_tokens)));
  q.cached_tokens = 0;
  const predict::CompletionEstimate e = predict::estimate_completion(v, q, view, speed);
  out.typical_prompt_tokens = q.prompt_tokens;
  out.typical_output_tokens = q.output_tokens;
  out.predicted_ttft_s = e.ttft_s;
  out.predicted_e2e_s = e.e2e_s;
  out.requests = r.requests;
  out.failures = r.failures;
  // The window is moved to now (mutable: reading a report only drops what aged out).
  ReplicaWindow& w = r.window;
  w.advance(t);
  out.ttft_p50_s = w.ttft_quantile(0.5);
  out.ttft_p99_s = w.ttft_quantile(0.99);
  out.ttft_samples = w.ttft_samples();
  out.requests_per_s = w.requests_per_s(t);
  out.tokens_per_s = w.tokens_per_s(t);
  out.kv_events = kv_events->status(r.index);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Polling: /metrics every scrape interval, /health every health interval, /v1/models every
// models interval (and whenever a replica turns healthy). At most one of each in flight per
// replica.

void Router::Impl::start_polling() {
  for (auto& r : replicas) {
    check_health(*r);
    fetch_models(*r);
    scrape(*r);
  }
  arm_scrape();
  arm_health();
  arm_models();
}

// Peer sync (issue 13): PeerLink does the work; the router starts it and ticks it.
void Router::Impl::start_peer_sync() {
  if (!peer) return;
  std::string error;
  if (!peer->start(error)) {
    spdlog::error("{}; peer sync off", error);
    peer.reset();
    return;
  }
  index_rate_keys();
  // A peer admitted a request of a rate-limited key: our buckets for it pay too.
  peer->on_rate_charge() = [this](uint64_t hash, uint32_t requests, uint64_t tokens) {
    auto it = rate_keys.find(hash);
    if (it == rate_keys.end()) return;
    rate_limiter.consume(it->second, rate_limit_for(config, it->second), requests,
                         static_cast<double>(tokens), now());
  };
  arm_peer_timer();
}

void Router::Impl::index_rate_keys() {
  rate_keys.clear();
  rate_keys[rate_key_hash(config.peer_sync.cluster, "")] = "";  // no keys configured
  for (const std::string& k : config.api_keys)
    rate_keys[rate_key_hash(config.peer_sync.cluster, k)] = k;
}

void Router::Impl::start_discovery() {
  if (config.replica_dns.empty()) return;
  dns_owned.assign(config.replica_dns.size(), {});
  dns_failing.assign(config.replica_dns.size(), false);
  std::weak_ptr<int> token = dns_alive;
  discovery = std::make_unique<DnsDiscovery>(
      config.replica_dns, config.dns_server,
      [this, token](size_t i, std::vector<std::string> urls, std::string error) {
        asio::post(io, [this, token, i, urls = std::move(urls), error = std::move(error)] {
          if (!token.expired() && !stopped) apply_dns(i, urls, error);
        });
      });
  discovery->start();
}

// New records become replicas (probed at once); vanished ones are drained then removed, as
// POST /admin/replicas/remove does. A failed lookup changes nothing.
void Router::Impl::apply_dns(size_t i, const std::vector<std::string>& urls,
                             const std::string& error) {
  const ReplicaDnsConfig& d = config.replica_dns[i];
  if (!error.empty()) {
    if (!dns_failing[i]) spdlog::warn("replica_dns {}: {}; keeping its replicas", d.name, error);
    dns_failing[i] = true;
    return;
  }
  dns_failing[i] = false;
  std::set<std::string>& owned = dns_owned[i];
  const std::set<std::string> wanted(urls.begin(), urls.end());
  for (const std::string& url : wanted) {
    if (owned.count(url) || find_replica(url)) continue;
    ReplicaConfig rc;
    rc.url = url;
    rc.gpu = d.gpu;
    rc.arch = d.arch;
    std::string e;
    if (!add_replica(rc, e)) {
      spdlog::error("replica_dns {}: {}: {}", d.name, url, e);
      continue;
    }
    spdlog::info("replica_dns {}: record {} appeared", d.name, url);
    owned.insert(url);
  }
  for (auto it = owned.begin(); it != owned.end();) {
    if (wanted.count(*it)) {
      ++it;
      continue;
    }
    if (Replica* r = find_replica(*it)) {
      spdlog::info("replica_dns {}: record {} vanished: draining", d.name, *it);
      begin_removal(*r, false);
    }
    it = owned.erase(it);
  }
}

void Router::Impl::arm_peer_timer() {
  peer_timer.expires_after(std::chrono::milliseconds(250));
  peer_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped || !peer) return;
    peer->tick();
    arm_peer_timer();
  });
}

void Router::Impl::arm_scrape() {
  scrape_timer.expires_after(ms(config.scrape.interval_s));
  scrape_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped) return;
    for (auto& r : replicas)
      if (!r->removed) scrape(*r);
    arm_scrape();
  });
}

void Router::Impl::arm_health() {
  health_timer.expires_after(ms(config.health.interval_s));
  health_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped) return;
    for (auto& r : replicas)
      if (!r->removed) check_health(*r);
    arm_health();
  });
}

void Router::Impl::arm_models() {
  models_timer.expires_after(ms(config.models.refresh_interval_s));
  models_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped) return;
    for (auto& r : replicas)
      if (!r->removed && r->health.healthy()) fetch_models(*r);
    arm_models();
  });
}

void Router::Impl::scrape(Replica& r) {
  if (r.scrape_busy || !r.pool) return;
  r.scrape_busy = true;
  const int index = r.index;
  poll_get(r, "/metrics", config.scrape.max_body_bytes, config.scrape.timeout_s,
           [this, index](int status, std::string body, const http::ClientResult& result) {
             Replica& r = *replicas[static_cast<size_t>(index)];
             r.scrape_busy = false;
             if (r.removed) return;
             const double t = now();
             std::string error;
             cluster::ScrapeSnapshot snap;
             bool ok = result.ok() && status == 200;
             std::string_view reason = "status";
             if (!ok) {
               error = result.ok() ? "status " + std::to_string(status) : result.detail;
               if (result.ok() && (status == 401 || status == 403)) {
                 reason = "unauthorized";
                 note_unauthorized(r, "/metrics", status);
               } else if (!result.ok()) {
                 reason = result.error == http::ClientError::kTimeout ? "timeout" : "connect";
               }
             } else if (!metrics::parse_text(body, r.parsed, error)) {
               ok = false;
               reason = "parse";
             } else if (!snapshot_from_metrics(r.parsed, t, r.counters, snap, error)) {
               // No vllm: series: a replica run with --disable-log-stats. It is routed on
               // the ledger alone (an invalid snapshot, as policies expect of a failed one).
               ok = false;
               reason = "no_vllm_metrics";
             }
             if (ok) {
               ++r.scrapes;
               r.last_scrape_ok = t;
               metrics.scrapes.with({r.url()}).inc();
               state.update_scrape(r.index, snap);
               return;
             }
             ++r.scrape_failures;
             metrics.scrape_failures.with({r.url(), std::string(reason)}).inc();
             state.update_scrape(r.index, cluster::ScrapeSnapshot{});
             // Nothing listens there any more: that is a failed health check too.
             if (result.error == http::ClientError::kConnectRefused ||
                 result.error == http::ClientError::kConnectFailed) {
               set_health(r, false, "scrape: " + error);
             }
             spdlog::debug("scrape {} failed: {}", r.url(), error);
           });
}

void Router::Impl::check_health(Replica& r) {
  if (r.health_busy || !r.pool) return;
  r.health_busy = true;
  const int index = r.index;
  poll_get(r, "/health", 64 * 1024, config.health.timeout_s,
           [this, index](int status, std::string, const http::ClientResult& result) {
             Replica& r = *replicas[static_cast<size_t>(index)];
             r.health_busy = false;
             if (r.removed) return;
             const bool ok = result.ok() && status == 200;
             set_health(r, ok,
                        ok            ? ""
                        : result.ok() ? "health: status " + std::to_string(status)
                                      : "health: " + result.detail);
             check_ready();
           });
}

void Router::Impl::fetch_models(Replica& r) {
  if (r.models_busy || !r.pool) return;
  r.models_busy = true;
  const int index = r.index;
  poll_get(r, "/v1/models", kMaxModelsBody, std::max(config.health.timeout_s, 1.0),
           [this, index](int status, std::string body, const http::ClientResult& result) {
             Replica& r = *replicas[static_cast<size_t>(index)];
             r.models_busy = false;
             if (r.removed) return;
             ModelList list;
             std::string error;
             if (result.ok() && (status == 401 || status == 403)) {
               metrics.scrape_failures.with({r.url(), "unauthorized"}).inc();
               ++r.scrape_failures;
               note_unauthorized(r, "/v1/models", status);
               r.models_known = false;  // what it serves cannot be known: unroutable
               metrics.routable.with({r.url()}).set(0);
               state.set_routable(r.index, false);
             } else if (result.ok() && status == 200 && parse_models_body(body, list, error)) {
               if (r.unauthorized) {
                 r.unauthorized = false;
                 spdlog::info("replica {}: /v1/models answers with the upstream key now", r.url());
               }
               if (!r.models_known || list.ids != r.models.ids) {
                 std::string names;
                 for (const std::string& m : list.ids) names += (names.empty() ? "" : ", ") + m;
                 spdlog::info("replica {} serves: {}", r.url(), names);
               }
               r.models = std::move(list);
               r.models_known = true;
               // eta vllm-sim runs `time_scale` simulated seconds per wall second: start the
               // speed model there (the profile is in simulated time) instead of learning it
               // from scratch.
               predict::SpeedModel& speed = state.speed(r.index);
               if (!r.speed_seeded && r.models.time_scale && speed.decode_observations() == 0 &&
                   speed.prefill_observations() == 0) {
                 speed.set_factors(*r.models.time_scale, *r.models.time_scale, 0);
                 r.speed_seeded = true;
               }
               metrics.routable.with({r.url()}).set(r.routable() ? 1 : 0);
               state.set_routable(r.index, r.routable());
               if (r.routable()) pump_queue();
             } else {
               spdlog::debug("models {} failed: {}", r.url(),
                             !error.empty() ? error
                             : result.ok()  ? "status " + std::to_string(status)
                                            : result.detail);
             }
             check_ready();
           });
}

void Router::Impl::poll_get(Replica& r, std::string target, size_t max_bytes, double timeout_s,
                            http::UpstreamPool::GetCallback cb) {
  struct State {
    std::string body;
    http::UpstreamPool::GetCallback cb;
  };
  auto st = std::make_shared<State>();
  st->cb = std::move(cb);
  http::ClientRequest req;
  req.method = "GET";
  req.target = std::move(target);
  req.total_timeout = ms(timeout_s);
  req.max_body_bytes = max_bytes;
  set_upstream_authorization(req.headers, false, upstream_key(r));
  http::ResponseHandlers h;
  h.on_body = [st](std::string_view data) { st->body.append(data); };
  h.on_complete = [st](const http::ClientResult& result) {
    auto f = std::move(st->cb);
    if (f) f(result.status, std::move(st->body), result);
  };
  r.pool->request(std::move(req), std::move(h));
}

const std::string& Router::Impl::upstream_key(const Replica& r) const {
  return r.config.api_key.empty() ? config.upstream_api_key : r.config.api_key;
}

void Router::Impl::note_unauthorized(Replica& r, std::string_view what, int status) {
  r.last_error =
      fmt::format("unauthorized: {} answered {}{}", what, status,
                  upstream_key(r).empty() ? " (set the replica's api_key or upstream_api_key)"
                                          : " (the upstream key was refused)");
  if (r.unauthorized) return;
  r.unauthorized = true;
  spdlog::warn("replica {}: {}", r.url(), r.last_error);  // once, until a poll succeeds
}

std::string Router::Impl::unroutable_reason(const Replica& r) const {
  if (r.routable()) return "";
  if (r.removing || r.removed) return "removing";
  if (r.draining) return "draining";
  if (!r.health.known()) return "not probed yet";
  if (!r.health.healthy()) return "unhealthy: " + r.last_error;
  if (r.unauthorized) return r.last_error;
  return "models not known yet";
}

void Router::Impl::check_ready() {
  if (ready) return;
  for (const auto& r : replicas) {
    if (r->removed) continue;
    // Probed: its health is known and, if healthy, its models too.
    if (!r->health.known() || (r->health.healthy() && !r->models_known && !r->unauthorized)) return;
  }
  ready = true;
  ready_timer.cancel();
  if (on_ready) {
    auto f = std::move(on_ready);
    on_ready = nullptr;
    f();
  }
}

// ---------------------------------------------------------------------------------------------
// Client API

void Router::Impl::add_routes() {
  // The client listener's routes are the table in routes.cpp (dispatch_client).
}

void Router::Impl::dispatch_client(const http::ExchangePtr& e) {
  const http::Request& req = e->request();
  const RouteMatch m = match_route(req.method, req.path());
  if (!m.spec) {
    // vLLM's (FastAPI's) answers, with its error body: the type is the HTTP phrase.
    if (!m.allow.empty()) {
      http::Response r = http::error_response(405, "Method Not Allowed", "Method Not Allowed");
      r.headers.emplace_back("Allow", m.allow);
      e->respond(std::move(r));
      return;
    }
    e->respond(http::error_response(404, "Not Found", "Not Found"));
    return;
  }
  switch (m.spec->own) {
    case OwnRoute::kModels:
      return handle_models(e);
    case OwnRoute::kHealth:
      return handle_health(e);
    case OwnRoute::kMetrics:
      return handle_metrics(e);
    case OwnRoute::kVersion:
      return handle_version(e);
    case OwnRoute::kPing: {
      // vLLM's /ping (SageMaker) is its /health.
      return handle_health(e);
    }
    case OwnRoute::kNone:
      break;
  }
  handle_proxy(e, *m.spec, m.id);
}

void Router::Impl::handle_version(const http::ExchangePtr& e) {
  http::Response r;
  r.body = "{\"version\":\"" ETA_VERSION "\",\"server\":\"eta route\"}";
  e->respond(std::move(r));
}

std::string Router::Impl::default_model() const {
  std::string only;
  for (const auto& r : replicas) {
    if (r->removed || !r->models_known) continue;
    for (const std::string& m : r->models.ids) {
      if (only.empty()) {
        only = m;
      } else if (m != only) {
        return "";
      }
    }
  }
  return only;
}

void Router::Impl::remember_response(std::string id, int replica) {
  constexpr size_t kMaxStored = 100000;
  constexpr double kStoredTtlS = 3600;
  if (id.empty() || id.size() > 256) return;
  const double t = now();
  while (!response_order.empty() &&
         (response_order.size() >= kMaxStored || response_order.front().second <= t)) {
    auto it = responses.find(response_order.front().first);
    // Not an entry remembered again since (it has a later expiry).
    if (it != responses.end() && it->second.expires == response_order.front().second) {
      responses.erase(it);
    }
    response_order.pop_front();
  }
  const double expires = t + kStoredTtlS;
  responses[id] = StoredResponse{replicas[static_cast<size_t>(replica)]->url(), expires};
  response_order.emplace_back(std::move(id), expires);
}

int Router::Impl::response_owner(const std::string& id) {
  auto it = responses.find(id);
  if (it == responses.end()) return -1;
  if (it->second.expires <= now()) {
    responses.erase(it);
    return -1;
  }
  const Replica* r = find_replica(it->second.replica);
  return r ? r->index : -1;
}

namespace {

// Constant time in the key's content.
bool same_secret(std::string_view token, std::string_view key) {
  if (token.size() != key.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(token[i] ^ key[i]);
  return diff == 0;
}

}  // namespace

// The admin token comes as "Authorization: Bearer" (API clients) or, for a browser, which cannot
// send that header with a page load or an EventSource, as the HttpOnly cookie that
// `GET /dashboard?token=...` sets (then redirecting to /dashboard, so the token leaves the URL).
bool Router::Impl::admin_authorized(const http::ExchangePtr& e) {
  if (config.admin.token.empty()) return true;
  const http::Request& req = e->request();
  if (same_secret(bearer_token(req.header("authorization")), config.admin.token) ||
      same_secret(cookie_value(req.header("cookie"), kAdminCookie), config.admin.token)) {
    return true;
  }
  if (req.method == "GET" && req.path() == "/dashboard" &&
      same_secret(query_value(req.query(), "token"), config.admin.token)) {
    http::Response r;
    r.status = 303;
    r.content_type = "text/plain";
    r.headers.emplace_back("Location", "/dashboard");
    r.headers.emplace_back("Set-Cookie", std::string(kAdminCookie) + "=" + config.admin.token +
                                             "; Path=/; HttpOnly; SameSite=Strict");
    e->respond(std::move(r));
    return false;
  }
  http::Response r =
      http::error_response(401, "UnauthorizedError", "Missing or invalid admin token.");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  e->respond(std::move(r));
  return false;
}

bool Router::Impl::authorized(const http::ExchangePtr& e, std::string_view* matched) {
  if (config.api_keys.empty()) return true;
  const std::string_view token = bearer_token(e->request().header("authorization"));
  for (const std::string& key : config.api_keys) {
    if (same_secret(token, key)) {
      if (matched != nullptr) *matched = key;
      return true;
    }
  }
  metrics.count_error("unauthorized");
  metrics.count_request(std::string(kNone), 401);
  Call c;
  c.id = next_id++;
  c.arrival_wall = Clock::now();
  c.error = "unauthorized";
  write_access_log(c, 401);
  http::Response r = http::error_response(
      401, "UnauthorizedError",
      token.empty() ? "Missing API key: send 'Authorization: Bearer <key>'." : "Invalid API key.");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  add_eta_headers(c, r.headers);
  e->respond(std::move(r));
  return false;
}

void Router::Impl::handle_models(const http::ExchangePtr& e) {
  if (!authorized(e)) return;
  std::vector<std::string_view> seen;
  std::string body = "{\"object\":\"list\",\"data\":[";
  bool first = true;
  for (const auto& r : replicas) {
    if (r->removed || !r->health.healthy() || !r->models_known) continue;
    for (size_t i = 0; i < r->models.ids.size(); ++i) {
      const std::string& served = r->models.ids[i];
      // Model aliases: a served name is listed as its public name (its replica's card otherwise).
      const std::string* alias = public_name_of(config.models.aliases, served);
      const std::string& id = alias != nullptr ? *alias : served;
      if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
      seen.push_back(id);
      if (!first) body += ',';
      first = false;
      body += alias != nullptr ? rewrite_field(r->models.cards[i], "id", served, id, true)
                               : r->models.cards[i];
    }
  }
  body += "]}";
  http::Response resp;
  resp.body = std::move(body);
  e->respond(std::move(resp));
}

void Router::Impl::handle_health(const http::ExchangePtr& e) {
  if (shutting_down) {
    e->respond(
        http::error_response(503, "ServiceUnavailableError", "The router is shutting down."));
    return;
  }
  if (any_routable()) {
    http::Response r;
    r.content_type.clear();
    e->respond(std::move(r));
    return;
  }
  e->respond(http::error_response(503, "ServiceUnavailableError", "No replica is routable."));
}

void Router::Impl::handle_metrics(const http::ExchangePtr& e) {
  const double t = now();
  for (const auto& r : replicas) {
    if (r->removed) continue;
    metrics.scrape_age.with({r->url()}).set(r->last_scrape_ok >= 0 ? t - r->last_scrape_ok : -1);
    const predict::SpeedModel& s = state.speed(r->index);
    metrics.speed_factor.with({r->url(), "prefill"}).set(s.prefill_factor());
    metrics.speed_factor.with({r->url(), "decode"}).set(s.decode_factor());
  }
  drop_gone_from_queue();
  metrics.queue_length.with().set(static_cast<double>(queue.size()));
  if (peer) peer->refresh_metrics();
  http::Response resp;
  resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
  resp.body = metrics.registry.render();
  e->respond(std::move(resp));
}

void Router::Impl::handle_proxy(const http::ExchangePtr& e, const RouteSpec& route,
                                std::string_view id) {
  std::string_view key;
  if (!authorized(e, &key)) return;
  auto c = std::make_shared<Call>();
  c->id = next_id++;
  c->exchange = e;
  c->route = &route;
  c->arrival_wall = Clock::now();
  c->arrival = now();
  if (shutting_down) {
    e->mutable_request().keep_alive = false;  // and close the connection after the answer
    note_error(*c, "shutting_down");
    respond_error(c, 503, "ServiceUnavailableError", "The router is shutting down.");
    return;
  }
  // Best effort: nothing here refuses a request (openai/extract.hpp).
  const http::Request& request = e->request();
  openai::extract_request(route.api, request.body, request.header("content-type"),
                          config.request_estimates, c->req);
  std::string model = c->req.model;
  if (route.cls == RouteClass::kStored) {
    c->stored_id = std::string(id);
    c->pinned = response_owner(c->stored_id);
    c->use_ledger = false;
  } else if (model.empty()) {
    model = default_model();
    if (model.empty()) {
      // Several models (or none known yet): no replica to ask. A completions or chat body vLLM
      // would refuse gets vLLM's own answer (the simulator's rules, openai::parse_request);
      // a valid one without a model, the router's 400 on `model`.
      note_error(*c, "bad_request");
      openai::RequestFields strict;
      openai::Error err;
      const bool chat = route.api == openai::Api::kChat;
      if ((chat || route.api == openai::Api::kCompletions) &&
          !openai::parse_request(chat ? openai::Endpoint::kChat : openai::Endpoint::kCompletions,
                                 request.body, strict, err)) {
        http::Response r = http::error_response(err);
        add_eta_headers(*c, r.headers);
        e->respond(std::move(r));
        finish_call(c, err.status);
        return;
      }
      err = openai::bad_request(
          "The request names no model and this router serves several (or none is known yet): "
          "send `model` (GET /v1/models lists them).",
          "model");
      http::Response r = http::error_response(err);
      add_eta_headers(*c, r.headers);
      e->respond(std::move(r));
      finish_call(c, err.status);
      return;
    }
  }
  if (route.cls == RouteClass::kUtility) c->use_ledger = false;
  const auto t0 = Clock::now();
  prepare_request(state, c->req, model, request.header(kSessionHeader), c->info, c->prepared);
  c->decision_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // A completions or chat stream is counted exactly: the replica is asked for usage on every
  // event, and the client gets back exactly the stream it asked for (sse.hpp).
  if (config.stream_usage && c->req.stream && c->req.n == 1 &&
      (route.api == openai::Api::kCompletions || route.api == openai::Api::kChat) &&
      !c->req.continuous_usage_stats) {
    c->forward_body = with_continuous_usage(request.body);
    if (!c->forward_body.empty()) {
      c->rewrite_stream = true;
      c->rewriter = UsageStreamRewriter(c->req.include_usage, false);
    }
  }
  if (const RateLimit& limit = rate_limit_for(config, key); limit.any()) {
    // Charged at admission: the prompt and the most it may generate.
    const double tokens =
        c->info.prompt_tokens + static_cast<double>(c->info.max_tokens.value_or(0)) *
                                    (c->info.decode ? c->info.sequences : 0);
    const RateLimiter::Verdict v = rate_limiter.charge(key, limit, tokens, c->arrival);
    if (!v.allowed) {
      note_error(*c, "rate_limited");
      http::Headers h{{"Retry-After", std::to_string(v.retry_after_s)}};
      respond_error(c, 429, "TooManyRequestsError",
                    v.tokens ? fmt::format("Rate limit reached for this API key: {:g} tokens per "
                                           "minute (this request counts {:g}); retry in {} s.",
                                           limit.tokens_per_minute, tokens, v.retry_after_s)
                             : fmt::format("Rate limit reached for this API key: {:g} requests "
                                           "per minute; retry in {} s.",
                                           limit.requests_per_minute, v.retry_after_s),
                    std::move(h));
      return;
    }
    if (peer)
      peer->rate_charge(rate_key_hash(config.peer_sync.cluster, key), 1,
                        static_cast<uint64_t>(std::max(0.0, tokens)));
  }
  std::weak_ptr<Call> weak = c;
  e->on_disconnect([this, weak] {
    if (CallPtr c = weak.lock()) on_client_gone(c);
  });
  calls.emplace(c->id, c);
  admit(c);
}

// ---------------------------------------------------------------------------------------------
// Routing

void Router::Impl::admit(const CallPtr& c) {
  // FIFO: while requests wait, newcomers queue behind them.
  if (!queue.empty() && config.admission.queue_size > 0) {
    enqueue(c);
    pump_queue();
    return;
  }
  const RouteResult result = route(c);
  if (result == RouteResult::kDispatched) return;
  if ((result == RouteResult::kAtCapacity || result == RouteResult::kSloShed) &&
      config.admission.queue_size > 0) {
    enqueue(c);
    return;
  }
  refuse(c, result);
}

RouteResult Router::Impl::route(const CallPtr& c) {
  const bool retry = c->attempt > 0;
  const std::string& model = c->info.model;
  const AdmissionConfig& adm = config.admission;
  if (!retry && adm.max_in_flight > 0 && total_in_flight >= adm.max_in_flight) {
    return RouteResult::kAtCapacity;
  }
  bool any_known = false;    // some replica reported its models
  bool any_serving = false;  // some replica (even unroutable) serves the model
  int eligible = 0;          // routable and serving the model
  int candidates = 0;        // ... and with room, and not tried yet
  // A stored response's retrieval or cancel goes to its replica, whatever the model (none is
  // sent), draining or not: the response lives there alone (drain stops new work only).
  if (c->pinned >= 0 && !retry) {
    const Replica& p = *replicas[static_cast<size_t>(c->pinned)];
    if (!p.removed && !p.removing && p.health.healthy() && p.models_known) {
      decision.replica = c->pinned;
      decision.candidates.clear();
      decision.reason = "stored response: its replica";
      c->attempt += 1;
      log_decision(*c, decision, c->pinned);
      start_attempt(c, c->pinned);
      return RouteResult::kDispatched;
    }
  }
  const bool any_model = c->route && c->route->cls == RouteClass::kStored;
  for (const auto& r : replicas) {
    bool ok = false;
    if (!r->removed) {
      any_known = any_known || r->models_known;
      const bool serves = any_model || r->serves(model, config.models.aliases);
      any_serving = any_serving || serves;
      if (r->routable() && serves) {
        ++eligible;
        const bool tried = std::find(c->tried.begin(), c->tried.end(), r->index) != c->tried.end();
        const bool room = retry || adm.max_in_flight_per_replica == 0 ||
                          r->in_flight < adm.max_in_flight_per_replica;
        ok = !tried && room;
      }
    }
    state.set_routable(r->index, ok);
    candidates += ok ? 1 : 0;
  }
  if (eligible == 0) {
    return any_known && !any_serving ? RouteResult::kUnknownModel : RouteResult::kNoReplica;
  }
  if (candidates == 0) return retry ? RouteResult::kNoReplica : RouteResult::kAtCapacity;

  if (!c->use_ledger) {
    // Stored responses: the replica that created it. Utilities (and a stored response whose
    // replica is gone, which any replica answers with vLLM's 404): the least busy candidate.
    int chosen = -1;
    if (c->pinned >= 0 && state.replica(c->pinned).routable) chosen = c->pinned;
    if (chosen < 0) {
      for (const auto& r : replicas) {
        if (!state.replica(r->index).routable) continue;
        if (chosen < 0 || r->in_flight < replicas[static_cast<size_t>(chosen)]->in_flight)
          chosen = r->index;
      }
    }
    if (chosen < 0) return RouteResult::kNoReplica;
    decision.replica = chosen;
    decision.candidates.clear();
    decision.reason = c->pinned >= 0 && chosen == c->pinned ? "stored response: its replica"
                      : c->route->cls == RouteClass::kStored
                          ? "stored response of unknown replica: least in flight"
                          : "utility route: least in flight";
    c->predicted_ttft_s = cluster::kNotPredicted;
    c->predicted_e2e_s = cluster::kNotPredicted;
    c->attempt += 1;
    log_decision(*c, decision, chosen);
    start_attempt(c, chosen);
    return RouteResult::kDispatched;
  }

  const auto t0 = Clock::now();
  const double t = now();
  const cluster::ClusterView& view = state.view(t);
  policy->pick_into(c->prepared.features, view, rng, decision);
  const double pick_s = std::chrono::duration<double>(Clock::now() - t0).count();
  metrics.decision_seconds.with().observe(c->decision_s + pick_s);
  if (!decision.ok()) return RouteResult::kNoReplica;

  // TTFT SLO shedding: when even the best replica is predicted to miss it. Policies that do
  // not predict get the completion model's prediction.
  if (!retry && adm.ttft_slo_s > 0) {
    double best = std::numeric_limits<double>::infinity();
    for (const cluster::Candidate& cand : decision.candidates) {
      double ttft = cand.ttft_s;
      if (!std::isfinite(ttft)) {
        const cluster::ReplicaView& v = state.replica(cand.replica);
        predict::CompletionQuery q;
        q.prompt_tokens = std::max(1, c->prepared.features.prompt_tokens);
        q.cached_tokens = c->prepared.features.cached_tokens_on(cand.replica);
        q.output_tokens = c->prepared.features.output_tokens();
        ttft = predict::estimate_completion(v, q, view, state.speed(cand.replica)).ttft_s;
      }
      best = std::min(best, ttft);
    }
    if (best > adm.ttft_slo_s) {
      decision.reason +=
          fmt::format("; shed: best predicted ttft {:.3f}s > slo {:.3f}s", best, adm.ttft_slo_s);
      if (!c->queued) log_decision(*c, decision, -1);  // not again at every re-check
      return RouteResult::kSloShed;
    }
  }
  const cluster::Candidate* chosen = decision.candidate(decision.replica);
  c->predicted_ttft_s = chosen ? chosen->ttft_s : cluster::kNotPredicted;
  c->predicted_e2e_s = chosen ? chosen->e2e_s : cluster::kNotPredicted;
  c->attempt += 1;
  log_decision(*c, decision, decision.replica);
  start_attempt(c, decision.replica);
  return RouteResult::kDispatched;
}

void Router::Impl::log_decision(const Call& c, const cluster::Decision& d, int chosen) {
  DecisionRecord* rec = decisions.next();
  if (!rec) return;
  rec->unix_time_s = unix_now();
  rec->request_id = c.id;
  rec->attempt = chosen >= 0 ? c.attempt : c.attempt + 1;
  rec->policy = config.policy.name;
  rec->model = c.info.model;
  rec->prompt_tokens = c.prepared.features.prompt_tokens;
  rec->cached_tokens = chosen >= 0 ? c.prepared.features.cached_tokens_on(chosen) : 0;
  rec->predicted_output_tokens = c.prepared.features.output_tokens();
  rec->chosen = chosen >= 0 ? replicas[static_cast<size_t>(chosen)]->url() : "";
  rec->prefix_source = chosen < 0                       ? ""
                       : state.kv_events().live(chosen) ? "kv_events"
                                                        : "router_index";
  rec->reason = d.reason;
  rec->decision_s = c.decision_s;
  rec->candidates.resize(d.candidates.size());
  for (size_t i = 0; i < d.candidates.size(); ++i) {
    const cluster::Candidate& cand = d.candidates[i];
    CandidateRecord& cr = rec->candidates[i];
    cr.replica = replicas[static_cast<size_t>(cand.replica)]->url();
    cr.ttft_s = cand.ttft_s;
    cr.e2e_s = cand.e2e_s;
    cr.score = cand.score;
  }
}

void Router::Impl::note_error(Call& c, std::string_view reason) {
  metrics.count_error(std::string(reason));
  c.error = reason;
}

void Router::Impl::write_access_log(const Call& c, int status) {
  if (!access_log) return;
  auto ms_since = [&](Clock::time_point from, Clock::time_point to) -> std::optional<double> {
    if (from == Clock::time_point{}) return std::nullopt;
    return std::chrono::duration<double, std::milli>(to - from).count();
  };
  auto opt_ms = [](double s) -> std::optional<double> {
    if (!(s >= 0) || !std::isfinite(s)) return std::nullopt;
    return s * 1e3;
  };
  AccessRecord r;
  r.unix_time_s = unix_now() - std::chrono::duration<double>(Clock::now() - c.arrival_wall).count();
  r.request_id = c.id;
  if (c.replica >= 0) r.replica = replicas[static_cast<size_t>(c.replica)]->url();
  r.policy = config.policy.name;
  r.model = c.info.model.empty() ? std::string_view(c.req.model) : c.info.model;
  r.prompt_tokens = c.prepared.features.prompt_tokens;
  r.output_tokens = c.output_tokens;
  r.predicted_ttft_ms = opt_ms(c.predicted_ttft_s);
  r.ttft_ms = opt_ms(c.ttft_s);
  r.predicted_e2e_ms = opt_ms(c.predicted_e2e_s);
  r.e2e_ms = opt_ms(c.e2e_s);
  if (c.replica >= 0) r.dispatch_ms = ms_since(c.arrival_wall, c.dispatch_wall);
  r.status = status;
  r.retries = std::max(0, c.attempt - 1);  // attempts after the first (not failed attempts)
  r.stream = c.req.stream;
  r.error = c.error;  // cleared when a retry succeeded: the client saw no error
  access_log->write(r);
}

void Router::Impl::start_attempt(const CallPtr& c, int index) {
  Replica& r = *replicas[static_cast<size_t>(index)];
  c->replica = index;
  c->attempt_active = true;
  c->mode = Call::Mode::kNone;
  c->status = 0;
  c->headers.clear();
  c->content_type.clear();
  c->body.clear();
  c->sse = false;
  c->scanner.reset();
  c->first_token = false;
  c->relayed_tokens = 0;
  c->dispatch_wall = Clock::now();
  ++r.in_flight;
  ++r.requests;
  ++total_in_flight;
  r.in_flight_gauge->set(r.in_flight);
  if (c->use_ledger) {
    state.on_dispatch(c->id, index, c->prepared.features, now());
    if (peer) peer->dispatched(c->id, index, c->prepared.features);
  }
  c->rewriter.reset();

  http::ClientRequest req;
  req.method = c->exchange->request().method;
  req.target = c->exchange->request().target;
  forward_request_headers(c->exchange->request().headers, req.headers);
  set_upstream_authorization(req.headers, !config.api_keys.empty(), upstream_key(r));
  req.body = c->forward_body.empty() ? std::string_view(c->exchange->request().body)
                                     : std::string_view(c->forward_body);
  // Model aliases: the replica is asked for the model under the name it serves (each attempt
  // from the client's body), and answers are rewritten back.
  const std::string* served = served_name_for(config.models.aliases, c->info.model, r.models.ids);
  if (served != nullptr && *served != c->info.model) {
    req.body_storage = rewrite_field(req.body, "model", c->info.model, *served, true);
    c->model_rewriter.reset("model", *served, c->info.model);
  } else {
    c->model_rewriter.clear();
  }
  req.head_timeout = ms(config.timeouts.first_byte_s);
  req.idle_timeout = ms(config.timeouts.idle_s);
  // Callbacks belong to this attempt: once the call has moved on (fail_over_unanswered cancels an
  // attempt and retries at once), the canceled attempt's completion must not touch the new one.
  const int attempt = c->attempt;
  http::ResponseHandlers h;
  h.on_head = [this, c, attempt](const http::ResponseHead& head) {
    if (c->attempt == attempt) on_head(c, head);
  };
  h.on_body = [this, c, attempt](std::string_view data) {
    if (c->attempt == attempt) on_body(c, data);
  };
  h.on_complete = [this, c, attempt](const http::ClientResult& result) {
    if (c->attempt == attempt) on_complete(c, result);
  };
  c->handle = r.pool->request(std::move(req), std::move(h));
}

bool Router::Impl::has_retry_target(const Call& c) const {
  if (c.attempt > config.retries) return false;
  // A stored response lives on its replica alone: another one could only say it does not exist.
  if (c.pinned >= 0) return false;
  const bool any_model = c.route && c.route->cls == RouteClass::kStored;
  for (const auto& r : replicas) {
    if (r->index == c.replica || !r->routable() ||
        (!any_model && !r->serves(c.info.model, config.models.aliases)))
      continue;
    if (std::find(c.tried.begin(), c.tried.end(), r->index) != c.tried.end()) continue;
    return true;
  }
  return false;
}

void Router::Impl::add_eta_headers(const Call& c, http::Headers& h) const {
  h.emplace_back(std::string(kRequestIdHeader), std::to_string(c.id));
  if (c.replica < 0) return;
  h.emplace_back(std::string(kReplicaHeader), replicas[static_cast<size_t>(c.replica)]->url());
  if (std::isfinite(c.predicted_ttft_s)) {
    h.emplace_back(std::string(kPredictedTtftHeader),
                   fmt::format("{:.3f}", c.predicted_ttft_s * 1e3));
  }
  if (std::isfinite(c.predicted_e2e_s)) {
    h.emplace_back(std::string(kPredictedE2eHeader),
                   fmt::format("{:.3f}", c.predicted_e2e_s * 1e3));
  }
}

void Router::Impl::on_head(const CallPtr& c, const http::ResponseHead& head) {
  if (c->finished) return;
  c->status = head.status;
  relay_response_headers(head, c->headers, c->content_type);
  if (head.status >= 500 && has_retry_target(*c)) {
    c->mode = Call::Mode::kHeld;  // not relayed: retried elsewhere once complete
    return;
  }
  add_eta_headers(*c, c->headers);
  if (head.content_length && !head.chunked) {
    c->mode = Call::Mode::kBuffered;
    if (*head.content_length <= kMaxBufferedBody) c->body.reserve(*head.content_length);
    return;
  }
  c->mode = Call::Mode::kStreaming;
  c->sse = is_event_stream(c->content_type);
  c->exchange->start_stream(head.status, c->content_type, c->headers);
}

void Router::Impl::on_body(const CallPtr& c, std::string_view data) {
  if (c->finished) return;
  switch (c->mode) {
    case Call::Mode::kStreaming: {
      std::string_view out = data;
      if (c->rewrite_stream && c->sse) {
        // The client's own stream back from the one the router asked for (whole events).
        c->rewritten.clear();
        c->rewriter.feed(data, c->rewritten);
        out = c->rewritten;
      }
      out = c->rewrite(out, false);  // model aliases: the public name back
      if (!out.empty()) {
        c->exchange->write(out);  // first: relaying adds no latency
      }
      if (!c->sse) return;
      const int n = c->scanner.feed(data);
      if (c->route->api == openai::Api::kResponses && c->pinned < 0 &&
          !c->scanner.response_id().empty() && c->status < 300) {
        c->pinned = c->replica;  // learned: a retrieval may come while it streams
        remember_response(c->scanner.response_id(), c->replica);
      }
      if (n <= 0) return;
      const double t = now();
      if (!c->first_token) {
        c->first_token = true;
        if (peer) peer->first_token(c->id, n);
        const auto wall = Clock::now();
        c->ttft_s = std::chrono::duration<double>(wall - c->arrival_wall).count();
        metrics.ttft_seconds.with({replicas[static_cast<size_t>(c->replica)]->url()})
            .observe(c->ttft_s);
        if (c->status >= 200 && c->status < 300 && std::isfinite(c->predicted_ttft_s)) {
          const double actual = std::chrono::duration<double>(wall - c->dispatch_wall).count();
          if (actual > 0) {
            metrics.ttft_prediction_error.observe((c->predicted_ttft_s - actual) / actual);
          }
        }
      }
      c->relayed_tokens += n;
      state.on_tokens(c->id, n, t);
      return;
    }
    case Call::Mode::kHeld:
    case Call::Mode::kBuffered:
      if (c->body.size() + data.size() > kMaxBufferedBody) {
        c->handle.cancel();
        return;
      }
      c->body.append(data);
      return;
    case Call::Mode::kNone:
      return;
  }
}

void Router::Impl::release_attempt(Call& c) {
  if (!c.attempt_active) return;
  c.attempt_active = false;
  if (peer) peer->ended(c.id);  // an abort unless complete() said finished first
  Replica& r = *replicas[static_cast<size_t>(c.replica)];
  --r.in_flight;
  --total_in_flight;
  if (r.in_flight_gauge) r.in_flight_gauge->set(r.in_flight);
  if (r.removing && !r.removed && r.in_flight == 0) finalize_removal(r);
}

void Router::Impl::on_complete(const CallPtr& c, const http::ClientResult& result) {
  c->handle = http::RequestHandle{};
  if (c->finished) return;
  Replica& r = *replicas[static_cast<size_t>(c->replica)];
  if (result.ok()) {
    if (c->mode == Call::Mode::kHeld) {
      // vLLM's 503 is its full queue (--max-num-queued-reqs): a load signal, not a failure.
      retry_or_fail(c, c->status == 503 ? "upstream_overloaded" : "upstream_5xx",
                    "status " + std::to_string(c->status), false);
      return;
    }
    complete(c);
    return;
  }
  const bool timeout = result.error == http::ClientError::kTimeout;
  if (!result.head_received || c->mode == Call::Mode::kHeld) {
    // Nothing reached the client: count it against the replica and try another one.
    if (c->mode != Call::Mode::kHeld && result.error != http::ClientError::kTooLarge &&
        result.error != http::ClientError::kProtocolError) {
      ++r.failures;
      set_health(r, false,
                 std::string("proxy: ") + std::string(http::to_string(result.error)) +
                     (result.detail.empty() ? "" : ": " + result.detail));
    }
    const std::string reason = result.error == http::ClientError::kConnectRefused ||
                                       result.error == http::ClientError::kConnectFailed
                                   ? "upstream_connect"
                               : timeout ? "upstream_timeout"
                               : result.error == http::ClientError::kProtocolError
                                   ? "upstream_protocol"
                                   : "upstream_reset";
    retry_or_fail(c, reason, result.detail.empty() ? http::to_string(result.error) : result.detail,
                  timeout);
    return;
  }
  // The head was relayed (or is being buffered): no retry.
  ++r.failures;
  const std::string what =
      "proxy: " + std::string(http::to_string(result.error)) + " after the head";
  if (result.error == http::ClientError::kReset || timeout) {
    set_health(r, false, what);
  } else {
    r.last_error = what;
  }
  note_error(*c, "mid_stream");
  if (c->mode == Call::Mode::kStreaming) {
    fail_stream(c,
                "replica " + r.url() +
                    " failed mid-response: " + std::string(http::to_string(result.error)),
                timeout ? 504 : 502, timeout ? "GatewayTimeoutError" : "BadGatewayError");
    return;
  }
  release_attempt(*c);
  state.on_abort(c->id);
  respond_error(c, timeout ? 504 : 502, timeout ? "GatewayTimeoutError" : "BadGatewayError",
                "replica " + r.url() + " failed before completing the response: " +
                    std::string(http::to_string(result.error)));
}

void Router::Impl::retry_or_fail(const CallPtr& c, std::string_view reason, std::string_view detail,
                                 bool timeout) {
  Replica& r = *replicas[static_cast<size_t>(c->replica)];
  note_error(*c, reason);
  if (c->mode == Call::Mode::kHeld) {
    c->held_status = c->status;
    c->held_type = c->content_type;
    c->held_headers = std::move(c->headers);
    c->held_body =
        c->model_rewriter.active() ? std::string(c->rewrite(c->body, true)) : std::move(c->body);
  }
  release_attempt(*c);
  state.on_abort(c->id);
  c->tried.push_back(c->replica);
  spdlog::debug("request {}: attempt {} on {} failed ({}: {})", c->id, c->attempt, r.url(), reason,
                detail);
  // Counted once the attempt has moved to another replica (not when none could take it).
  if (c->attempt <= config.retries && route(c) == RouteResult::kDispatched) {
    metrics.retries.with({r.url()}).inc();
    return;
  }
  if (c->held_status > 0) {
    // Out of retries: relay the last 5xx as the replica sent it.
    http::Response resp;
    resp.status = c->held_status;
    resp.content_type = c->held_type;
    resp.body = std::move(c->held_body);
    resp.headers = std::move(c->held_headers);
    add_eta_headers(*c, resp.headers);
    const int status = resp.status;
    c->exchange->respond(std::move(resp));
    finish_call(c, status);
    return;
  }
  respond_error(c, timeout ? 504 : 502, timeout ? "GatewayTimeoutError" : "BadGatewayError",
                "replica " + r.url() + " failed (" + std::string(detail) + ") and no other " +
                    "replica could take the request");
}

void Router::Impl::complete(const CallPtr& c) {
  const double t = now();
  Replica& r = *replicas[static_cast<size_t>(c->replica)];
  std::optional<int> tokens;
  if (c->mode == Call::Mode::kBuffered) {
    if (c->status < 300) tokens = parse_body_usage(c->body).completion_tokens;
    if (c->status >= 200 && c->status < 300 && c->route->api == openai::Api::kResponses) {
      remember_response(response_id_of(c->body), c->replica);
    }
    http::Response resp;
    resp.status = c->status;
    resp.content_type = std::move(c->content_type);
    resp.body =
        c->model_rewriter.active() ? std::string(c->rewrite(c->body, true)) : std::move(c->body);
    resp.headers = std::move(c->headers);
    c->exchange->respond(std::move(resp));
  } else {
    tokens = c->scanner.usage_completion_tokens();
    // A last event without its blank line: relayed as it came (through the model rewriter).
    const std::string_view pending = c->rewrite_stream && c->rewriter.pending_bytes() > 0
                                         ? std::string_view(c->rewriter.pending())
                                         : std::string_view{};
    if (const std::string_view rest = c->rewrite(pending, true); !rest.empty()) {
      c->exchange->write(rest);
    }
    c->exchange->end_stream();
  }
  if (peer && c->status >= 200 && c->status < 300)
    peer->finished(c->id, tokens.value_or(c->relayed_tokens));
  release_attempt(*c);
  if (!c->info.decode) tokens.reset();  // prefill only: its usage counts no output
  if (c->status >= 200 && c->status < 300) {
    const int n = tokens.value_or(c->relayed_tokens);
    // n sequences (or a batch) produced n outputs: the predictor learns one sequence's length.
    const int per_sequence = c->info.sequences > 1 ? n / c->info.sequences : n;
    state.on_finish(c->id, t, c->info.sequences > 1 ? std::optional<int>(per_sequence) : tokens);
    c->output_tokens = n;
    if (n > 0) metrics.output_tokens.with({r.url()}).inc(n);
    record_completion(*c, t, n);
  } else {
    state.on_abort(c->id);
  }
  const auto wall = Clock::now();
  c->e2e_s = std::chrono::duration<double>(wall - c->arrival_wall).count();
  metrics.e2e_seconds.with({r.url()}).observe(c->e2e_s);
  if (c->status >= 200 && c->status < 300) {
    c->error.clear();
    if (!c->tried.empty()) metrics.failovers.with({r.url()}).inc();
    const double actual = std::chrono::duration<double>(wall - c->dispatch_wall).count();
    if (std::isfinite(c->predicted_e2e_s) && actual > 0) {
      metrics.e2e_prediction_error.observe((c->predicted_e2e_s - actual) / actual);
    }
  }
  finish_call(c, c->status);
}

void Router::Impl::fail_stream(const CallPtr& c, std::string_view message, int status,
                               std::string_view type) {
  // Bytes the rewriters hold: the usage rewriter's partial event (of an unfinished SSE stream),
  // then through the model aliases' rewriter.
  const std::string_view pending =
      c->sse && !c->scanner.done() && c->rewrite_stream && c->rewriter.pending_bytes() > 0
          ? std::string_view(c->rewriter.pending())
          : std::string_view{};
  if (const std::string_view rest = c->rewrite(pending, true); !rest.empty()) {
    c->exchange->write(rest);
  }
  if (c->sse && !c->scanner.done()) {
    // A replica that stopped inside an event: end that event first, so that the error event
    // stays an event of its own instead of being glued onto the partial one.
    if (c->scanner.pending_bytes() > 0) c->exchange->write("\n\n");
    c->exchange->write(error_event(message, status, type));
    c->exchange->end_stream();
  } else if (c->sse) {
    c->exchange->end_stream();  // the stream had ended ([DONE]); only the terminator is missing
  }
  // Not SSE: there is no in-band way to say it failed. The stream is left unfinished: the
  // exchange is dropped with the call, which closes the connection without the chunked
  // terminator, so the client sees an incomplete body.
  release_attempt(*c);
  state.on_abort(c->id);
  finish_call(c, c->status);
}

void Router::Impl::respond_error(const CallPtr& c, int status, std::string_view type,
                                 std::string message, http::Headers extra) {
  http::Response r = http::error_response(status, type, std::move(message));
  r.headers = std::move(extra);
  add_eta_headers(*c, r.headers);
  c->exchange->respond(std::move(r));
  finish_call(c, status);
}

void Router::Impl::refuse(const CallPtr& c, RouteResult result) {
  const AdmissionConfig& adm = config.admission;
  switch (result) {
    case RouteResult::kUnknownModel: {
      note_error(*c, "unknown_model");
      // The simulator's body (openai::model_not_found), so the two stay the same.
      const openai::Error e = openai::model_not_found(c->info.model);
      http::Response r = http::error_response(e);  // with vLLM 2026's param "model" (iface)
      add_eta_headers(*c, r.headers);
      c->exchange->respond(std::move(r));
      finish_call(c, e.status);
      return;
    }
    case RouteResult::kNoReplica:
      note_error(*c, "no_replica");
      respond_error(c, 503, "ServiceUnavailableError",
                    "No replica is available for model `" + c->info.model + "`.");
      return;
    case RouteResult::kAtCapacity:
    case RouteResult::kSloShed: {
      const bool slo = result == RouteResult::kSloShed;
      note_error(*c, slo ? "shed_slo" : "shed_capacity");
      http::Headers h{{"Retry-After", std::to_string(adm.retry_after_s)}};
      respond_error(c, 429, "TooManyRequestsError",
                    slo ? "Every replica is predicted to miss the TTFT objective of " +
                              fmt::format("{:g}", adm.ttft_slo_s) + " s; retry later."
                        : std::string("The router is at its in-flight limit; retry later."),
                    std::move(h));
      return;
    }
    case RouteResult::kDispatched:
      return;
  }
}

void Router::Impl::finish_call(const CallPtr& c, int status) {
  if (c->finished) return;
  c->finished = true;
  c->queued = false;
  const std::string replica =
      c->replica >= 0 ? replicas[static_cast<size_t>(c->replica)]->url() : std::string(kNone);
  metrics.count_request(replica, status);
  if (status == 429 && (c->error.rfind("shed_", 0) == 0 || c->error.rfind("queue_", 0) == 0)) {
    metrics.rejections.with({c->error}).inc();
  }
  write_access_log(*c, status);
  calls.erase(c->id);
  pump_queue();
  if (shutting_down) maybe_shutdown_done();
}

void Router::Impl::on_client_gone(const CallPtr& c) {
  if (c->finished) return;
  note_error(*c, "client_disconnect");
  if (c->attempt_active) {
    c->handle.cancel();  // the replica sees the disconnect and aborts the request
    release_attempt(*c);
    state.on_abort(c->id);
  }
  // 499: nginx's "client closed request", for the requests counter only.
  finish_call(c, 499);
}

void Router::Impl::abort_calls_on(Replica& r, std::string_view message) {
  std::vector<CallPtr> victims;
  for (const auto& [id, c] : calls)
    if (c->attempt_active && c->replica == r.index) victims.push_back(c);
  for (const CallPtr& c : victims) {
    c->handle.cancel();
    note_error(*c, "replica_removed");
    if (c->mode == Call::Mode::kStreaming) {
      fail_stream(c, message);
    } else {
      release_attempt(*c);
      state.on_abort(c->id);
      respond_error(c, 502, "BadGatewayError", std::string(message));
    }
  }
}

// A replica just turned unhealthy: every request it holds that has no response head yet (nothing
// reached the client) is canceled there and retried elsewhere now, as if its attempt had failed.
// The replica may still finish one (a stopped process that resumes); the client never sees it.
void Router::Impl::fail_over_unanswered(int replica) {
  Replica& r = *replicas[static_cast<size_t>(replica)];
  if (r.removed || r.health.healthy()) return;
  std::vector<CallPtr> waiting;
  for (const auto& [id, c] : calls) {
    // Only where another replica can take it: otherwise it keeps waiting for this one (which
    // may still answer) up to its first-byte timeout.
    if (c->attempt_active && !c->finished && c->replica == replica &&
        c->mode == Call::Mode::kNone && has_retry_target(*c)) {
      waiting.push_back(c);
    }
  }
  if (waiting.empty()) return;
  spdlog::info("replica {} is unhealthy: retrying {} unanswered request(s) elsewhere", r.url(),
               waiting.size());
  for (const CallPtr& c : waiting) {
    if (c->finished || !c->attempt_active || c->replica != replica || !has_retry_target(*c)) {
      continue;
    }
    c->handle.cancel();
    retry_or_fail(c, "upstream_unhealthy", "replica turned unhealthy before answering", false);
  }
}

// ---------------------------------------------------------------------------------------------
// Admission queue: FIFO, bounded; a request leaves it when route() dispatches it, when it times
// out (429), or when its client goes away.

void Router::Impl::drop_gone_from_queue() {
  if (pumping) return;  // pump_queue holds the head
  std::erase_if(queue, [](const CallPtr& q) { return q->finished; });
}

void Router::Impl::enqueue(const CallPtr& c) {
  const AdmissionConfig& adm = config.admission;
  drop_gone_from_queue();  // a client that gave up holds no place
  if (static_cast<int>(queue.size()) >= adm.queue_size) {
    note_error(*c, "queue_full");
    respond_error(c, 429, "TooManyRequestsError",
                  "The router's queue is full (" + std::to_string(adm.queue_size) +
                      " requests); retry later.",
                  {{"Retry-After", std::to_string(adm.retry_after_s)}});
    return;
  }
  c->queued = true;
  c->queue_deadline = now() + adm.queue_timeout_s;
  queue.push_back(c);
  arm_queue_timer();
}

void Router::Impl::pump_queue() {
  if (pumping || stopped) return;
  pumping = true;
  while (!queue.empty()) {
    CallPtr c = queue.front();
    if (c->finished) {
      queue.pop_front();
      continue;
    }
    if (now() >= c->queue_deadline) {
      queue.pop_front();
      c->queued = false;
      note_error(*c, "queue_timeout");
      respond_error(c, 429, "TooManyRequestsError",
                    "The request waited " + fmt::format("{:g}", config.admission.queue_timeout_s) +
                        " s in the router's queue; retry later.",
                    {{"Retry-After", std::to_string(config.admission.retry_after_s)}});
      continue;
    }
    const RouteResult result = route(c);
    if (result == RouteResult::kAtCapacity || result == RouteResult::kSloShed) break;
    queue.pop_front();
    c->queued = false;
    if (result != RouteResult::kDispatched) refuse(c, result);
  }
  pumping = false;
  arm_queue_timer();
}

void Router::Impl::arm_queue_timer() {
  if (queue.empty() || queue_timer_armed || stopped) return;
  // Wake at the head's deadline, or sooner to re-check predictions as scrapes arrive.
  const double wait =
      std::clamp(queue.front()->queue_deadline - now(), 0.0, config.scrape.interval_s);
  queue_timer_armed = true;
  queue_timer.expires_after(std::chrono::microseconds(static_cast<int64_t>(wait * 1e6) + 100));
  queue_timer.async_wait([this](const boost::system::error_code& ec) {
    queue_timer_armed = false;
    if (ec || stopped) return;
    pump_queue();
  });
}

// ---------------------------------------------------------------------------------------------
// Admin API

void Router::Impl::add_admin_routes() {
  auto json_response = [](int status, std::string body) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
  };
  auto bad = [](std::string message) {
    return http::error_response(400, "BadRequestError", std::move(message));
  };
  admin_routes.add("GET", "/admin/peers", [this, json_response](http::ExchangePtr e) {
    if (!peer) return e->respond(json_response(404, R"({"error":"peer sync is off"})"));
    e->respond(json_response(200, peer->admin_json()));
  });
  admin_routes.add("GET", "/admin/replicas", [this, json_response](http::ExchangePtr e) {
    const double t = now();
    const cluster::ClusterView& view = state.view(t);
    std::vector<ReplicaReport> reports;
    for (const auto& r : replicas)
      if (!r->removed) reports.push_back(report(*r, view, t));
    e->respond(json_response(200, replicas_json(reports)));
  });
  auto add = [this, json_response, bad](http::ExchangePtr e) {
    AdminReplicaBody body;
    std::string error;
    if (!parse_admin_body(e->request().body, true, body, error)) return e->respond(bad(error));
    ReplicaConfig rc;
    rc.url = body.url;
    rc.weight = body.weight.value_or(1.0);
    rc.gpu = body.gpu;
    rc.arch = body.arch;
    if (!validate_replica(rc, error)) return e->respond(bad(error));
    if (find_replica(rc.url)) {
      return e->respond(
          http::error_response(409, "ConflictError", "replica " + rc.url + " already exists"));
    }
    if (!add_replica(rc, error)) return e->respond(bad(error));
    e->respond(json_response(201, replica_json(report(*replicas.back()))));
  };
  admin_routes.add("POST", "/admin/replicas", add);
  auto lookup = [this, bad](const http::ExchangePtr& e, AdminReplicaBody& body) -> Replica* {
    std::string error;
    if (!parse_admin_body(e->request().body, false, body, error)) {
      e->respond(bad(error));
      return nullptr;
    }
    Replica* r = find_replica(body.url);
    if (!r) {
      e->respond(http::error_response(404, "NotFoundError", "no replica " + body.url));
    }
    return r;
  };
  auto drain = [this, json_response, lookup](http::ExchangePtr e, bool on) {
    AdminReplicaBody body;
    Replica* r = lookup(e, body);
    if (!r) return;
    r->draining = on;
    metrics.routable.with({r->url()}).set(r->routable() ? 1 : 0);
    state.set_routable(r->index, r->routable());
    spdlog::info("replica {} {}", r->url(), on ? "draining" : "undrained");
    if (!on) pump_queue();
    e->respond(json_response(200, replica_json(report(*r))));
  };
  admin_routes.add("POST", "/admin/replicas/drain",
                   [drain](http::ExchangePtr e) { drain(e, true); });
  admin_routes.add("POST", "/admin/replicas/undrain",
                   [drain](http::ExchangePtr e) { drain(e, false); });
  auto remove = [this, json_response, lookup](http::ExchangePtr e) {
    AdminReplicaBody body;
    Replica* r = lookup(e, body);
    if (!r) return;
    begin_removal(*r, body.force);
    const std::string json = replica_json(report(*r));
    const bool now_removed = r->removed;
    e->respond(json_response(now_removed ? 200 : 202,
                             "{\"removed\":" + std::string(now_removed ? "true" : "false") +
                                 ",\"replica\":" + json + "}"));
  };
  admin_routes.add("DELETE", "/admin/replicas", remove);
  admin_routes.add("POST", "/admin/replicas/remove", remove);
  admin_routes.add("GET", "/admin/decisions", [this, json_response, bad](http::ExchangePtr e) {
    size_t last = 100;
    std::string_view q = e->request().query();
    while (!q.empty()) {
      const size_t amp = q.find('&');
      const std::string_view kv = q.substr(0, amp);
      q = amp == std::string_view::npos ? "" : q.substr(amp + 1);
      if (kv.substr(0, 5) == "last=") {
        const std::string v(kv.substr(5));
        char* end = nullptr;
        const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0') return e->respond(bad("last must be a number"));
        last = static_cast<size_t>(n);
      }
    }
    e->respond(json_response(200, decisions.to_json(last)));
  });
  // The dashboard: its page and files, and the stream it reads (docs/architecture.md).
  auto asset = [](http::ExchangePtr e) {
    const Asset a = dashboard_asset(e->request().path());
    http::Response r;
    r.content_type = std::string(a.content_type);
    r.body = std::string(a.body);
    r.headers.emplace_back("Cache-Control", "no-cache");
    e->respond(std::move(r));
  };
  for (const char* path :
       {"/dashboard", "/dashboard/", "/dashboard/dashboard.js", "/dashboard/dashboard.css"}) {
    admin_routes.add("GET", path, asset);
  }
  admin_routes.add("GET", "/admin/stream", [this, bad](http::ExchangePtr e) {
    StreamParams params;
    std::string error;
    if (!parse_stream_query(e->request().query(), params, error)) return e->respond(bad(error));
    if (stopped)
      return e->respond(http::error_response(503, "ServiceUnavailableError", "stopping"));
    if (dashboards.clients() >= dashboards.max_clients()) {
      return e->respond(http::error_response(
          503, "ServiceUnavailableError",
          fmt::format("{} dashboard streams are open already", dashboards.max_clients())));
    }
    e->start_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
    e->write("retry: 1000\n\n");
    // The first event carries the newest decisions already made.
    StreamCursor start;
    start.decisions =
        decisions.total() - std::min<uint64_t>(decisions.total(), params.max_decisions);
    start.completions = completions.total();
    dashboards.add(e, params, now(), start);
    arm_dashboard();
  });
}

void Router::Impl::record_completion(const Call& c, double t, int output_tokens) {
  Replica& r = *replicas[static_cast<size_t>(c.replica)];
  r.window.record(t, c.ttft_s, output_tokens);
  CompletionRecord rec;
  rec.unix_time_s = unix_now();
  rec.request_id = c.id;
  rec.replica = c.replica;
  // Predictions are made at dispatch and count from there (as the prediction-error histograms do);
  // the replica's window keeps the TTFT the client felt, from arrival.
  const double dispatched_s =
      std::chrono::duration<double>(c.dispatch_wall - c.arrival_wall).count();
  rec.predicted_ttft_s = c.predicted_ttft_s;
  rec.actual_ttft_s =
      c.ttft_s >= 0 ? c.ttft_s - dispatched_s : std::numeric_limits<double>::quiet_NaN();
  rec.predicted_e2e_s = c.predicted_e2e_s;
  rec.actual_e2e_s = std::chrono::duration<double>(Clock::now() - c.dispatch_wall).count();
  rec.output_tokens = output_tokens;
  completions.add(rec);
}

// One timer serves every open dashboard: it fires when the earliest group is due.
void Router::Impl::arm_dashboard() {
  const uint64_t generation = ++dashboard_generation;  // a pending wait from before is void
  dashboard_timer.cancel();
  if (stopped || dashboards.clients() == 0) return;
  const auto due = start_ + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(dashboards.next_due()));
  dashboard_timer.expires_at(due);
  dashboard_timer.async_wait([this, generation](const boost::system::error_code& ec) {
    if (ec || stopped || generation != dashboard_generation) return;
    dashboards.tick(now(), [this](StreamCursor& cursor, const StreamParams& params) {
      return dashboard_snapshot(cursor, params);
    });
    arm_dashboard();
  });
}

std::string Router::Impl::dashboard_snapshot(StreamCursor& cursor, const StreamParams& params) {
  const double t = now();
  const cluster::ClusterView& view = state.view(t);
  std::vector<ReplicaReport> reports;
  reports.reserve(replicas.size());
  for (const auto& r : replicas)
    if (!r->removed) reports.push_back(report(*r, view, t));
  SnapshotMeta meta;
  meta.unix_time_s = unix_now();
  meta.uptime_s = t;
  meta.interval_s = params.interval_s;
  meta.policy = config.policy.name;
  meta.in_flight = total_in_flight;
  drop_gone_from_queue();
  meta.queued = queue.size();
  meta.max_decisions = params.max_decisions;
  return snapshot_json(reports, decisions, completions, meta, cursor);
}

// ---------------------------------------------------------------------------------------------
// Lifecycle. Shutdown: stop accepting, let what is in flight (and queued) finish until the grace
// deadline, then end the rest. Reload: a validated configuration replaces the running one
// between two events of the loop, so no request sees half of it.

void Router::Impl::begin_shutdown(std::function<void()> done) {
  if (shutting_down || stopped) return;
  shutting_down = true;
  on_shutdown_done = std::move(done);
  server.stop_accepting();
  spdlog::info("shutting down: {} requests in flight or queued, grace {:g} s", calls.size(),
               config.shutdown_grace_s);
  shutdown_timer.expires_after(ms(config.shutdown_grace_s));
  shutdown_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped) return;
    end_shutdown();
  });
  maybe_shutdown_done();
}

void Router::Impl::end_shutdown() {
  queue.clear();  // queued requests are answered below, not dispatched now
  std::vector<CallPtr> rest;
  for (const auto& [id, c] : calls) rest.push_back(c);
  if (!rest.empty()) {
    spdlog::warn("shutdown grace of {:g} s over: ending {} requests", config.shutdown_grace_s,
                 rest.size());
  }
  constexpr std::string_view kMessage = "The router is shutting down.";
  for (const CallPtr& c : rest) {
    if (c->finished) continue;
    note_error(*c, "shutting_down");
    if (c->attempt_active) {
      c->handle.cancel();
      if (c->mode == Call::Mode::kStreaming) {
        fail_stream(c, kMessage, 503, "ServiceUnavailableError");
        continue;
      }
      release_attempt(*c);
      state.on_abort(c->id);
    }
    respond_error(c, 503, "ServiceUnavailableError", std::string(kMessage));
  }
  maybe_shutdown_done();
}

void Router::Impl::maybe_shutdown_done() {
  if (!calls.empty() || !on_shutdown_done) return;
  shutdown_timer.cancel();
  auto done = std::move(on_shutdown_done);
  on_shutdown_done = nullptr;
  spdlog::info("shutdown: nothing left in flight");
  asio::post(io, std::move(done));
}

bool Router::Impl::reload(RouterConfig next, std::string& error) {
  if (shutting_down || stopped) {
    error = "the router is shutting down";
    return false;
  }
  for (ReplicaConfig& rc : next.replicas) {
    if (!validate_replica(rc, error)) return false;
  }
  std::unique_ptr<policy::Policy> new_policy;
  const bool policy_changed = next.policy.name != config.policy.name ||
                              next.policy.params != config.policy.params ||
                              next.policy.seed != config.policy.seed;
  if (policy_changed) {
    new_policy = policy::make_policy(next.policy.name, next.policy.params, error);
    if (!new_policy) return false;
  }
  // Fixed at start: keep the running values.
  auto keep = [](bool changed, std::string_view what) {
    if (changed) spdlog::warn("reload: a change of {} needs a restart; not applied", what);
    return changed;
  };
  if (keep(next.peer_sync != config.peer_sync, "peer_sync")) next.peer_sync = config.peer_sync;
  if (keep(next.replica_dns != config.replica_dns || next.dns_server != config.dns_server,
           "replica_dns")) {
    next.replica_dns = config.replica_dns;
    next.dns_server = config.dns_server;
  }
  if (keep(next.listen.host != config.listen.host || next.listen.port != config.listen.port,
           "listen")) {
    next.listen.host = config.listen.host;
    next.listen.port = config.listen.port;
  }
  if (keep(next.admin.host != config.admin.host || next.admin.port != config.admin.port, "admin")) {
    next.admin.host = config.admin.host;
    next.admin.port = config.admin.port;
  }
  // The token is reloaded, the address is not: validate() saw the new file's address.
  if (config.admin.port >= 0 && !is_loopback_host(config.admin.host) && next.admin.token.empty()) {
    error = "the running admin listener on " + config.admin.host +
            " needs admin.token (a new admin address needs a restart)";
    return false;
  }
  if (keep(next.max_body_bytes != config.max_body_bytes, "max_body_bytes")) {
    next.max_body_bytes = config.max_body_bytes;
  }
  if (keep(next.client != config.client, "client limits")) next.client = config.client;
  if (keep(next.tls.cert_file != config.tls.cert_file || next.tls.key_file != config.tls.key_file,
           "tls")) {
    next.tls.cert_file = config.tls.cert_file;
    next.tls.key_file = config.tls.key_file;
  }
  if (keep(next.decision_log_size != config.decision_log_size, "decision_log_size")) {
    next.decision_log_size = config.decision_log_size;
  }
  if (keep(next.scrape.stale_after_s != config.scrape.stale_after_s, "scrape.stale_after_s")) {
    next.scrape.stale_after_s = config.scrape.stale_after_s;
  }
  if (keep(next.health.failure_threshold != config.health.failure_threshold ||
               next.health.success_threshold != config.health.success_threshold,
           "health thresholds")) {
    next.health.failure_threshold = config.health.failure_threshold;
    next.health.success_threshold = config.health.success_threshold;
  }
  // Opened at start (run_until_signal): the running access log and log format stay.
  if (keep(next.access_log != config.access_log, "access_log")) next.access_log = config.access_log;
  if (keep(next.log_format != config.log_format, "log_format")) next.log_format = config.log_format;
  std::vector<ReplicaConfig> added;
  std::set<std::string> wanted;
  for (const ReplicaConfig& rc : next.replicas) {
    wanted.insert(rc.url);
    Replica* r = find_replica(rc.url);
    if (!r) {
      added.push_back(rc);
      continue;
    }
    if (r->config.weight != rc.weight || (!rc.gpu.empty() && rc.gpu != r->config.gpu) ||
        (!rc.arch.empty() && rc.arch != r->config.arch) ||
        (rc.url.rfind("https://", 0) == 0 &&
         tls_options_for(next, rc) != tls_options_for(config, r->config))) {
      spdlog::warn(
          "reload: replica {}: a change of weight, gpu, arch or tls needs a remove and add; "
          "not applied",
          rc.url);
    }
    if (r->removing) {
      r->removing = false;  // back in the file before its removal completed
      metrics.routable.with({r->url()}).set(r->routable() ? 1 : 0);
      state.set_routable(r->index, r->routable());
    }
  }
  // Applied from here on: nothing below fails.
  config = std::move(next);
  if (peer) index_rate_keys();  // peer sync: the keys may have changed
  if (new_policy) {
    policy = std::move(new_policy);
    rng = policy::Rng(config.policy.seed);
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  int n_removed = 0;
  for (auto& r : replicas) {
    if (r->removed || r->removing || wanted.count(r->url())) continue;
    if (std::any_of(dns_owned.begin(), dns_owned.end(),
                    [&](const std::set<std::string>& o) { return o.count(r->url()) > 0; }))
      continue;  // found by replica_dns, not configured
    ++n_removed;
    begin_removal(*r, false);
  }
  for (ReplicaConfig& rc : added) {
    std::string e;
    if (!add_replica(rc, e)) spdlog::error("reload: replica {}: {}", rc.url, e);
  }
  spdlog::info("configuration reloaded: {} replicas added, {} removed, policy {}{}", added.size(),
               n_removed, config.policy.name, policy_changed ? " (rebuilt)" : "");
  pump_queue();
  return true;
}

// ---------------------------------------------------------------------------------------------
// Router

Router::Router(asio::io_context& io, RouterConfig config)
    : impl_(std::make_unique<Impl>(io, std::move(config))) {}

Router::~Router() {
  stop();
}

bool Router::listen(std::string& error) {
  if (!impl_->server.listen(error)) return false;
  if (impl_->admin_server && !impl_->admin_server->listen(error)) {
    error = "admin listener: " + error;
    return false;
  }
  return true;
}

uint16_t Router::port() const {
  return impl_->server.port();
}

uint16_t Router::admin_port() const {
  return impl_->admin_server ? impl_->admin_server->port() : 0;
}

void Router::start(std::function<void()> on_ready) {
  Impl& m = *impl_;
  m.on_ready = std::move(on_ready);
  m.started = true;
  m.server.start();
  if (m.admin_server) m.admin_server->start();
  m.start_polling();
  m.start_peer_sync();
  m.start_discovery();
  m.ready_timer.expires_after(ms(kReadyTimeoutS));
  m.ready_timer.async_wait([&m](const boost::system::error_code& ec) {
    if (ec || m.ready) return;
    m.ready = true;
    if (m.on_ready) {
      auto f = std::move(m.on_ready);
      m.on_ready = nullptr;
      f();
    }
  });
  m.check_ready();
}

void Router::stop() {
  if (!impl_ || impl_->stopped) return;
  Impl& m = *impl_;
  m.stopped = true;
  m.server.stop();
  if (m.admin_server) m.admin_server->stop();
  m.scrape_timer.cancel();
  m.health_timer.cancel();
  m.models_timer.cancel();
  m.queue_timer.cancel();
  m.ready_timer.cancel();
  m.dashboard_timer.cancel();
  m.dashboards.close_all();
  m.shutdown_timer.cancel();
  m.peer_timer.cancel();
  m.peer_flush_timer.cancel();
  if (m.peer) m.peer->stop();
  m.dns_alive.reset();
  m.discovery.reset();  // joins its thread
  for (auto& [id, c] : m.calls) {
    c->finished = true;
    c->handle.cancel();
  }
  m.calls.clear();
  m.queue.clear();
  for (auto& r : m.replicas) r->pool.reset();
  m.kv_events->stop_all();
}

void Router::set_access_log(std::unique_ptr<AccessLog> log) {
  impl_->access_log = std::move(log);
}

void Router::shutdown(std::function<void()> on_done) {
  impl_->begin_shutdown(std::move(on_done));
}

bool Router::reload(RouterConfig config, std::string& error) {
  return impl_->reload(std::move(config), error);
}

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
