// The simulator's request preparation (vLLM's validation messages, max_tokens resolution, the
// generated text) and its `vllm:` metric families.
#include <gtest/gtest.h>

#include "engine/tokenizer.hpp"
#include "metrics/parse.hpp"
#include "metrics/registry.hpp"
#include "openai/request.hpp"
#include "vllm_sim/prepare.hpp"
#include "vllm_sim/sim_metrics.hpp"

namespace eta::vllm_sim {
namespace {

PrepareContext context() {
  PrepareContext c;
  c.model = "m";
  c.max_model_len = 100;
  c.block_size = 16;
  c.seed = 1;
  return c;
}

openai::RequestFields completion(std::string prompt, std::optional<int64_t> max_tokens) {
  openai::RequestFields f;
  f.endpoint = openai::Endpoint::kCompletions;
  f.model = "m";
  f.prompt_text = std::move(prompt);
  f.max_tokens = max_tokens;
  return f;
}

std::string words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += i == 0 ? "ab" : " ab";
  return s;
}

TEST(PrepareTest, Messages) {
  const openai::Error e = prompt_too_long_error(4096, 5000, 16);
  EXPECT_EQ(e.message,
            "You passed 5000 input tokens and requested 16 output tokens. However, the model's "
            "context length is only 4096 tokens, resulting in a maximum input length of 4080 "
            "tokens. Please reduce the length of the input prompt. (parameter=input_tokens, "
            "value=5000)");
  EXPECT_EQ(e.param, "input_tokens");
  EXPECT_EQ(e.type, "BadRequestError");
  const openai::Error m = max_tokens_too_large_error(5000, 4096);
  EXPECT_EQ(m.message,
            "max_tokens=5000 cannot be greater than max_model_len=max_total_tokens=4096.");
  EXPECT_EQ(m.param, "max_tokens");
}

TEST(PrepareTest, ValidatesAgainstContext) {
  PreparedRequest out;
  openai::Error err;
  ASSERT_EQ(engine::count_tokens(words(100)), 100);
  EXPECT_FALSE(prepare_request(completion(words(100), 16), context(), out, err));
  EXPECT_EQ(err.status, 400);
  EXPECT_EQ(err.message, prompt_too_long_error(100, 100, 16).message);

  EXPECT_FALSE(prepare_request(completion(words(90), 11), context(), out, err));
  EXPECT_EQ(err.message, prompt_too_long_error(100, 90, 11).message);
  EXPECT_FALSE(prepare_request(completion(words(9), 101), context(), out, err));
  EXPECT_EQ(err.param, "max_tokens");

  ASSERT_TRUE(prepare_request(completion(words(90), 10), context(), out, err));
  EXPECT_EQ(out.prompt_tokens, 90);
  EXPECT_EQ(out.max_tokens, 10);
  EXPECT_EQ(out.block_hashes.size(), 5u);  // 90 / 16 full blocks

  auto f = completion(words(3), 16);
  f.model = "other";
  EXPECT_FALSE(prepare_request(f, context(), out, err));
  EXPECT_EQ(err.status, 404);
  EXPECT_EQ(err.type, "NotFoundError");
  EXPECT_EQ(err.param, "model");
  EXPECT_EQ(err.message, "The model `other` does not exist.");
  f.model.clear();  // absent: the served model
  EXPECT_TRUE(prepare_request(f, context(), out, err));
}

TEST(PrepareTest, SamplesShareBlocksNotOutput) {
  PreparedRequest a, b;
  openai::Error err;
  const auto f = completion(words(40), 50);
  const auto tokens = prompt_token_ids(f, context());
  ASSERT_TRUE(prepare_tokens(f, tokens, context(), 0, a, err));
  ASSERT_TRUE(prepare_tokens(f, tokens, context(), 1, b, err));
  EXPECT_EQ(a.block_hashes, b.block_hashes);
  EXPECT_NE(a.output_seed, b.output_seed);
  PreparedRequest c;
  ASSERT_TRUE(prepare_request(f, context(), c, err));
  EXPECT_EQ(c.output_seed, a.output_seed);  // sample 0 is the n=1 request
}

TEST(PrepareTest, MediaPartsAddTokens) {
  auto f = completion("look", std::nullopt);
  f.endpoint = openai::Endpoint::kChat;
  f.media_parts = 2;
  PrepareContext ctx = context();
  ctx.media_part_tokens = 7;
  EXPECT_EQ(prompt_token_ids(f, ctx).size(), engine::tokenize("look").size() + 14);
}

TEST(PrepareTest, EchoWithZeroMaxTokensRunsOneStep) {
  auto f = completion(words(5), 0);
  f.echo = true;
  PreparedRequest out;
  openai::Error err;
  ASSERT_TRUE(prepare_request(f, context(), out, err));
  EXPECT_EQ(out.output.tokens, 1);
}

TEST(PrepareTest, Detokenize) {
  EXPECT_EQ(detokenize({1, 2}), engine::output_token_text(1, 0) + engine::output_token_text(2, 0));
  EXPECT_EQ(engine::count_tokens(detokenize({5, 6, 7})), 3);
}

TEST(PrepareTest, MaxTokensNoneRunsToContext) {
  PreparedRequest out;
  openai::Error err;
  auto f = completion(words(30), std::nullopt);
  f.endpoint = openai::Endpoint::kChat;
  f.ignore_eos = true;
  ASSERT_TRUE(prepare_request(f, context(), out, err));
  EXPECT_EQ(out.max_tokens, 70);
  EXPECT_EQ(out.output.tokens, 70);
  EXPECT_EQ(out.output.reason, engine::FinishReason::kLength);
}

TEST(PrepareTest, HiddenLengthAndDeterministicText) {
  PreparedRequest a, b, c;
  openai::Error err;
  auto f = completion("same prompt", 50);
  f.sim_output_tokens = 7;
  ASSERT_TRUE(prepare_request(f, context(), a, err));
  ASSERT_TRUE(prepare_request(f, context(), b, err));
  EXPECT_EQ(a.output.tokens, 7);
  EXPECT_EQ(a.output.reason, engine::FinishReason::kStop);
  EXPECT_EQ(a.output_seed, b.output_seed);
  EXPECT_EQ(generated_text(a.output_seed, 7), generated_text(b.output_seed, 7));
  EXPECT_EQ(engine::count_tokens(generated_text(a.output_seed, 7)), 7);
  ASSERT_TRUE(prepare_request(completion("other prompt", 50), context(), c, err));
  EXPECT_NE(a.output_seed, c.output_seed);
}

TEST(SimMetricsTest, Buckets125) {
  EXPECT_EQ(buckets_1_2_5(4096),
            (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}));
  EXPECT_EQ(buckets_1_2_5(5000),
            (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000}));
}

TEST(SimMetricsTest, FamiliesAndLabels) {
  metrics::Registry registry;
  SimMetricsConfig config;
  config.model_name = "m";
  config.engine.max_model_len = 4096;
  config.engine.num_gpu_blocks = 7000;
  SimMetrics m(registry, config);
  engine::FinishedRequest f;
  f.reason = engine::FinishReason::kStop;
  f.prompt_tokens = 10;
  f.output_tokens = 3;
  f.arrival_time = 1.0;
  f.first_scheduled_time = 1.5;
  f.first_token_time = 2.0;
  f.finish_time = 3.0;
  m.observe_finished(f, 16);
  m.observe_first_token(0.25);
  m.count_abort();

  metrics::ParsedMetrics parsed;
  std::string error;
  ASSERT_TRUE(metrics::parse_text(registry.render(), parsed, error)) << error;
  const metrics::Labels lbl = {{"model_name", "m"}, {"engine", "0"}};
  auto with = [&](std::string k, std::string v) {
    auto l = lbl;
    l.emplace_back(std::move(k), std::move(v));
    return l;
  };
  EXPECT_EQ(parsed.value("vllm:request_success_total", with("finished_reason", "stop")), 1);
  EXPECT_EQ(parsed.value("vllm:request_success_total", with("finished_reason", "abort")), 1);
  EXPECT_EQ(parsed.value("vllm:request_success_total", with("finished_reason", "length")), 0);
  EXPECT_EQ(parsed.value("vllm:e2e_request_latency_seconds_sum", lbl), 2.0);
  EXPECT_EQ(parsed.value("vllm:request_queue_time_seconds_sum", lbl), 0.5);
  EXPECT_EQ(parsed.value("vllm:request_prefill_time_seconds_sum", lbl), 0.5);
  EXPECT_EQ(parsed.value("vllm:request_decode_time_seconds_sum", lbl), 1.0);
  EXPECT_EQ(parsed.value("vllm:request_inference_time_seconds_sum", lbl), 1.5);
  EXPECT_EQ(parsed.value("vllm:time_to_first_token_seconds_count", lbl), 1);
  EXPECT_EQ(parsed.value("vllm:request_params_max_tokens_sum", lbl), 16);
  EXPECT_EQ(parsed.types["vllm:num_requests_running"], "gauge");
  EXPECT_EQ(parsed.types["vllm:time_to_first_token_seconds"], "histogram");
  const auto* info = parsed.find("vllm:cache_config_info");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(*info->label("num_gpu_blocks"), "7000");
  EXPECT_EQ(*info->label("engine"), "0");
  EXPECT_EQ(info->label("model_name"), nullptr);
}

}  // namespace
}  // namespace eta::vllm_sim
