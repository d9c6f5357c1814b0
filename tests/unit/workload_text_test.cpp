#include <gtest/gtest.h>

#include "engine/engine.hpp"
#include "engine/tokenizer.hpp"
#include "openai/request.hpp"
#include "workload/trace.hpp"
#include "workload/workload.hpp"

namespace eta::workload {
namespace {

WorkloadRequest make_request(std::vector<TextSegment> prompt, std::optional<Api> api = {}) {
  WorkloadRequest r;
  r.prompt = std::move(prompt);
  r.api = api;
  finalize_request(r, true);
  return r;
}

void expect_consistent(const WorkloadRequest& r) {
  const std::string text = server_prompt_text(r);
  EXPECT_EQ(engine::count_tokens(text), r.prompt_tokens);
  const auto ids = engine::tokenize(text);
  EXPECT_EQ(server_prompt_token_ids(r), ids);
  EXPECT_EQ(r.block_hashes, engine::chain_block_hashes(ids, kDefaultBlockSize));
}

TEST(WorkloadText, EveryWordIsOneToyToken) {
  for (int w = 0; w < kWordCount; ++w) {
    const std::string text = word_text(w);
    ASSERT_EQ(text.size(), 5u);
    ASSERT_EQ(engine::count_tokens(text), 1) << text;
    ASSERT_EQ(engine::tokenize(text).front(), word_token_id(w)) << text;
  }
  EXPECT_EQ(word_text(0), " waaa");
  EXPECT_EQ(word_text(kWordCount - 1), " wzzz");
}

TEST(WorkloadText, WordStreamsAreDeterministicAndSeeded) {
  EXPECT_EQ(word_at(42, 7), word_at(42, 7));
  int same = 0;
  for (int i = 0; i < 100; ++i) same += word_at(1, i) == word_at(2, i) ? 1 : 0;
  EXPECT_LT(same, 5);
}

TEST(WorkloadText, MooncakeEqualIdsGiveIdenticalPrefixes) {
  const auto a = make_request(mooncake_prompt({0, 1, 2}, 1400, 111));
  const auto b = make_request(mooncake_prompt({0, 1, 3}, 1300, 222));
  const auto c = make_request(mooncake_prompt({0, 4}, 600, 333));
  EXPECT_EQ(a.prompt_tokens, 1400);
  EXPECT_EQ(b.prompt_tokens, 1300);
  EXPECT_EQ(c.prompt_tokens, 600);
  const std::string ta = prompt_text(a);
  const std::string tb = prompt_text(b);
  const std::string tc = prompt_text(c);
  EXPECT_EQ(engine::count_tokens(ta), 1400);
  EXPECT_EQ(engine::count_tokens(tb), 1300);
  EXPECT_EQ(engine::count_tokens(tc), 600);
  // 1024 tokens of 5 bytes are shared by a and b, 512 by all three.
  EXPECT_EQ(ta.substr(0, 1024 * 5), tb.substr(0, 1024 * 5));
  EXPECT_NE(ta.substr(1024 * 5, 5 * 16), tb.substr(1024 * 5, 5 * 16));
  EXPECT_EQ(ta.substr(0, 512 * 5), tc.substr(0, 512 * 5));
  EXPECT_NE(ta.substr(512 * 5, 5 * 16), tc.substr(512 * 5, 5 * 16));
  // Hashes: 64 leading blocks equal for a/b, 32 for a/c, then they differ.
  ASSERT_EQ(a.block_hashes.size(), 1400u / 16);
  ASSERT_EQ(b.block_hashes.size(), 1300u / 16);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(a.block_hashes[i], b.block_hashes[i]) << i;
  EXPECT_NE(a.block_hashes[64], b.block_hashes[64]);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(a.block_hashes[i], c.block_hashes[i]) << i;
  EXPECT_NE(a.block_hashes[32], c.block_hashes[32]);
  expect_consistent(a);
  expect_consistent(b);
  expect_consistent(c);
}

TEST(WorkloadText, MooncakeInputLongerThanBlocksGetsUniqueTail) {
  const auto r = make_request(mooncake_prompt({9}, 700, 5));
  EXPECT_EQ(r.prompt_tokens, 700);
  ASSERT_EQ(r.prompt.size(), 2u);
  EXPECT_EQ(r.prompt[0].tokens, 512);
  EXPECT_EQ(r.prompt[1].tokens, 188);
  expect_consistent(r);
}

TEST(WorkloadText, MixedSegmentsTokenizeAsTheirSum) {
  const auto r = make_request({TextSegment::text("System: be brief.\n"), TextSegment::words(3, 40),
                               TextSegment::output(77, 33), TextSegment::text("\n\nQ:"),
                               TextSegment::words(4, 21)});
  EXPECT_EQ(r.content_tokens, engine::count_tokens("System: be brief.\n") + 40 + 33 +
                                  engine::count_tokens("\n\nQ:") + 21);
  expect_consistent(r);
  // The output segment is the simulator's text.
  std::string expected_output;
  for (int i = 0; i < 33; ++i) expected_output += engine::output_token_text(77, i);
  EXPECT_NE(prompt_text(r).find(expected_output), std::string::npos);
}

TEST(WorkloadText, ChatRendersTheToyTemplateAndKeepsTheLength) {
  EXPECT_EQ(chat_template_tokens(), 15);
  const auto completions = make_request({TextSegment::words(8, 300)});
  const auto chat = make_request({TextSegment::words(8, 300)}, Api::kChat);
  EXPECT_EQ(completions.prompt_tokens, 300);
  EXPECT_EQ(chat.prompt_tokens, 300);
  const std::string content = prompt_text(chat);
  EXPECT_EQ(engine::count_tokens(content), 285);
  EXPECT_EQ(server_prompt_text(chat), "<|user|>\n" + content + "\n<|assistant|>\n");
  EXPECT_EQ(server_prompt_text(chat), openai::render_chat_prompt({{"user", content}}));
  EXPECT_EQ(prompt_text(completions).substr(0, content.size()), content);
  expect_consistent(chat);
  expect_consistent(completions);
  // A tiny prompt keeps one content token.
  const auto tiny = make_request({TextSegment::words(8, 3)}, Api::kChat);
  EXPECT_EQ(tiny.prompt_tokens, 16);
  expect_consistent(tiny);
}

TEST(WorkloadText, SetApiRecomputesHashes) {
  Workload w;
  w.has_block_hashes = true;
  w.requests.push_back(make_request({TextSegment::words(1, 100)}));
  const auto before = w.requests[0].block_hashes;
  set_api(w, Api::kChat);
  EXPECT_NE(w.requests[0].block_hashes, before);
  expect_consistent(w.requests[0]);
  set_api(w, Api::kCompletions);
  EXPECT_EQ(w.requests[0].block_hashes, before);
}

}  // namespace
}  // namespace eta::workload
