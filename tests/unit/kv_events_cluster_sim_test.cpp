// cluster-sim with KV-cache events (issue 15, SimConfig::kv_events_delay_s): off changes
// nothing; on, four routers that each see a quarter of a multi-turn workload match prefixes as
// one router does.
#include <gtest/gtest.h>

#include <string>

#include "cluster/state.hpp"
#include "cluster_sim/replicas.hpp"
#include "cluster_sim/simulator.hpp"
#include "engine/profile.hpp"
#include "workload/catalog.hpp"

namespace eta::cluster_sim {
namespace {

struct SimRun {
  SimResult result;
  double hit_rate = 0;
};

SimRun simulate(const workload::Workload& w, int routers, double kv_delay_s,
                const std::string& policy) {
  SimConfig c;
  std::string error;
  EXPECT_TRUE(
      parse_replicas("4xh100", engine::ProfileSet::builtin(), "llama-2-7b", c.replicas, error))
      << error;
  c.routers = routers;
  c.kv_events_delay_s = kv_delay_s;
  SimRun out;
  const std::vector<RequestPlan> plans =
      plan_requests(w, c.lengths, c.replicas.front().engine.max_model_len);
  EXPECT_TRUE(run_simulation(c, w, plans, PolicyChoice{policy, {}}, out.result, error)) << error;
  uint64_t q = 0, h = 0;
  for (const ReplicaOutcome& r : out.result.replicas) {
    q += r.prefix_queries;
    h += r.prefix_hits;
  }
  out.hit_rate = q > 0 ? static_cast<double>(h) / static_cast<double>(q) : 0;
  EXPECT_EQ(out.result.lost, 0);
  return out;
}

workload::Workload multi_turn() {
  workload::WorkloadContext ctx;
  ctx.seed = 3;
  workload::Workload w;
  std::string error;
  EXPECT_TRUE(workload::make_workload("multi-turn:n=600,rate=25", ctx, w, error)) << error;
  return w;
}

TEST(KvEventsClusterSim, EventsGiveFourRoutersTheOneRouterHitRate) {
  const workload::Workload w = multi_turn();
  const SimRun one = simulate(w, 1, -1, "cache-aware");
  const SimRun four = simulate(w, 4, -1, "cache-aware");
  const SimRun four_events = simulate(w, 4, 0.010, "cache-aware");
  EXPECT_GT(one.hit_rate, 0.3);  // measured: 0.753 one router, 0.548 four, 0.754 four with events
  EXPECT_LT(four.hit_rate, 0.9 * one.hit_rate);          // each router knows a quarter
  EXPECT_GE(four_events.hit_rate, 0.95 * one.hit_rate);  // the replicas tell all of them
}

TEST(KvEventsClusterSim, OffIsTheSameRunAndEveryRouterSeesTheSameBlocks) {
  const workload::Workload w = multi_turn();
  const SimRun a = simulate(w, 2, -1, "eta");
  const SimRun b = simulate(w, 2, -1, "eta");
  ASSERT_EQ(a.result.records.size(), b.result.records.size());
  for (size_t i = 0; i < a.result.records.size(); ++i)
    EXPECT_EQ(a.result.records[i].ttft_s, b.result.records[i].ttft_s);

  // With events at 0 ms, every router's event index agrees at every decision.
  SimConfig c;
  std::string error;
  ASSERT_TRUE(
      parse_replicas("4xh100", engine::ProfileSet::builtin(), "llama-2-7b", c.replicas, error));
  c.routers = 3;
  c.kv_events_delay_s = 0;
  int decisions = 0, disagreements = 0;
  size_t most = 0;
  c.observe_routers = [&](double, std::span<const cluster::ClusterState* const> routers) {
    ++decisions;
    for (int r = 0; r < routers[0]->num_replicas(); ++r) {
      const auto& x = routers[0]->kv_events().stats(r);
      most = std::max(most, x.blocks);
      for (size_t k = 1; k < routers.size(); ++k) {
        const auto& y = routers[k]->kv_events().stats(r);
        if (!x.active || x.blocks != y.blocks || x.stored != y.stored || x.removed != y.removed)
          ++disagreements;
      }
    }
  };
  const std::vector<RequestPlan> plans =
      plan_requests(w, c.lengths, c.replicas.front().engine.max_model_len);
  SimResult out;
  ASSERT_TRUE(run_simulation(c, w, plans, PolicyChoice{"cache-aware", {}}, out, error)) << error;
  EXPECT_GT(decisions, 500);
  EXPECT_EQ(disagreements, 0);
  EXPECT_GT(most, 100u);
}

}  // namespace
}  // namespace eta::cluster_sim
