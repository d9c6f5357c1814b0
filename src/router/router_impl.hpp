// The parts of `eta route` around its pure core (router/core/router_core.hpp), shared by the
// files that implement them; internal to src/router/. Networking lives in two translation units:
// net_env.cpp (the core's ports on Asio: timers, posting, the upstream pools) and router.cpp
// (the io_context, listeners, signals). The others use only Beast-free headers:
//   poller.cpp     scrape / health / model-list polls feeding the core's replica set, replicas
//                  found by DNS, the peer-sync ticks
//   admin_api.cpp  the admin listener's routes, replica reports, the dashboard stream
//   observers.cpp  the core's observers: decision log, access log, completion records, peer
//                  sync, KV-event subscriptions
//   router.cpp     wiring: construction, the client listener's routes, start / stop, reload,
//                  run_until_signal
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/client.hpp"
#include "http/server.hpp"
#include "metrics/parse.hpp"
#include "router/access_log.hpp"
#include "router/admin.hpp"
#include "router/core/router_core.hpp"
#include "router/dashboard.hpp"
#include "router/decision_log.hpp"
#include "router/discovery.hpp"
#include "router/kv_events.hpp"
#include "router/peer_link.hpp"
#include "router/replica_state.hpp"
#include "router/router.hpp"
#include "router/router_metrics.hpp"

namespace eta::router {

// Threads (`threads` > 1, docs/architecture.md): worker 0 is the main thread (its io_context
// also runs the timers, the poller, the admin API, peer sync and signals); workers 1..N-1 run
// their own io_context on their own thread. Every worker has a client listener on the same port
// (SO_REUSEPORT) and a pool per replica; a client request stays on the worker that accepted it:
// its exchange, its upstream requests (NetEnv::send posts there) and the relaying of its answer
// run on that worker's thread. Every entry point into the core and the router's shared state
// holds the core's mutex (RouterCore::mutex): the client handler, upstream handlers (the core's
// own), timers, posted functions, poll results, KV events, the admin API, signals. A call's
// exchange touched from another thread (a queued request answered by a timer, a removal, the
// end of shutdown) goes through WorkerExchange (net_env.cpp), which posts to its worker.
struct Worker {
  boost::asio::io_context* io = nullptr;         // worker 0: the main io_context
  std::unique_ptr<boost::asio::io_context> own;  // workers 1..N-1
  std::unique_ptr<http::Server> server;          // workers 1..N-1 (worker 0: Impl::server)
  std::thread thread;
};

// A replica's networking: its upstream pool and its polls' state (by ReplicaSet index).
struct Endpoint {
  std::shared_ptr<http::UpstreamPool> pool;                       // worker 0's; null once removed
  std::vector<std::shared_ptr<http::UpstreamPool>> worker_pools;  // workers 1..N-1 (w - 1)
  bool scrape_busy = false;
  bool health_busy = false;
  bool models_busy = false;
  ScrapeCounters counters;
  metrics::ParsedMetrics parsed;
};

// The core's clock, timers and upstream on Asio (net_env.cpp). Timers and posted functions run
// on the main io_context under the core's mutex (set_mutex); arm and cancel may be called from
// any worker holding it.
class NetEnv final : public Env {
 public:
  NetEnv(boost::asio::io_context& io, std::vector<Endpoint>& endpoints,
         std::vector<Worker>& workers);
  void set_mutex(std::recursive_mutex* mu) { mu_ = mu; }
  double now() const override;
  double unix_now() const override;
  int worker() const override;
  void post(std::function<void()> fn) override;
  std::unique_ptr<Timer> make_timer() override;
  std::unique_ptr<UpstreamCall> send(int worker, int replica, http::ClientRequest request,
                                     http::ResponseHandlers handlers) override;
  // A GET to a replica's pool (polls, on the main thread): status, body, result (under the
  // mutex).
  void get(int replica, http::ClientRequest request, http::UpstreamPool::GetCallback cb);
  // An exchange accepted by worker `worker`, safe to use from any thread (threads > 1).
  http::ExchangePtr own_exchange(http::ExchangePtr e, int worker);
  // Drops a removed replica's pools, each on its own worker (later: it may be inside one of its
  // own callbacks).
  void release_pools(int replica);
  // Worker threads call this first: Env::worker() on this thread is `worker`.
  static void enter_worker(int worker);

 private:
  boost::asio::io_context& io_;
  std::vector<Endpoint>& endpoints_;
  std::vector<Worker>& workers_;
  std::recursive_mutex* mu_ = nullptr;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// The core's observers (observers.cpp).
class RouterObserver final : public CallObserver, public ReplicaObserver {
 public:
  explicit RouterObserver(Router::Impl& m) : m_(m) {}
  void decided(const Call& c, const cluster::Decision& d, int chosen) override;
  void rate_charged(std::string_view key, uint64_t tokens) override;
  void dispatched(const Call& c) override;
  void first_token(const Call& c, int tokens) override;
  void succeeded(const Call& c, int output_tokens) override;
  void completed(const Call& c, double now_s, int output_tokens) override;
  void attempt_ended(const Call& c) override;
  void finished(const Call& c, int status) override;
  void restarted(int replica) override;
  void became_healthy(int replica) override;
  void removed(int replica) override;

 private:
  Router::Impl& m_;
};

// Polling (poller.cpp): /metrics every scrape interval, /health every health interval,
// /v1/models every models interval (and whenever a replica turns healthy), at most one of each
// in flight per replica; replicas from DNS; the peer-sync ticks.
class Poller {
 public:
  explicit Poller(Router::Impl& m);
  void start();
  void stop();
  void probe(int replica);  // health and models now (a replica added at run time)
  void scrape(int replica);
  void check_health(int replica);
  void fetch_models(int replica);
  void check_ready();
  void start_discovery();
  // The replicas replica_dns found (reload does not remove them).
  bool from_dns(const std::string& url) const;

 private:
  void arm_scrape();
  void arm_health();
  void arm_models();
  void arm_peer();
  void on_scrape(int replica, int status, const std::string& body, const http::ClientResult& r);
  void on_models(int replica, int status, const std::string& body, const http::ClientResult& r);
  void poll_get(int replica, std::string target, size_t max_bytes, double timeout_s,
                http::UpstreamPool::GetCallback cb);
  void apply_dns(size_t name, const std::vector<std::string>& urls, const std::string& error);

  Router::Impl& m_;
  std::unique_ptr<Timer> scrape_timer_, health_timer_, models_timer_, peer_timer_;
  std::unique_ptr<DnsDiscovery> discovery_;
  std::vector<std::set<std::string>> dns_owned_;  // per replica_dns entry: the replicas it added
  std::vector<bool> dns_failing_;                 // per entry: the last lookup failed (logged)
  std::shared_ptr<int> dns_alive_ = std::make_shared<int>(0);
};

// The admin listener's API and the dashboard (admin_api.cpp).
class AdminApi {
 public:
  explicit AdminApi(Router::Impl& m);
  void add_routes(http::Routes& routes);
  bool authorized(const http::ExchangePtr& e);
  ReplicaReport report(const ReplicaRecord& r);
  ReplicaReport report(const ReplicaRecord& r, const cluster::ClusterView& view, double t);
  void record_completion(const Call& c, double t, int output_tokens);
  void stop();

 private:
  void add_replica_routes(http::Routes& routes);
  void add_dashboard_routes(http::Routes& routes);
  void arm_dashboard();
  std::string dashboard_snapshot(StreamCursor& cursor, const StreamParams& params);

  Router::Impl& m_;
  std::unique_ptr<Timer> dashboard_timer_;
};

struct Router::Impl {
  Impl(boost::asio::io_context& io, RouterConfig config);
  ~Impl();

  // A replica with its pool (and KV-event subscription); probed at once when running.
  bool add_replica(ReplicaConfig rc, std::string& error);
  ReplicaRecord* find_replica(std::string_view url);
  void on_client(int worker, http::ExchangePtr e);
  void start_workers();
  void stop_workers();
  void join_workers();
  void dispatch_client(const http::ExchangePtr& e);
  void handle_health(const http::ExchangePtr& e);
  void handle_metrics(const http::ExchangePtr& e);
  bool reload(RouterConfig next, std::string& error);
  void start_peer_sync();
  void index_rate_keys();  // rate_keys from config.api_keys
  const RouterConfig& config() const { return core->config(); }

  boost::asio::io_context& io;
  std::vector<Worker> workers;      // threads; [0] is this thread (io)
  std::vector<Endpoint> endpoints;  // by ReplicaSet index
  NetEnv env;
  RouterMetrics metrics;
  RouterObserver observer;
  std::unique_ptr<RouterCore> core;
  std::unique_ptr<AccessLog> access_log;  // null: off
  DecisionLog decisions;
  CompletionLog completions{1000};  // predicted vs actual of the last completed requests
  DashboardStream dashboards;
  std::unique_ptr<PeerLink> peer;                       // peer sync (issue 13): null when off
  std::unique_ptr<Timer> peer_flush_timer;              // peer sync: batching of outgoing frames
  std::unordered_map<uint64_t, std::string> rate_keys;  // rate_key_hash -> key
  std::unique_ptr<KvEventsConsumer> kv_events;          // KV-cache events (issue 15)
  http::Routes admin_routes;
  http::Server server;
  std::unique_ptr<http::Server> admin_server;
  Poller poller;
  AdminApi admin;
  std::unique_ptr<Timer> ready_timer;
  bool started = false;
  bool stopped = false;
  bool ready = false;
  std::function<void()> on_ready;
};

}  // namespace eta::router
