// One cluster run in virtual time: N simulated engines (src/engine, the same as `eta vllm-sim`),
// one or more routers (cluster::ClusterState + a policy from src/policy, the same objects as
// `eta route`) or the oracle, and an open-loop client replaying a workload. One process, one
// thread, no sockets, no clock: the result depends only on the inputs and the seed.
//
// The event model (a binary heap ordered by (time, insertion order); arrivals are merged from the
// workload's sorted list without entering the heap):
//   arrival   the client sends request i at its arrival time; the router (request i goes to
//             router i mod K) prepares its features, picks a replica, records the dispatch in
//             its ledger, and the request reaches the engine network_delay later (kReceive).
//   kReceive  the engine queues the request; an idle engine is kicked (kStep at the same time,
//             so that simultaneous arrivals share the step, as vLLM's engine-core loop does).
//   kStep     the engine runs one step from now to its end (engine::Engine::step); the next
//             kStep is at the step's end. An engine with no work gets no events.
//   kDeliver  a step's tokens reach the router and the client network_delay after the step
//             ends: per token the client records TTFT / ITL / E2E; each router's ClusterState
//             takes its tokens of the step at once (on_step_tokens: the ledger moves as
//             `eta route` moves it per relayed chunk, the speed model learns once per step),
//             then the finishes (on_finish).
//   kPeer     peer sync (SimConfig::peer_sync_s >= 0): a router's dispatch, its tokens of one
//             step (or only its first tokens), a finish or an abort reaches every other router
//             peer_sync_s after it happened there (at once, without an event, when 0); each enters
//             it in its own ledger as foreign work (ClusterState::on_foreign_*).
//   kKvEvents KV-cache events (SimConfig::kv_events_delay_s >= 0): one step's block stores and
//             evictions reach every router kv_events_delay_s after the step ends.
//   kScrape   every scrape interval (x U(1 - jitter, 1 + jitter), random phase per replica) the
//             routers get the replica's /metrics as of its last finished step (running,
//             waiting, KV usage, prefix-cache counters, cache_config_info, preemptions): stale in
//             between, like a real scraper. A scrape is taken and received at its tick (its round
//             trip is not modelled). The first scrape is at t = 0.
//   kQueueWake admission (SimConfig::admission): a router's queue timer (RouterQueue::next_wake:
//             the head's deadline, or a scrape interval later), when its queue is pumped; it is
//             pumped too whenever one of its requests finishes.
//
// Admission (issue 2.2) is the live router's, through the same pure functions
// (router/core/admission.hpp) and one router::RouterQueue per simulated router: a new request
// queues behind waiting ones (queue_first); else max_in_flight (the router's own dispatched and
// unfinished requests), the replicas with room (max_in_flight_per_replica, the router's own per
// replica), the policy's pick on those, the TTFT SLO (the best predicted TTFT among the pick's
// candidates, the completion model's for candidates without one), then dispatch; otherwise
// dispose(): queue, or refuse with refusal_answer's status and reason (SimResult::shed).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cluster_sim/replicas.hpp"
#include "engine/engine.hpp"
#include "policy/registry.hpp"
#include "router/core/admission.hpp"
#include "stats/report.hpp"
#include "workload/request_body.hpp"
#include "workload/workload.hpp"

namespace eta::cluster {
class ClusterState;
}

namespace eta::cluster_sim {

inline constexpr std::string_view kOraclePolicy = "oracle";

struct SimConfig {
  std::vector<ReplicaConfig> replicas;
  workload::LengthsMode lengths = workload::LengthsMode::kExact;
  double scrape_interval_s = 0.05;  // llm-d/GIE's default refresh interval
  double scrape_jitter = 0.1;       // each interval is scrape_interval_s x U(1 - j, 1 + j)
  double network_delay_s = 0.001;   // one way, router <-> replica (the client sits at the router)
  double stale_after_s = 2.0;       // ClusterView::stale_after_s
  int routers = 1;                  // independent routers; arrivals are split round-robin
  bool use_ledger = true;           // false: policies see no ledger (scrapes only)
  bool router_knows_gpus = false;   // false: every replica's speed model starts from h100
  // false: a router skips what its policy never reads (policy::Policy::reads: the prefix index,
  // the speed models' learning, the ledger's per-token progress: such a router sees only
  // dispatches and finishes); the policy's decisions are the same either way (asserted by
  // tests/unit/cluster_sim_test.cpp), only the learned factors are then not reported.
  bool full_router_state = false;
  // >= 0: routers share their ledgers (what they dispatched, with its predicted sizes, the
  // tokens they relayed, finishes), each learning the others' events this many seconds after
  // they happen; < 0: off (routers see each other only through scrapes).
  double peer_sync_s = -1;
  // With peer sync: true shares only each request's first token (it leaves the prefill queue;
  // the others' ledgers then hold it at one generated token until its finish) instead of every
  // token.
  bool peer_sync_first_token_only = false;
  // KV-cache events (issue 15): >= 0: every replica publishes its block pool's stores and
  // evictions per step, and every router applies a step's events this many seconds after the
  // step ends (prefix::KvEventIndex, matched instead of the router's own index); < 0: off.
  double kv_events_delay_s = -1;
  // With peer sync: true runs the live protocol instead (src/peer/peer_sync.*, what `eta route
  // --peer-sync` sends over NATS): encoded packets of dispatches (with prefix blocks), first
  // tokens, finishes, heartbeats every 0.5 s and snapshots on loss, each packet reaching each
  // other router peer_sync_s later unless lost (peer_sync_loss: the probability per packet and
  // receiver, seeded).
  bool peer_sync_live = false;
  double peer_sync_loss = 0;
  // Tests: called at each routed arrival, before the pick, with every router's state.
  std::function<void(double now, std::span<const cluster::ClusterState* const> routers)>
      observe_routers;
  // The live router's admission (eta route's `admission:` block), applied per router; all zero
  // (the default): every request is dispatched at once, as before admission existed.
  router::AdmissionConfig admission;
  // Late binding's parameters for the runs whose PolicyChoice::late is set (`enabled` is
  // ignored here: the choice decides).
  router::LateBindingConfig late_binding;
  bool admission_on() const {
    return admission.max_in_flight > 0 || admission.max_in_flight_per_replica > 0 ||
           admission.ttft_slo_s > 0 || admission.queue_size > 0;
  }
  std::string model = "sim-model";
  uint64_t seed = 0;
};

// How one workload request looks to the router and to the engine; decided once per workload.
struct RequestPlan {
  bool rejected =
      false;           // vLLM answers 400: the prompt (or prompt + max_tokens) exceeds the context
  int max_tokens = 1;  // what the client sends
  bool ignore_eos = false;
  int engine_output_tokens = 1;  // what the engine generates: the true length, capped
  engine::FinishReason finish_reason = engine::FinishReason::kLength;
  std::optional<uint64_t> session_hash;  // the session id, sent as the OpenAI `user`
};

// exact: max_tokens = true length, ignore_eos (vllm bench serve); hidden: max_tokens as
// workload::max_tokens_for, the engine stops at the true length. Both as the simulator decides
// (engine::decide_output_length), with vLLM's context-length checks.
std::vector<RequestPlan> plan_requests(const workload::Workload& w, workload::LengthsMode mode,
                                       int max_model_len);

struct PolicyChoice {
  std::string name;  // a registered policy or "oracle"
  policy::PolicyParams params;
  // Late binding (router/core/late_binding.hpp) with SimConfig::late_binding's parameters; the
  // run is labelled "NAME+late".
  bool late = false;
  bool oracle() const { return name == kOraclePolicy; }
  std::string label() const { return late ? name + "+late" : name; }
};

struct ReplicaOutcome {
  std::string name;
  std::string gpu;
  int64_t served = 0;  // requests completed there
  uint64_t preemptions = 0;
  uint64_t prefix_queries = 0;  // tokens looked up in its prefix cache
  uint64_t prefix_hits = 0;
  uint64_t steps = 0;
  double busy_s = 0;  // virtual time spent in steps
  // Router 0's speed model at the end (relative to the profile it started from), if it learned
  // (speed_learned: the policy reads it, or SimConfig::full_router_state).
  bool speed_learned = false;
  double learned_prefill_factor = 1;
  double learned_decode_factor = 1;
};

struct SimResult {
  std::vector<stats::RequestRecord> records;  // one per workload request, in workload order
  // The router's predicted output length at dispatch (0: not routed, or the oracle): the
  // distribution's point guess (least median relative error) and its capped mean (what the ETA
  // works with).
  std::vector<int> predicted_output_tokens;
  std::vector<int> predicted_output_expected;
  std::vector<ReplicaOutcome> replicas;
  double first_send_s = 0;
  double last_done_s = 0;  // last completion (client side)
  uint64_t events = 0;     // heap events + arrivals
  uint64_t steps = 0;
  uint64_t tokens = 0;
  uint64_t oracle_steps = 0;  // steps the oracle simulated on engine clones
  int64_t lost = 0;           // requests that never completed (must be 0)
  int64_t ledger_left = 0;    // entries left in the routers' ledgers at the end (must be 0)
  // Live peer sync (SimConfig::peer_sync_live): what the routers sent and what was lost.
  uint64_t peer_packets = 0;      // packets published (each goes to every other router)
  uint64_t peer_bytes = 0;        // their bytes
  uint64_t peer_dropped = 0;      // packet deliveries lost (per receiver)
  uint64_t peer_lost_frames = 0;  // frames the receivers counted as lost (gaps)
  uint64_t peer_snapshots = 0;    // snapshots applied after a loss
  int64_t peer_foreign_left = 0;  // peers' entries still held at the end (finishes lost)
  // Admission (SimConfig::admission_on()): the requests refused, per refusal_answer's reason
  // (shed_capacity, shed_slo, queue_full, queue_timeout, no_replica), and those that waited in
  // a router queue (dispatched later or timed out).
  bool admission = false;
  std::map<std::string, int64_t> shed;
  int64_t queued = 0;
  int64_t late_held = 0;  // late binding: requests it held at the router (at least once)
};

// Runs the workload (arrival times as given) through the cluster with one policy. `plans` from
// plan_requests(w, config.lengths, ...). False with a one-line error for a bad policy.
bool run_simulation(const SimConfig& config, const workload::Workload& w,
                    const std::vector<RequestPlan>& plans, const PolicyChoice& policy,
                    SimResult& out, std::string& error);

// The engine request for workload request `r`.
engine::EngineRequest make_engine_request(const workload::WorkloadRequest& r,
                                          const RequestPlan& plan, engine::RequestId id,
                                          double arrival_time);

}  // namespace eta::cluster_sim
