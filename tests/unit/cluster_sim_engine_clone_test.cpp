// engine::Engine::clone(): a deep copy that steps exactly like the original and independently.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/engine.hpp"

namespace eta::engine {
namespace {

EngineConfig config(int num_blocks) {
  EngineConfig c;
  std::string error;
  EXPECT_TRUE(make_config(ProfileSet::builtin(), "llama-2-7b", "h100", c, error)) << error;
  c.num_gpu_blocks = num_blocks;
  c.max_num_batched_tokens = 512;
  c.max_num_seqs = 8;
  return c;
}

EngineRequest req(RequestId id, int prompt, int output, uint64_t first_hash) {
  EngineRequest r;
  r.id = id;
  r.prompt_tokens = prompt;
  r.output_tokens = output;
  r.finish_reason = FinishReason::kStop;
  r.output_seed = id * 7 + 1;
  for (int b = 0; b < prompt / 16; ++b) r.block_hashes.push_back(first_hash + b);
  return r;
}

void expect_same(const StepResult& a, const StepResult& b) {
  EXPECT_DOUBLE_EQ(a.start, b.start);
  EXPECT_DOUBLE_EQ(a.end, b.end);
  EXPECT_EQ(a.num_scheduled_tokens, b.num_scheduled_tokens);
  ASSERT_EQ(a.tokens.size(), b.tokens.size());
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    EXPECT_EQ(a.tokens[i].id, b.tokens[i].id);
    EXPECT_EQ(a.tokens[i].index, b.tokens[i].index);
    EXPECT_EQ(a.tokens[i].finished, b.tokens[i].finished);
  }
  ASSERT_EQ(a.finished.size(), b.finished.size());
  for (size_t i = 0; i < a.finished.size(); ++i) {
    EXPECT_EQ(a.finished[i].id, b.finished[i].id);
    EXPECT_EQ(a.finished[i].cached_prompt_tokens, b.finished[i].cached_prompt_tokens);
  }
  EXPECT_EQ(a.preempted, b.preempted);
}

TEST(EngineClone, StepsExactlyLikeTheOriginal) {
  // A small KV cache so that the copy has to reproduce preemptions and prefix-cache hits.
  Engine e(config(64));
  for (RequestId id = 0; id < 12; ++id) {
    // Requests 0..5 share their first blocks (prefix hits), the rest are distinct.
    ASSERT_TRUE(e.add_request(req(id, 100 + 20 * static_cast<int>(id), 40 + static_cast<int>(id),
                                  id < 6 ? 1000 : 5000 + 100 * id)));
  }
  double now = 0;
  StepResult r;
  for (int i = 0; i < 7; ++i) {
    e.step(now, r);
    now = r.end;
  }
  Engine copy = e.clone();
  EXPECT_EQ(copy.num_running(), e.num_running());
  EXPECT_EQ(copy.num_waiting(), e.num_waiting());
  EXPECT_EQ(copy.num_free_blocks(), e.num_free_blocks());
  EXPECT_EQ(copy.counters().steps, e.counters().steps);
  StepResult a, b;
  int steps = 0;
  while (e.has_unfinished()) {
    ASSERT_TRUE(copy.has_unfinished());
    e.step(now, a);
    copy.step(now, b);
    expect_same(a, b);
    now = a.end;
    ASSERT_LT(++steps, 10000);
  }
  EXPECT_FALSE(copy.has_unfinished());
  EXPECT_GT(e.counters().preemptions, 0u);
  EXPECT_GT(e.counters().prefix_cache_hits, 0u);
  EXPECT_EQ(copy.counters().preemptions, e.counters().preemptions);
  EXPECT_EQ(copy.counters().prefix_cache_hits, e.counters().prefix_cache_hits);
  EXPECT_EQ(copy.counters().generation_tokens, e.counters().generation_tokens);
}

TEST(EngineClone, CopyIsIndependent) {
  Engine e(config(256));
  ASSERT_TRUE(e.add_request(req(1, 64, 10, 10)));
  StepResult r;
  e.step(0, r);
  Engine copy = e.clone();
  ASSERT_TRUE(copy.add_request(req(2, 64, 10, 20)));
  EXPECT_EQ(copy.num_waiting(), 1);
  EXPECT_EQ(e.num_waiting(), 0);
  double now = r.end;
  while (copy.has_unfinished()) {
    copy.step(now, r);
    now = r.end;
  }
  // The original still holds request 1, mid-decode, with its blocks.
  EXPECT_TRUE(e.has_unfinished());
  EXPECT_EQ(e.num_running(), 1);
  EXPECT_LT(e.num_free_blocks(), 256);
  EXPECT_EQ(copy.num_free_blocks(), 256);
  EXPECT_TRUE(e.abort_request(1));
  EXPECT_FALSE(copy.abort_request(1));  // finished in the copy only
}

}  // namespace
}  // namespace eta::engine
