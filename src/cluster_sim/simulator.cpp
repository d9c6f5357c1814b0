#include "cluster_sim/simulator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "cluster/state.hpp"
#include "cluster_sim/oracle.hpp"
#include "engine/block_pool.hpp"
#include "engine/output_length.hpp"
#include "peer/peer_sync.hpp"
#include "policy/rng.hpp"
#include "predict/completion_model.hpp"
#include "predict/token_estimate.hpp"
#include "router/core/late_binding.hpp"
#include "router/core/router_queue.hpp"
#include "workload/random.hpp"

namespace eta::cluster_sim {

std::vector<RequestPlan> plan_requests(const workload::Workload& w, workload::LengthsMode mode,
                                       int max_model_len) {
  workload::BodyOptions body;
  body.lengths = mode;
  body.max_model_len = max_model_len;
  body.hidden_max_tokens = workload::workload_max_tokens(w);
  std::vector<RequestPlan> plans(w.requests.size());
  for (size_t i = 0; i < w.requests.size(); ++i) {
    const workload::WorkloadRequest& r = w.requests[i];
    RequestPlan& p = plans[i];
    const int output = std::max(r.output_tokens, 1);
    p.max_tokens = workload::max_tokens_for(r, body);
    p.ignore_eos = mode == workload::LengthsMode::kExact;
    if (!r.session_id.empty()) p.session_hash = predict::hash_session_key(r.session_id);
    // vLLM's checks (vllm_sim/prepare.cpp): the prompt must leave room for one token, and
    // prompt + max_tokens must fit in the context.
    if (max_model_len > 0 &&
        (r.prompt_tokens >= max_model_len || static_cast<int64_t>(r.prompt_tokens) + p.max_tokens >
                                                 static_cast<int64_t>(max_model_len))) {
      p.rejected = true;
      continue;
    }
    engine::OutputLengthInput in;
    in.prompt_tokens = r.prompt_tokens;
    in.max_tokens = p.max_tokens;
    in.ignore_eos = p.ignore_eos;
    if (!p.ignore_eos) in.hidden_length = output;
    in.max_model_len = max_model_len;
    const engine::OutputLength length = engine::decide_output_length(in);
    p.engine_output_tokens = length.tokens;
    p.finish_reason = length.reason;
  }
  return plans;
}

engine::EngineRequest make_engine_request(const workload::WorkloadRequest& r,
                                          const RequestPlan& plan, engine::RequestId id,
                                          double arrival_time) {
  engine::EngineRequest e;
  e.id = id;
  e.prompt_tokens = r.prompt_tokens;
  e.block_hashes = r.block_hashes;
  e.output_tokens = plan.engine_output_tokens;
  e.finish_reason = plan.finish_reason;
  e.output_seed = r.output_seed;
  e.arrival_time = arrival_time;
  return e;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

enum class EventKind : uint8_t { kStep, kReceive, kDeliver, kScrape, kPeer, kKvEvents, kQueueWake };

// KV-cache events: a replica's block-pool reports of one step (prefix::KvEventIndex::KeyedOp).
class KeyedRecorder final : public engine::BlockPoolListener {
 public:
  void on_block_stored(uint64_t hash) override { ops.push_back({hash, true}); }
  void on_block_removed(uint64_t hash) override { ops.push_back({hash, false}); }
  std::vector<prefix::KvEventIndex::KeyedOp> ops;
};

struct Event {
  double time;
  uint64_t seq;
  int64_t payload;  // kReceive: request index; kDeliver: result buffer; kPeer: message;
                    // kQueueWake: the router
  int32_t replica;
  EventKind kind;
};

struct EventLater {
  bool operator()(const Event& a, const Event& b) const {
    return a.time > b.time || (a.time == b.time && a.seq > b.seq);
  }
};

class EventQueue {
 public:
  void push(double time, EventKind kind, int replica, int64_t payload = 0) {
    heap_.push_back(Event{time, seq_++, payload, static_cast<int32_t>(replica), kind});
    std::push_heap(heap_.begin(), heap_.end(), EventLater{});
    if (kind != EventKind::kScrape) ++work_;
  }
  bool empty() const { return heap_.empty(); }
  double next_time() const { return heap_.empty() ? kInf : heap_.front().time; }
  Event pop() {
    std::pop_heap(heap_.begin(), heap_.end(), EventLater{});
    Event e = heap_.back();
    heap_.pop_back();
    if (e.kind != EventKind::kScrape) --work_;
    return e;
  }
  // Events other than scrapes still pending (0: nothing can change any more but arrivals).
  int64_t work() const { return work_; }

 private:
  std::vector<Event> heap_;
  uint64_t seq_ = 0;
  int64_t work_ = 0;
};

// What the replica's /metrics says: vLLM updates it after every step.
struct Metrics {
  int running = 0;
  int waiting = 0;
  double kv_usage = 0;
  uint64_t prefix_queries = 0;
  uint64_t prefix_hits = 0;
  uint64_t preemptions = 0;
  uint64_t generation_tokens = 0;
};

struct Replica {
  explicit Replica(const ReplicaConfig& c) : config(&c), engine(c.engine) {}
  const ReplicaConfig* config;
  engine::Engine engine;
  bool busy = false;       // a kStep event is pending
  double next_step_s = 0;  // its time
  int undelivered = -1;    // zero delay: the result delivered at the next kStep
  Metrics published;       // as of the last finished step
  Metrics after_step;      // as of the end of the running step
  double after_step_time = kInf;
  uint64_t scraped_queries = 0;  // prefix counters at the last scrape
  uint64_t scraped_hits = 0;
  uint64_t scraped_generation = 0;  // generation tokens at the last scrape, and its time
  double scraped_time = -1;
  std::vector<int64_t> in_transit;  // dispatched, not yet received (for the oracle)
  ReplicaOutcome outcome;
  std::unique_ptr<KeyedRecorder> kv_recorder;  // KV-cache events on
};

struct Router {
  Router(const cluster::ClusterStateOptions& options, uint64_t seed) : state(options), rng(seed) {}
  cluster::ClusterState state;
  std::unique_ptr<policy::Policy> policy;
  policy::Rng rng;
  cluster::PreparedRequest prepared;
  std::vector<cluster::ReplicaView> blind;  // ledger off: the views without the ledger
  cluster::ClusterView blind_view;
  std::vector<cluster::ReplicaView> eligible;  // admission: replicas with room routable only
  cluster::ClusterView eligible_view;
  std::vector<cluster::RequestId> step_ids;  // deliver(): this router's tokens of one step
  std::unique_ptr<peer::PeerSync> live;      // live peer sync (SimConfig::peer_sync_live)
};

// One router's ledger event on its way to the other routers (peer sync).
struct PeerMessage {
  enum class Kind : uint8_t { kDispatch, kTokens, kFinish, kAbort };
  Kind kind = Kind::kDispatch;
  int32_t origin = 0;  // the router it happened at
  int32_t replica = -1;
  cluster::RequestId id = 0;
  int output_tokens = 0;                // kFinish
  cluster::DispatchInfo info;           // kDispatch: the request as the origin sized it
  std::vector<cluster::RequestId> ids;  // kTokens: one token each (one engine step)
};

// One simulated router's admission state (the oracle has one too): its queue, and its own
// dispatched, unfinished requests in all and per replica.
struct Gate {
  router::RouterQueue queue;
  int in_flight = 0;
  std::vector<int> per_replica;
  bool wake_armed = false;  // a kQueueWake is pending
  bool released = false;    // a request finished since the last pump
};

struct Flight {
  int32_t replica = -1;
  int32_t router = -1;
  double send_s = 0;
  double dispatch_s = 0;  // when the router sent it on (send_s unless it waited in a queue)
  double last_token_s = 0;
  int tokens = 0;
};

class Simulation {
 public:
  Simulation(const SimConfig& config, const workload::Workload& w,
             const std::vector<RequestPlan>& plans, const PolicyChoice& choice, SimResult& out)
      : config_(config),
        w_(w),
        plans_(plans),
        oracle_mode_(choice.oracle()),
        out_(out),
        oracle_(config.network_delay_s),
        oracle_rng_(policy::Rng(config.seed ^ 0x6f7261636c65ull)),
        scrape_rng_(config.seed ^ 0x73637261706521ull) {}

  bool setup(const PolicyChoice& choice, std::string& error) {
    const size_t n = w_.requests.size();
    if (plans_.size() != n) {
      error = "internal: request plans do not match the workload";
      return false;
    }
    replicas_.reserve(config_.replicas.size());
    for (const ReplicaConfig& c : config_.replicas) {
      replicas_.emplace_back(c);
      replicas_.back().outcome.name = c.name;
      replicas_.back().outcome.gpu = c.gpu;
    }
    if (!oracle_mode_) {
      cluster::ClusterStateOptions options;
      options.stale_after_s = config_.stale_after_s;
      engine::EngineConfig assumed;
      if (!config_.replicas.empty() &&
          !engine::make_config(engine::ProfileSet::builtin(),
                               config_.replicas.front().engine.arch.name, "h100", assumed, error)) {
        return false;
      }
      const int routers = std::max(config_.routers, 1);
      for (int k = 0; k < routers; ++k) {
        std::unique_ptr<policy::Policy> p = policy::make_policy(choice.name, choice.params, error);
        if (!p) return false;
        const policy::Policy::Reads reads = p->reads();
        // The TTFT SLO reads the completion model (prefix, speed, progress) whatever the policy.
        const bool full = config_.full_router_state || config_.admission.ttft_slo_s > 0;
        options.track_prefix = reads.prefix || full;
        options.learn_speed = reads.speed || full;
        options.learn_latency = reads.latency || full;
        speed_learned_ = options.learn_speed;
        // Late binding reads each replica's pending prefill from the ledger.
        track_progress_ = reads.progress || reads.speed || full || choice.late;
        auto router = std::make_unique<Router>(
            options, workload::derive_seed(config_.seed, 0x726f75746572ull + k));
        router->policy = std::move(p);
        for (const ReplicaConfig& c : config_.replicas) {
          cluster::ReplicaSpec spec;
          spec.name = c.name;
          spec.engine = config_.router_knows_gpus ? c.engine : assumed;
          router->state.add_replica(spec);
        }
        routers_.push_back(std::move(router));
      }
    }
    peer_sync_ = !oracle_mode_ && routers_.size() > 1 && config_.peer_sync_s >= 0;
    if (!oracle_mode_ && config_.kv_events_delay_s >= 0) {  // KV-cache events
      for (size_t i = 0; i < replicas_.size(); ++i) {
        replicas_[i].kv_recorder = std::make_unique<KeyedRecorder>();
        replicas_[i].engine.set_block_pool_listener(replicas_[i].kv_recorder.get());
        for (auto& router : routers_)
          router->state.kv_events().set_active(static_cast<int>(i), true);
      }
    }
    live_ = peer_sync_ && config_.peer_sync_live;
    loss_rng_ = policy::Rng(config_.seed ^ 0x6c6f7373ull);
    if (live_) {
      for (size_t k = 0; k < routers_.size(); ++k) {
        Router& r = *routers_[k];
        r.live = std::make_unique<peer::PeerSync>(k + 1, r.state);
        for (size_t i = 0; i < config_.replicas.size(); ++i)
          r.live->set_replica(static_cast<int>(i), config_.replicas[i].name);
      }
    }
    late_ = config_.late_binding;
    late_.enabled = choice.late && !oracle_mode_;
    admission_ = config_.admission_on() || late_.enabled;
    // Always there (unused without admission), so that a Gate& is never bound to nothing.
    gates_.resize(std::max<size_t>(routers_.size(), 1));
    for (Gate& g : gates_) g.per_replica.assign(replicas_.size(), 0);
    decision_.explain = false;  // nobody reads the policies' reasons here
    out_ = SimResult{};
    out_.admission = admission_;
    out_.records.resize(n);
    out_.predicted_output_tokens.assign(n, 0);
    out_.predicted_output_expected.assign(n, 0);
    flights_.assign(n, Flight{});
    held_.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
      out_.records[i].index = static_cast<int64_t>(i);
      out_.records[i].prompt_tokens = w_.requests[i].prompt_tokens;
    }
    return true;
  }

  void run() {
    const size_t n = w_.requests.size();
    remaining_ = static_cast<int64_t>(n);
    if (!oracle_mode_) {
      for (size_t i = 0; i < replicas_.size(); ++i) {
        scrape(static_cast<int>(i), 0.0);
        const double phase = config_.scrape_interval_s * scrape_rng_.uniform();
        queue_.push(phase, EventKind::kScrape, static_cast<int>(i));
      }
    }
    // Arrivals in time order (a workload is normally sorted already; ties keep their order).
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [this](size_t a, size_t b) {
      return w_.requests[a].arrival_s < w_.requests[b].arrival_s;
    });
    size_t next_arrival = 0;
    out_.first_send_s = n > 0 ? w_.requests[order.front()].arrival_s : 0;
    while (true) {
      const double ta = next_arrival < n ? w_.requests[order[next_arrival]].arrival_s : kInf;
      const double te = queue_.next_time();
      if (ta == kInf && te == kInf) break;
      ++out_.events;
      if (ta <= te) {
        arrive(order[next_arrival++], ta);
        continue;
      }
      const Event e = queue_.pop();
      switch (e.kind) {
        case EventKind::kStep:
          step(e.replica, e.time);
          break;
        case EventKind::kReceive:
          receive(e.replica, e.payload, e.time);
          break;
        case EventKind::kDeliver:
          deliver(e.replica, static_cast<int>(e.payload), e.time);
          free_buffers_.push_back(static_cast<int>(e.payload));
          break;
        case EventKind::kPeer:
          if (live_) {
            receive_live(static_cast<size_t>(e.payload), e.time);
            break;
          }
          apply_peer(static_cast<int>(e.payload), e.time);
          free_peer_.push_back(static_cast<int>(e.payload));
          break;
        case EventKind::kKvEvents:
          apply_kv_events(e.replica, static_cast<int>(e.payload), e.time);
          break;
        case EventKind::kQueueWake:
          gates_[static_cast<size_t>(e.payload)].wake_armed = false;
          pump(static_cast<size_t>(e.payload), e.time);
          break;
        case EventKind::kScrape:
          scrape(e.replica, e.time);
          if (live_ && e.replica == 0) tick_live(e.time);
          // Scrapes go on while anything can still happen (a request stuck in an engine with
          // nothing scheduled would otherwise keep the loop alive; it is counted as lost).
          if ((remaining_ > 0 && (next_arrival < n || queue_.work() > 0)) ||
              live_settling(e.time)) {
            const double j = config_.scrape_jitter;
            const double gap =
                config_.scrape_interval_s * (1 + j * (2 * scrape_rng_.uniform() - 1));
            queue_.push(e.time + std::max(gap, 1e-6), EventKind::kScrape, e.replica);
          }
          break;
      }
    }
    out_.lost = remaining_;
    for (const auto& router : routers_)
      out_.ledger_left += static_cast<int64_t>(router->state.ledger().size());
    if (live_) {
      for (const auto& router : routers_) {
        const peer::PeerSyncStats& st = router->live->stats();
        out_.peer_packets += st.packets_out;
        out_.peer_bytes += st.bytes_out;
        out_.peer_lost_frames += st.lost;
        out_.peer_snapshots += st.snapshots_applied;
        const auto foreign = static_cast<int64_t>(router->live->foreign_entries());
        out_.peer_foreign_left += foreign;
        out_.ledger_left -= foreign;  // counted apart: the routers' own entries must be 0
      }
    }
    out_.oracle_steps = oracle_.steps();
    for (size_t i = 0; i < replicas_.size(); ++i) {
      Replica& r = replicas_[i];
      const engine::EngineCounters& c = r.engine.counters();
      r.outcome.preemptions = c.preemptions;
      r.outcome.prefix_queries = c.prefix_cache_queries;
      r.outcome.prefix_hits = c.prefix_cache_hits;
      if (!routers_.empty() && speed_learned_) {
        r.outcome.speed_learned = true;
        const predict::SpeedModel& s = routers_.front()->state.speed(static_cast<int>(i));
        r.outcome.learned_prefill_factor = s.prefill_factor();
        r.outcome.learned_decode_factor = s.decode_factor();
      }
      out_.replicas.push_back(r.outcome);
    }
  }

 private:
  void fail_request(int64_t i, const char* kind, int status) {
    stats::RequestRecord& rec = out_.records[static_cast<size_t>(i)];
    rec.error_kind = kind;
    rec.http_status = status;
    --remaining_;
  }

  void arrive(size_t i, double now) {
    const RequestPlan& plan = plans_[i];
    stats::RequestRecord& rec = out_.records[i];
    rec.start_s = now;
    if (plan.rejected) {
      fail_request(static_cast<int64_t>(i), "http_400", 400);
      return;
    }
    Flight& f = flights_[i];
    f.send_s = now;
    if (!oracle_mode_) {
      f.router = static_cast<int32_t>(next_router_);
      next_router_ = (next_router_ + 1) % routers_.size();
    }
    if (!admission_) {
      if (route(i, now) != router::RouteResult::kDispatched) refuse(i, router::Refusal::kNoReplica);
      return;
    }
    // The live router's order (RouterCore::admit): behind waiting requests, else route.
    const size_t g = gate_of(i);
    if (router::queue_behind(config_.admission, late_, gates_[g].queue.size())) {
      enqueue(i, now);
      pump(g, now);
      return;
    }
    const router::RouteResult result = route(i, now);
    switch (router::dispose(config_.admission, result)) {
      case router::Disposition::kDispatched:
        return;
      case router::Disposition::kQueue:
        return enqueue(i, now);
      case router::Disposition::kRefuse:
        return refuse(i, router::refusal_of(result));
    }
  }

  // One routing attempt for request i (first attempts only: nothing fails here): the in-flight
  // bound, the replicas with room, the pick, the TTFT SLO; dispatches it when admitted.
  router::RouteResult route(size_t i, double now) {
    Gate& g = gates_[gate_of(i)];
    const router::AdmissionConfig& adm = config_.admission;
    if (admission_) {
      if (const router::RouteResult r = router::admit_in_flight(adm, false, g.in_flight);
          r != router::RouteResult::kDispatched)
        return r;
      router::Eligibility e;  // every replica is routable and serves the model
      e.any_known = e.any_serving = true;
      e.eligible = static_cast<int>(replicas_.size());
      for (size_t k = 0; k < replicas_.size(); ++k) e.candidates += has_room(g, k) ? 1 : 0;
      if (const router::RouteResult r = router::admit_eligible(e, false);
          r != router::RouteResult::kDispatched)
        return r;
    }
    const cluster::ClusterView* view = oracle_mode_ ? nullptr : pick_policy(i, now);
    if (oracle_mode_) pick_oracle(i, now);
    const int replica = decision_.replica;
    if (replica < 0 || replica >= static_cast<int>(replicas_.size()))
      return router::RouteResult::kNoReplica;
    if (admission_ && adm.ttft_slo_s > 0 &&
        router::admit_after_pick(adm, false, best_ttft(i, view)) !=
            router::RouteResult::kDispatched)
      return router::RouteResult::kSloShed;
    if (late_.enabled && view && hold(i, *view, now)) return router::RouteResult::kHeld;
    dispatch(i, decision_.replica, now);
    return router::RouteResult::kDispatched;
  }

  // Late binding (RouterCore::hold): held while every replica with room is busy (or would make
  // it wait), for at most max_hold_s; once not held, where it goes (decision_.replica).
  bool hold(size_t i, const cluster::ClusterView& view, double now) {
    Gate& g = gates_[gate_of(i)];
    if (!held_[i] && static_cast<int>(g.queue.size()) >= late_.max_held) return false;
    mask_.assign(replicas_.size(), 0);
    for (size_t k = 0; k < replicas_.size(); ++k) mask_[k] = has_room(g, k) ? 1 : 0;
    const Router& router = *routers_[static_cast<size_t>(flights_[i].router)];
    const router::LateBindingVerdict v = router::late_binding_decide(
        late_, view, mask_, decision_.replica, now - out_.records[i].start_s, held_[i] != 0,
        [&](int k) {
          const cluster::Candidate* c = decision_.candidate(k);
          return c ? c->ttft_s : std::numeric_limits<double>::quiet_NaN();
        },
        [&](const cluster::ReplicaView& r) {
          return router::model_ttft(r, router.prepared.features, view, router.state.speed(r.index));
        });
    if (v.hold && !held_[i]) {
      held_[i] = 1;
      ++out_.late_held;
    }
    if (!v.hold) decision_.replica = v.replica;
    return v.hold;
  }

  bool has_room(const Gate& g, size_t replica) const {
    const int bound = config_.admission.max_in_flight_per_replica;
    return bound == 0 || g.per_replica[replica] < bound;
  }

  void pick_oracle(size_t i, double now) {
    const Gate& g = gates_[0];
    oracle_views_.clear();
    for (size_t k = 0; k < replicas_.size(); ++k) {
      Replica& rep = replicas_[k];
      OracleReplica v;
      v.engine = &rep.engine;
      v.routable = !admission_ || has_room(g, k);
      v.busy = rep.busy;
      v.next_step_s = rep.busy ? rep.next_step_s : now;
      v.in_transit = rep.in_transit;
      oracle_views_.push_back(v);
    }
    const engine::EngineRequest request =
        make_engine_request(w_.requests[i], plans_[i], i, now + config_.network_delay_s);
    oracle_.pick(
        request, now, oracle_views_,
        [this](int64_t id, engine::EngineRequest& e) {
          const size_t k = static_cast<size_t>(id);
          e = make_engine_request(w_.requests[k], plans_[k], k,
                                  flights_[k].dispatch_s + config_.network_delay_s);
        },
        oracle_rng_, decision_);
  }

  // The router's pick; returns the view the policy saw.
  const cluster::ClusterView* pick_policy(size_t i, double now) {
    const workload::WorkloadRequest& r = w_.requests[i];
    const RequestPlan& plan = plans_[i];
    Router& router = *routers_[static_cast<size_t>(flights_[i].router)];
    router.state.prepare(config_.model, r.prompt_tokens, r.block_hashes, plan.max_tokens,
                         plan.ignore_eos, plan.session_hash, router.prepared);
    const cluster::ClusterView* view = &router.state.view(now);
    if (!config_.use_ledger) {
      router.blind.assign(view->replicas.begin(), view->replicas.end());
      for (cluster::ReplicaView& v : router.blind) v.ledger = nullptr;
      router.blind_view = *view;
      router.blind_view.replicas = router.blind;
      view = &router.blind_view;
    }
    if (admission_ && config_.admission.max_in_flight_per_replica > 0) {
      // The eligible view (ReplicaSet::eligible_view): replicas without room are not routable.
      const Gate& g = gates_[gate_of(i)];
      router.eligible.assign(view->replicas.begin(), view->replicas.end());
      for (cluster::ReplicaView& v : router.eligible)
        v.routable = v.routable && has_room(g, static_cast<size_t>(v.index));
      router.eligible_view = *view;
      router.eligible_view.replicas = router.eligible;
      view = &router.eligible_view;
    }
    if (config_.observe_routers) {
      router_states_.clear();
      for (const auto& rt : routers_) router_states_.push_back(&rt->state);
      config_.observe_routers(now, router_states_);
    }
    router.policy->pick_into(router.prepared.features, *view, router.rng, decision_);
    const cluster::RequestFeatures& pf = router.prepared.features;
    out_.predicted_output_tokens[i] =
        pf.predicted_output_point > 0 ? pf.predicted_output_point : pf.output_tokens();
    out_.predicted_output_expected[i] = router.prepared.features.output_tokens();
    return view;
  }

  // The best predicted TTFT among the pick's candidates (RouterCore::slo_shed): policies that
  // do not predict get the completion model's prediction.
  double best_ttft(size_t i, const cluster::ClusterView* view) {
    double best = kInf;
    for (const cluster::Candidate& cand : decision_.candidates) {
      double ttft = cand.ttft_s;
      if (!std::isfinite(ttft) && view) {
        const Router& router = *routers_[static_cast<size_t>(flights_[i].router)];
        const cluster::RequestFeatures& pf = router.prepared.features;
        predict::CompletionQuery q;
        q.prompt_tokens = std::max(1, pf.prompt_tokens);
        q.cached_tokens = pf.cached_tokens_on(cand.replica);
        q.output_tokens = pf.output_tokens();
        ttft = predict::estimate_completion(router.state.replica(cand.replica), q, *view,
                                            router.state.speed(cand.replica))
                   .ttft_s;
      }
      best = std::min(best, ttft);
    }
    return best;
  }

  void dispatch(size_t i, int replica, double now) {
    Flight& f = flights_[i];
    stats::RequestRecord& rec = out_.records[i];
    f.dispatch_s = now;
    if (const cluster::Candidate* c = decision_.candidate(replica)) {
      if (std::isfinite(c->ttft_s)) rec.predicted_ttft_s = c->ttft_s;
      if (std::isfinite(c->e2e_s)) rec.predicted_e2e_s = c->e2e_s;
    }
    f.replica = replica;
    if (admission_) {
      Gate& g = gates_[gate_of(i)];
      ++g.in_flight;
      ++g.per_replica[static_cast<size_t>(replica)];
    }
    if (!oracle_mode_) {
      Router& router = *routers_[static_cast<size_t>(f.router)];
      router.state.on_dispatch(static_cast<cluster::RequestId>(i), replica,
                               router.prepared.features, now);
      if (live_) {
        router.live->dispatched(static_cast<cluster::RequestId>(i), replica,
                                router.prepared.features);
        flush_live(f.router, now);
      } else if (peer_sync_) {
        const int m = new_peer_message(PeerMessage::Kind::kDispatch, f.router, i, replica);
        peer_messages_[static_cast<size_t>(m)].info =
            cluster::ClusterState::dispatch_info(router.prepared.features, replica);
        send_peer(m, now);
      }
    }
    if (config_.network_delay_s > 0) {
      replicas_[static_cast<size_t>(replica)].in_transit.push_back(static_cast<int64_t>(i));
      queue_.push(now + config_.network_delay_s, EventKind::kReceive, replica,
                  static_cast<int64_t>(i));
    } else {
      receive(replica, static_cast<int64_t>(i), now);
    }
  }

  // ---- Admission: the router queue and refusals (router/core/router_queue.hpp) -----------------

  size_t gate_of(size_t i) const {
    return oracle_mode_ ? 0 : static_cast<size_t>(flights_[i].router);
  }

  void refuse(size_t i, router::Refusal refusal) {
    const router::RefusalAnswer a =
        router::refusal_answer(refusal, config_.admission, config_.model);
    if (admission_) ++out_.shed[std::string(a.reason)];
    stats::RequestRecord& rec = out_.records[i];
    rec.error_kind = "http_" + std::to_string(a.status);
    rec.http_status = a.status;
    --remaining_;
  }

  void enqueue(size_t i, double now) {
    const size_t g = gate_of(i);
    const router::AdmissionConfig& adm = config_.admission;
    const double deadline =
        router::queue_deadline(adm, late_, held_[i] != 0, now, config_.scrape_interval_s);
    if (!gates_[g].queue.push(i, deadline, router::queue_capacity(adm, late_)))
      return refuse(i, router::Refusal::kQueueFull);
    if (!held_[i]) ++out_.queued;
    arm(g, now);
  }

  void pump(size_t g, double now) {
    Gate& gate = gates_[g];
    if (gate.queue.empty()) return;
    router::RouterQueue::PumpHandlers h;
    h.gone = [](uint64_t) { return false; };  // simulated clients wait for their answer
    h.route = [this, now](uint64_t id) { return route(static_cast<size_t>(id), now); };
    h.timed_out = [this](uint64_t id) {
      refuse(static_cast<size_t>(id), router::Refusal::kQueueTimeout);
    };
    h.refuse = [this](uint64_t id, router::RouteResult r) {
      refuse(static_cast<size_t>(id), router::refusal_of(r));
    };
    gate.queue.pump(now, h);
    arm(g, now);
  }

  // RouterCore::arm_queue_timer: one timer per router, at the head's deadline or a scrape
  // interval later (predictions move with every scrape).
  void arm(size_t g, double now) {
    Gate& gate = gates_[g];
    if (gate.queue.empty() || gate.wake_armed) return;
    gate.wake_armed = true;
    const double at = gate.queue.next_wake(now, config_.scrape_interval_s) + 1e-4;
    queue_.push(at, EventKind::kQueueWake, 0, static_cast<int64_t>(g));
  }

  // A dispatched request finished (or the engine refused it): its router has room again.
  void release(size_t i) {
    if (!admission_) return;
    const size_t g = gate_of(i);
    Gate& gate = gates_[g];
    --gate.in_flight;
    --gate.per_replica[static_cast<size_t>(flights_[i].replica)];
    gate.released = true;
  }

  void pump_released(double now) {
    if (!admission_) return;
    for (size_t g = 0; g < gates_.size(); ++g) {
      if (!gates_[g].released) continue;
      gates_[g].released = false;
      pump(g, now);
    }
  }

  void receive(int replica, int64_t i, double now) {
    Replica& rep = replicas_[static_cast<size_t>(replica)];
    if (config_.network_delay_s > 0) std::erase(rep.in_transit, i);
    const size_t k = static_cast<size_t>(i);
    if (!rep.engine.add_request(make_engine_request(w_.requests[k], plans_[k], k, now))) {
      // Longer than the whole KV cache: vLLM refuses it.
      if (!oracle_mode_) routers_[static_cast<size_t>(flights_[k].router)]->state.on_abort(k);
      if (live_) {
        routers_[static_cast<size_t>(flights_[k].router)]->live->aborted(k);
        flush_live(flights_[k].router, now);
      } else if (peer_sync_) {
        send_peer(new_peer_message(PeerMessage::Kind::kAbort, flights_[k].router, k, replica), now);
      }
      fail_request(i, "http_400", 400);
      release(k);
      pump_released(now);
      return;
    }
    if (!rep.busy) {
      rep.busy = true;
      rep.next_step_s = now;
      queue_.push(now, EventKind::kStep, replica);
    }
  }

  int acquire_buffer() {
    if (!free_buffers_.empty()) {
      const int b = free_buffers_.back();
      free_buffers_.pop_back();
      return b;
    }
    buffers_.emplace_back();
    return static_cast<int>(buffers_.size() - 1);
  }

  static Metrics metrics_of(const engine::Engine& e) {
    Metrics m;
    m.running = e.num_running();
    m.waiting = e.num_waiting();
    m.kv_usage = e.kv_cache_usage();
    const engine::EngineCounters& c = e.counters();
    m.prefix_queries = c.prefix_cache_queries;
    m.prefix_hits = c.prefix_cache_hits;
    m.preemptions = c.preemptions;
    m.generation_tokens = c.generation_tokens;
    return m;
  }

  void step(int replica, double now) {
    Replica& rep = replicas_[static_cast<size_t>(replica)];
    if (rep.undelivered >= 0) {
      deliver(replica, rep.undelivered, now);
      free_buffers_.push_back(rep.undelivered);
      rep.undelivered = -1;
    }
    if (rep.after_step_time <= now) {
      rep.published = rep.after_step;
      rep.after_step_time = kInf;
    }
    if (!rep.engine.has_unfinished()) {
      rep.busy = false;
      return;
    }
    const int b = acquire_buffer();
    engine::StepResult& result = buffers_[static_cast<size_t>(b)];
    rep.engine.step(now, result);
    if (result.idle()) {  // nothing schedulable (cannot happen with requests that fit)
      free_buffers_.push_back(b);
      rep.busy = false;
      return;
    }
    ++out_.steps;
    ++rep.outcome.steps;
    rep.outcome.busy_s += result.end - now;
    rep.after_step = metrics_of(rep.engine);
    rep.after_step_time = result.end;
    rep.next_step_s = result.end;
    queue_.push(result.end, EventKind::kStep, replica);
    if (rep.kv_recorder && !rep.kv_recorder->ops.empty()) {
      int k;
      if (!free_kv_.empty()) {
        k = free_kv_.back();
        free_kv_.pop_back();
      } else {
        k = static_cast<int>(kv_batches_.size());
        kv_batches_.emplace_back();
      }
      kv_batches_[static_cast<size_t>(k)].swap(rep.kv_recorder->ops);
      rep.kv_recorder->ops.clear();
      queue_.push(result.end + config_.kv_events_delay_s, EventKind::kKvEvents, replica, k);
    }
    if (config_.network_delay_s > 0) {
      queue_.push(result.end + config_.network_delay_s, EventKind::kDeliver, replica, b);
    } else {
      rep.undelivered = b;
    }
  }

  // KV-cache events of one step reach every router.
  void apply_kv_events(int replica, int k, double now) {
    const auto& ops = kv_batches_[static_cast<size_t>(k)];
    for (auto& router : routers_) router->state.kv_events().apply_keyed(replica, ops, now);
    free_kv_.push_back(k);
  }

  void deliver(int replica, int buffer, double now) {
    const engine::StepResult& result = buffers_[static_cast<size_t>(buffer)];
    Replica& rep = replicas_[static_cast<size_t>(replica)];
    // The step's requests are scattered over flights_ and the records: start loading them all.
    for (const engine::TokenEvent& ev : result.tokens) {
      __builtin_prefetch(&flights_[static_cast<size_t>(ev.id)]);
      __builtin_prefetch(&out_.records[static_cast<size_t>(ev.id)].itls_s);
    }
    if (!oracle_mode_ && track_progress_) {
      // Each router learns the step at once (ClusterState::on_step_tokens), then sees finishes.
      for (auto& router : routers_) router->step_ids.clear();
      for (const engine::TokenEvent& ev : result.tokens)
        routers_[static_cast<size_t>(flights_[static_cast<size_t>(ev.id)].router)]
            ->step_ids.push_back(ev.id);
      if (live_) {  // the live protocol shares first tokens only
        for (const engine::TokenEvent& ev : result.tokens)
          if (ev.first)
            routers_[static_cast<size_t>(flights_[static_cast<size_t>(ev.id)].router)]
                ->live->first_token(ev.id, 1);
        for (size_t k = 0; k < routers_.size(); ++k) flush_live(static_cast<int>(k), now);
      } else if (peer_sync_) {  // the others learn each router's tokens (first, when immediate)
        for (size_t k = 0; k < routers_.size(); ++k) {
          if (routers_[k]->step_ids.empty()) continue;
          const int m =
              new_peer_message(PeerMessage::Kind::kTokens, static_cast<int>(k), 0, replica);
          std::vector<cluster::RequestId>& ids = peer_messages_[static_cast<size_t>(m)].ids;
          if (config_.peer_sync_first_token_only) {
            for (const engine::TokenEvent& ev : result.tokens)
              if (ev.first && flights_[static_cast<size_t>(ev.id)].router == static_cast<int>(k))
                ids.push_back(ev.id);
          } else {
            ids.assign(routers_[k]->step_ids.begin(), routers_[k]->step_ids.end());
          }
          if (ids.empty()) {
            free_peer_.push_back(m);
            continue;
          }
          send_peer(m, now);
        }
      }
      for (auto& router : routers_)
        if (!router->step_ids.empty()) router->state.on_step_tokens(router->step_ids, now);
    }
    for (const engine::TokenEvent& ev : result.tokens) {
      const size_t i = static_cast<size_t>(ev.id);
      Flight& f = flights_[i];
      stats::RequestRecord& rec = out_.records[i];
      if (ev.first) {
        rec.ttft_s = now - f.send_s;
        if (late_.enabled) gates_[gate_of(i)].released = true;  // a prefill ended
        rec.itls_s.reserve(static_cast<size_t>(std::max(plans_[i].engine_output_tokens - 1, 0)));
      } else {
        rec.itls_s.push_back(now - f.last_token_s);
      }
      f.last_token_s = now;
      ++f.tokens;
      ++out_.tokens;
      if (ev.finished != engine::FinishReason::kNone) {
        Router* router = oracle_mode_ ? nullptr : routers_[static_cast<size_t>(f.router)].get();
        rec.e2e_s = now - f.send_s;
        rec.output_tokens = f.tokens;
        rec.replica = rep.config->name;
        ++rep.outcome.served;
        if (router) router->state.on_finish(ev.id, now, f.tokens);
        if (live_) {
          router->live->finished(i, f.tokens);
          flush_live(f.router, now);
        } else if (peer_sync_) {
          const int m = new_peer_message(PeerMessage::Kind::kFinish, f.router, i, replica);
          peer_messages_[static_cast<size_t>(m)].output_tokens = f.tokens;
          send_peer(m, now);
        }
        out_.last_done_s = std::max(out_.last_done_s, now);
        --remaining_;
        release(i);
      }
    }
    pump_released(now);
  }

  // A pooled message (its index; the pool may grow, so address it by index).
  int new_peer_message(PeerMessage::Kind kind, int origin, size_t id, int replica) {
    int m;
    if (!free_peer_.empty()) {
      m = free_peer_.back();
      free_peer_.pop_back();
    } else {
      peer_messages_.emplace_back();
      m = static_cast<int>(peer_messages_.size() - 1);
    }
    PeerMessage& p = peer_messages_[static_cast<size_t>(m)];
    p.kind = kind;
    p.origin = origin;
    p.replica = replica;
    p.id = static_cast<cluster::RequestId>(id);
    p.ids.clear();
    return m;
  }

  void send_peer(int m, double now) {
    if (config_.peer_sync_s > 0) {
      queue_.push(now + config_.peer_sync_s, EventKind::kPeer, 0, m);
    } else {
      apply_peer(m, now);
      free_peer_.push_back(m);
    }
  }

  // Live peer sync: router k's queued frames as one packet to each other router, peer_sync_s
  // later, each delivery lost with probability peer_sync_loss.
  void flush_live(int k, double now) {
    peer::PeerSync& sync = *routers_[static_cast<size_t>(k)]->live;
    if (!sync.has_output()) return;
    const size_t p = live_packets_.size();
    live_packets_.push_back(sync.take_packet());
    for (size_t j = 0; j < routers_.size(); ++j) {
      if (static_cast<int>(j) == k) continue;
      if (config_.peer_sync_loss > 0 && loss_rng_.uniform() < config_.peer_sync_loss) {
        ++out_.peer_dropped;
        continue;
      }
      live_deliveries_.push_back({j, p});
      queue_.push(now + config_.peer_sync_s, EventKind::kPeer, 0,
                  static_cast<int64_t>(live_deliveries_.size() - 1));
    }
  }

  void receive_live(size_t d, double now) {
    const auto [to, p] = live_deliveries_[d];
    routers_[to]->live->receive(live_packets_[p], now);
    flush_live(static_cast<int>(to), now);  // its answers (a snapshot request, a snapshot)
  }

  // Live peer sync after the last completion: heartbeats go on (up to 5 s) while a router
  // still holds a peer's entry whose finish was lost, so that the snapshots repair it.
  bool live_settling(double now) const {
    if (!live_ || remaining_ > 0 || now > out_.last_done_s + 5) return false;
    for (const auto& router : routers_)
      if (router->live->foreign_entries() > 0) return true;
    return false;
  }

  void tick_live(double now) {
    if (now - last_tick_ < 0.25) return;
    last_tick_ = now;
    for (size_t k = 0; k < routers_.size(); ++k) {
      routers_[k]->live->tick(now);
      flush_live(static_cast<int>(k), now);
    }
  }

  void apply_peer(int m, double now) {
    const PeerMessage& p = peer_messages_[static_cast<size_t>(m)];
    for (size_t k = 0; k < routers_.size(); ++k) {
      if (static_cast<int>(k) == p.origin) continue;
      cluster::ClusterState& state = routers_[k]->state;
      switch (p.kind) {
        case PeerMessage::Kind::kDispatch:
          state.on_foreign_dispatch(p.id, p.replica, p.info, config_.model, now);
          break;
        case PeerMessage::Kind::kTokens:
          state.on_foreign_tokens(p.ids, now);
          break;
        case PeerMessage::Kind::kFinish:
          state.on_foreign_finish(p.id, p.output_tokens, now);
          break;
        case PeerMessage::Kind::kAbort:
          state.on_foreign_abort(p.id);
          break;
      }
    }
  }

  void scrape(int replica, double now) {
    Replica& rep = replicas_[static_cast<size_t>(replica)];
    const Metrics& m = rep.after_step_time <= now ? rep.after_step : rep.published;
    cluster::ScrapeSnapshot s;
    s.valid = true;
    s.time_s = now;
    s.running = m.running;
    s.waiting = m.waiting;
    s.kv_usage = m.kv_usage;
    s.num_gpu_blocks = rep.config->engine.num_gpu_blocks;
    s.block_size = rep.config->engine.block_size;
    const uint64_t dq = m.prefix_queries - rep.scraped_queries;
    const uint64_t dh = m.prefix_hits - rep.scraped_hits;
    s.prefix_hit_rate = dq > 0 ? static_cast<double>(dh) / static_cast<double>(dq) : 0;
    s.preemptions = static_cast<double>(m.preemptions);
    rep.scraped_queries = m.prefix_queries;
    rep.scraped_hits = m.prefix_hits;
    if (rep.scraped_time >= 0 && now > rep.scraped_time)
      s.generation_tps = static_cast<double>(m.generation_tokens - rep.scraped_generation) /
                         (now - rep.scraped_time);
    rep.scraped_generation = m.generation_tokens;
    rep.scraped_time = now;
    for (auto& router : routers_) router->state.update_scrape(replica, s);
  }

  const SimConfig& config_;
  const workload::Workload& w_;
  const std::vector<RequestPlan>& plans_;
  const bool oracle_mode_;
  SimResult& out_;
  std::vector<Replica> replicas_;
  std::vector<std::unique_ptr<Router>> routers_;
  size_t next_router_ = 0;
  bool speed_learned_ = false;
  bool admission_ = false;          // SimConfig::admission_on() or late binding
  router::LateBindingConfig late_;  // enabled: this run binds late (PolicyChoice::late)
  std::vector<char> held_;          // by request: late binding held it
  std::vector<char> mask_;          // late binding: the replicas with room
  std::vector<Gate> gates_;         // admission: one per router (the oracle: one)
  bool track_progress_ = true;      // false: the routers see no tokens, only finishes
  bool peer_sync_ = false;          // routers share their ledger events (SimConfig::peer_sync_s)
  std::vector<PeerMessage> peer_messages_;
  std::vector<int> free_peer_;
  std::vector<std::vector<prefix::KvEventIndex::KeyedOp>> kv_batches_;  // KV-cache events
  std::vector<int> free_kv_;
  bool live_ = false;                                       // SimConfig::peer_sync_live
  std::vector<std::string> live_packets_;                   // every packet sent
  std::vector<std::pair<size_t, size_t>> live_deliveries_;  // (receiver, packet)
  double last_tick_ = -1e300;
  policy::Rng loss_rng_{0x6c6f7373ull};  // reseeded from SimConfig::seed in setup()
  std::vector<const cluster::ClusterState*> router_states_;  // observe_routers' argument
  std::vector<Flight> flights_;
  EventQueue queue_;
  std::vector<engine::StepResult> buffers_;
  std::vector<int> free_buffers_;
  cluster::Decision decision_;
  Oracle oracle_;
  policy::Rng oracle_rng_;
  std::vector<OracleReplica> oracle_views_;
  policy::Rng scrape_rng_;
  int64_t remaining_ = 0;
};

}  // namespace

bool run_simulation(const SimConfig& config, const workload::Workload& w,
                    const std::vector<RequestPlan>& plans, const PolicyChoice& policy,
                    SimResult& out, std::string& error) {
  if (config.replicas.empty()) {
    error = "no replicas";
    return false;
  }
  Simulation sim(config, w, plans, policy, out);
  if (!sim.setup(policy, error)) return false;
  sim.run();
  return true;
}

}  // namespace eta::cluster_sim
