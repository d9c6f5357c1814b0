// The simulator's extra routes: request parsing and the deterministic figures (vllm_sim/api).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "engine/tokenizer.hpp"
#include "vllm_sim/api.hpp"

namespace eta::vllm_sim::api {
namespace {

TEST(SimApi, PoolingInputs) {
  PoolingRequest r;
  openai::Error e;
  ASSERT_TRUE(
      parse_pooling(PoolingKind::kEmbed, R"({"input":["a b","c"],"dimensions":"8"})", r, e));
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[0], engine::tokenize("a b"));
  EXPECT_EQ(r.dimensions, 8);
  ASSERT_TRUE(parse_pooling(PoolingKind::kEmbed, R"({"input":[[1,2],[3]]})", r, e));
  EXPECT_EQ(r.prompts[1], std::vector<uint32_t>{3});
  EXPECT_FALSE(parse_pooling(PoolingKind::kEmbed, R"({"model":"m"})", r, e));
  EXPECT_EQ(e.type, "Bad Request");
  EXPECT_FALSE(parse_pooling(PoolingKind::kEmbed, "{oops", r, e));
  EXPECT_EQ(e.status, 400);
  // Score: one side may be a single text, paired with each of the other.
  ASSERT_TRUE(parse_pooling(PoolingKind::kScore, R"({"text_1":"q","text_2":["x","y"]})", r, e));
  EXPECT_EQ(r.prompts.size(), 2u);
  EXPECT_FALSE(
      parse_pooling(PoolingKind::kScore, R"({"text_1":["a","b"],"text_2":["x","y","z"]})", r, e));
  ASSERT_TRUE(parse_pooling(PoolingKind::kRerank,
                            R"({"query":"q","documents":["x",{"text":"y"}],"top_n":1})", r, e));
  EXPECT_EQ(r.documents, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(r.top_n, 1);
}

TEST(SimApi, EmbeddingsAreDeterministicUnitVectors) {
  const auto a = embedding(engine::tokenize("hello"), 16);
  EXPECT_EQ(a, embedding(engine::tokenize("hello"), 16));
  EXPECT_NE(a, embedding(engine::tokenize("world"), 16));
  double norm = 0;
  for (double x : a) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-12);
  const double s = pair_score({1, 2, 3});
  EXPECT_GT(s, 0);
  EXPECT_LT(s, 1);
  EXPECT_EQ(s, pair_score({1, 2, 3}));
}

TEST(SimApi, Multipart) {
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
      "Content-Type: audio/wav\r\n\r\nRIFF\r\nbytes\r\n--XyZ--\r\n";
  std::vector<FormField> f;
  ASSERT_TRUE(parse_multipart("multipart/form-data; boundary=XyZ", body, f));
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].name, "model");
  EXPECT_EQ(f[0].value, "m");
  EXPECT_EQ(f[1].name, "file");
  EXPECT_EQ(f[1].filename, "a.wav");
  EXPECT_EQ(f[1].value, "RIFF\r\nbytes");
  EXPECT_FALSE(parse_multipart("application/json", body, f));
  EXPECT_FALSE(parse_multipart("multipart/form-data; boundary=XyZ", "--XyZ\r\nbroken", f));
}

TEST(SimApi, AudioDurationRule) {
  // A WAV header: 16 kHz mono 16-bit (byte rate 32000) with 64000 data bytes = 2 s.
  std::string wav = "RIFF";
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) wav += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  auto u16 = [&](uint16_t v) {
    wav += static_cast<char>(v & 0xff);
    wav += static_cast<char>(v >> 8);
  };
  u32(36 + 64000);
  wav += "WAVEfmt ";
  u32(16);
  u16(1);
  u16(1);
  u32(16000);
  u32(32000);
  u16(2);
  u16(16);
  wav += "data";
  u32(64000);
  wav += std::string(64000, '\0');
  EXPECT_DOUBLE_EQ(audio_seconds(wav), 2.0);
  EXPECT_DOUBLE_EQ(audio_seconds(std::string(32000, 'x')), 2.0);  // 16000 bytes per second
  EXPECT_EQ(audio_prompt_tokens(2.0), 100);
  EXPECT_EQ(audio_output_tokens(2.0), 6);
  EXPECT_EQ(audio_output_tokens(0.01), 1);
}

TEST(SimApi, ResponsesAndMessagesParse) {
  openai::RequestFields f;
  bool store = false, background = true;
  openai::Error e;
  ASSERT_TRUE(parse_responses(
      R"({"input":[{"role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"x"}]}],"instructions":"be kind","max_output_tokens":"5"})",
      f, store, background, e))
      << e.message;
  EXPECT_TRUE(store);
  EXPECT_FALSE(background);
  EXPECT_EQ(f.max_tokens, 5);
  EXPECT_EQ(f.media_parts, 1);
  EXPECT_EQ(f.prompt_text, "<|system|>\nbe kind\n<|user|>\nhi\n<|assistant|>\n");
  EXPECT_FALSE(parse_responses(R"({"model":"m"})", f, store, background, e));
  EXPECT_FALSE(
      parse_responses(R"({"input":"x","background":true,"store":false})", f, store, background, e));
  ASSERT_TRUE(parse_messages(
      R"({"max_tokens":9,"system":"s","messages":[{"role":"user","content":"hi"}]})", false, f, e));
  EXPECT_EQ(f.max_tokens, 9);
  EXPECT_EQ(f.prompt_text, "<|system|>\ns\n<|user|>\nhi\n<|assistant|>\n");
  EXPECT_FALSE(parse_messages(R"({"messages":[]})", false, f, e));  // max_tokens required
  EXPECT_TRUE(parse_messages(R"({"messages":[]})", true, f, e));    // not for count_tokens
  EXPECT_EQ(anthropic_error_body(openai::bad_request("bad")),
            R"({"type":"error","error":{"type":"invalid_request_error","message":"bad"}})");
}

}  // namespace
}  // namespace eta::vllm_sim::api
