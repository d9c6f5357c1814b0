#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "engine/engine.hpp"

namespace eta::engine {
namespace {

EngineConfig small_config(int num_blocks, int budget, int max_seqs = 64) {
  EngineConfig c;
  std::string error;
  EXPECT_TRUE(make_config(ProfileSet::builtin(), "llama-2-7b", "h100", c, error)) << error;
  c.num_gpu_blocks = num_blocks;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = max_seqs;
  c.enable_prefix_caching = false;
  return c;
}

EngineRequest req(RequestId id, int prompt, int output) {
  EngineRequest r;
  r.id = id;
  r.prompt_tokens = prompt;
  r.output_tokens = output;
  r.finish_reason = FinishReason::kStop;
  r.output_seed = id;
  return r;
}

const TokenEvent* token_of(const StepResult& s, RequestId id) {
  for (const TokenEvent& t : s.tokens) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

TEST(EngineScheduler, TokenBudgetRespected) {
  Engine e(small_config(1000, 100));
  for (RequestId id = 1; id <= 3; ++id) ASSERT_TRUE(e.add_request(req(id, 80, 5)));
  const StepResult s1 = e.step(0);
  EXPECT_EQ(s1.num_scheduled_tokens, 100);  // 80 for #1, a 20-token chunk of #2
  EXPECT_EQ(s1.num_prefill_tokens, 100);
  EXPECT_EQ(s1.first_scheduled, (std::vector<RequestId>{1, 2}));
  ASSERT_EQ(s1.tokens.size(), 1u);
  EXPECT_EQ(s1.tokens[0].id, 1u);
  double now = s1.end;
  while (e.has_unfinished()) {
    const StepResult s = e.step(now);
    EXPECT_LE(s.num_scheduled_tokens, 100);
    EXPECT_GT(s.end, s.start);
    now = s.end;
  }
  EXPECT_EQ(e.counters().generation_tokens, 15u);
  EXPECT_EQ(e.counters().prompt_tokens, 240u);
}

TEST(EngineScheduler, MaxNumSeqsRespected) {
  Engine e(small_config(1000, 8192, 2));
  for (RequestId id = 1; id <= 5; ++id) ASSERT_TRUE(e.add_request(req(id, 10, 3)));
  const StepResult s1 = e.step(0);
  EXPECT_EQ(s1.first_scheduled.size(), 2u);
  EXPECT_EQ(e.num_running(), 2);
  EXPECT_EQ(e.num_waiting(), 3);
  double now = s1.end;
  while (e.has_unfinished()) {
    const StepResult s = e.step(now);
    EXPECT_LE(e.num_running(), 2);
    EXPECT_LE(static_cast<int>(s.tokens.size()), 2);
    now = s.end;
  }
}

TEST(EngineScheduler, LongPromptIsChunkedAcrossSteps) {
  Engine e(small_config(1000, 256));
  ASSERT_TRUE(e.add_request(req(1, 1000, 2)));
  double now = 0;
  const int expected[] = {256, 256, 256, 232};
  for (int i = 0; i < 4; ++i) {
    const StepResult s = e.step(now);
    EXPECT_EQ(s.num_prefill_tokens, expected[i]) << "step " << i;
    EXPECT_EQ(s.tokens.size(), i == 3 ? 1u : 0u) << "step " << i;
    now = s.end;
  }
  const StepResult d = e.step(now);
  EXPECT_EQ(d.num_decode_seqs, 1);
  ASSERT_EQ(d.finished.size(), 1u);
  EXPECT_EQ(d.finished[0].output_tokens, 2);
  EXPECT_EQ(d.finished[0].reason, FinishReason::kStop);
  EXPECT_FALSE(e.has_unfinished());
}

TEST(EngineScheduler, LongPrefillThresholdCapsChunks) {
  EngineConfig c = small_config(1000, 8192);
  c.long_prefill_token_threshold = 64;
  Engine e(c);
  ASSERT_TRUE(e.add_request(req(1, 100, 1)));
  ASSERT_TRUE(e.add_request(req(2, 100, 1)));
  const StepResult s = e.step(0);
  EXPECT_EQ(s.num_prefill_tokens, 128);
  EXPECT_TRUE(s.tokens.empty());
}

TEST(EngineScheduler, RunningGoBeforeWaiting) {
  Engine e(small_config(1000, 64));
  ASSERT_TRUE(e.add_request(req(1, 10, 50)));
  const StepResult s1 = e.step(0);
  ASSERT_EQ(s1.tokens.size(), 1u);
  ASSERT_TRUE(e.add_request(req(2, 500, 5)));
  const StepResult s2 = e.step(s1.end);
  // #1 decodes first (1 token), #2 gets the rest of the budget.
  EXPECT_EQ(s2.num_decode_seqs, 1);
  EXPECT_EQ(s2.num_prefill_tokens, 63);
  ASSERT_EQ(s2.tokens.size(), 1u);
  EXPECT_EQ(s2.tokens[0].id, 1u);
  EXPECT_EQ(s2.first_scheduled, (std::vector<RequestId>{2}));
  // While #2's prefill goes on, #1 keeps decoding every step.
  double now = s2.end;
  for (int i = 0; i < 5; ++i) {
    const StepResult s = e.step(now);
    ASSERT_NE(token_of(s, 1), nullptr);
    EXPECT_EQ(s.num_scheduled_tokens, 64);
    now = s.end;
  }
}

// Pool of 7 blocks of 16 tokens, chunks capped at 32 tokens:
//   step 1: A (96-token prompt) 32 tokens [2 blocks], B (16) [1 block], C (32) [2 blocks]
//   step 2: A +32 [2 more: pool full]; B's decode needs a block -> preempt C (newest);
//           D, waiting and small enough to fit, is not admitted in a step that preempted.
//   step 3: A +32 needs 2 blocks -> preempt B; A completes its prompt and finishes.
//   step 4: B, C (front of waiting, in that order) and D are admitted; B and C recompute
//           prompt + the output they had generated.
TEST(EngineScheduler, PreemptsNewestFirstAndRecomputes) {
  EngineConfig c = small_config(7, 8192);
  c.long_prefill_token_threshold = 32;
  Engine e(c);
  ASSERT_TRUE(e.add_request(req(1, 96, 1)));   // A
  ASSERT_TRUE(e.add_request(req(2, 16, 50)));  // B
  ASSERT_TRUE(e.add_request(req(3, 32, 50)));  // C
  const StepResult s1 = e.step(0);
  EXPECT_EQ(s1.num_prefill_tokens, 80);
  EXPECT_EQ(s1.tokens.size(), 2u);  // B and C emitted their first token
  EXPECT_EQ(e.num_free_blocks(), 2);

  ASSERT_TRUE(e.add_request(req(4, 4, 50)));  // D
  const StepResult s2 = e.step(s1.end);
  EXPECT_EQ(s2.preempted, (std::vector<RequestId>{3}));
  EXPECT_TRUE(s2.first_scheduled.empty());
  EXPECT_EQ(e.num_free_blocks(), 1);  // room for D, but it must wait
  EXPECT_EQ(e.num_waiting(), 2);
  EXPECT_EQ(e.counters().preemptions, 1u);

  const StepResult s3 = e.step(s2.end);
  EXPECT_EQ(s3.preempted, (std::vector<RequestId>{2}));
  ASSERT_EQ(s3.finished.size(), 1u);
  EXPECT_EQ(s3.finished[0].id, 1u);
  EXPECT_EQ(e.num_waiting(), 3);
  EXPECT_EQ(e.num_running(), 0);

  const StepResult s4 = e.step(s3.end);
  EXPECT_EQ(s4.first_scheduled, (std::vector<RequestId>{4}));
  // B recomputes 16 + 2 outputs; C 32 + 1 output, in a 32-token chunk first; D its 4.
  EXPECT_EQ(s4.num_prefill_tokens, 18 + 32 + 4);
  ASSERT_EQ(s4.tokens.size(), 2u);
  EXPECT_EQ(s4.tokens[0].id, 2u);
  EXPECT_EQ(s4.tokens[0].index, 2);  // B's output continues where it was
  EXPECT_EQ(s4.tokens[1].id, 4u);
  EXPECT_TRUE(s4.tokens[1].first);
  const StepResult s5 = e.step(s4.end);
  ASSERT_NE(token_of(s5, 3), nullptr);
  EXPECT_EQ(token_of(s5, 3)->index, 1);
  // The last token of C's recompute is one new token against its cached context, which the
  // step-time model prices as a decode.
  EXPECT_EQ(s5.num_prefill_tokens, 0);
  EXPECT_EQ(s5.num_decode_seqs, 3);
}

TEST(EngineScheduler, RequestThatIsItsOwnVictimStopsScheduling) {
  Engine e(small_config(3, 8192));
  ASSERT_TRUE(e.add_request(req(1, 20, 10)));  // 2 blocks, next token still fits
  ASSERT_TRUE(e.add_request(req(2, 16, 10)));  // 1 block, its decode needs a second
  const StepResult s1 = e.step(0);
  EXPECT_EQ(e.num_free_blocks(), 0);
  const StepResult s2 = e.step(s1.end);
  EXPECT_EQ(s2.preempted, (std::vector<RequestId>{2}));
  EXPECT_EQ(s2.num_scheduled_tokens, 1);
  ASSERT_EQ(s2.tokens.size(), 1u);
  EXPECT_EQ(s2.tokens[0].id, 1u);
  EXPECT_EQ(e.num_waiting(), 1);
}

// Pool of 3 blocks, chunks of 16 tokens. Step 2: A's decode takes the last free block, B's next
// chunk needs one more and B (the newest) is preempted, freeing a block that its first 16-token
// chunk would fit in; but nothing is admitted from waiting in a step that preempted.
TEST(EngineScheduler, NoWaitingAdmittedInAStepThatPreempted) {
  EngineConfig c = small_config(3, 8192);
  c.long_prefill_token_threshold = 16;
  Engine e(c);
  ASSERT_TRUE(e.add_request(req(1, 16, 10)));  // A
  ASSERT_TRUE(e.add_request(req(2, 32, 10)));  // B
  const StepResult s1 = e.step(0);
  EXPECT_EQ(s1.num_prefill_tokens, 32);
  EXPECT_EQ(e.num_free_blocks(), 1);
  const StepResult s2 = e.step(s1.end);
  EXPECT_EQ(s2.preempted, (std::vector<RequestId>{2}));
  EXPECT_EQ(e.num_free_blocks(), 1);
  EXPECT_EQ(e.num_running(), 1);
  EXPECT_EQ(e.num_waiting(), 1);
  EXPECT_EQ(s2.num_scheduled_tokens, 1);
  // Next step it is admitted again (A's decode fits in its 2 blocks).
  const StepResult s3 = e.step(s2.end);
  EXPECT_TRUE(s3.preempted.empty());
  EXPECT_EQ(s3.num_prefill_tokens, 16);
  EXPECT_EQ(e.num_running(), 2);
}

TEST(EngineScheduler, RejectsRequestsLargerThanThePoolAndDuplicates) {
  Engine e(small_config(4, 8192));
  EXPECT_FALSE(e.add_request(req(1, 60, 10)));  // 69 tokens > 64
  EXPECT_TRUE(e.add_request(req(2, 60, 5)));    // 64 tokens
  EXPECT_FALSE(e.add_request(req(2, 10, 5)));
  EXPECT_FALSE(e.add_request(req(3, 0, 5)));
  double now = 0;
  while (e.has_unfinished()) now = e.step(now).end;
  EXPECT_EQ(e.counters().generation_tokens, 5u);
}

TEST(EngineScheduler, TimingRecordsAndIdleSteps) {
  Engine e(small_config(1000, 8192));
  const StepResult idle = e.step(3.0);
  EXPECT_TRUE(idle.idle());
  EXPECT_EQ(idle.end, 3.0);
  EngineRequest r = req(1, 100, 3);
  r.arrival_time = 2.5;
  ASSERT_TRUE(e.add_request(r));
  const StepResult s1 = e.step(3.0);
  EXPECT_EQ(s1.first_scheduled, (std::vector<RequestId>{1}));
  ASSERT_EQ(s1.tokens.size(), 1u);
  EXPECT_TRUE(s1.tokens[0].first);
  const StepResult s2 = e.step(s1.end + 0.01);
  const StepResult s3 = e.step(s2.end);
  ASSERT_EQ(s3.finished.size(), 1u);
  const FinishedRequest& f = s3.finished[0];
  EXPECT_EQ(f.arrival_time, 2.5);
  EXPECT_EQ(f.first_scheduled_time, 3.0);
  EXPECT_EQ(f.first_token_time, s1.end);
  EXPECT_EQ(f.finish_time, s3.end);
  EXPECT_EQ(f.output_tokens, 3);
  EXPECT_EQ(s3.tokens[0].finished, FinishReason::kStop);
  EXPECT_EQ(s3.num_running_after, 0);
  EXPECT_EQ(e.kv_cache_usage(), 0.0);
  EXPECT_EQ(e.counters().steps, 3u);
}

TEST(EngineScheduler, AbortFreesBlocks) {
  Engine e(small_config(100, 8192));
  ASSERT_TRUE(e.add_request(req(1, 100, 10)));
  ASSERT_TRUE(e.add_request(req(2, 100, 10)));
  e.step(0);
  ASSERT_TRUE(e.add_request(req(3, 10, 10)));
  EXPECT_EQ(e.num_free_blocks(), 100 - 14);
  EXPECT_TRUE(e.abort_request(1));
  EXPECT_TRUE(e.abort_request(3));  // still waiting
  EXPECT_FALSE(e.abort_request(1));
  EXPECT_EQ(e.num_free_blocks(), 100 - 7);
  EXPECT_EQ(e.num_running(), 1);
  EXPECT_EQ(e.num_waiting(), 0);
  const StepResult s = e.step(1);
  ASSERT_EQ(s.tokens.size(), 1u);
  EXPECT_EQ(s.tokens[0].id, 2u);
}

TEST(EngineScheduler, StepIntoReusesResult) {
  Engine e(small_config(1000, 8192));
  for (RequestId id = 1; id <= 4; ++id) ASSERT_TRUE(e.add_request(req(id, 10, 20)));
  StepResult s;
  e.step(0, s);
  EXPECT_EQ(s.tokens.size(), 4u);
  EXPECT_EQ(s.first_scheduled.size(), 4u);
  e.step(s.end, s);
  EXPECT_EQ(s.tokens.size(), 4u);
  EXPECT_TRUE(s.first_scheduled.empty());
  EXPECT_EQ(s.num_decode_seqs, 4);
  EXPECT_EQ(s.num_prefill_tokens, 0);
}

}  // namespace
}  // namespace eta::engine
