// eta cluster-sim: replica specs, determinism, conservation, the oracle, capacity, reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "cluster/state.hpp"
#include "cluster_sim/capacity.hpp"
#include "cluster_sim/replicas.hpp"
#include "cluster_sim/simulator.hpp"
#include "cluster_sim/study.hpp"
#include "engine/engine.hpp"
#include "policy/registry.hpp"
#include "stats/report.hpp"
#include "workload/arrivals.hpp"
#include "workload/catalog.hpp"
#include "workload/synthetic.hpp"

namespace eta::cluster_sim {
namespace {

SimConfig make_config(const std::string& replicas) {
  SimConfig c;
  std::string error;
  EXPECT_TRUE(
      parse_replicas(replicas, engine::ProfileSet::builtin(), "llama-2-7b", c.replicas, error))
      << error;
  return c;
}

workload::Workload small_workload(int64_t n, double rate, uint64_t seed = 1) {
  workload::SyntheticParams p;
  p.n = n;
  p.rate = rate;
  p.input = workload::LengthDist::lognormal(400, 0.6, 16, 2000);
  p.output = workload::LengthDist::lognormal(120, 0.8, 1, 1000);
  p.seed = seed;
  return workload::generate_synthetic(p);
}

SimResult run(const SimConfig& c, const workload::Workload& w, const std::string& policy,
              const policy::PolicyParams& params = {}) {
  SimResult out;
  std::string error;
  const std::vector<RequestPlan> plans =
      plan_requests(w, c.lengths, c.replicas.front().engine.max_model_len);
  EXPECT_TRUE(run_simulation(c, w, plans, PolicyChoice{policy, params}, out, error)) << error;
  return out;
}

double mean_e2e(const SimResult& r) {
  double sum = 0;
  int n = 0;
  for (const stats::RequestRecord& rec : r.records) {
    if (!rec.ok()) continue;
    sum += rec.e2e_s;
    ++n;
  }
  return n ? sum / n : 0;
}

// ---- --replicas ----

TEST(ClusterSimReplicas, ParsesCountsGpusAndKeys) {
  std::vector<ReplicaConfig> r;
  std::string error;
  const engine::ProfileSet& p = engine::ProfileSet::builtin();
  ASSERT_TRUE(parse_replicas("4xh100", p, "llama-2-7b", r, error)) << error;
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].name, "r0-h100");
  EXPECT_EQ(r[3].name, "r3-h100");
  EXPECT_EQ(r[0].engine.gpu.name, "h100");

  ASSERT_TRUE(parse_replicas("2xh100, 2xa100", p, "llama-2-7b", r, error)) << error;
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[2].gpu, "a100");
  EXPECT_EQ(r[2].engine.max_num_seqs, 256);  // the a100 profile's vLLM default
  EXPECT_EQ(r[0].engine.max_num_seqs, 1024);

  ASSERT_TRUE(parse_replicas("h100:speed=0.6,a100", p, "llama-2-7b", r, error)) << error;
  ASSERT_EQ(r.size(), 2u);
  EXPECT_DOUBLE_EQ(r[0].engine.speed, 0.6);
  EXPECT_DOUBLE_EQ(r[1].engine.speed, 1.0);

  ASSERT_TRUE(
      parse_replicas("2xa100:num_gpu_blocks=3000:max_num_seqs=64", p, "llama-2-7b", r, error))
      << error;
  EXPECT_EQ(r[1].engine.num_gpu_blocks, 3000);
  EXPECT_EQ(r[1].engine.max_num_seqs, 64);

  ASSERT_TRUE(parse_replicas("11xh100", p, "llama-2-7b", r, error)) << error;
  EXPECT_EQ(r[0].name, "r00-h100");  // zero-padded: names sort in spec order
  EXPECT_EQ(r[10].name, "r10-h100");
}

TEST(ClusterSimReplicas, RejectsBadSpecs) {
  const engine::ProfileSet& p = engine::ProfileSet::builtin();
  for (const char* bad : {"", "0xh100", "2x", "tpu", "h100,,a100", "h100:speed=0",
                          "h100:speed=fast", "h100:colour=red", "h100:speed",
                          "h100:max_num_seqs=-3", "5000xh100", "h100:num_gpu_blocks=10"}) {
    std::vector<ReplicaConfig> r;
    std::string error;
    EXPECT_FALSE(parse_replicas(bad, p, "llama-2-7b", r, error)) << "accepted '" << bad << "'";
    EXPECT_FALSE(error.empty()) << bad;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
  std::vector<ReplicaConfig> r;
  std::string error;
  EXPECT_FALSE(parse_replicas("h100", p, "no-such-model", r, error));
}

// ---- the simulation ----

TEST(ClusterSim, SameSeedGivesIdenticalJson) {
  SimConfig c = make_config("2xh100,a100");
  c.lengths = workload::LengthsMode::kHidden;
  c.network_delay_s = 0.002;
  c.seed = 7;
  const workload::Workload w = small_workload(200, 20);
  for (const char* policy : {"eta", "llm-d", "power-of-two", "oracle"}) {
    const SimResult a = run(c, w, policy);
    const SimResult b = run(c, w, policy);
    stats::Slo slo;
    std::string error;
    ASSERT_TRUE(stats::parse_slo("ttft:500,tpot:50", slo, error));
    const std::string ja =
        boost::json::serialize(run_to_json(summarize_run(policy, 0.5, 20, 40, a, slo)));
    const std::string jb =
        boost::json::serialize(run_to_json(summarize_run(policy, 0.5, 20, 40, b, slo)));
    EXPECT_EQ(ja, jb) << policy;
    EXPECT_NE(ja.find("\"policy\":\"" + std::string(policy) + "\""), std::string::npos);
  }
}

// A router skips what its policy never reads (Policy::reads: the prefix index, speed learning,
// the ledger's per-token progress). That must not change a single decision: same JSON as with
// everything kept (SimConfig::full_router_state), apart from the learned speed factors, which
// only the full state reports. Shared prefixes, so the prefix index has something to hold.
TEST(ClusterSim, SkippingUnreadRouterStateChangesNothing) {
  workload::WorkloadContext context;
  workload::Workload w;
  std::string error;
  ASSERT_TRUE(make_workload("shared-prefix:k=4,L=512,f=0.8,n=300,rate=30", context, w, error))
      << error;
  stats::Slo slo;
  ASSERT_TRUE(stats::parse_slo("ttft:500,tpot:50", slo, error));
  int skipped = 0;
  for (const policy::PolicyInfo& info : policy::policy_list()) {
    const std::string policy(info.name);
    const std::unique_ptr<policy::Policy> p = policy::make_policy(policy, {}, error);
    ASSERT_TRUE(p) << error;
    const policy::Policy::Reads reads = p->reads();
    if (reads.prefix && reads.speed && reads.progress) continue;
    ++skipped;
    for (int routers : {1, 2}) {
      SimConfig c = make_config("2xh100,a100");
      c.lengths = workload::LengthsMode::kHidden;
      c.routers = routers;
      c.seed = 3;
      const SimResult lean = run(c, w, policy);
      c.full_router_state = true;
      const SimResult full = run(c, w, policy);
      boost::json::object jl = run_to_json(summarize_run(policy, 0.5, 30, 60, lean, slo));
      boost::json::object jf = run_to_json(summarize_run(policy, 0.5, 30, 60, full, slo));
      SCOPED_TRACE(policy + " routers " + std::to_string(routers));
      EXPECT_TRUE(jl["learned_speed"].as_object().empty() || reads.speed);
      EXPECT_EQ(jf["learned_speed"].as_object().size(), 3u);
      jl.erase("learned_speed");
      jf.erase("learned_speed");
      EXPECT_EQ(boost::json::serialize(jl), boost::json::serialize(jf));
      ASSERT_EQ(lean.records.size(), full.records.size());
      for (size_t i = 0; i < lean.records.size(); ++i) {
        EXPECT_EQ(lean.records[i].replica, full.records[i].replica) << i;
        EXPECT_EQ(lean.records[i].e2e_s, full.records[i].e2e_s) << i;
        EXPECT_EQ(lean.predicted_output_tokens[i], full.predicted_output_tokens[i]) << i;
      }
      EXPECT_EQ(lean.lost, 0);
    }
  }
  // round-robin, random, least-request, power-of-two, session, llm-d, cache-aware
  EXPECT_GE(skipped, 7);
}

TEST(ClusterSim, EveryRequestFinishesExactlyOnce) {
  const workload::Workload w = small_workload(300, 40);
  const int64_t workload_output = std::accumulate(
      w.requests.begin(), w.requests.end(), int64_t{0},
      [](int64_t s, const workload::WorkloadRequest& r) { return s + r.output_tokens; });
  struct Case {
    const char* policy;
    int routers;
    bool ledger;
    double delay;
  };
  for (const Case& k : {Case{"round-robin", 1, true, 0.0}, Case{"eta", 1, true, 0.001},
                        Case{"eta", 3, true, 0.001}, Case{"least-request", 2, false, 0.0005},
                        Case{"llm-d", 1, true, 0.001}, Case{"oracle", 1, true, 0.001}}) {
    SimConfig c = make_config("h100,a100:speed=0.7");
    c.lengths = workload::LengthsMode::kExact;
    c.routers = k.routers;
    c.use_ledger = k.ledger;
    c.network_delay_s = k.delay;
    const SimResult r = run(c, w, k.policy);
    SCOPED_TRACE(std::string(k.policy) + " routers " + std::to_string(k.routers));
    EXPECT_EQ(r.lost, 0);
    ASSERT_EQ(r.records.size(), w.requests.size());
    int64_t output = 0, served = 0;
    for (size_t i = 0; i < r.records.size(); ++i) {
      const stats::RequestRecord& rec = r.records[i];
      ASSERT_TRUE(rec.ok()) << i << " " << rec.error_kind;
      EXPECT_EQ(rec.output_tokens, w.requests[i].output_tokens) << i;
      EXPECT_EQ(rec.itls_s.size(), static_cast<size_t>(rec.output_tokens - 1)) << i;
      EXPECT_GE(rec.ttft_s, 2 * k.delay);
      EXPECT_GE(rec.e2e_s, rec.ttft_s);
      output += rec.output_tokens;
    }
    for (const ReplicaOutcome& o : r.replicas) served += o.served;
    EXPECT_EQ(output, workload_output);
    EXPECT_EQ(served, static_cast<int64_t>(w.requests.size()));
    EXPECT_EQ(r.tokens, static_cast<uint64_t>(workload_output));
  }
}

// --peer-sync: routers that learn each other's dispatches, tokens and finishes at once hold the
// same ledger (every in-flight request, sized alike), a single router's view of the cluster;
// sharing only first tokens, they agree on what is queued and what decodes, not on decode
// progress; with a delay they disagree at times; either way every foreign entry leaves at its
// finish.
TEST(ClusterSim, PeerSyncGivesEveryRouterTheWholeLedger) {
  const workload::Workload w = small_workload(300, 40);
  struct Case {
    const char* policy;  // eta reads per-token progress, least-request does not
    double sync;
    bool first_only;
  };
  for (const Case& k : {Case{"eta", -1, false}, Case{"eta", 0, false}, Case{"eta", 0.05, false},
                        Case{"eta", 0, true}, Case{"least-request", -1, false},
                        Case{"least-request", 0, false}, Case{"least-request", 0.05, false}}) {
    {
      const double sync = k.sync;
      SCOPED_TRACE(std::string(k.policy) + " peer sync " + std::to_string(sync) +
                   (k.first_only ? " first tokens" : ""));
      SimConfig c = make_config("2xh100,a100");
      c.lengths = workload::LengthsMode::kHidden;
      c.routers = 3;
      c.peer_sync_s = sync;
      c.peer_sync_first_token_only = k.first_only;
      int decisions = 0, disagreements = 0, progress_disagreements = 0, foreign_held = 0;
      c.observe_routers = [&](double, std::span<const cluster::ClusterState* const> routers) {
        ASSERT_EQ(routers.size(), 3u);
        ++decisions;
        const cluster::ClusterState& a = *routers[0];
        bool same = true, same_progress = true;
        for (size_t k = 1; k < routers.size(); ++k) {
          const cluster::ClusterState& b = *routers[k];
          same = same && a.ledger().size() == b.ledger().size();
          for (int r = 0; r < a.num_replicas(); ++r) {
            const cluster::LedgerSummary& x = a.ledger().summary(r);
            const cluster::LedgerSummary& y = b.ledger().summary(r);
            same = same && x.in_flight == y.in_flight && x.prefilling == y.prefilling &&
                   x.decoding == y.decoding &&
                   x.pending_prefill_tokens == y.pending_prefill_tokens &&
                   x.prefill_prompt_tokens == y.prefill_prompt_tokens;
            same_progress =
                same_progress && x.context_tokens == y.context_tokens &&
                x.kv_tokens == y.kv_tokens &&
                x.predicted_remaining_decode_tokens == y.predicted_remaining_decode_tokens;
          }
          same = same &&
                 a.ledger().averages().prompt_tokens == b.ledger().averages().prompt_tokens &&
                 a.ledger().averages().output_tokens == b.ledger().averages().output_tokens;
        }
        if (!same) ++disagreements;
        if (!same_progress) ++progress_disagreements;
        // Requests are routed round-robin (request j by router j mod 3): does router 0 hold a
        // request another router dispatched?
        for (size_t j = 0; j < w.requests.size(); ++j)
          if (j % 3 != 0 && a.ledger().find(j) != nullptr) {
            ++foreign_held;
            break;
          }
      };
      const SimResult r = run(c, w, k.policy);
      EXPECT_EQ(r.lost, 0);
      const std::vector<RequestPlan> plans =
          plan_requests(w, c.lengths, c.replicas.front().engine.max_model_len);
      EXPECT_EQ(decisions, std::count_if(plans.begin(), plans.end(),
                                         [](const RequestPlan& p) { return !p.rejected; }));
      if (sync == 0 && k.first_only) {
        EXPECT_EQ(disagreements, 0);
        EXPECT_GT(progress_disagreements, 100);
        EXPECT_GT(foreign_held, 200);
      } else if (sync == 0) {
        EXPECT_EQ(disagreements, 0);
        EXPECT_EQ(progress_disagreements, 0);
        EXPECT_GT(foreign_held, 200);
      } else if (sync > 0) {
        EXPECT_GT(disagreements, 0);
        EXPECT_GT(foreign_held, 100);
      } else {
        EXPECT_GT(disagreements, 100);  // off: each router holds only its own requests
        EXPECT_EQ(foreign_held, 0);
      }
      EXPECT_EQ(r.ledger_left, 0);  // every entry, own or foreign, left at its finish
    }
  }
}

TEST(ClusterSim, TtftOfALoneRequestIsItsPrefillPlusTheNetwork) {
  SimConfig c = make_config("h100");
  c.network_delay_s = 0.005;
  workload::Workload w = small_workload(1, 1);
  w.requests[0].arrival_s = 0.25;
  const SimResult r = run(c, w, "round-robin");
  ASSERT_TRUE(r.records[0].ok());
  engine::Engine e(c.replicas[0].engine);
  const std::vector<RequestPlan> plans = plan_requests(w, c.lengths, 4096);
  ASSERT_TRUE(e.add_request(make_engine_request(w.requests[0], plans[0], 0, 0)));
  const engine::StepResult first = e.step(0);
  EXPECT_NEAR(r.records[0].ttft_s, first.end + 2 * c.network_delay_s, 1e-9);
  EXPECT_NEAR(r.records[0].start_s, 0.25, 1e-12);
}

TEST(ClusterSim, OracleBeatsRoundRobinOnAHeterogeneousCluster) {
  SimConfig c = make_config("h100,a100:speed=0.5");
  c.lengths = workload::LengthsMode::kExact;
  workload::Workload w = small_workload(150, 1);
  const std::vector<RequestPlan> plans = plan_requests(w, c.lengths, 4096);
  Capacity cap;
  std::string error;
  ASSERT_TRUE(measure_capacity(c, w, plans, cap, error)) << error;
  workload::ArrivalSpec spec;
  spec.kind = workload::ArrivalKind::kPoisson;
  spec.rate = 0.7 * cap.total_requests_per_s;
  spec.seed = 3;
  ASSERT_TRUE(workload::apply_arrivals(w, spec, error)) << error;
  const double rr = mean_e2e(run(c, w, "round-robin"));
  const double oracle = mean_e2e(run(c, w, "oracle"));
  EXPECT_GT(rr, 0);
  EXPECT_LE(oracle, rr);
  EXPECT_LT(oracle, 0.9 * rr);  // and by a margin: half the cluster is 2.5x slower
}

TEST(ClusterSim, CapacityAddsUpOverReplicas) {
  const workload::Workload w = small_workload(600, 10);
  std::string error;
  SimConfig one = make_config("h100");
  SimConfig two = make_config("2xh100");
  SimConfig mixed = make_config("h100,a100");
  const std::vector<RequestPlan> plans = plan_requests(w, one.lengths, 4096);
  Capacity c1, c2, cm;
  ASSERT_TRUE(measure_capacity(one, w, plans, c1, error)) << error;
  ASSERT_TRUE(measure_capacity(two, w, plans, c2, error)) << error;
  ASSERT_TRUE(measure_capacity(mixed, w, plans, cm, error)) << error;
  EXPECT_GT(c1.total_requests_per_s, 1);
  EXPECT_NEAR(c2.total_requests_per_s, 2 * c1.total_requests_per_s,
              0.05 * 2 * c1.total_requests_per_s);
  ASSERT_EQ(cm.replicas.size(), 2u);
  EXPECT_LT(cm.replicas[1].requests_per_s, cm.replicas[0].requests_per_s);  // a100 is slower
  EXPECT_GT(cm.replicas[0].mean_running, 1);
}

// The honest load axis: a probe below the sustained capacity completes what it is offered, one
// well above it does not; the bisection lands between them, and goodput capacity is no higher.
TEST(ClusterSim, SustainedCapacityIsWhereCompletionsKeepUpWithArrivals) {
  const workload::Workload base = small_workload(800, 10);
  SimConfig c = make_config("h100,a100");
  c.lengths = workload::LengthsMode::kHidden;
  const std::vector<RequestPlan> plans = plan_requests(base, c.lengths, 4096);
  std::string error;
  Capacity isolated;
  ASSERT_TRUE(measure_capacity(c, base, plans, isolated, error)) << error;
  stats::Slo slo;
  ASSERT_TRUE(stats::parse_slo("ttft:1000,tpot:100", slo, error));
  workload::ArrivalSpec spec;
  spec.kind = workload::ArrivalKind::kPoisson;
  spec.seed = 5;
  PolicyCapacity pc;
  ASSERT_TRUE(measure_policy_capacity(c, base, plans, PolicyChoice{"least-request", {}}, spec,
                                      isolated.total_requests_per_s, slo, pc, error))
      << error;
  EXPECT_GT(pc.sustained_rps, 0.3 * isolated.total_requests_per_s);
  EXPECT_LT(pc.sustained_rps, kProbeCeiling * isolated.total_requests_per_s);
  EXPECT_LE(pc.goodput_rps, pc.sustained_rps * 1.05);
  EXPECT_GE(pc.probes.size(), static_cast<size_t>(kBisectSteps));
  const auto probe_at = [&](double rate) {
    workload::Workload w = base;
    workload::ArrivalSpec s = spec;
    s.rate = rate;
    EXPECT_TRUE(workload::apply_arrivals(w, s, error)) << error;
    SimResult r;
    EXPECT_TRUE(run_simulation(c, w, plans, PolicyChoice{"least-request", {}}, r, error)) << error;
    return evaluate_probe(w, plans, r, slo);
  };
  const LoadProbe low = probe_at(0.5 * pc.sustained_rps);
  EXPECT_TRUE(low.sustained);
  EXPECT_NEAR(low.completed_rps, low.offered_rps, 0.05 * low.offered_rps);
  const LoadProbe high = probe_at(2.0 * pc.sustained_rps);
  EXPECT_FALSE(high.sustained);
  EXPECT_LT(high.completed_rps, kSustainRatio * high.offered_rps);
}

// The simulated scrape carries the replica's generation rate (least-load's throughput): the
// tokens its engine generated since the previous scrape, per second.
TEST(ClusterSim, ScrapesCarryTheGenerationRate) {
  const workload::Workload w = small_workload(400, 20);
  SimConfig c = make_config("2xh100");
  double max_tps = 0;
  int fresh = 0;
  c.observe_routers = [&](double now, std::span<const cluster::ClusterState* const> routers) {
    for (int r = 0; r < routers[0]->num_replicas(); ++r) {
      const cluster::ScrapeSnapshot& s = routers[0]->replica(r).scrape;
      if (!s.fresh(now, 2.0)) continue;
      ++fresh;
      max_tps = std::max(max_tps, s.generation_tps);
      EXPECT_GE(s.generation_tps, 0);
    }
  };
  const SimResult r = run(c, w, "least-load");
  EXPECT_EQ(r.lost, 0);
  EXPECT_GT(fresh, 100);
  EXPECT_GT(max_tps, 100);     // a busy h100 generates hundreds of tokens/s
  EXPECT_LT(max_tps, 100000);  // and not more than its batch can
}

TEST(ClusterSim, HiddenLengthsAreStillGeneratedExactly) {
  SimConfig c = make_config("2xh100");
  c.lengths = workload::LengthsMode::kHidden;
  const workload::Workload w = small_workload(100, 20);
  const SimResult r = run(c, w, "eta");
  EXPECT_EQ(r.lost, 0);
  int predicted = 0;
  for (size_t i = 0; i < r.records.size(); ++i) {
    ASSERT_TRUE(r.records[i].ok());
    EXPECT_EQ(r.records[i].output_tokens, w.requests[i].output_tokens);
    EXPECT_TRUE(r.records[i].predicted_e2e_s.has_value());
    predicted += r.predicted_output_tokens[i] > 0 ? 1 : 0;
  }
  EXPECT_EQ(predicted, 100);
}

TEST(ClusterSim, RejectsWhatVllmRejects) {
  SimConfig c = make_config("h100");
  workload::Workload w = small_workload(3, 10);
  w.requests[1].prompt_tokens = 5000;  // over llama-2-7b's 4096
  const SimResult r = run(c, w, "round-robin");
  EXPECT_TRUE(r.records[0].ok());
  EXPECT_EQ(r.records[1].error_kind, "http_400");
  EXPECT_TRUE(r.records[2].ok());
  EXPECT_EQ(r.lost, 0);
}

// ---- admission (the live router's functions and queue; issue 2.2) ----

workload::Workload burst(int64_t n) {
  workload::Workload w = small_workload(n, 10, 7);
  for (workload::WorkloadRequest& r : w.requests) {
    r.arrival_s = 0;
    r.output_tokens = std::max(r.output_tokens, 50);  // each outlives the burst
  }
  return w;
}

int64_t count_kind(const SimResult& r, const std::string& kind) {
  return std::count_if(r.records.begin(), r.records.end(),
                       [&](const stats::RequestRecord& rec) { return rec.error_kind == kind; });
}

TEST(ClusterSimAdmission, OffByDefaultAndAnUnreachedBoundChangesNothing) {
  SimConfig c = make_config("h100,a100");
  EXPECT_FALSE(c.admission_on());
  const workload::Workload w = small_workload(200, 20);
  for (const char* policy : {"round-robin", "eta", "oracle"}) {
    const SimResult off = run(c, w, policy);
    EXPECT_FALSE(off.admission);
    EXPECT_TRUE(off.shed.empty());
    SimConfig on = c;
    on.admission.max_in_flight = 100000;  // admission runs, never refuses
    const SimResult r = run(on, w, policy);
    EXPECT_TRUE(r.admission);
    ASSERT_EQ(r.records.size(), off.records.size());
    for (size_t i = 0; i < r.records.size(); ++i) {
      EXPECT_EQ(r.records[i].replica, off.records[i].replica) << policy << " " << i;
      EXPECT_EQ(r.records[i].e2e_s, off.records[i].e2e_s) << policy << " " << i;
    }
    EXPECT_EQ(r.queued, 0);
    int64_t shed = 0;
    for (const auto& [reason, n] : r.shed) shed += n;
    EXPECT_EQ(shed, 0) << policy;
  }
}

TEST(ClusterSimAdmission, BurstAboveMaxInFlightShedsAllButTheFirst) {
  SimConfig c = make_config("h100,a100");
  c.admission.max_in_flight = 3;
  const workload::Workload w = burst(10);
  for (const char* policy : {"round-robin", "eta", "oracle"}) {
    const SimResult r = run(c, w, policy);
    for (size_t i = 0; i < r.records.size(); ++i) {
      EXPECT_EQ(r.records[i].ok(), i < 3) << policy << " " << i;
      if (i >= 3) {
        EXPECT_EQ(r.records[i].http_status, 429);
      }
    }
    EXPECT_EQ(r.shed.at("shed_capacity"), 7) << policy;
    EXPECT_EQ(count_kind(r, "http_429"), 7);
    EXPECT_EQ(r.lost, 0);
  }
}

TEST(ClusterSimAdmission, PerReplicaBoundKeepsPicksOffFullReplicas) {
  SimConfig c = make_config("h100,h100");
  c.admission.max_in_flight_per_replica = 1;
  const SimResult r = run(c, burst(5), "round-robin");
  ASSERT_TRUE(r.records[0].ok() && r.records[1].ok());
  EXPECT_NE(r.records[0].replica, r.records[1].replica);
  EXPECT_EQ(r.shed.at("shed_capacity"), 3);
}

TEST(ClusterSimAdmission, QueueHoldsFifoAndItsDelayIsPartOfTtft) {
  SimConfig c = make_config("h100");
  c.admission.max_in_flight = 1;
  c.admission.queue_size = 2;
  c.admission.queue_timeout_s = 600;
  const SimResult r = run(c, burst(5), "least-request");
  // 0 is dispatched, 1 and 2 wait, 3 and 4 find the queue full.
  EXPECT_EQ(r.queued, 2);
  EXPECT_EQ(r.shed.at("queue_full"), 2);
  EXPECT_EQ(r.records[3].error_kind, "http_429");
  EXPECT_EQ(r.records[4].error_kind, "http_429");
  ASSERT_TRUE(r.records[0].ok() && r.records[1].ok() && r.records[2].ok());
  // One in flight at a time, in order: each starts after the one before it finished.
  EXPECT_GT(r.records[1].ttft_s, r.records[0].e2e_s);
  EXPECT_GT(r.records[2].ttft_s, r.records[1].e2e_s);
  EXPECT_EQ(r.lost, 0);
}

TEST(ClusterSimAdmission, QueuedRequestsTimeOut) {
  SimConfig c = make_config("h100");
  c.admission.max_in_flight = 1;
  c.admission.queue_size = 10;
  c.admission.queue_timeout_s = 0.02;  // far shorter than request 0's life
  const SimResult r = run(c, burst(4), "round-robin");
  EXPECT_TRUE(r.records[0].ok());
  EXPECT_EQ(r.queued, 3);
  EXPECT_EQ(r.shed.at("queue_timeout"), 3);
  EXPECT_EQ(count_kind(r, "http_429"), 3);
  EXPECT_EQ(r.lost, 0);
}

TEST(ClusterSimAdmission, TtftSloShedsWhatEveryReplicaIsPredictedToMiss) {
  SimConfig c = make_config("h100,a100");
  const workload::Workload w = small_workload(100, 20);
  for (const char* policy : {"round-robin", "eta"}) {
    c.admission.ttft_slo_s = 1e-6;  // nothing is predicted that fast
    SimResult r = run(c, w, policy);
    EXPECT_EQ(r.shed.at("shed_slo"), 100) << policy;
    c.admission.ttft_slo_s = 3600;  // everything is
    r = run(c, w, policy);
    EXPECT_EQ(r.shed.count("shed_slo"), 0u) << policy;
    EXPECT_EQ(count_kind(r, "http_429"), 0);
  }
}

// ---- reports ----

TEST(ClusterSimStudy, TableAndSvgCoverEveryPolicy) {
  SimConfig c = make_config("h100,a100");
  const workload::Workload w = small_workload(60, 10);
  std::vector<RunSummary> runs;
  for (double load : {0.3, 0.6}) {
    for (const char* p : {"round-robin", "eta", "oracle"}) {
      runs.push_back(summarize_run(p, load, load * 20, 20, run(c, w, p), {}));
    }
  }
  const std::string table = render_table({&runs[3], &runs[4], &runs[5]});
  EXPECT_NE(table.find("| eta |"), std::string::npos);
  EXPECT_NE(table.find("1.00x"), std::string::npos);
  const std::string svg = render_svg(runs, "test <plot>");
  size_t paths = 0;
  for (size_t pos = svg.find("<path"); pos != std::string::npos; pos = svg.find("<path", pos + 1))
    ++paths;
  EXPECT_EQ(paths, 6u);  // 3 policies x 2 panels
  EXPECT_NE(svg.find("data-policy=\"oracle\""), std::string::npos);
  EXPECT_NE(svg.find("test &lt;plot&gt;"), std::string::npos);
  const boost::json::object j = run_to_json(runs[1]);
  for (const char* key : {"policy", "load", "ttft_ms", "e2e_ms", "tpot_ms", "goodput_rps",
                          "replica_share", "preemptions", "prediction", "replicas"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
}

}  // namespace
}  // namespace eta::cluster_sim

namespace eta::cluster_sim {
namespace {

SimResult run_late(const SimConfig& c, const workload::Workload& w, const std::string& policy) {
  SimResult out;
  std::string error;
  const std::vector<RequestPlan> plans =
      plan_requests(w, c.lengths, c.replicas.front().engine.max_model_len);
  PolicyChoice choice{policy, {}};
  choice.late = true;
  EXPECT_TRUE(run_simulation(c, w, plans, choice, out, error)) << error;
  return out;
}

// Late binding (router/core/late_binding.hpp) in the simulator: a burst of long prompts makes
// every replica busy; requests are held at the router and none is lost (the hold's bound is
// specified in tests/core/router_core_test.cpp, LateBinding.*).
TEST(ClusterSimLateBinding, BurstIsHeldNothingLostHoldBounded) {
  SimConfig c = make_config("h100,h100");
  c.late_binding.rule = "busy";
  c.late_binding.max_hold_s = 0.2;
  workload::Workload w = burst(40);
  for (workload::WorkloadRequest& r : w.requests) r.prompt_tokens = 3000;  // each fills a step
  const SimResult late = run_late(c, w, "least-request");
  EXPECT_GT(late.late_held, 0);
  EXPECT_EQ(late.lost, 0);
  for (const stats::RequestRecord& rec : late.records) EXPECT_TRUE(rec.ok()) << rec.index;
  const SimResult early = run(c, w, "least-request");
  EXPECT_EQ(early.late_held, 0);
  EXPECT_FALSE(early.admission);  // without late binding (or admission) nothing changes
  int later = 0;
  for (size_t i = 0; i < w.requests.size(); ++i)
    later += late.records[i].ttft_s > early.records[i].ttft_s ? 1 : 0;
  EXPECT_LT(later, static_cast<int>(w.requests.size()));  // not everything got slower
}

// Three requests on two h100 (llama-3.1-8b): 7,000 prompt tokens to replica 0, 3,500 to
// replica 1 (idle, so nothing is held), then a short one that round robin sends behind replica
// 0's prefill. With the pooled-queue rule ("wait") both replicas would make it wait, so it is
// held and goes to replica 1, whose prefill ends first, and its first token comes sooner.
SimConfig two_h100_llama3() {
  SimConfig c;
  std::string error;
  EXPECT_TRUE(
      parse_replicas("h100,h100", engine::ProfileSet::builtin(), "llama-3.1-8b", c.replicas, error))
      << error;
  return c;
}

workload::Workload pooled_case() {
  workload::Workload w = burst(3);
  const int prompts[3] = {7000, 3500, 200};
  for (size_t i = 0; i < 3; ++i) {
    w.requests[i].prompt_tokens = prompts[i];
    w.requests[i].arrival_s = 0.001 * static_cast<double>(i);
  }
  return w;
}

TEST(ClusterSimLateBinding, PooledRuleSendsAHeldRequestToTheReplicaThatFreesFirst) {
  SimConfig c = two_h100_llama3();
  c.late_binding.rule = "wait";
  c.late_binding.wait_margin_s = 0.01;  // an h100 prefills 7,000 tokens in about 0.1 s
  const workload::Workload w = pooled_case();
  const SimResult late = run_late(c, w, "round-robin");
  const SimResult early = run(c, w, "round-robin");
  EXPECT_EQ(late.lost, 0);
  for (const stats::RequestRecord& rec : late.records) EXPECT_TRUE(rec.ok()) << rec.index;
  EXPECT_EQ(late.late_held, 1);
  EXPECT_EQ(early.records[2].replica, "r0-h100");
  EXPECT_EQ(late.records[2].replica, "r1-h100");
  EXPECT_LT(late.records[2].ttft_s, 0.8 * early.records[2].ttft_s);
  for (size_t i = 0; i < 2; ++i)  // the others are where they were
    EXPECT_EQ(late.records[i].replica, early.records[i].replica) << i;
}

// The busy rule holds nothing there: 7,000 and 3,500 pending tokens are within one step's budget
// (8,192 on an h100), so neither replica is busy.
TEST(ClusterSimLateBinding, BusyRuleLeavesRequestsWithinOneStepAlone) {
  SimConfig c = two_h100_llama3();
  c.late_binding.rule = "busy";
  const SimResult late = run_late(c, pooled_case(), "round-robin");
  EXPECT_EQ(late.late_held, 0);
  EXPECT_EQ(late.records[2].replica, "r0-h100");
}

}  // namespace
}  // namespace eta::cluster_sim
