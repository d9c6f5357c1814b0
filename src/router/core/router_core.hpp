// The router's core: everything `eta route` decides about requests and replicas, without a
// socket or a clock of its own. The networking around it (src/router/router_impl.hpp lists its
// parts: the listeners, the poller, the upstream pools, the admin API) hands it client exchanges
// and poll results and implements its ports (ports.hpp); tests drive it in virtual time.
//
// A request's way through it (docs/architecture.md, "eta route"):
//   proxy()          API key, shutdown, reading (best effort), the model, prepare (features),
//                    the key's rate limit                                       router_core.cpp
//   await_exact_tokens()  long prompts, while events are live: a replica's /tokenize, bounded;
//                    prepared again with the exact block hashes               tokenize.cpp
//   admit()          FIFO behind waiting requests; route(); queue or refuse     routing.cpp
//   route()          eligibility (ReplicaSet) -> admission before the pick -> the policy on the
//                    eligible view -> the TTFT objective -> start_attempt       routing.cpp
//   start_attempt()  the upstream request; on_head / on_body / on_complete relay, hold back or
//                    buffer; the retry policy decides every failure           attempts.cpp
//   finish()         one answer per request: metrics, the access log, the queue pumps
//
// Who decides what: admission.hpp (admit / queue / 429 and its reason), retry_policy.hpp
// (retry / fail / mark unhealthy), replica_set.hpp (routability, lifecycle), router_queue.hpp.
// Threads: the owner serialises every call. With one thread (one event loop) that is all; with
// `threads` > 1 the networking holds mutex() around every entry point (a client request, a poll
// result, a timer, a posted function, an admin call). The upstream handlers that start_attempt
// makes take it themselves, and leave it for the data path of a streamed response: rewriting,
// the client write and SSE scanning run outside it on the call's worker (Call::stream_mu), and
// only the ledger and metrics updates (state().on_tokens, the first token) take it back.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/state.hpp"
#include "policy/registry.hpp"
#include "router/core/admission.hpp"
#include "router/core/call.hpp"
#include "router/core/config.hpp"
#include "router/core/ports.hpp"
#include "router/core/replica_set.hpp"
#include "router/core/retry_policy.hpp"
#include "router/core/router_queue.hpp"
#include "router/core/tokenize.hpp"
#include "router/rate_limit.hpp"
#include "router/router_metrics.hpp"

namespace eta::router {

class RouterCore {
 public:
  struct Ports {
    Env* env = nullptr;
    RouterMetrics* metrics = nullptr;
    CallObserver* calls = nullptr;
    ReplicaObserver* replicas = nullptr;
  };
  // `config` must have passed validate_config; it must name a known policy.
  RouterCore(RouterConfig config, Ports ports);
  ~RouterCore();
  RouterCore(const RouterCore&) = delete;
  RouterCore& operator=(const RouterCore&) = delete;

  const RouterConfig& config() const { return config_; }
  // Held around every call into the core when several threads use it (see above). Recursive:
  // an entry point may call another (a reload adds replicas, a posted function pumps).
  std::recursive_mutex& mutex() const { return mu_; }
  cluster::ClusterState& state() { return state_; }
  ReplicaSet& replicas() { return replicas_; }
  const ReplicaSet& replicas() const { return replicas_; }
  RateLimiter& rate_limiter() { return rate_limiter_; }
  double now() const { return env_.now(); }
  int total_in_flight() const { return total_in_flight_; }
  size_t queue_length();  // drops entries of clients that went away first
  size_t open_calls() const { return calls_.size(); }
  bool shutting_down() const { return shutting_down_; }

  // --- Replicas (fed by the poller and the admin API) --------------------------------------
  // Adds a validated replica; its index or -1 with `error`.
  int add_replica(const ReplicaConfig& config, std::string& error);
  void health_result(int replica, bool ok, std::string_view detail);
  void models_result(int replica, ModelList models);
  // 401/403 to a poll (`what`: the path): unroutable, logged once.
  void unauthorized(int replica, std::string_view what, int status);
  // The key sent to this replica (its api_key, else upstream_api_key; empty: none).
  const std::string& upstream_key(const ReplicaRecord& r) const;
  bool drain(int replica, bool on);
  // No new requests; removed once its in-flight ones end (`force`: fail them now). True when it
  // is removed already.
  bool remove(int replica, bool force);
  void revive(int replica);

  // --- Clients -------------------------------------------------------------------------------
  // A request on a proxied route (routes.hpp); `id`: the response id of a kStored path.
  void proxy(const http::ExchangePtr& exchange, const RouteSpec& route, std::string_view id);
  // Checks the API key (when keys are configured); answers 401 itself (false). `key` gets the
  // matched key (empty when no keys are configured).
  bool authorized(const http::ExchangePtr& exchange, std::string_view* key = nullptr);
  // GET /v1/models: the union of the healthy replicas' models (aliases as their public name).
  std::string models_body() const;

  // --- Lifecycle -----------------------------------------------------------------------------
  // Graceful shutdown: new requests get 503; what is in flight or queued may finish until
  // shutdown_grace_s, then the rest is ended; `done` runs (posted) once nothing is left.
  void begin_shutdown(std::function<void()> done);
  // Stops everything at once: pending calls are dropped without an answer.
  void stop();
  // Takes a validated configuration's live settings (the caller applied the reload plan:
  // restart-only settings are the running ones). `policy`: the rebuilt policy, or null to keep.
  void apply_config(RouterConfig next, std::unique_ptr<policy::Policy> policy);
  void pump_queue();

 private:
  friend struct RouterCoreTestPeer;
  // routing.cpp
  void admit(const CallPtr& c);
  RouteResult route(const CallPtr& c);
  RouteResult route_pinned_or_utility(const CallPtr& c, const std::vector<char>& mask);
  bool slo_shed(const CallPtr& c, const cluster::ClusterView& view, bool retry);
  bool hold(const CallPtr& c, const cluster::ClusterView& view);
  void dispatch_to(const CallPtr& c, int replica);
  void enqueue(const CallPtr& c);
  void arm_queue_timer();
  void refuse(const CallPtr& c, Refusal refusal);
  void answer_refusal(const CallPtr& c, const RefusalAnswer& a);
  EligibilityQuery eligibility_query(const Call& c, bool retry) const;
  bool has_retry_target(const Call& c) const;
  RetryBudget retry_budget(const Call& c) const;
  // attempts.cpp
  void start_attempt(const CallPtr& c, int replica);
  http::ClientRequest upstream_request(const CallPtr& c, const ReplicaRecord& r);
  void on_head(const CallPtr& c, const http::ResponseHead& head);
  void on_body(const CallPtr& c, int attempt, std::string_view data);
  void relay_stream(const CallPtr& c, std::string_view data);
  void on_complete(const CallPtr& c, const http::ClientResult& result);
  void attempt_failed(const CallPtr& c, const RetryVerdict& v, std::string_view detail);
  void fail_mid_response(const CallPtr& c, const RetryVerdict& v, const http::ClientResult& r);
  void release_attempt(Call& c);
  void complete(const CallPtr& c);
  void learn_completion(const CallPtr& c, std::optional<int> tokens, double t);
  void fail_stream(const CallPtr& c, std::string_view message, int status = 502,
                   std::string_view type = "BadGatewayError");
  void fail_over_unanswered(int replica);
  void abort_calls_on(int replica, std::string_view message);
  // tokenize.cpp: the prompt's exact tokens before admit() (true: awaited, admit() follows)
  bool await_exact_tokens(const CallPtr& c);
  bool start_tokenize(const CallPtr& c);
  int tokenize_replica(const std::string& model);
  void end_tokenize(const CallPtr& c, TokenSource source, std::vector<uint32_t>* tokens,
                    bool replica_ok);
  void use_exact_tokens(const CallPtr& c, const std::vector<uint32_t>& tokens, TokenSource source);
  // router_core.cpp
  bool read_request(const CallPtr& c, std::string_view id);
  bool charge_rate_limit(const CallPtr& c, std::string_view key);
  void respond_error(const CallPtr& c, int status, std::string_view type, std::string message,
                     http::Headers extra = {});
  void add_eta_headers(const Call& c, http::Headers& h) const;
  void note_error(Call& c, std::string_view reason);
  void finish(const CallPtr& c, int status);
  void on_client_gone(const CallPtr& c);
  void end_shutdown();
  void maybe_shutdown_done();
  void finish_removal(ReplicaRecord& r);
  // Stored responses: which replica created each response id (bounded, with expiry).
  void remember_response(std::string id, int replica);
  int response_owner(const std::string& id);

  mutable std::recursive_mutex mu_;
  RouterConfig config_;
  Env& env_;
  RouterMetrics& metrics_;
  CallObserver& observer_;
  ReplicaObserver& replica_observer_;
  cluster::ClusterState state_;
  ReplicaSet replicas_;
  std::unique_ptr<policy::Policy> policy_;
  policy::Rng rng_;
  RateLimiter rate_limiter_;
  std::unordered_map<uint64_t, CallPtr> calls_;  // dispatched or queued, not finished
  RouterQueue queue_;
  std::unique_ptr<Timer> queue_timer_;
  bool queue_timer_armed_ = false;
  std::unique_ptr<Timer> shutdown_timer_;
  std::function<void()> on_shutdown_done_;
  bool shutting_down_ = false;
  bool stopped_ = false;
  int total_in_flight_ = 0;
  uint64_t next_id_ = 1;
  cluster::Decision decision_;  // reused
  std::vector<char> mask_;      // reused: the eligible replicas of the request being routed
  struct StoredResponse {
    std::string replica;
    double expires = 0;
  };
  TokenCache token_cache_;
  std::vector<TokenizeHealth> tokenize_health_;  // by replica index
  std::unordered_map<std::string, StoredResponse> responses_;
  std::deque<std::pair<std::string, double>> response_order_;
};

}  // namespace eta::router
