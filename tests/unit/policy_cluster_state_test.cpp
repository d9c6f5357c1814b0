// ClusterState driving real simulated engines in virtual time: the learning loops end to end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cluster/state.hpp"
#include "policy/registry.hpp"
#include "policy_test_util.hpp"

namespace eta::cluster {
namespace {

using eta::testing::config_for;

struct SimResult {
  double mean_e2e = 0;
  double p99_e2e = 0;
  std::vector<int> per_replica;
};

// Poisson arrivals for `duration` simulated seconds over engines with the given true speeds;
// the router believes every replica is a plain h100. Requests carry no hint of their length.
// per_step: each step's tokens reach the state at once (on_step_tokens, as `eta cluster-sim`
// delivers them) instead of one on_tokens per token (as `eta route` relays chunks).
SimResult simulate(ClusterState& state, std::vector<engine::Engine>& engines,
                   policy::Policy& policy, double rate, double duration, uint64_t seed,
                   bool per_step = false) {
  std::mt19937_64 rng(seed);
  policy::Rng prng(seed);
  std::exponential_distribution<double> gap(rate);
  std::uniform_int_distribution<int> prompt_len(200, 1500);
  std::uniform_int_distribution<int> output_len(50, 300);
  const size_t n = engines.size();
  std::vector<double> busy_until(n, -1);  // end of the step in flight, -1 if idle
  std::vector<engine::StepResult> in_flight(n);
  std::vector<double> dispatch_time;
  std::vector<double> e2e;
  SimResult result;
  result.per_replica.assign(n, 0);
  PreparedRequest prepared;
  double next_arrival = gap(rng);
  engine::RequestId next_id = 0;
  for (;;) {
    // Next event: an arrival or the earliest step end.
    size_t engine_index = n;
    double t = next_arrival < duration ? next_arrival : 1e300;
    for (size_t i = 0; i < n; ++i)
      if (busy_until[i] >= 0 && busy_until[i] < t) {
        t = busy_until[i];
        engine_index = i;
      }
    if (t >= 1e300) break;
    if (engine_index == n) {  // arrival
      const int prompt = prompt_len(rng);
      std::vector<uint64_t> hashes(static_cast<size_t>(prompt / 16));
      for (auto& h : hashes) h = rng();  // unique prompts: no prefix sharing
      state.prepare("m", prompt, hashes, std::nullopt, false, std::nullopt, prepared);
      const Decision d = policy.pick(prepared.features, state.view(t), prng);
      EXPECT_GE(d.replica, 0);
      const engine::RequestId id = next_id++;
      state.on_dispatch(id, d.replica, prepared.features, t);
      engine::EngineRequest r;
      r.id = id;
      r.prompt_tokens = prompt;
      r.block_hashes = hashes;
      r.output_tokens = output_len(rng);
      r.finish_reason = engine::FinishReason::kStop;
      r.arrival_time = t;
      EXPECT_TRUE(engines[static_cast<size_t>(d.replica)].add_request(std::move(r)));
      dispatch_time.push_back(t);
      result.per_replica[static_cast<size_t>(d.replica)]++;
      const auto i = static_cast<size_t>(d.replica);
      if (busy_until[i] < 0) {
        in_flight[i] = engines[i].step(t);
        busy_until[i] = in_flight[i].idle() ? -1 : in_flight[i].end;
      }
      next_arrival = t + gap(rng);
      continue;
    }
    const size_t i = engine_index;
    if (per_step) {
      std::vector<RequestId> ids;
      for (const engine::TokenEvent& ev : in_flight[i].tokens) ids.push_back(ev.id);
      state.on_step_tokens(ids, t);
    } else {
      for (const engine::TokenEvent& ev : in_flight[i].tokens) state.on_tokens(ev.id, 1, t);
    }
    for (const engine::FinishedRequest& f : in_flight[i].finished) {
      state.on_finish(f.id, t);
      e2e.push_back(t - dispatch_time[f.id]);
    }
    in_flight[i] = engines[i].step(t);
    busy_until[i] = in_flight[i].idle() ? -1 : in_flight[i].end;
  }
  std::sort(e2e.begin(), e2e.end());
  double sum = 0;
  for (double x : e2e) sum += x;
  result.mean_e2e = sum / static_cast<double>(e2e.size());
  result.p99_e2e = e2e[static_cast<size_t>(0.99 * static_cast<double>(e2e.size() - 1))];
  return result;
}

struct Cluster {
  ClusterState state;
  std::vector<engine::Engine> engines;
  explicit Cluster(const std::vector<double>& true_speeds) {
    for (size_t i = 0; i < true_speeds.size(); ++i) {
      ReplicaSpec spec;
      spec.name = "r" + std::to_string(i);
      spec.engine = config_for();  // what the router assumes: h100 at full speed
      state.add_replica(spec);
      engine::EngineConfig truth = config_for();
      truth.speed = true_speeds[i];
      engines.emplace_back(truth);
    }
  }
};

TEST(PolicyClusterState, LearnsASlowerReplicaWithinAMinuteOfTrafficWithNoConfiguration) {
  Cluster c({1.0, 0.5});
  std::string error;
  auto rr = policy::make_policy("round-robin", {}, error);
  simulate(c.state, c.engines, *rr, 4.0, 60.0, 1);
  EXPECT_NEAR(c.state.speed(0).decode_factor(), 1.0, 0.1);
  EXPECT_NEAR(c.state.speed(1).decode_factor(), 0.5, 0.05);
  EXPECT_NEAR(c.state.speed(0).prefill_factor(), 1.0, 0.1);
  EXPECT_NEAR(c.state.speed(1).prefill_factor(), 0.5, 0.05);
  // The output-length predictor learned the workload's mean (uniform 50..300: 175).
  EXPECT_NEAR(c.state.output_predictor().mean("m", 800), 175, 25);
  EXPECT_EQ(c.state.ledger().size(), 0u);
}

TEST(PolicyClusterState, LearnsASlowerReplicaAsWellFromWholeSteps) {
  Cluster c({1.0, 0.5});
  std::string error;
  auto rr = policy::make_policy("round-robin", {}, error);
  simulate(c.state, c.engines, *rr, 4.0, 60.0, 1, /*per_step=*/true);
  EXPECT_NEAR(c.state.speed(0).decode_factor(), 1.0, 0.05);
  EXPECT_NEAR(c.state.speed(1).decode_factor(), 0.5, 0.025);
  EXPECT_NEAR(c.state.speed(0).prefill_factor(), 1.0, 0.1);
  EXPECT_NEAR(c.state.speed(1).prefill_factor(), 0.5, 0.05);
  // One lesson per step, not one per token: far fewer observations than tokens.
  EXPECT_GT(c.state.speed(1).decode_observations(), 100);
  EXPECT_NEAR(c.state.output_predictor().mean("m", 800), 175, 25);
  EXPECT_EQ(c.state.ledger().size(), 0u);
}

// The ledger moves exactly as with one on_tokens per token; the speed model learns the same
// lessons (skipping steps that may hold a prefill of its own) once per step.
TEST(PolicyClusterState, StepTokensMoveTheLedgerAsTokensDoAndLearnOncePerStep) {
  ClusterState a, b;
  ReplicaSpec spec;
  spec.name = "r";
  spec.engine = config_for();
  a.add_replica(spec);
  b.add_replica(spec);
  PreparedRequest p;
  auto dispatch = [&](RequestId id, double now) {
    for (ClusterState* s : {&a, &b}) {
      s->prepare("m", 500 + static_cast<int>(id), {}, std::nullopt, false, std::nullopt, p);
      ASSERT_TRUE(s->on_dispatch(id, 0, p.features, now));
    }
  };
  std::vector<RequestId> ids;
  auto deliver = [&](double now) {
    for (RequestId id : ids) a.on_tokens(id, 1, now);
    b.on_step_tokens(ids, now);
    const LedgerSummary& la = a.ledger().summary(0);
    const LedgerSummary& lb = b.ledger().summary(0);
    EXPECT_EQ(la.in_flight, lb.in_flight);
    EXPECT_EQ(la.prefilling, lb.prefilling);
    EXPECT_EQ(la.decoding, lb.decoding);
    EXPECT_EQ(la.context_tokens, lb.context_tokens);
    EXPECT_EQ(la.kv_tokens, lb.kv_tokens);
    EXPECT_EQ(la.pending_prefill_tokens, lb.pending_prefill_tokens);
    EXPECT_EQ(la.predicted_remaining_decode_tokens, lb.predicted_remaining_decode_tokens);
    EXPECT_EQ(la.remaining.count, lb.remaining.count);
    EXPECT_EQ(la.remaining.remaining_tokens, lb.remaining.remaining_tokens);
  };
  for (RequestId id = 0; id < 8; ++id) {
    dispatch(id, 0.0);
    ids.push_back(id);
  }
  deliver(0.1);  // first tokens
  double t = 0.1;
  auto step = [&](double slowdown) {
    const LedgerSummary& l = b.ledger().summary(0);
    engine::BatchShape shape;
    shape.num_tokens = shape.num_sampled = l.decoding;
    shape.decode_kv_tokens = l.context_tokens;
    t += slowdown * b.speed(0).base_step_seconds(shape);
    deliver(t);
  };
  for (int k = 0; k < 60; ++k) step(2.0);
  EXPECT_NEAR(a.speed(0).decode_factor(), 0.5, 0.02);
  EXPECT_NEAR(b.speed(0).decode_factor(), 0.5, 0.02);
  EXPECT_EQ(b.speed(0).decode_observations(), 60);
  EXPECT_EQ(a.speed(0).decode_observations(), 480);
  // A ninth request: until its first token, steps may carry its prefill (three times slower
  // here): no lesson. Nor from the step that produced its first token.
  dispatch(8, t);
  for (int k = 0; k < 30; ++k) step(6.0);
  EXPECT_NEAR(b.speed(0).decode_factor(), 0.5, 0.02);
  EXPECT_EQ(b.speed(0).decode_observations(), 60);
  ids.insert(ids.begin(), 8);
  t += 0.3;
  deliver(t);
  EXPECT_EQ(b.speed(0).decode_observations(), 60);
  // Clean steps teach again; the step's duration is its shortest gap, so a request that sat
  // out steps (its gap spans them) does not make the replica look slower.
  for (int k = 0; k < 60; ++k) step(1.0);
  EXPECT_GT(b.speed(0).decode_factor(), 0.95);
  ids.erase(ids.begin() + 1);  // request 0 sits out three steps
  for (int k = 0; k < 3; ++k) step(1.0);
  ids.push_back(0);
  const double before = b.speed(0).decode_factor();
  step(1.0);
  EXPECT_NEAR(b.speed(0).decode_factor(), before, 0.01);
  EXPECT_EQ(a.ledger().size(), b.ledger().size());
}

TEST(PolicyClusterState, EtaSendsLessWorkToTheSlowReplicaAndBeatsRoundRobin) {
  std::string error;
  Cluster a({1.0, 1.0, 0.4});
  auto rr = policy::make_policy("round-robin", {}, error);
  const SimResult r = simulate(a.state, a.engines, *rr, 12.0, 60.0, 2);
  Cluster b({1.0, 1.0, 0.4});
  auto eta = policy::make_policy("eta", {}, error);
  const SimResult e = simulate(b.state, b.engines, *eta, 12.0, 60.0, 2);
  EXPECT_LT(e.per_replica[2], e.per_replica[0] / 2);
  EXPECT_LT(e.mean_e2e, r.mean_e2e);
  EXPECT_LT(e.p99_e2e, r.p99_e2e);
}

TEST(PolicyClusterState, LearnsDecodeSpeedOnlyFromStepsThatRanNoPrefillOfItsOwn) {
  ClusterState s;
  ReplicaSpec spec;
  spec.name = "r";
  spec.engine = config_for();
  s.add_replica(spec);
  PreparedRequest p;
  auto dispatch = [&](RequestId id, double now) {
    s.prepare("m", 500, {}, std::nullopt, false, std::nullopt, p);
    ASSERT_TRUE(s.on_dispatch(id, 0, p.features, now));
  };
  // Eight requests decoding on a replica that runs at half the profile's speed.
  for (RequestId id = 0; id < 8; ++id) dispatch(id, 0.0);
  for (RequestId id = 0; id < 8; ++id) s.on_tokens(id, 1, 0.1);
  double t = 0.1;
  auto step = [&](double slowdown) {
    const LedgerSummary& l = s.ledger().summary(0);
    engine::BatchShape b;
    b.num_tokens = b.num_sampled = l.decoding;
    b.decode_kv_tokens = l.context_tokens;
    t += slowdown * s.speed(0).base_step_seconds(b);
    for (RequestId id = 0; id < 8; ++id) s.on_tokens(id, 1, t);
  };
  for (int k = 0; k < 60; ++k) step(2.0);
  EXPECT_NEAR(s.speed(0).decode_factor(), 0.5, 0.02);
  // A ninth request is dispatched: until its first token, steps may carry its prefill chunks
  // (here they take three times as long). They teach the decode factor nothing.
  dispatch(8, t);
  for (int k = 0; k < 30; ++k) step(6.0);
  EXPECT_NEAR(s.speed(0).decode_factor(), 0.5, 0.02);
  // Nor does the step that produced its first token. Clean steps teach again.
  t += 0.3;
  s.on_tokens(8, 1, t);
  for (RequestId id = 0; id < 8; ++id) s.on_tokens(id, 1, t);
  EXPECT_NEAR(s.speed(0).decode_factor(), 0.5, 0.02);
  for (int k = 0; k < 60; ++k) step(1.0);
  EXPECT_GT(s.speed(0).decode_factor(), 0.9);
}

TEST(PolicyClusterState, DispatchRecordsPrefixHoldingsAndScrapesSetCapacity) {
  ClusterState s;
  ReplicaSpec spec;
  spec.engine = config_for();
  spec.name = "a";
  s.add_replica(spec);
  spec.name = "b";
  s.add_replica(spec);
  const std::vector<uint64_t> hashes = {11, 12, 13, 14};
  PreparedRequest p;
  s.prepare("m", 70, hashes, 100, true, std::nullopt, p);
  EXPECT_EQ(p.features.predicted_output_tokens, 100);  // ignore_eos + max_tokens: exact
  EXPECT_EQ(p.features.matched_blocks_on(0), 0u);
  ASSERT_TRUE(s.on_dispatch(1, 1, p.features, 0));
  EXPECT_FALSE(s.on_dispatch(1, 0, p.features, 0));
  s.prepare("m", 70, hashes, 100, true, std::nullopt, p);
  EXPECT_EQ(p.features.matched_blocks_on(1), 4u);
  EXPECT_EQ(p.features.cached_tokens_on(1), 64);
  EXPECT_GT(s.ledger().find(1)->base_ttft_s, 0);
  ScrapeSnapshot scrape;
  scrape.valid = true;
  scrape.num_gpu_blocks = 2;
  scrape.block_size = 16;
  s.update_scrape(1, scrape);
  EXPECT_EQ(s.replica(1).limits.num_gpu_blocks, 2);
  EXPECT_EQ(s.prefix_index().size(1), 2);
  s.on_abort(1);
  EXPECT_EQ(s.ledger().size(), 0u);
  EXPECT_EQ(s.view(1.0).replicas.size(), 2u);
}

}  // namespace
}  // namespace eta::cluster
