#include <gtest/gtest.h>

#include "policy_test_util.hpp"
#include "predict/completion_model.hpp"

namespace eta::predict {
namespace {

using eta::testing::config_for;
using eta::testing::TestCluster;

CompletionQuery query(int prompt, int output, int cached = 0) {
  CompletionQuery q;
  q.prompt_tokens = prompt;
  q.output_tokens = output;
  q.cached_tokens = cached;
  return q;
}

CompletionEstimate estimate(TestCluster& c, int replica, const CompletionQuery& q, double now = 0,
                            CompletionModelOptions o = {}) {
  const cluster::ClusterView v = c.view(now);
  return estimate_completion(v.replicas[replica], q, v, c.speed(replica), o);
}

TEST(PredictCompletionModel, IdleReplicaIsOnePrefillStepThenBatchOneDecodes) {
  TestCluster c(1);
  const engine::StepTimeModel m(config_for());
  const CompletionEstimate e = estimate(c, 0, query(1000, 101));
  engine::BatchShape prefill;
  prefill.num_tokens = 1000;
  prefill.num_sampled = 1;
  prefill.prefill_attn_pairs = 1000 * 500.0;
  EXPECT_NEAR(e.ttft_s, m.step_seconds(prefill), 0.02 * e.ttft_s);
  engine::BatchShape decode;
  decode.num_tokens = decode.num_sampled = 1;
  decode.decode_kv_tokens = 1050;  // its context midway through the decode
  EXPECT_NEAR(e.e2e_s - e.ttft_s, 100 * m.step_seconds(decode), 0.01 * (e.e2e_s - e.ttft_s));
  EXPECT_NEAR(e.decode_batch, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(e.wait_s, 0);
  EXPECT_DOUBLE_EQ(e.base_ttft_s, e.ttft_s);  // factor 1
}

TEST(PredictCompletionModel, QueuedPrefillAheadDelaysTheFirstTokenByFullSteps) {
  TestCluster c(1);
  const double idle = estimate(c, 0, query(500, 10)).ttft_s;
  for (int i = 0; i < 4; ++i) c.add(0, 4096, 100);  // 16384 tokens waiting: two full steps
  const CompletionEstimate e = estimate(c, 0, query(500, 10));
  EXPECT_DOUBLE_EQ(e.prefill_tokens_ahead, 4 * 4096);
  const engine::StepTimeModel m(config_for());
  engine::BatchShape full;
  full.num_tokens = 8192;
  full.num_sampled = 1;
  EXPECT_GT(e.ttft_s, idle + 2 * m.step_seconds(full));
  EXPECT_LT(e.ttft_s, idle + 2 * m.step_seconds(full) + 0.25);
}

TEST(PredictCompletionModel, CachedPrefixShortensThePrefill) {
  TestCluster c(1);
  const CompletionEstimate cold = estimate(c, 0, query(4000, 10, 0));
  const CompletionEstimate warm = estimate(c, 0, query(4000, 10, 3840));
  EXPECT_LT(warm.ttft_s, 0.5 * cold.ttft_s);
  // Even a fully cached prompt recomputes at least one token.
  EXPECT_GT(estimate(c, 0, query(4000, 10, 4000)).ttft_s, 0);
}

TEST(PredictCompletionModel, TheBatchShrinksAsNearlyFinishedRequestsLeave) {
  TestCluster c(2);
  for (int i = 0; i < 8; ++i) c.add(0, 300, 100, 95);   // 5 tokens left each
  for (int i = 0; i < 8; ++i) c.add(1, 300, 1000, 95);  // 905 left each
  CompletionModelOptions no_arrivals;
  no_arrivals.arrivals = false;
  const CompletionEstimate a = estimate(c, 0, query(300, 200), 0, no_arrivals);
  const CompletionEstimate b = estimate(c, 1, query(300, 200), 0, no_arrivals);
  EXPECT_LT(a.decode_batch, 1.3);
  EXPECT_NEAR(b.decode_batch, 9.0, 0.01);
  EXPECT_LT(a.e2e_s, b.e2e_s);
  CompletionModelOptions frozen = no_arrivals;
  frozen.batch_shrink = false;
  EXPECT_NEAR(estimate(c, 0, query(300, 200), 0, frozen).decode_batch, 9.0, 0.01);
  // With arrivals (the default) the leavers are replaced at the steady-state rate, 8 requests
  // per mean output (256 tokens before any has finished): replica 0's batch refills, but it
  // still beats the replica whose requests stay.
  const CompletionEstimate a2 = estimate(c, 0, query(300, 200));
  const CompletionEstimate b2 = estimate(c, 1, query(300, 200));
  EXPECT_GT(a2.decode_batch, a.decode_batch + 1);
  EXPECT_LT(a2.e2e_s, b2.e2e_s);
  EXPECT_GT(b2.e2e_s, b.e2e_s);  // arrivals' prefill stalls replica 1's batch too
}

TEST(PredictCompletionModel, ArrivalsKeepABusyReplicaBusyAndStallItsDecode) {
  // 30 requests decoding with ~100 tokens left; a long request (1000 tokens) would, without
  // arrivals, soon decode almost alone. In steady state the batch stays about as full (Little's
  // law: 30 requests / 256 tokens of mean output arrive per step) and each arrival's prefill
  // lengthens the steps it shares.
  TestCluster c(1);
  for (int i = 0; i < 30; ++i) c.add(0, 500, 150, 50);
  CompletionModelOptions no_arrivals;
  no_arrivals.arrivals = false;
  const CompletionEstimate lone = estimate(c, 0, query(500, 1000), 0, no_arrivals);
  const CompletionEstimate steady = estimate(c, 0, query(500, 1000));
  EXPECT_LT(lone.decode_batch, 5);
  EXPECT_GT(steady.decode_batch, 20);
  EXPECT_LT(steady.decode_batch, 32);
  EXPECT_GT(steady.e2e_s, lone.e2e_s);
  EXPECT_DOUBLE_EQ(steady.ttft_s, lone.ttft_s);  // arrivals queue behind it
  // Its time per token includes the arrivals' prefill: more than a plain step of its batch.
  const engine::StepTimeModel m(config_for());
  engine::BatchShape step;
  step.num_tokens = step.num_sampled = static_cast<int>(steady.decode_batch);
  step.decode_kv_tokens = static_cast<int64_t>(steady.decode_batch * 600);
  EXPECT_GT(steady.itl_s, m.step_seconds(step));
}

TEST(PredictCompletionModel, LearnedFactorsScaleThePrediction) {
  TestCluster c(1);
  c.add(0, 2000, 300, 0);
  c.add(0, 500, 300, 20);
  const CompletionEstimate fast = estimate(c, 0, query(800, 150));
  c.set_speed_factor(0, 0.5);
  const CompletionEstimate slow = estimate(c, 0, query(800, 150));
  EXPECT_NEAR(slow.ttft_s, 2 * fast.ttft_s, 1e-9);
  EXPECT_NEAR(slow.e2e_s, 2 * fast.e2e_s, 1e-9);
  EXPECT_NEAR(slow.base_ttft_s, fast.base_ttft_s, 1e-12);
}

TEST(PredictCompletionModel, WaitsForFreeKvBlocksWhenTheCacheIsFull) {
  TestCluster c(1);
  c.replica(0).limits.num_gpu_blocks = 200;  // 3200 tokens of KV
  c.add(0, 1500, 50, 40);                    // ~1540 tokens, 10 tokens left
  c.add(0, 1500, 400, 40);                   // ~1540 tokens, 360 left
  const CompletionEstimate e = estimate(c, 0, query(600, 20));
  EXPECT_GT(e.wait_s, 0);
  const engine::StepTimeModel m(config_for());
  engine::BatchShape step;
  step.num_tokens = step.num_sampled = 2;
  step.decode_kv_tokens = 3080;
  // Without KV pressure only the step in progress is waited for (half a step on average).
  CompletionModelOptions no_kv;
  no_kv.kv_pressure = false;
  EXPECT_NEAR(estimate(c, 0, query(600, 20), 0, no_kv).wait_s, 0.5 * m.step_seconds(step), 1e-9);
  // The first finisher frees enough: the wait is about its 10 remaining decode steps.
  EXPECT_NEAR(e.wait_s, 10 * m.step_seconds(step), 0.2 * e.wait_s);
  // A request that can never fit is predicted to take (practically) forever.
  EXPECT_GT(estimate(c, 0, query(4000, 20)).ttft_s, 1e3);
}

TEST(PredictCompletionModel, WaitsForABatchSlotAtMaxNumSeqs) {
  TestCluster c(1);
  c.replica(0).limits.max_num_seqs = 4;
  for (int i = 0; i < 4; ++i) c.add(0, 100, 40 + i * 100, 10);
  const CompletionEstimate e = estimate(c, 0, query(100, 10));
  c.replica(0).limits.max_num_seqs = 5;
  const CompletionEstimate room = estimate(c, 0, query(100, 10));
  // Full: it waits for the first of the four to finish (30 steps); with a free slot only for
  // the step in progress (half a step).
  EXPECT_NEAR(e.wait_s, 60 * room.wait_s, 1e-9);
}

TEST(PredictCompletionModel, WaitsWhenTheOthersOutputsWillFillTheKvCache) {
  // 3200 tokens of KV. Two requests hold 1100 tokens each; what this one needs (600 + 20) fits
  // now, but they have 400 tokens each still to generate: 3000 + 620 would not fit. It waits
  // until the first leaves (about 400 steps), not just for the step in progress.
  TestCluster c(1);
  c.replica(0).limits.num_gpu_blocks = 200;
  c.add(0, 1000, 500, 100);
  c.add(0, 1000, 520, 100);
  const CompletionEstimate e = estimate(c, 0, query(600, 20));
  const engine::StepTimeModel m(config_for());
  engine::BatchShape step;
  step.num_tokens = step.num_sampled = 2;
  step.decode_kv_tokens = 2200;
  EXPECT_NEAR(e.wait_s, 400 * m.step_seconds(step), 0.05 * e.wait_s);
  // Requests about to finish leave room sooner.
  TestCluster d(1);
  d.replica(0).limits.num_gpu_blocks = 200;
  d.add(0, 1000, 110, 100);
  d.add(0, 1000, 520, 100);
  EXPECT_LT(estimate(d, 0, query(600, 20)).wait_s, 20 * m.step_seconds(step));
}

TEST(PredictCompletionModel, ALongPromptWaitingForKvThrashesThePrefill) {
  // vLLM admits a waiting request when its first chunk fits and preempts it (recompute) when
  // the next one does not: while a 40000-token prompt waits for KV, every other step computes
  // a chunk that is thrown away. When not even the first chunk fits, it just waits.
  TestCluster thrash(1), blocked(1);
  for (TestCluster* c : {&thrash, &blocked}) c->replica(0).limits.num_gpu_blocks = 3000;
  thrash.add(0, 15000, 300, 100);  // 30200 of 48000 tokens held: an 8190-token chunk fits
  thrash.add(0, 15000, 300, 100);
  blocked.add(0, 20000, 300, 100);  // 40200 held: it does not
  blocked.add(0, 20000, 300, 100);
  const CompletionEstimate a = estimate(thrash, 0, query(40000, 20));
  const CompletionEstimate b = estimate(blocked, 0, query(40000, 20));
  EXPECT_GT(b.wait_s, 0);
  EXPECT_GT(a.wait_s, 3 * b.wait_s);  // both wait ~200 steps for the two to finish
}

TEST(PredictCompletionModel, AFreshScrapeAddsWorkOtherRoutersSent) {
  TestCluster c(1);
  c.add(0, 1000, 100);  // the only request this router knows of: waiting
  cluster::ScrapeSnapshot s;
  s.valid = true;
  s.time_s = 10.0;
  s.waiting = 5;   // 4 more than ours
  s.running = 12;  // 12 unknown decoding
  c.replica(0).scrape = s;
  const CompletionEstimate fresh = estimate(c, 0, query(500, 100), 10.5);
  const double avg_uncached = c.view().averages.uncached_prompt_tokens;
  EXPECT_NEAR(fresh.prefill_tokens_ahead, 1000 + 4 * avg_uncached, 1e-9);
  EXPECT_GT(fresh.decode_batch, 5);
  const CompletionEstimate stale = estimate(c, 0, query(500, 100), 13.0);  // 3 s > 2 s
  EXPECT_DOUBLE_EQ(stale.prefill_tokens_ahead, 1000);
  EXPECT_LT(stale.e2e_s, fresh.e2e_s);
  // A scrape that shows less than the ledger (it lags our dispatches) adds nothing.
  c.replica(0).scrape.waiting = 0;
  c.replica(0).scrape.running = 0;
  EXPECT_DOUBLE_EQ(estimate(c, 0, query(500, 100), 10.5).prefill_tokens_ahead, 1000);
}

}  // namespace
}  // namespace eta::predict
