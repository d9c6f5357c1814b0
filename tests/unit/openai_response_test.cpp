#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "openai/response.hpp"

namespace eta::openai {
namespace {

namespace json = boost::json;

const ResponseMeta kCmpl{"cmpl-abc", 1700000000, "llama"};
const ResponseMeta kChat{"chatcmpl-abc", 1700000001, "llama"};

std::vector<std::string> keys(const json::object& o) {
  std::vector<std::string> k;
  for (const auto& kv : o) k.emplace_back(kv.key());
  return k;
}
using Keys = std::vector<std::string>;

json::object parse_object(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  EXPECT_TRUE(v.is_object()) << text;
  return v.is_object() ? v.as_object() : json::object{};
}

TEST(OpenaiResponse, CompletionBodyExact) {
  const std::string body = completion_body(kCmpl, " the end", {"length", ""}, Usage{5, 2, {}});
  EXPECT_EQ(body,
            R"({"id":"cmpl-abc","object":"text_completion","created":1700000000,"model":"llama",)"
            R"("choices":[{"index":0,"text":" the end","logprobs":null,"finish_reason":"length",)"
            R"("stop_reason":null}],"usage":{"prompt_tokens":5,"total_tokens":7,)"
            R"("completion_tokens":2,"prompt_tokens_details":null}})");
}

TEST(OpenaiResponse, ChatCompletionBodyFields) {
  const std::string content = "quote \" backslash \\ newline \n unicode \xc3\xa9";
  const auto o =
      parse_object(chat_completion_body(kChat, content, {"stop", "###"}, Usage{10, 3, 8}));
  EXPECT_EQ(keys(o), (Keys{"id", "object", "created", "model", "choices", "usage"}));
  EXPECT_EQ(o.at("id").as_string(), "chatcmpl-abc");
  EXPECT_EQ(o.at("object").as_string(), "chat.completion");
  EXPECT_EQ(o.at("created").as_int64(), 1700000001);
  EXPECT_EQ(o.at("model").as_string(), "llama");
  const auto& choices = o.at("choices").as_array();
  ASSERT_EQ(choices.size(), 1u);
  const auto& c = choices[0].as_object();
  EXPECT_EQ(keys(c), (Keys{"index", "message", "logprobs", "finish_reason", "stop_reason"}));
  EXPECT_EQ(c.at("index").as_int64(), 0);
  const auto& msg = c.at("message").as_object();
  EXPECT_EQ(keys(msg), (Keys{"role", "content"}));  // vLLM 2026 drops an empty tool_calls
  EXPECT_EQ(msg.at("role").as_string(), "assistant");
  EXPECT_EQ(std::string(msg.at("content").as_string()), content);
  EXPECT_TRUE(c.at("logprobs").is_null());
  EXPECT_EQ(c.at("finish_reason").as_string(), "stop");
  EXPECT_EQ(c.at("stop_reason").as_string(), "###");
  const auto& u = o.at("usage").as_object();
  EXPECT_EQ(keys(u),
            (Keys{"prompt_tokens", "total_tokens", "completion_tokens", "prompt_tokens_details"}));
  EXPECT_EQ(u.at("total_tokens").as_int64(), 13);
  EXPECT_EQ(u.at("prompt_tokens_details").at("cached_tokens").as_int64(), 8);
}

TEST(OpenaiResponse, CompletionChunks) {
  EXPECT_EQ(completion_chunk(kCmpl, " tok"),
            R"({"id":"cmpl-abc","object":"text_completion","created":1700000000,"model":"llama",)"
            R"("choices":[{"index":0,"text":" tok","logprobs":null,"finish_reason":null,)"
            R"("stop_reason":null}]})");
  const Finish finish{"length", ""};
  const Usage usage{4, 16, {}};
  const auto last = parse_object(completion_chunk(kCmpl, " end", &finish, &usage));
  EXPECT_EQ(keys(last), (Keys{"id", "object", "created", "model", "choices", "usage"}));
  const auto& c = last.at("choices").as_array()[0].as_object();
  EXPECT_EQ(c.at("text").as_string(), " end");
  EXPECT_EQ(c.at("finish_reason").as_string(), "length");
  EXPECT_TRUE(c.at("stop_reason").is_null());
  // Streaming usage leaves prompt_tokens_details out unless it is set.
  EXPECT_EQ(keys(last.at("usage").as_object()),
            (Keys{"prompt_tokens", "total_tokens", "completion_tokens"}));
  EXPECT_EQ(last.at("usage").at("total_tokens").as_int64(), 20);
}

TEST(OpenaiResponse, ChatChunks) {
  EXPECT_EQ(chat_role_chunk(kChat),
            R"({"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000001,)"
            R"("model":"llama","choices":[{"index":0,"delta":{"role":"assistant","content":""},)"
            R"("logprobs":null,"finish_reason":null}]})");
  EXPECT_EQ(chat_chunk(kChat, " hi"),
            R"({"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000001,)"
            R"("model":"llama","choices":[{"index":0,"delta":{"content":" hi"},)"
            R"("logprobs":null,"finish_reason":null}]})");
  const Finish finish{"stop", ""};
  EXPECT_EQ(chat_chunk(kChat, "", &finish),
            R"({"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000001,)"
            R"("model":"llama","choices":[{"index":0,"delta":{"content":""},)"
            R"("logprobs":null,"finish_reason":"stop","stop_reason":null}]})");
  const Usage usage{1, 1, {}};
  const auto with_usage = parse_object(chat_chunk(kChat, "x", nullptr, &usage));
  EXPECT_EQ(with_usage.at("usage").at("completion_tokens").as_int64(), 1);
  const auto role_usage = parse_object(chat_role_chunk(kChat, &usage));
  EXPECT_EQ(role_usage.at("usage").at("prompt_tokens").as_int64(), 1);
}

TEST(OpenaiResponse, UsageOnlyChunk) {
  const Usage usage{12, 30, {}};
  EXPECT_EQ(usage_chunk(Endpoint::kChat, kChat, usage),
            R"({"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000001,)"
            R"("model":"llama","choices":[],"usage":{"prompt_tokens":12,"total_tokens":42,)"
            R"("completion_tokens":30}})");
  const auto o = parse_object(usage_chunk(Endpoint::kCompletions, kCmpl, usage));
  EXPECT_EQ(o.at("object").as_string(), "text_completion");
  EXPECT_TRUE(o.at("choices").as_array().empty());
}

TEST(OpenaiResponse, ModelsList) {
  std::vector<ModelCard> cards(2);
  cards[0].id = "llama";
  cards[0].root = "meta-llama/Llama-3.1-8B-Instruct";
  cards[0].created = 1700000000;
  cards[0].max_model_len = 8192;
  cards[1].id = "sql-lora";
  cards[1].root = "/adapters/sql";
  cards[1].parent = "llama";
  cards[1].created = 1700000000;
  cards[1].max_model_len = 8192;
  const std::string text = models_body(cards);
  EXPECT_EQ(text, models_body(cards));  // deterministic
  const auto o = parse_object(text);
  EXPECT_EQ(keys(o), (Keys{"object", "data"}));
  EXPECT_EQ(o.at("object").as_string(), "list");
  const auto& data = o.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  const auto& m = data[0].as_object();
  EXPECT_EQ(keys(m), (Keys{"id", "object", "created", "owned_by", "root", "parent", "max_model_len",
                           "permission"}));
  EXPECT_EQ(m.at("id").as_string(), "llama");
  EXPECT_EQ(m.at("object").as_string(), "model");
  EXPECT_EQ(m.at("owned_by").as_string(), "vllm");
  EXPECT_EQ(m.at("root").as_string(), "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_TRUE(m.at("parent").is_null());
  EXPECT_EQ(m.at("max_model_len").as_int64(), 8192);
  const auto& perms = m.at("permission").as_array();
  ASSERT_EQ(perms.size(), 1u);
  const auto& p = perms[0].as_object();
  EXPECT_EQ(keys(p), (Keys{"id", "object", "created", "allow_create_engine", "allow_sampling",
                           "allow_logprobs", "allow_search_indices", "allow_view",
                           "allow_fine_tuning", "organization", "group", "is_blocking"}));
  const std::string perm_id(p.at("id").as_string());
  EXPECT_EQ(perm_id.rfind("modelperm-", 0), 0u);
  EXPECT_EQ(perm_id.size(), 10u + 32u);
  EXPECT_EQ(p.at("object").as_string(), "model_permission");
  EXPECT_FALSE(p.at("allow_create_engine").as_bool());
  EXPECT_TRUE(p.at("allow_sampling").as_bool());
  EXPECT_EQ(p.at("organization").as_string(), "*");
  EXPECT_TRUE(p.at("group").is_null());
  EXPECT_EQ(data[1].at("parent").as_string(), "llama");
  EXPECT_NE(data[1].at("permission").at(0).at("id"), p.at("id"));
  EXPECT_FALSE(m.contains("eta_time_scale"));
  EXPECT_EQ(models_body({}), R"({"object":"list","data":[]})");
}

TEST(OpenaiResponse, ModelCardEtaTimeScale) {
  ModelCard card;
  card.id = card.root = "m";
  card.eta_time_scale = 20;
  const auto whole = parse_object(models_body(std::span<const ModelCard>(&card, 1)));
  const auto& m = whole.at("data").at(0).as_object();
  EXPECT_EQ(keys(m).back(), "eta_time_scale");
  EXPECT_EQ(m.at("eta_time_scale").as_int64(), 20);
  card.eta_time_scale = 0.5;
  const auto half = parse_object(models_body(std::span<const ModelCard>(&card, 1)));
  EXPECT_EQ(half.at("data").at(0).at("eta_time_scale").as_double(), 0.5);
}

TEST(OpenaiResponse, SmallBodies) {
  EXPECT_EQ(version_body("0.10.1"), R"({"version":"0.10.1"})");
  EXPECT_EQ(load_body(17), R"({"server_load":17})");
  EXPECT_EQ(detokenize_body("a \"b\""), R"({"prompt":"a \"b\""})");
  const std::vector<uint32_t> tokens = {3, 4294967295u, 0};
  EXPECT_EQ(tokenize_body(tokens, 4096),
            R"({"count":3,"max_model_len":4096,"tokens":[3,4294967295,0],"token_strs":null})");
  const std::vector<std::string> strs = {" a", "b", "\n"};
  EXPECT_EQ(tokenize_body(tokens, 4096, &strs),
            R"({"count":3,"max_model_len":4096,"tokens":[3,4294967295,0],)"
            R"("token_strs":[" a","b","\n"]})");
}

TEST(OpenaiResponse, ResponseIds) {
  EXPECT_EQ(make_response_id(Endpoint::kCompletions, 0x0123456789abcdefull, 0xfull),
            "cmpl-0123456789abcdef000000000000000f");
  EXPECT_EQ(make_response_id(Endpoint::kChat, 0, 0), "chatcmpl-" + std::string(32, '0'));
}

TEST(OpenaiResponse, LargeContentOverflowsTheArena) {
  const std::string big(100000, 'x');
  const auto o = parse_object(completion_body(kCmpl, big, {"length", ""}, {}));
  EXPECT_EQ(o.at("choices").at(0).at("text").as_string().size(), big.size());
}

}  // namespace
}  // namespace eta::openai
