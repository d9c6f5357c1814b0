// RouterCore: construction, replica events, a request's arrival (proxy), its one final answer
// (finish), and shutdown. Routing and the queue: routing.cpp; attempts: attempts.cpp.
#include "router/core/router_core.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "openai/request.hpp"
#include "router/aliases.hpp"
#include "router/headers.hpp"

namespace eta::router {

namespace {

constexpr std::string_view kReplicaHeader = "x-eta-replica";
constexpr std::string_view kPredictedTtftHeader = "x-eta-predicted-ttft-ms";
constexpr std::string_view kPredictedE2eHeader = "x-eta-predicted-e2e-ms";
constexpr std::string_view kRequestIdHeader = "x-eta-request-id";
constexpr std::string_view kNone = "none";

cluster::ClusterStateOptions state_options(const RouterConfig& config) {
  cluster::ClusterStateOptions o;
  o.stale_after_s = config.scrape.stale_after_s;
  o.hash_block_size = kHashBlockSize;
  return o;
}

}  // namespace

RouterCore::RouterCore(RouterConfig config, Ports ports)
    : config_(std::move(config)),
      env_(*ports.env),
      metrics_(*ports.metrics),
      observer_(*ports.calls),
      replica_observer_(*ports.replicas),
      state_(state_options(config_)),
      replicas_(state_, metrics_),
      rng_(config_.policy.seed),
      queue_timer_(env_.make_timer()),
      shutdown_timer_(env_.make_timer()) {
  std::string error;
  policy_ = policy::make_policy(config_.policy.name, config_.policy.params, error);
  if (!policy_) spdlog::error("policy {}: {}", config_.policy.name, error);
}

RouterCore::~RouterCore() {
  stop();
}

// ---------------------------------------------------------------------------------------------
// Replicas

int RouterCore::add_replica(const ReplicaConfig& rc, std::string& error) {
  const int index = replicas_.add(rc, config_.health.failure_threshold,
                                  config_.health.success_threshold, now(), error);
  if (index < 0) return -1;
  const ReplicaRecord& r = replicas_.at(index);
  spdlog::info("replica {} added (gpu {}, arch {}, weight {})", r.url(), r.config.gpu,
               r.config.arch, r.config.weight);
  return index;
}

void RouterCore::health_result(int index, bool ok, std::string_view detail) {
  ReplicaRecord& r = replicas_.at(index);
  if (r.removed()) return;
  const bool was_known = r.health.known();
  switch (replicas_.record_health(r, ok, detail)) {
    case HealthChange::kBecameHealthy:
      spdlog::info("replica {} is healthy", r.url());
      if (was_known) replica_observer_.restarted(index);
      replica_observer_.became_healthy(index);
      break;
    case HealthChange::kBecameUnhealthy:
      spdlog::warn("replica {} is unhealthy: {}", r.url(), detail);
      // Requests it has not begun to answer need not wait for their first-byte timeout. Posted:
      // this may run inside one of those calls' own completion.
      env_.post([this, index] { fail_over_unanswered(index); });
      break;
    case HealthChange::kFirstFailure:
      spdlog::warn("replica {} does not answer: {}", r.url(), detail);
      break;
    case HealthChange::kNone:
      break;
  }
  if (r.routable()) pump_queue();
}

void RouterCore::models_result(int index, ModelList list) {
  ReplicaRecord& r = replicas_.at(index);
  if (r.removed()) return;
  if (r.unauthorized) {
    spdlog::info("replica {}: /v1/models answers with the upstream key now", r.url());
  }
  if (!r.models_known || list.ids != r.models.ids) {
    std::string names;
    for (const std::string& m : list.ids) names += (names.empty() ? "" : ", ") + m;
    spdlog::info("replica {} serves: {}", r.url(), names);
  }
  replicas_.set_models(r, std::move(list));
  if (r.routable()) pump_queue();
}

const std::string& RouterCore::upstream_key(const ReplicaRecord& r) const {
  return r.config.api_key.empty() ? config_.upstream_api_key : r.config.api_key;
}

void RouterCore::unauthorized(int index, std::string_view what, int status) {
  ReplicaRecord& r = replicas_.at(index);
  std::string message =
      fmt::format("unauthorized: {} answered {}{}", what, status,
                  upstream_key(r).empty() ? " (set the replica's api_key or upstream_api_key)"
                                          : " (the upstream key was refused)");
  const bool models = what == "/v1/models";
  if (!models) {
    // A refused scrape: remembered and said once; what it serves is still known.
    r.last_error = std::move(message);
    if (!r.unauthorized) spdlog::warn("replica {}: {}", r.url(), r.last_error);
    r.unauthorized = true;
    return;
  }
  if (replicas_.set_unauthorized(r, std::move(message))) {
    spdlog::warn("replica {}: {}", r.url(), r.last_error);  // once, until a poll succeeds
  }
}

bool RouterCore::drain(int index, bool on) {
  ReplicaRecord& r = replicas_.at(index);
  if (!replicas_.set_draining(r, on)) return false;
  spdlog::info("replica {} {}", r.url(), on ? "draining" : "undrained");
  if (!on) pump_queue();
  return true;
}

bool RouterCore::remove(int index, bool force) {
  ReplicaRecord& r = replicas_.at(index);
  const bool now_empty = replicas_.begin_removal(r);
  if (force) abort_calls_on(index, "replica " + r.url() + " was removed");
  if (now_empty || r.in_flight == 0) finish_removal(r);
  return r.removed();
}

void RouterCore::revive(int index) {
  replicas_.revive(replicas_.at(index));
  pump_queue();
}

void RouterCore::finish_removal(ReplicaRecord& r) {
  if (r.removed()) return;
  replicas_.finish_removal(r);
  replica_observer_.removed(r.index);
  spdlog::info("replica {} removed", r.url());
}

// ---------------------------------------------------------------------------------------------
// Clients

bool RouterCore::authorized(const http::ExchangePtr& e, std::string_view* matched) {
  if (config_.api_keys.empty()) return true;
  const std::string_view token = bearer_token(e->request().header("authorization"));
  for (const std::string& key : config_.api_keys) {
    if (same_secret(token, key)) {
      if (matched != nullptr) *matched = key;
      return true;
    }
  }
  auto c = std::make_shared<Call>();
  c->id = next_id_++;
  c->worker = env_.worker();
  c->exchange = e;
  c->arrival = now();
  note_error(*c, "unauthorized");
  http::Headers h{{"WWW-Authenticate", "Bearer"}};
  respond_error(
      c, 401, "UnauthorizedError",
      token.empty() ? "Missing API key: send 'Authorization: Bearer <key>'." : "Invalid API key.",
      std::move(h));
  return false;
}

void RouterCore::proxy(const http::ExchangePtr& e, const RouteSpec& route, std::string_view id) {
  std::string_view key;
  if (!authorized(e, &key)) return;
  auto c = std::make_shared<Call>();
  c->id = next_id_++;
  c->worker = env_.worker();
  c->exchange = e;
  c->route = &route;
  c->arrival = now();
  if (shutting_down_) {
    e->mutable_request().keep_alive = false;  // and close the connection after the answer
    return refuse(c, Refusal::kShuttingDown);
  }
  if (!read_request(c, id)) return;
  if (!charge_rate_limit(c, key)) return;
  std::weak_ptr<Call> weak = c;
  e->on_disconnect([this, weak] {
    if (CallPtr c = weak.lock()) on_client_gone(c);
  });
  calls_.emplace(c->id, c);
  if (await_exact_tokens(c)) return;  // admit() follows when the tokens come or the wait ends
  admit(c);
}

// Best effort: nothing here refuses a request the replicas could take (openai/extract.hpp).
bool RouterCore::read_request(const CallPtr& c, std::string_view id) {
  const RouteSpec& route = *c->route;
  const http::Request& request = c->exchange->request();
  openai::extract_request(route.api, request.body, request.header("content-type"),
                          config_.request_estimates, c->req);
  std::string model = c->req.model;
  if (route.cls == RouteClass::kStored) {
    c->stored_id = std::string(id);
    c->pinned = response_owner(c->stored_id);
    c->use_ledger = false;
  } else if (model.empty()) {
    model = replicas_.default_model();
    if (model.empty()) {
      // Several models (or none known yet): no replica to ask. A completions or chat body vLLM
      // would refuse gets vLLM's own answer (the simulator's rules, openai::parse_request);
      // a valid one without a model, the router's 400 on `model`.
      note_error(*c, "bad_request");
      openai::RequestFields strict;
      openai::Error err;
      const bool chat = route.api == openai::Api::kChat;
      if (!((chat || route.api == openai::Api::kCompletions) &&
            !openai::parse_request(chat ? openai::Endpoint::kChat : openai::Endpoint::kCompletions,
                                   request.body, strict, err))) {
        err = openai::bad_request(
            "The request names no model and this router serves several (or none is known "
            "yet): send `model` (GET /v1/models lists them).",
            "model");
      }
      http::Response r = http::error_response(err);
      add_eta_headers(*c, r.headers);
      c->exchange->respond(std::move(r));
      finish(c, err.status);
      return false;
    }
  }
  if (route.cls == RouteClass::kUtility) c->use_ledger = false;
  const double t0 = now();
  prepare_request(state_, c->req, model, request.header(kSessionHeader), c->info, c->prepared);
  c->decision_s = now() - t0;
  // A completions or chat stream is counted exactly: the replica is asked for usage on every
  // event, and the client gets back exactly the stream it asked for (sse.hpp).
  if (config_.stream_usage && c->req.stream && c->req.n == 1 &&
      (route.api == openai::Api::kCompletions || route.api == openai::Api::kChat) &&
      !c->req.continuous_usage_stats) {
    c->forward_body = with_continuous_usage(request.body);
    if (!c->forward_body.empty()) {
      c->rewrite_stream = true;
      c->rewriter = UsageStreamRewriter(c->req.include_usage, false);
    }
  }
  return true;
}

// Charged at admission: the prompt and the most it may generate.
bool RouterCore::charge_rate_limit(const CallPtr& c, std::string_view key) {
  const RateLimit& limit = rate_limit_for(config_, key);
  if (!limit.any()) return true;
  const double tokens =
      c->info.prompt_tokens + static_cast<double>(c->info.max_tokens.value_or(0)) *
                                  (c->info.decode ? c->info.sequences : 0);
  const RateLimiter::Verdict v = rate_limiter_.charge(key, limit, tokens, c->arrival);
  if (!v.allowed) {
    answer_refusal(c, rate_limit_answer(
                          v.tokens, v.tokens ? limit.tokens_per_minute : limit.requests_per_minute,
                          tokens, v.retry_after_s));
    return false;
  }
  observer_.rate_charged(key, static_cast<uint64_t>(std::max(0.0, tokens)));
  return true;
}

std::string RouterCore::models_body() const {
  std::vector<std::string_view> seen;
  std::string body = "{\"object\":\"list\",\"data\":[";
  bool first = true;
  replicas_.for_each_live([&](const ReplicaRecord& r) {
    if (!r.health.healthy() || !r.models_known) return;
    for (size_t i = 0; i < r.models.ids.size(); ++i) {
      const std::string& served = r.models.ids[i];
      // Model aliases: a served name is listed as its public name (its replica's card otherwise).
      const std::string* alias = public_name_of(config_.models.aliases, served);
      const std::string& id = alias != nullptr ? *alias : served;
      if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
      seen.push_back(id);
      if (!first) body += ',';
      first = false;
      body += alias != nullptr ? rewrite_field(r.models.cards[i], "id", served, id, true)
                               : r.models.cards[i];
    }
  });
  body += "]}";
  return body;
}

// ---------------------------------------------------------------------------------------------
// Answers

void RouterCore::respond_error(const CallPtr& c, int status, std::string_view type,
                               std::string message, http::Headers extra) {
  http::Response r = http::error_response(status, type, std::move(message));
  r.headers = std::move(extra);
  add_eta_headers(*c, r.headers);
  c->exchange->respond(std::move(r));
  finish(c, status);
}

void RouterCore::add_eta_headers(const Call& c, http::Headers& h) const {
  h.emplace_back(std::string(kRequestIdHeader), std::to_string(c.id));
  if (c.replica < 0) return;
  h.emplace_back(std::string(kReplicaHeader), replicas_.at(c.replica).url());
  if (std::isfinite(c.predicted_ttft_s)) {
    h.emplace_back(std::string(kPredictedTtftHeader),
                   fmt::format("{:.3f}", c.predicted_ttft_s * 1e3));
  }
  if (std::isfinite(c.predicted_e2e_s)) {
    h.emplace_back(std::string(kPredictedE2eHeader),
                   fmt::format("{:.3f}", c.predicted_e2e_s * 1e3));
  }
}

void RouterCore::note_error(Call& c, std::string_view reason) {
  metrics_.count_error(std::string(reason));
  c.error = reason;
}

void RouterCore::finish(const CallPtr& c, int status) {
  if (c->finished) return;
  c->finished = true;
  c->queued = false;
  const std::string replica = c->replica >= 0 ? replicas_.at(c->replica).url() : std::string(kNone);
  metrics_.count_request(replica, status);
  if (status == 429 && (c->error.rfind("shed_", 0) == 0 || c->error.rfind("queue_", 0) == 0)) {
    metrics_.rejections.with({c->error}).inc();
  }
  observer_.finished(*c, status);
  calls_.erase(c->id);
  pump_queue();
  if (shutting_down_) maybe_shutdown_done();
}

void RouterCore::on_client_gone(const CallPtr& c) {
  if (c->finished) return;
  note_error(*c, "client_disconnect");
  c->cancel_tokenize();
  if (c->attempt_active) {
    c->cancel_upstream();  // the replica sees the disconnect and aborts the request
    release_attempt(*c);
    state_.on_abort(c->id);
  }
  // 499: nginx's "client closed request", for the requests counter only.
  finish(c, 499);
}

// ---------------------------------------------------------------------------------------------
// Lifecycle: stop accepting (the caller), let what is in flight and queued finish until the
// grace deadline, then end the rest.

void RouterCore::begin_shutdown(std::function<void()> done) {
  if (shutting_down_ || stopped_) return;
  shutting_down_ = true;
  on_shutdown_done_ = std::move(done);
  spdlog::info("shutting down: {} requests in flight or queued, grace {:g} s", calls_.size(),
               config_.shutdown_grace_s);
  shutdown_timer_->arm(now() + config_.shutdown_grace_s, [this] {
    if (!stopped_) end_shutdown();
  });
  maybe_shutdown_done();
}

void RouterCore::end_shutdown() {
  queue_.clear();  // queued requests are answered below, not dispatched now
  std::vector<CallPtr> rest;
  for (const auto& [id, c] : calls_) rest.push_back(c);
  std::sort(rest.begin(), rest.end(), [](const CallPtr& a, const CallPtr& b) {
    return a->id < b->id;  // in arrival order (the map's order is not)
  });
  if (!rest.empty()) {
    spdlog::warn("shutdown grace of {:g} s over: ending {} requests", config_.shutdown_grace_s,
                 rest.size());
  }
  constexpr std::string_view kMessage = "The router is shutting down.";
  for (const CallPtr& c : rest) {
    if (c->finished) continue;
    note_error(*c, "shutting_down");
    c->cancel_tokenize();
    if (c->attempt_active) {
      c->cancel_upstream();
      if (c->mode == Call::Mode::kStreaming) {
        fail_stream(c, kMessage, 503, "ServiceUnavailableError");
        continue;
      }
      release_attempt(*c);
      state_.on_abort(c->id);
    }
    respond_error(c, 503, "ServiceUnavailableError", std::string(kMessage));
  }
  maybe_shutdown_done();
}

void RouterCore::maybe_shutdown_done() {
  if (!calls_.empty() || !on_shutdown_done_) return;
  shutdown_timer_->cancel();
  auto done = std::move(on_shutdown_done_);
  on_shutdown_done_ = nullptr;
  spdlog::info("shutdown: nothing left in flight");
  env_.post(std::move(done));
}

void RouterCore::stop() {
  if (stopped_) return;
  stopped_ = true;
  queue_timer_->cancel();
  shutdown_timer_->cancel();
  for (auto& [id, c] : calls_) {
    c->finished = true;
    c->cancel_tokenize();
    c->cancel_upstream();
  }
  calls_.clear();
  queue_.clear();
}

void RouterCore::apply_config(RouterConfig next, std::unique_ptr<policy::Policy> policy) {
  config_ = std::move(next);
  if (policy) {
    policy_ = std::move(policy);
    rng_ = policy::Rng(config_.policy.seed);
  }
}

// ---------------------------------------------------------------------------------------------
// Stored responses (/v1/responses/{id}): the replica that created each one.

void RouterCore::remember_response(std::string id, int replica) {
  constexpr size_t kMaxStored = 100000;
  constexpr double kStoredTtlS = 3600;
  if (id.empty() || id.size() > 256) return;
  const double t = now();
  while (!response_order_.empty() &&
         (response_order_.size() >= kMaxStored || response_order_.front().second <= t)) {
    auto it = responses_.find(response_order_.front().first);
    // Not an entry remembered again since (it has a later expiry).
    if (it != responses_.end() && it->second.expires == response_order_.front().second) {
      responses_.erase(it);
    }
    response_order_.pop_front();
  }
  const double expires = t + kStoredTtlS;
  responses_[id] = StoredResponse{replicas_.at(replica).url(), expires};
  response_order_.emplace_back(std::move(id), expires);
}

int RouterCore::response_owner(const std::string& id) {
  auto it = responses_.find(id);
  if (it == responses_.end()) return -1;
  if (it->second.expires <= now()) {
    responses_.erase(it);
    return -1;
  }
  const ReplicaRecord* r = replicas_.find(it->second.replica);
  return r ? r->index : -1;
}

}  // namespace eta::router
