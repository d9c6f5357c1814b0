// `eta route`'s wiring: the core (router/core/router_core.hpp) with its ports, the listeners,
// the poller, the admin API, peer sync and KV events; start, stop, reload, signals. What each
// part does: router_impl.hpp.
#include "router/router.hpp"
#include "util/duration.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "router/core/reload_plan.hpp"
#include "router/router_impl.hpp"
#include "router/routes.hpp"

namespace eta::router {

namespace asio = boost::asio;

namespace {

constexpr double kReadyTimeoutS = 3.0;
constexpr std::chrono::milliseconds kWorkerDrain{200};

http::ServerOptions client_server_options(const RouterConfig& config, bool reuse_port) {
  http::ServerOptions o;
  o.reuse_port = reuse_port;  // threads > 1: one listener per worker on the port
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
}

// `threads` (0: the machine's cores, at most kMaxThreads).
size_t thread_count(const RouterConfig& config) {
  if (config.threads > 0) return static_cast<size_t>(config.threads);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return std::min<size_t>(cores, RouterConfig::kMaxThreads);
}

std::vector<Worker> make_workers(asio::io_context& io, size_t n) {
  std::vector<Worker> w(n);
  w[0].io = &io;
  for (size_t i = 1; i < n; ++i) {
    w[i].own = std::make_unique<asio::io_context>(1);
    w[i].io = w[i].own.get();
  }
  return w;
}

RouterCore::Ports core_ports(Router::Impl& m) {
  RouterCore::Ports p;
  p.env = &m.env;
  p.metrics = &m.metrics;
  p.calls = &m.observer;
  p.replicas = &m.observer;
  return p;
}

}  // namespace

Router::Impl::Impl(asio::io_context& io_in, RouterConfig config_in)
    : io(io_in),
      workers(make_workers(io_in, thread_count(config_in))),
      env(io_in, endpoints, workers),
      metrics(config_in.policy.name),
      observer(*this),
      core(std::make_unique<RouterCore>(config_in, core_ports(*this))),
      decisions(config_in.decision_log_size),
      peer_flush_timer(env.make_timer()),
      server(io_in, client_server_options(config_in, workers.size() > 1),
             [this](http::ExchangePtr e) { on_client(0, std::move(e)); }),
      poller(*this),
      admin(*this),
      ready_timer(env.make_timer()) {
  env.set_mutex(&core->mutex());
  const RouterConfig& config = core->config();
  if (config.peer_sync.enabled()) {
    peer = std::make_unique<PeerLink>(
        config.peer_sync, core->state(), metrics.registry,
        [this](std::function<void()> f) { env.post(std::move(f)); },
        [this](std::function<void()> f) {
          peer_flush_timer->arm(env.now() + PeerLink::kFlushDelayS, std::move(f));
        },
        [this] { return env.now(); });
  }
  if (config.admin.port >= 0) {
    http::ServerOptions o;
    o.host = config.admin.host;
    o.port = static_cast<uint16_t>(config.admin.port);
    admin_server = std::make_unique<http::Server>(io_in, o, [this](http::ExchangePtr e) {
      std::lock_guard lock(core->mutex());
      if (admin.authorized(e)) admin_routes.dispatch(e);
    });
  }
  admin.add_routes(admin_routes);
  kv_events = std::make_unique<KvEventsConsumer>(
      io_in, core->state(), [this] { return env.now(); }, &core->mutex());
  std::string error;
  for (const ReplicaConfig& rc : config.replicas) {
    if (!add_replica(rc, error)) spdlog::error("replica {}: {}", rc.url, error);
  }
}

Router::Impl::~Impl() = default;

bool Router::Impl::add_replica(ReplicaConfig rc, std::string& error) {
  if (!validate_replica(rc, error)) return false;
  if (find_replica(rc.url)) {
    error = "duplicate replica " + rc.url;
    return false;
  }
  http::PoolOptions po;
  po.connect_timeout = ms(config().timeouts.connect_s);
  po.max_idle_connections = 256;
  const http::Url url = *http::parse_url(rc.url);
  if (url.tls) {  // https:// replica: its TLS settings, else upstream_tls
    po.tls = http::make_tls_client_context(tls_options_for(config(), rc), error);
    if (!po.tls) {
      error = "replica " + rc.url + ": " + error;
      return false;
    }
  }
  const int index = core->add_replica(rc, error);
  if (index < 0) return false;
  endpoints.resize(static_cast<size_t>(index) + 1);
  Endpoint& ep = endpoints[static_cast<size_t>(index)];
  ep.pool = std::make_shared<http::UpstreamPool>(io, url, po);
  for (size_t w = 1; w < workers.size(); ++w)  // each worker's own, on its io_context
    ep.worker_pools.push_back(std::make_shared<http::UpstreamPool>(*workers[w].io, url, po));
  const ReplicaRecord& added = core->replicas().at(index);
  if (peer) peer->set_replica(index, added.url());
  // KV-cache events (issue 15): its own endpoints or the pattern's.
  if (const KvEventsEndpoints kv = resolve_kv_events(added.config, config().kv_events);
      !kv.endpoint.empty()) {
    std::string kv_error;
    if (!kv_events->attach(index, kv, kv_error))
      spdlog::error("replica {}: {} (its own index is used)", added.url(), kv_error);
  }
  if (started && !stopped) poller.probe(index);  // running already (admin API, DNS): probe now
  return true;
}

ReplicaRecord* Router::Impl::find_replica(std::string_view url) {
  std::string canonical(url);
  if (auto u = http::parse_url(url)) canonical = u->str();
  return core->replicas().find(canonical);
}

// A client request on worker `worker`'s listener (on that worker's thread).
void Router::Impl::on_client(int worker, http::ExchangePtr e) {
  e = env.own_exchange(std::move(e), worker);
  std::lock_guard lock(core->mutex());
  dispatch_client(e);
}

// The client listener: every path goes through the routes table (routes.hpp).
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
    case OwnRoute::kModels: {
      if (!core->authorized(e)) return;
      http::Response resp;
      resp.body = core->models_body();
      return e->respond(std::move(resp));
    }
    case OwnRoute::kHealth:
    case OwnRoute::kPing:  // vLLM's /ping (SageMaker) is its /health
      return handle_health(e);
    case OwnRoute::kMetrics:
      return handle_metrics(e);
    case OwnRoute::kVersion: {
      http::Response r;
      r.body = "{\"version\":\"" ETA_VERSION "\",\"server\":\"eta route\"}";
      return e->respond(std::move(r));
    }
    case OwnRoute::kNone:
      break;
  }
  core->proxy(e, *m.spec, m.id);
}

void Router::Impl::handle_health(const http::ExchangePtr& e) {
  if (core->shutting_down()) {
    e->respond(
        http::error_response(503, "ServiceUnavailableError", "The router is shutting down."));
    return;
  }
  if (core->replicas().any_routable()) {
    http::Response r;
    r.content_type.clear();
    e->respond(std::move(r));
    return;
  }
  e->respond(http::error_response(503, "ServiceUnavailableError", "No replica is routable."));
}

void Router::Impl::handle_metrics(const http::ExchangePtr& e) {
  const double t = env.now();
  core->replicas().for_each_live([&](const ReplicaRecord& r) {
    metrics.scrape_age.with({r.url()}).set(r.last_scrape_ok >= 0 ? t - r.last_scrape_ok : -1);
    const predict::SpeedModel& s = core->state().speed(r.index);
    metrics.speed_factor.with({r.url(), "prefill"}).set(s.prefill_factor());
    metrics.speed_factor.with({r.url(), "decode"}).set(s.decode_factor());
  });
  metrics.queue_length.with().set(static_cast<double>(core->queue_length()));
  if (peer) peer->refresh_metrics();
  http::Response resp;
  resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
  resp.body = metrics.registry.render();
  e->respond(std::move(resp));
}

// Peer sync (issue 13): PeerLink does the work; the router starts it and the poller ticks it.
void Router::Impl::start_peer_sync() {
  if (!peer) return;
  // Rate limits while NATS is unreachable (RateLimiter::begin_outage): this router admits its
  // share and keeps what it admitted; reconnected, it refunds the share's stand-in charges and
  // tells the peers its own. Charges of the last kUnconfirmedS before the loss was noticed may
  // have died in the connection: they are told again (a peer that had them counts them twice).
  peer->on_channel = [this](bool connected, int routers) {
    RateLimiter& limiter = core->rate_limiter();
    if (!connected) {
      limiter.begin_outage(routers, env.now() - PeerLink::kUnconfirmedS);
      return;
    }
    std::vector<peer::KeyCharge> charges;
    for (const RateLimiter::KeyCharge& c : limiter.end_outage(env.now()))
      charges.push_back({rate_key_hash(config().peer_sync.cluster, c.key),
                         static_cast<uint64_t>(std::llround(c.requests)),
                         static_cast<uint64_t>(std::llround(c.tokens))});
    peer->outage_charges(std::move(charges));
  };
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
    core->rate_limiter().consume(it->second, rate_limit_for(config(), it->second), requests,
                                 static_cast<double>(tokens), env.now());
  };
}

void Router::Impl::index_rate_keys() {
  rate_keys.clear();
  rate_keys[rate_key_hash(config().peer_sync.cluster, "")] = "";  // no keys configured
  for (const std::string& k : config().api_keys)
    rate_keys[rate_key_hash(config().peer_sync.cluster, k)] = k;
}

// A validated configuration replaces the running one between two events of the loop, so no
// request sees half of it. What changes is the reload plan's (core/reload_plan.hpp).
bool Router::Impl::reload(RouterConfig next, std::string& error) {
  if (core->shutting_down() || stopped) {
    error = "the router is shutting down";
    return false;
  }
  std::vector<RunningReplica> running;
  core->replicas().for_each_live([&](const ReplicaRecord& r) {
    running.push_back(RunningReplica{r.config, r.gone(), poller.from_dns(r.url())});
  });
  const ReloadPlan plan = plan_reload(config(), next, running);
  if (!plan.ok()) {
    error = plan.error;
    return false;
  }
  std::unique_ptr<policy::Policy> new_policy;
  if (plan.rebuild_policy) {
    new_policy = policy::make_policy(next.policy.name, next.policy.params, error);
    if (!new_policy) return false;
  }
  for (const std::string& what : plan.kept)
    spdlog::warn("reload: a change of {} needs a restart; not applied", what);
  for (const std::string& url : plan.changed)
    spdlog::warn(
        "reload: replica {}: a change of weight, gpu, arch or tls needs a remove and "
        "add; not applied",
        url);
  // Applied from here on: nothing below fails.
  core->apply_config(std::move(next), std::move(new_policy));
  if (peer) index_rate_keys();  // peer sync: the keys may have changed
  spdlog::set_level(spdlog::level::from_str(config().log_level));
  for (const std::string& url : plan.revive)
    if (ReplicaRecord* r = find_replica(url)) core->revive(r->index);
  for (const std::string& url : plan.remove)
    if (ReplicaRecord* r = find_replica(url)) core->remove(r->index, false);
  for (const ReplicaConfig& rc : plan.add) {
    std::string e;
    if (!add_replica(rc, e)) spdlog::error("reload: replica {}: {}", rc.url, e);
  }
  spdlog::info("configuration reloaded: {} replicas added, {} removed, policy {}{}",
               plan.add.size(), plan.remove.size(), config().policy.name,
               plan.rebuild_policy ? " (rebuilt)" : "");
  core->pump_queue();
  return true;
}

// ---------------------------------------------------------------------------------------------
// Router

Router::Router(asio::io_context& io, RouterConfig config)
    : impl_(std::make_unique<Impl>(io, std::move(config))) {}

Router::~Router() {
  stop();
  if (impl_) impl_->join_workers();
}

bool Router::listen(std::string& error) {
  Impl& m = *impl_;
  if (!m.server.listen(error)) return false;
  // The other workers' listeners on the port the first one got (SO_REUSEPORT).
  http::ServerOptions o = client_server_options(m.config(), true);
  o.port = m.server.port();
  for (size_t w = 1; w < m.workers.size(); ++w) {
    m.workers[w].server = std::make_unique<http::Server>(
        *m.workers[w].io, o,
        [&m, w](http::ExchangePtr e) { m.on_client(static_cast<int>(w), std::move(e)); });
    if (!m.workers[w].server->listen(error)) return false;
  }
  if (m.admin_server && !m.admin_server->listen(error)) {
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
  std::lock_guard lock(m.core->mutex());
  m.on_ready = std::move(on_ready);
  m.started = true;
  m.server.start();
  if (m.admin_server) m.admin_server->start();
  m.start_peer_sync();
  m.poller.start();
  m.poller.start_discovery();
  m.ready_timer->arm(m.env.now() + kReadyTimeoutS, [&m] {
    if (m.ready) return;
    m.ready = true;
    if (m.on_ready) {
      auto f = std::move(m.on_ready);
      m.on_ready = nullptr;
      f();
    }
  });
  m.poller.check_ready();
  m.start_workers();
}

// Workers 1..N-1: each runs its io_context (its listener, its pools, its clients' calls) until
// stop() posts the end.
void Router::Impl::start_workers() {
  if (workers.size() > 1) {
    spdlog::info("{} threads, each with a client listener on port {}", workers.size(),
                 server.port());
  }
  for (size_t w = 1; w < workers.size(); ++w) {
    Worker& wk = workers[w];
    if (wk.server) wk.server->start();  // before its thread: nothing runs on it yet
    wk.thread = std::thread([io = wk.io, w] {
      NetEnv::enter_worker(static_cast<int>(w));
      auto guard = asio::make_work_guard(*io);
      io->run();
    });
  }
}

// Each worker stops its listener and its connections on its own thread, then its loop. First
// it runs a little longer: the last answers (a shutdown's error events, posted just before) may
// still wait for an earlier write's completion, which closing the connection would drop.
void Router::Impl::stop_workers() {
  for (size_t w = 1; w < workers.size(); ++w) {
    Worker& wk = workers[w];
    asio::post(*wk.io, [s = wk.server.get(), io = wk.io] {
      if (s) s->stop_accepting();
      auto t = std::make_shared<asio::steady_timer>(*io, kWorkerDrain);
      t->async_wait([s, io, t](const boost::system::error_code&) {
        if (s) s->stop();
        io->stop();
      });
    });
  }
}

void Router::Impl::join_workers() {
  for (size_t w = 1; w < workers.size(); ++w) {
    Worker& wk = workers[w];
    if (wk.thread.joinable()) wk.thread.join();
    // Pending work (posted pool releases, answers) is dropped with the stopped loop.
    for (Endpoint& ep : endpoints)
      if (w - 1 < ep.worker_pools.size()) ep.worker_pools[w - 1].reset();
  }
}

void Router::stop() {
  if (!impl_ || impl_->stopped) return;
  Impl& m = *impl_;
  std::lock_guard lock(m.core->mutex());
  m.stopped = true;
  m.server.stop();
  if (m.admin_server) m.admin_server->stop();
  m.poller.stop();
  m.ready_timer->cancel();
  m.admin.stop();
  m.peer_flush_timer->cancel();
  if (m.peer) m.peer->stop();
  m.core->stop();
  for (Endpoint& ep : m.endpoints) ep.pool.reset();
  m.kv_events->stop_all();
  m.stop_workers();  // joined by ~Router (this may run under the core's mutex)
}

void Router::set_access_log(std::unique_ptr<AccessLog> log) {
  impl_->access_log = std::move(log);
}

void Router::shutdown(std::function<void()> on_done) {
  Impl& m = *impl_;
  std::lock_guard lock(m.core->mutex());
  if (m.core->shutting_down() || m.stopped) return;
  m.server.stop_accepting();
  for (size_t w = 1; w < m.workers.size(); ++w) {
    if (http::Server* s = m.workers[w].server.get())
      asio::post(*m.workers[w].io, [s] { s->stop_accepting(); });
  }
  m.core->begin_shutdown(std::move(on_done));
}

bool Router::reload(RouterConfig config, std::string& error) {
  std::lock_guard lock(impl_->core->mutex());
  return impl_->reload(std::move(config), error);
}

}  // namespace eta::router
