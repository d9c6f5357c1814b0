// The router's lenient request reading (openai/extract.hpp): every request vLLM accepts is read,
// nothing is refused, and what cannot be read is left unknown.
#include <gtest/gtest.h>

#include <string>

#include "engine/tokenizer.hpp"
#include "openai/extract.hpp"
#include "openai/request.hpp"

namespace eta::openai {
namespace {

ExtractedRequest extract(Api api, const std::string& body, const ExtractOptions& o = {}) {
  ExtractedRequest r;
  extract_request(api, body, "application/json", o, r);
  return r;
}

TEST(OpenaiExtract, ModelIsOptional) {
  EXPECT_EQ(extract(Api::kCompletions, R"({"prompt":"hi"})").model, "");
  EXPECT_EQ(extract(Api::kCompletions, R"({"model":null,"prompt":"hi"})").model, "");
  EXPECT_EQ(extract(Api::kCompletions, R"({"model":"","prompt":"hi"})").model, "");
  EXPECT_EQ(extract(Api::kCompletions, R"({"model":7,"prompt":"hi"})").model, "");
  EXPECT_EQ(extract(Api::kCompletions, R"({"model":"m","prompt":"hi"})").model, "m");
  EXPECT_TRUE(extract(Api::kCompletions, R"({"prompt":"hi"})").readable);
}

TEST(OpenaiExtract, LaxTypes) {
  const ExtractedRequest r = extract(
      Api::kCompletions, R"({"model":"m","prompt":"x","max_tokens":"16","stream":"true","n":"2"})");
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(extract(Api::kCompletions, R"({"prompt":"x","max_tokens":32.0})").max_tokens, 32);
}

TEST(OpenaiExtract, MaxTokensDefaults) {
  // completions: absent or null -> 16 (vLLM 2026)
  EXPECT_EQ(extract(Api::kCompletions, R"({"prompt":"x"})").max_tokens, 16);
  EXPECT_EQ(extract(Api::kCompletions, R"({"prompt":"x","max_tokens":null})").max_tokens, 16);
  // echo with max_tokens 0: the prompt only, no decode
  const ExtractedRequest echo =
      extract(Api::kCompletions, R"({"prompt":"x","max_tokens":0,"echo":true})");
  EXPECT_FALSE(echo.decode);
  // chat: max_completion_tokens wins; none -> up to the context
  EXPECT_FALSE(extract(Api::kChat, R"({"messages":[]})").max_tokens.has_value());
  EXPECT_FALSE(extract(Api::kChat, R"({"messages":[],"max_tokens":null})").max_tokens.has_value());
  EXPECT_EQ(
      extract(Api::kChat, R"({"messages":[],"max_tokens":5,"max_completion_tokens":9})").max_tokens,
      9);
  EXPECT_EQ(extract(Api::kResponses, R"({"input":"hi","max_output_tokens":33})").max_tokens, 33);
  EXPECT_EQ(extract(Api::kMessages, R"({"messages":[],"max_tokens":44})").max_tokens, 44);
}

TEST(OpenaiExtract, NAndBestOf) {
  EXPECT_EQ(extract(Api::kCompletions, R"({"prompt":"x","n":3})").n, 3);
  EXPECT_EQ(extract(Api::kCompletions, R"({"prompt":"x","n":2,"best_of":5})").n, 5);
  EXPECT_EQ(extract(Api::kChat, R"({"messages":[],"n":4})").n, 4);
  EXPECT_EQ(extract(Api::kCompletions, R"({"prompt":"x","n":"junk"})").n, 1);
}

TEST(OpenaiExtract, BatchAndTokenPrompts) {
  const ExtractedRequest batch =
      extract(Api::kCompletions, R"({"prompt":["one two three","four five","six"]})");
  EXPECT_EQ(batch.prompts, 3);
  EXPECT_EQ(batch.prompt_text, "one two three");
  EXPECT_EQ(batch.extra_prompt_tokens,
            engine::count_tokens("four five") + engine::count_tokens("six"));
  const ExtractedRequest ids = extract(Api::kCompletions, R"({"prompt":[1,2,3,4]})");
  EXPECT_TRUE(ids.prompt_is_tokens);
  EXPECT_EQ(ids.prompt_token_ids, (std::vector<uint32_t>{1, 2, 3, 4}));
  EXPECT_EQ(ids.prompts, 1);
  const ExtractedRequest ids2 = extract(Api::kCompletions, R"({"prompt":[[1,2],[3,4,5]]})");
  EXPECT_EQ(ids2.prompts, 2);
  EXPECT_EQ(ids2.prompt_token_ids, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(ids2.extra_prompt_tokens, 3);
}

TEST(OpenaiExtract, ChatMatchesTheSimulatorsTemplate) {
  const std::string body =
      R"({"model":"m","messages":[{"role":"system","content":"be brief"},)"
      R"({"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]})";
  RequestFields f;
  Error e;
  ASSERT_TRUE(parse_request(Endpoint::kChat, body, f, e)) << e.message;
  EXPECT_EQ(extract(Api::kChat, body).prompt_text, f.prompt_text);
}

TEST(OpenaiExtract, MultimodalPartsAddTheirEstimate) {
  ExtractOptions o;
  o.image_tokens = 100;
  o.audio_tokens = 10;
  o.video_tokens = 1000;
  const ExtractedRequest r = extract(
      Api::kChat,
      R"({"messages":[{"role":"user","content":[{"type":"text","text":"look"},)"
      R"({"type":"image_url","image_url":{"url":"data:x"}},{"type":"image_url","image_url":{"url":"y"}},)"
      R"({"type":"input_audio","input_audio":{"data":"z","format":"wav"}},)"
      R"({"type":"video_url","video_url":{"url":"v"}}]}]})",
      o);
  EXPECT_EQ(r.extra_prompt_tokens, 2 * 100 + 10 + 1000);
  EXPECT_NE(r.prompt_text.find("look"), std::string::npos);
}

TEST(OpenaiExtract, StreamOptionsAndSession) {
  const ExtractedRequest r = extract(
      Api::kChat,
      R"({"messages":[],"stream":true,"stream_options":{"include_usage":true},"session_id":"s"})");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.stream_options_sent);
  EXPECT_TRUE(r.include_usage);
  EXPECT_FALSE(r.continuous_usage_stats);
  EXPECT_EQ(r.session_id, "s");
  // {} is not "sent" (vLLM's validate_stream_options passes it without stream)
  EXPECT_FALSE(extract(Api::kChat, R"({"messages":[],"stream_options":{}})").stream_options_sent);
}

TEST(OpenaiExtract, PoolingRoutesDoNotDecode) {
  for (Api api :
       {Api::kEmbeddings, Api::kPooling, Api::kClassify, Api::kScore, Api::kRerank, Api::kTokenize,
        Api::kDetokenize, Api::kCountTokens, Api::kChatRender, Api::kCompletionsRender}) {
    const ExtractedRequest r = extract(api, R"({"model":"m","input":"a b","n":3})");
    EXPECT_FALSE(r.decode) << static_cast<int>(api);
    EXPECT_EQ(r.n, 1);
    EXPECT_EQ(r.model, "m");
  }
  const ExtractedRequest rr =
      extract(Api::kRerank, R"({"query":"q","documents":["d1","d2",{"text":"d3"}]})");
  EXPECT_EQ(rr.prompts, 3);
  const ExtractedRequest sc = extract(Api::kScore, R"({"text_1":"q","text_2":["a","b"]})");
  EXPECT_EQ(sc.prompts, 2);
}

TEST(OpenaiExtract, ResponsesAndMessages) {
  const ExtractedRequest r = extract(
      Api::kResponses,
      R"({"model":"m","instructions":"sys","input":[{"role":"user","content":)"
      R"([{"type":"input_text","text":"hello"},{"type":"input_image","image_url":"u"}]}]})");
  EXPECT_NE(r.prompt_text.find("<|system|>\nsys"), std::string::npos);
  EXPECT_NE(r.prompt_text.find("hello"), std::string::npos);
  EXPECT_EQ(r.extra_prompt_tokens, ExtractOptions{}.image_tokens);
  const ExtractedRequest m = extract(
      Api::kMessages,
      R"({"model":"m","system":[{"type":"text","text":"sys"}],"max_tokens":8,"stream":true,)"
      R"("messages":[{"role":"user","content":"hi"}]})");
  EXPECT_NE(m.prompt_text.find("<|system|>\nsys"), std::string::npos);
  EXPECT_TRUE(m.stream);
  EXPECT_EQ(m.max_tokens, 8);
}

TEST(OpenaiExtract, UnreadableBodiesAreNotRefused) {
  for (const char* body : {"", "not json", "[1,2]", "{\"prompt\":", "null", "{\"prompt\":{}}"}) {
    const ExtractedRequest r = extract(Api::kCompletions, body);
    EXPECT_EQ(r.model, "") << body;
    EXPECT_EQ(r.n, 1);
  }
  EXPECT_FALSE(extract(Api::kCompletions, "not json").readable);
}

TEST(OpenaiExtract, MultipartAudio) {
  const std::string ct = "multipart/form-data; boundary=XyZ";
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
      "Content-Type: audio/wav\r\n\r\nRIFF....model....\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-x\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"stream\"\r\n\r\ntrue\r\n--XyZ--\r\n";
  ExtractedRequest r;
  extract_request(Api::kAudio, body, ct, {}, r);
  EXPECT_EQ(r.model, "whisper-x");
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.extra_prompt_tokens, ExtractOptions{}.audio_tokens);
  EXPECT_EQ(multipart_field(body, ct, "file"), std::nullopt);  // a file is not a field
  EXPECT_EQ(multipart_field(body, "multipart/form-data; boundary=\"XyZ\"", "model"), "whisper-x");
  EXPECT_EQ(multipart_field(body, "multipart/form-data", "model"), std::nullopt);
}

TEST(OpenaiExtract, FindMember) {
  const std::string t = R"({"a":1,"usage":{"x":[1,"}"]},"b":"s\"q"})";
  auto m = find_member(t, "usage");
  ASSERT_TRUE(m);
  EXPECT_EQ(t.substr(m->value_begin, m->value_end - m->value_begin), R"({"x":[1,"}"]})");
  std::string cut = t;
  cut.erase(m->member_begin, m->member_end - m->member_begin);
  EXPECT_EQ(cut, R"({"a":1,"b":"s\"q"})");
  const std::string last = R"({"a":1, "usage":null})";
  m = find_member(last, "usage");
  ASSERT_TRUE(m);
  cut = last;
  cut.erase(m->member_begin, m->member_end - m->member_begin);
  EXPECT_EQ(cut, R"({"a":1})");
  const std::string only = R"({"usage":2})";
  m = find_member(only, "usage");
  ASSERT_TRUE(m);
  cut = only;
  cut.erase(m->member_begin, m->member_end - m->member_begin);
  EXPECT_EQ(cut, "{}");
  EXPECT_FALSE(find_member(R"({"b":{"usage":1}})", "usage"));
  EXPECT_FALSE(find_member("[1]", "usage"));
}

}  // namespace
}  // namespace eta::openai
