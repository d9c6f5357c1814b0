#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "openai/request.hpp"

namespace eta::openai {
namespace {

RequestFields parse_ok(Endpoint endpoint, const std::string& body) {
  RequestFields out;
  Error error;
  EXPECT_TRUE(parse_request(endpoint, body, out, error))
      << body << " -> " << error.message << " (param " << error.param << ")";
  return out;
}

RequestFields completion(const std::string& body) {
  return parse_ok(Endpoint::kCompletions, body);
}
RequestFields chat(const std::string& body) {
  return parse_ok(Endpoint::kChat, body);
}

// A refusal with status 400; `type` "Bad Request" for what vLLM's pydantic model refuses
// (kValidation), "BadRequestError" for what its serving code refuses (kServing).
enum Kind { kValidation, kServing };

Error parse_fail(Endpoint endpoint, const std::string& body, Kind kind) {
  RequestFields out;
  Error error;
  EXPECT_FALSE(parse_request(endpoint, body, out, error)) << "accepted: " << body;
  EXPECT_EQ(error.status, 400);
  EXPECT_EQ(error.type, kind == kValidation ? "Bad Request" : "BadRequestError") << body;
  EXPECT_FALSE(error.message.empty());
  return error;
}

Error completion_fail(const std::string& body, Kind kind = kValidation) {
  return parse_fail(Endpoint::kCompletions, body, kind);
}
Error chat_fail(const std::string& body, Kind kind = kValidation) {
  return parse_fail(Endpoint::kChat, body, kind);
}

// A pydantic type error: param null (vLLM sets it only for its own validators), the field's
// location in the message.
void expect_type_error(const Error& e, const std::string& loc) {
  EXPECT_EQ(e.type, "Bad Request");
  EXPECT_TRUE(e.param.empty()) << e.param;
  EXPECT_NE(e.message.find(loc), std::string::npos) << e.message;
}

// A vLLM validator or SamplingParams error: the field in `param` and in the message.
void expect_field_error(const Error& e, const std::string& param) {
  EXPECT_EQ(e.param, param) << e.message;
  EXPECT_NE(e.message.find(param), std::string::npos) << e.message;
}

constexpr const char* kChatMessages = R"("messages":[{"role":"user","content":"hi"}])";

std::string chat_body(const std::string& extra) {
  return std::string(R"({"model":"m",)") + kChatMessages + (extra.empty() ? "" : ",") + extra + "}";
}
std::string completion_body(const std::string& extra) {
  return std::string(R"({"model":"m","prompt":"hello")") + (extra.empty() ? "" : ",") + extra + "}";
}

TEST(OpenaiRequest, CompletionWithStringPrompt) {
  const auto r = completion(R"({"model":"llama","prompt":"Hello world"})");
  EXPECT_EQ(r.endpoint, Endpoint::kCompletions);
  EXPECT_EQ(r.model, "llama");
  EXPECT_EQ(r.prompt_text, "Hello world");
  EXPECT_FALSE(r.prompt_is_tokens);
  EXPECT_TRUE(r.prompt_token_ids.empty());
  EXPECT_EQ(r.max_tokens, kDefaultCompletionMaxTokens);
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.has_stream_options);
  EXPECT_FALSE(r.include_usage);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.ignore_eos);
  EXPECT_EQ(r.min_tokens, 0);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_FALSE(r.sim_output_tokens);
}

TEST(OpenaiRequest, CompletionPromptForms) {
  EXPECT_EQ(completion(R"({"model":"m","prompt":["only one"]})").prompt_text, "only one");
  const auto ids = completion(R"({"model":"m","prompt":[1, 2, 4294967295]})");
  EXPECT_TRUE(ids.prompt_is_tokens);
  EXPECT_EQ(ids.prompt_token_ids, (std::vector<uint32_t>{1, 2, 4294967295u}));
  EXPECT_TRUE(ids.prompt_text.empty());
  ASSERT_EQ(ids.prompts.size(), 1u);
  const auto nested = completion(R"({"model":"m","prompt":[[7, 8, 9]]})");
  EXPECT_TRUE(nested.prompt_is_tokens);
  EXPECT_EQ(nested.prompt_token_ids, (std::vector<uint32_t>{7, 8, 9}));
  // Lax ints inside token lists.
  EXPECT_EQ(completion(R"({"model":"m","prompt":[1, "2", 3.0]})").prompt_token_ids,
            (std::vector<uint32_t>{1, 2, 3}));
  // An empty token list passes validation (the engine then refuses an empty prompt).
  EXPECT_TRUE(completion(R"({"model":"m","prompt":[]})").prompt_token_ids.empty());
}

TEST(OpenaiRequest, CompletionBatches) {
  const auto texts = completion(R"({"model":"m","prompt":["a","b c","d"],"n":2})");
  ASSERT_EQ(texts.prompts.size(), 3u);
  EXPECT_EQ(texts.prompts[1].text, "b c");
  EXPECT_FALSE(texts.prompts[1].is_tokens);
  EXPECT_EQ(texts.prompt_text, "a");  // the first prompt, for callers that route by one
  EXPECT_EQ(texts.n, 2);
  const auto lists = completion(R"({"model":"m","prompt":[[1,2],[3],[]]})");
  ASSERT_EQ(lists.prompts.size(), 3u);
  EXPECT_TRUE(lists.prompts[0].is_tokens);
  EXPECT_EQ(lists.prompts[1].token_ids, std::vector<uint32_t>{3});
  EXPECT_TRUE(lists.prompts[2].token_ids.empty());
  EXPECT_EQ(lists.prompt_token_ids, (std::vector<uint32_t>{1, 2}));
}

TEST(OpenaiRequest, CompletionRejectsBadPrompts) {
  // vLLM's validate_prompt_and_prompt_embeds: param "prompt".
  for (const char* body :
       {R"({"model":"m"})", R"({"model":"m","prompt":null})", R"({"model":"m","prompt":""})"}) {
    const auto e = completion_fail(body);
    expect_field_error(e, "prompt");
    EXPECT_NE(e.message.find("Either prompt or prompt_embeds must be provided and non-empty."),
              std::string::npos)
        << e.message;
  }
  // pydantic's union of prompt types: param null, "prompt" in the message.
  for (const char* body :
       {R"({"model":"m","prompt":42})", R"({"model":"m","prompt":{"text":"x"}})",
        R"({"model":"m","prompt":[1,-2]})", R"({"model":"m","prompt":[1,2.5]})",
        R"({"model":"m","prompt":["a",1]})", R"({"model":"m","prompt":[[1],"a"]})",
        R"({"model":"m","prompt":[null]})"}) {
    expect_type_error(completion_fail(body), "prompt");
  }
  // Beyond the toy vocabulary's 32-bit ids.
  expect_field_error(completion_fail(R"({"model":"m","prompt":[1,4294967296]})", kServing),
                     "prompt");
}

TEST(OpenaiRequest, BodyMustBeAJsonObject) {
  for (const char* body : {"[1,2]", "\"text\"", "42", "null"}) {
    const auto e = completion_fail(body);
    EXPECT_NE(e.message.find("valid dictionary"), std::string::npos) << e.message;
    EXPECT_TRUE(e.param.empty());
  }
  EXPECT_NE(completion_fail(R"({"model":"m",)").message.find("JSON decode error"),
            std::string::npos);
  EXPECT_NE(completion_fail(R"({"model":"m"} trailing)").message.find("JSON decode error"),
            std::string::npos);
  EXPECT_NE(completion_fail("").message.find("empty"), std::string::npos);
}

TEST(OpenaiRequest, InvalidUtf8IsRejected) {
  const std::string body = "{\"model\":\"m\",\"prompt\":\"bad \xff\xfe bytes\"}";
  const auto e = completion_fail(body);
  EXPECT_NE(e.message.find("UTF-8"), std::string::npos) << e.message;
  // Overlong encoding of '/' and a lone continuation byte.
  EXPECT_NE(completion_fail("{\"model\":\"\xc0\xaf\",\"prompt\":\"x\"}").message.find("UTF-8"),
            std::string::npos);
  EXPECT_NE(completion_fail("{\"model\":\"m\",\"prompt\":\"\x80\"}").message.find("UTF-8"),
            std::string::npos);
  // Valid multi-byte UTF-8 is fine.
  EXPECT_EQ(completion("{\"model\":\"m\",\"prompt\":\"h\xc3\xa9llo \xe2\x82\xac\"}").prompt_text,
            "h\xc3\xa9llo \xe2\x82\xac");
}

TEST(OpenaiRequest, ModelIsOptional) {
  EXPECT_EQ(completion(R"({"prompt":"x"})").model, "");
  EXPECT_EQ(completion(R"({"model":null,"prompt":"x"})").model, "");
  EXPECT_EQ(chat(std::string("{") + kChatMessages + "}").model, "");
  expect_type_error(completion_fail(R"({"model":7,"prompt":"x"})"), "model");
}

TEST(OpenaiRequest, ChatMessagesAndTemplate) {
  const auto r = chat(
      R"({"model":"m","messages":[
        {"role":"system","content":"Be brief."},
        {"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":"part two"}]},
        {"role":"assistant","content":null,"tool_calls":[]},
        {"role":"user","content":"again","name":"bob"}]})");
  EXPECT_EQ(r.endpoint, Endpoint::kChat);
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "Be brief.");
  EXPECT_EQ(r.messages[1].content, "part one\npart two");
  EXPECT_EQ(r.messages[2].role, "assistant");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.prompt_text,
            "<|system|>\nBe brief.\n<|user|>\npart one\npart two\n<|assistant|>\n\n<|user|>\n"
            "again\n<|assistant|>\n");
  EXPECT_FALSE(r.prompt_is_tokens);
  EXPECT_FALSE(r.max_tokens);  // chat: up to the context limit
}

TEST(OpenaiRequest, RenderChatPrompt) {
  EXPECT_EQ(render_chat_prompt({}), "<|assistant|>\n");
  EXPECT_EQ(render_chat_prompt({{"user", "Hi"}}), "<|user|>\nHi\n<|assistant|>\n");
  EXPECT_EQ(render_chat_prompt({{"system", "S"}, {"user", "U"}, {"assistant", "A"}}),
            "<|system|>\nS\n<|user|>\nU\n<|assistant|>\nA\n<|assistant|>\n");
}

TEST(OpenaiRequest, ChatContentParts) {
  const auto r = chat(
      R"({"messages":[{"role":"user","content":[
        {"type":"text","text":"look"},
        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},
        {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}},
        {"type":"video_url","video_url":{"url":"http://x/v.mp4"}},
        {"image_url":"http://x/y.png"},
        "and this"]}]})");
  EXPECT_EQ(r.messages[0].content, "look\nand this");
  EXPECT_EQ(r.media_parts, 4);
  EXPECT_EQ(chat(chat_body("")).media_parts, 0);
  // An empty list passes vLLM's model (the template renders the generation prompt only).
  EXPECT_TRUE(chat(R"({"model":"m","messages":[]})").messages.empty());
}

TEST(OpenaiRequest, ChatRejectsBadMessages) {
  expect_type_error(chat_fail(R"({"model":"m"})"), "messages");
  expect_type_error(chat_fail(R"({"model":"m","messages":"hi"})"), "messages");
  expect_type_error(chat_fail(R"({"model":"m","messages":["hi"]})"), "messages.0");
  expect_type_error(chat_fail(R"({"model":"m","messages":[{"content":"hi"}]})"), "messages.0.role");
  expect_type_error(chat_fail(R"({"model":"m","messages":[{"role":1,"content":"hi"}]})"),
                    "messages.0.role");
  expect_type_error(
      chat_fail(
          R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":5}]})"),
      "messages.1.content");
  expect_type_error(
      chat_fail(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]})"),
      "messages.0.content");
  const auto unknown = chat_fail(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"hologram"}]}]})", kServing);
  EXPECT_EQ(unknown.message, "Unknown part type: hologram");
}

TEST(OpenaiRequest, ChatMaxCompletionTokensWinsOverMaxTokens) {
  EXPECT_EQ(chat(chat_body(R"("max_tokens":50)")).max_tokens, 50);
  EXPECT_EQ(chat(chat_body(R"("max_completion_tokens":70)")).max_tokens, 70);
  EXPECT_EQ(chat(chat_body(R"("max_tokens":50,"max_completion_tokens":70)")).max_tokens, 70);
  EXPECT_EQ(chat(chat_body(R"("max_completion_tokens":70,"max_tokens":50)")).max_tokens, 70);
  EXPECT_EQ(chat(chat_body(R"("max_completion_tokens":null,"max_tokens":50)")).max_tokens, 50);
  EXPECT_FALSE(chat(chat_body(R"("max_tokens":null)")).max_tokens);
  expect_field_error(chat_fail(chat_body(R"("max_completion_tokens":0)"), kServing), "max_tokens");
}

TEST(OpenaiRequest, MaxTokensRules) {
  EXPECT_EQ(completion(completion_body(R"("max_tokens":128)")).max_tokens, 128);
  EXPECT_EQ(completion(completion_body(R"("max_tokens":128.0)")).max_tokens, 128);
  EXPECT_EQ(completion(completion_body(R"("max_tokens":"16")")).max_tokens, 16);  // lax int
  EXPECT_EQ(completion(completion_body(R"("max_tokens":" 32 ")")).max_tokens, 32);
  // vLLM normalises null to the default 16.
  EXPECT_EQ(completion(completion_body(R"("max_tokens":null)")).max_tokens, 16);
  // max_completion_tokens is not a completions field: ignored.
  EXPECT_EQ(completion(completion_body(R"("max_completion_tokens":5)")).max_tokens, 16);
  // echo with max_tokens 0: the prompt only.
  const auto echo = completion(completion_body(R"("echo":true,"max_tokens":0)"));
  EXPECT_TRUE(echo.echo);
  EXPECT_EQ(echo.max_tokens, 0);
  const auto zero = completion_fail(completion_body(R"("max_tokens":0)"), kServing);
  EXPECT_EQ(zero.param, "max_tokens");
  EXPECT_EQ(zero.message, "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)");
  expect_field_error(completion_fail(completion_body(R"("max_tokens":-5)"), kServing),
                     "max_tokens");
  expect_type_error(completion_fail(completion_body(R"("max_tokens":1.5)")), "max_tokens");
  expect_type_error(completion_fail(completion_body(R"("max_tokens":"many")")), "max_tokens");
  expect_type_error(completion_fail(completion_body(R"("max_tokens":18446744073709551615)")),
                    "max_tokens");
}

TEST(OpenaiRequest, StreamAndStreamOptions) {
  const auto plain = completion(completion_body(R"("stream":true)"));
  EXPECT_TRUE(plain.stream);
  EXPECT_FALSE(plain.has_stream_options);
  EXPECT_FALSE(plain.include_usage);

  const auto usage = chat(chat_body(R"("stream":true,"stream_options":{})"));
  EXPECT_TRUE(usage.has_stream_options);
  EXPECT_TRUE(usage.include_usage);  // defaults to true once stream_options is sent
  EXPECT_FALSE(usage.continuous_usage_stats);

  // stream may come after stream_options.
  const auto later = chat(chat_body(
      R"("stream_options":{"include_usage":false,"continuous_usage_stats":true},"stream":true)"));
  EXPECT_FALSE(later.include_usage);
  EXPECT_TRUE(later.continuous_usage_stats);

  EXPECT_FALSE(completion(completion_body(R"("stream":null,"stream_options":null)")).stream);
  // validate_stream_options refuses only a truthy stream_options: {} passes without stream.
  EXPECT_FALSE(chat(chat_body(R"("stream":false,"stream_options":{})")).stream);
  // Lax booleans.
  EXPECT_TRUE(completion(completion_body(R"("stream":"true")")).stream);
  EXPECT_TRUE(completion(completion_body(R"("stream":1)")).stream);

  const auto without =
      completion_fail(completion_body(R"("stream_options":{"include_usage":true})"));
  EXPECT_EQ(without.param, "stream_options");
  EXPECT_NE(without.message.find("Stream options can only be defined when `stream=True`."),
            std::string::npos)
      << without.message;
  expect_field_error(
      chat_fail(chat_body(R"("stream":false,"stream_options":{"include_usage":true})")),
      "stream_options");
  expect_type_error(completion_fail(completion_body(R"("stream":"maybe")")), "stream");
  expect_type_error(completion_fail(completion_body(R"("stream":true,"stream_options":[1])")),
                    "stream_options");
  expect_type_error(
      completion_fail(completion_body(R"("stream":true,"stream_options":{"include_usage":2})")),
      "stream_options.include_usage");
}

TEST(OpenaiRequest, StreamIntervalAndSessionId) {
  const auto r = chat(chat_body(R"("stream":true,"stream_interval":4,"session_id":"s-1")"));
  EXPECT_EQ(r.stream_interval, 4);
  EXPECT_EQ(r.session_id, "s-1");
  EXPECT_FALSE(chat(chat_body("")).stream_interval);
  expect_type_error(chat_fail(chat_body(R"("stream_interval":0)")), "stream_interval");
  expect_type_error(chat_fail(chat_body(R"("session_id":5)")), "session_id");
}

TEST(OpenaiRequest, NAndBestOf) {
  EXPECT_EQ(completion(completion_body(R"("n":1)")).n, 1);
  EXPECT_EQ(completion(completion_body(R"("n":null)")).n, 1);
  EXPECT_EQ(completion(completion_body(R"("n":3)")).n, 3);
  EXPECT_EQ(chat(chat_body(R"("n":"2")")).n, 2);
  // best_of is gone from vLLM 2026's models: ignored like any unknown field.
  EXPECT_EQ(completion(completion_body(R"("n":2,"best_of":4)")).n, 2);
  const auto e = chat_fail(chat_body(R"("n":0)"), kServing);
  EXPECT_EQ(e.param, "n");
  EXPECT_EQ(e.message, "n must be at least 1, got 0. (parameter=n, value=0)");
}

TEST(OpenaiRequest, SamplingFields) {
  const auto r = completion(completion_body(
      R"("ignore_eos":true,"min_tokens":4,"user":"alice","stop":["\n\n","END"],"temperature":0.7,"top_p":1,"max_tokens":10)"));
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.min_tokens, 4);
  EXPECT_EQ(r.user, "alice");
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(completion(completion_body(R"("stop":"###")")).stop, std::vector<std::string>{"###"});
  EXPECT_TRUE(
      completion(completion_body(R"("stop":null,"user":null,"temperature":null)")).stop.empty());
  EXPECT_TRUE(completion(completion_body(R"("temperature":0)")).prompt_text == "hello");
  // Lax types.
  EXPECT_TRUE(completion(completion_body(R"("ignore_eos":1)")).ignore_eos);
  EXPECT_EQ(completion(completion_body(R"("min_tokens":"2")")).min_tokens, 2);
  EXPECT_TRUE(completion(completion_body(R"("temperature":"0.5")")).prompt_text == "hello");

  expect_field_error(completion_fail(completion_body(R"("min_tokens":-1)"), kServing),
                     "min_tokens");
  expect_field_error(
      completion_fail(completion_body(R"("min_tokens":20,"max_tokens":10)"), kServing),
      "min_tokens");
  expect_type_error(completion_fail(completion_body(R"("ignore_eos":2)")), "ignore_eos");
  expect_type_error(completion_fail(completion_body(R"("user":5)")), "user");
  expect_type_error(completion_fail(completion_body(R"("stop":5)")), "stop");
  expect_type_error(completion_fail(completion_body(R"("stop":["a",5])")), "stop");
  expect_type_error(completion_fail(completion_body(R"("temperature":"hot")")), "temperature");
  expect_field_error(completion_fail(completion_body(R"("temperature":-0.5)"), kServing),
                     "temperature");
  expect_field_error(chat_fail(chat_body(R"("top_p":0)"), kServing), "top_p");
  expect_field_error(chat_fail(chat_body(R"("top_p":1.5)"), kServing), "top_p");
  expect_type_error(chat_fail(chat_body(R"("top_p":[1])")), "top_p");
}

TEST(OpenaiRequest, UnknownFieldsAreIgnored) {
  const auto r = chat(chat_body(
      R"("logprobs":true,"seed":42,"tools":[{"type":"function"}],"response_format":{"type":"json_object"},"x-weird":[[[{}]]])"));
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.messages.size(), 1u);
}

TEST(OpenaiRequest, EtaSimOutputTokens) {
  EXPECT_EQ(completion(completion_body(R"("eta_sim":{"output_tokens":100})")).sim_output_tokens,
            100);
  EXPECT_EQ(chat(chat_body(R"("eta_sim":{"output_tokens":1,"other":"x"})")).sim_output_tokens, 1);
  EXPECT_FALSE(completion(completion_body(R"("eta_sim":{})")).sim_output_tokens);
  EXPECT_FALSE(completion(completion_body(R"("eta_sim":null)")).sim_output_tokens);
  EXPECT_EQ(completion(completion_body(R"("eta_sim":{"output_tokens":"9"})")).sim_output_tokens, 9);
  expect_field_error(completion_fail(completion_body(R"("eta_sim":{"output_tokens":0})"), kServing),
                     "eta_sim.output_tokens");
  expect_type_error(completion_fail(completion_body(R"("eta_sim":5)")), "eta_sim");
}

TEST(OpenaiRequest, DuplicateKeysLastWins) {
  EXPECT_EQ(completion(R"({"model":"a","prompt":"x","model":"b"})").model, "b");
}

TEST(OpenaiRequest, OutputIsResetBetweenParses) {
  RequestFields r;
  Error error;
  ASSERT_TRUE(parse_request(Endpoint::kChat,
                            chat_body(R"("stream":true,"stop":"x","eta_sim":{"output_tokens":3})"),
                            r, error));
  ASSERT_TRUE(parse_request(Endpoint::kCompletions, R"({"model":"m","prompt":[5]})", r, error));
  EXPECT_EQ(r.endpoint, Endpoint::kCompletions);
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_TRUE(r.messages.empty());
  EXPECT_FALSE(r.sim_output_tokens);
  EXPECT_TRUE(r.prompt_text.empty());
  EXPECT_EQ(r.prompt_token_ids, std::vector<uint32_t>{5});
}

TEST(OpenaiRequest, DeeplyNestedUnknownFieldDoesNotCrash) {
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  const auto e = completion_fail(completion_body("\"junk\":" + deep));
  EXPECT_NE(e.message.find("JSON decode error"), std::string::npos) << e.message;
}

TEST(OpenaiRequest, TokenizeRequests) {
  RequestFields r;
  Error e;
  ASSERT_TRUE(parse_tokenize_request(R"({"model":"m","prompt":"Hello world"})", r, e)) << e.message;
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.endpoint, Endpoint::kCompletions);
  EXPECT_EQ(r.prompt_text, "Hello world");
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FALSE(r.return_token_strs);

  ASSERT_TRUE(parse_tokenize_request(
      R"({"messages":[{"role":"user","content":"Hi"}],"add_special_tokens":false,"return_token_strs":true})",
      r, e))
      << e.message;
  EXPECT_TRUE(r.model.empty());
  EXPECT_EQ(r.endpoint, Endpoint::kChat);
  EXPECT_EQ(r.prompt_text, "<|user|>\nHi\n<|assistant|>\n");
  EXPECT_TRUE(r.return_token_strs);

  ASSERT_TRUE(parse_tokenize_request(R"({"prompt":[1,2,3]})", r, e)) << e.message;
  EXPECT_TRUE(r.prompt_is_tokens);
  EXPECT_EQ(r.prompt_token_ids, (std::vector<uint32_t>{1, 2, 3}));

  EXPECT_FALSE(parse_tokenize_request(R"({"model":"m"})", r, e));
  expect_type_error(e, "prompt");
  EXPECT_FALSE(parse_tokenize_request(R"({"prompt":"x","model":3})", r, e));
  expect_type_error(e, "model");
  EXPECT_FALSE(parse_tokenize_request(R"({"prompt":["a","b"]})", r, e));
  EXPECT_EQ(e.param, "prompt");
  EXPECT_FALSE(parse_tokenize_request(R"({"prompt":"x","return_token_strs":"perhaps"})", r, e));
  expect_type_error(e, "return_token_strs");
  EXPECT_FALSE(parse_tokenize_request("[]", r, e));
  EXPECT_EQ(e.status, 400);
}

TEST(OpenaiError, ExactBodies) {
  EXPECT_EQ(
      error_body(bad_request("Bad \"thing\"\n")),
      R"({"error":{"message":"Bad \"thing\"\n","type":"BadRequestError","param":null,"code":400}})");
  EXPECT_EQ(
      error_body(bad_request("n must be 1", "n")),
      R"({"error":{"message":"n must be 1","type":"BadRequestError","param":"n","code":400}})");
  EXPECT_EQ(
      error_body(model_not_found("gpt-5")),
      R"({"error":{"message":"The model `gpt-5` does not exist.","type":"NotFoundError","param":"model","code":404}})");
  EXPECT_EQ(error_body(internal_error("boom")),
            R"({"error":{"message":"boom","type":"InternalServerError","param":null,"code":500}})");
  const Error nf = model_not_found("x");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.type, "NotFoundError");
  EXPECT_EQ(
      error_body(validation_error("1 validation error: x")),
      R"({"error":{"message":"1 validation error: x","type":"Bad Request","param":null,"code":400}})");
}

TEST(OpenaiError, ParseErrorsRenderAsNestedBodies) {
  RequestFields r;
  Error e;
  ASSERT_FALSE(parse_request(Endpoint::kCompletions, completion_body(R"("n":0)"), r, e));
  const auto v = boost::json::parse(error_body(e));
  const auto& err = v.at("error").as_object();
  EXPECT_EQ(err.size(), 4u);
  EXPECT_EQ(err.at("type").as_string(), "BadRequestError");
  EXPECT_EQ(err.at("param").as_string(), "n");
  EXPECT_EQ(err.at("code").as_int64(), 400);
  EXPECT_EQ(std::string(err.at("message").as_string()), e.message);
}

}  // namespace
}  // namespace eta::openai
