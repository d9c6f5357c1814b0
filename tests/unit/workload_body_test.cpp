#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "engine/tokenizer.hpp"
#include "openai/request.hpp"
#include "workload/request_body.hpp"

namespace eta::workload {
namespace {

WorkloadRequest request(int prompt, int output, std::optional<Api> api = {}) {
  WorkloadRequest r;
  r.prompt.push_back(TextSegment::words(17, prompt));
  r.output_tokens = output;
  r.api = api;
  r.output_seed = 1234;
  r.session_id = "conv-3";
  finalize_request(r, false);
  return r;
}

boost::json::object parse(const std::string& body) {
  return boost::json::parse(body).as_object();
}

TEST(WorkloadBody, ExactCompletions) {
  BodyOptions options;
  options.model = "llama";
  const auto r = request(100, 40);
  const auto body = parse(build_request_body(r, options));
  EXPECT_EQ(body.at("model").as_string(), "llama");
  EXPECT_EQ(engine::count_tokens(std::string(body.at("prompt").as_string())), 100);
  EXPECT_EQ(body.at("max_tokens").as_int64(), 40);
  EXPECT_TRUE(body.at("ignore_eos").as_bool());
  EXPECT_TRUE(body.at("stream").as_bool());
  EXPECT_TRUE(body.at("stream_options").at("include_usage").as_bool());
  EXPECT_EQ(body.at("temperature").as_double(), 0.0);
  EXPECT_FALSE(body.contains("eta_sim"));
  EXPECT_FALSE(body.contains("messages"));
  EXPECT_FALSE(body.contains("user"));
  EXPECT_EQ(endpoint_path(Api::kCompletions), "/v1/completions");
}

TEST(WorkloadBody, HiddenLengthsSendOneMaxTokensForTheWorkload) {
  Workload w;
  w.requests = {request(100, 40), request(100, 300), request(100, 700)};
  EXPECT_EQ(workload_max_tokens(w), 1024);  // 700 rounded up to a power of two
  w.requests.resize(1);
  EXPECT_EQ(workload_max_tokens(w), 256);  // at least 256
  BodyOptions options;
  options.model = "m";
  options.lengths = LengthsMode::kHidden;
  options.hidden_max_tokens = 1024;
  // Whatever the true length, the same max_tokens: it tells the router nothing about it.
  for (int output : {1, 40, 300, 700}) {
    auto body = parse(build_request_body(request(100, output), options));
    EXPECT_EQ(body.at("max_tokens").as_int64(), 1024) << output;
    EXPECT_EQ(body.at("eta_sim").at("output_tokens").as_int64(), output);
    EXPECT_FALSE(body.contains("ignore_eos"));
  }
  options.max_model_len = 500;  // capped by the context: 500 - 100
  EXPECT_EQ(parse(build_request_body(request(100, 300), options)).at("max_tokens").as_int64(), 400);
}

TEST(WorkloadBody, HiddenScaledLengths) {
  BodyOptions options;
  options.model = "m";
  options.lengths = LengthsMode::kHiddenScaled;
  auto body = parse(build_request_body(request(100, 40), options));
  EXPECT_EQ(body.at("max_tokens").as_int64(), 256);  // max(2 * 40, 256)
  EXPECT_EQ(body.at("eta_sim").at("output_tokens").as_int64(), 40);
  EXPECT_FALSE(body.contains("ignore_eos"));
  body = parse(build_request_body(request(100, 300), options));
  EXPECT_EQ(body.at("max_tokens").as_int64(), 600);
  options.max_model_len = 500;  // capped by the context: 500 - 100
  body = parse(build_request_body(request(100, 300), options));
  EXPECT_EQ(body.at("max_tokens").as_int64(), 400);
  EXPECT_EQ(body.at("eta_sim").at("output_tokens").as_int64(), 300);
  options.send_output_seed = true;
  options.send_session_as_user = true;
  options.temperature.reset();
  body = parse(build_request_body(request(10, 3), options));
  EXPECT_EQ(body.at("eta_sim").at("output_seed").to_number<uint64_t>(), 1234u);
  EXPECT_EQ(body.at("user").as_string(), "conv-3");
  EXPECT_FALSE(body.contains("temperature"));
}

TEST(WorkloadBody, Chat) {
  BodyOptions options;
  options.model = "m";
  options.default_api = Api::kChat;
  const auto r = request(200, 7);  // api unset: the default applies
  const auto body = parse(build_request_body(r, options));
  ASSERT_TRUE(body.contains("messages"));
  const auto& messages = body.at("messages").as_array();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].at("role").as_string(), "user");
  const std::string content(messages[0].at("content").as_string());
  EXPECT_EQ(engine::count_tokens("<|user|>\n" + content + "\n<|assistant|>\n"), 200);
  EXPECT_EQ(body.at("max_completion_tokens").as_int64(), 7);
  EXPECT_FALSE(body.contains("prompt"));
  EXPECT_FALSE(body.contains("max_tokens"));
  EXPECT_EQ(endpoint_path(Api::kChat), "/v1/chat/completions");
  // A request's own api wins over the default.
  const auto completions = parse(build_request_body(request(20, 2, Api::kCompletions), options));
  EXPECT_TRUE(completions.contains("prompt"));
}

TEST(WorkloadBody, TheServerParsesWhatBenchSends) {
  BodyOptions options;
  options.model = "m";
  options.lengths = LengthsMode::kHidden;
  options.send_output_seed = true;
  for (Api api : {Api::kCompletions, Api::kChat}) {
    const auto r = request(120, 33, api);
    openai::RequestFields fields;
    openai::Error error;
    ASSERT_TRUE(openai::parse_request(
        api == Api::kChat ? openai::Endpoint::kChat : openai::Endpoint::kCompletions,
        build_request_body(r, options), fields, error))
        << error.message;
    EXPECT_EQ(fields.model, "m");
    EXPECT_TRUE(fields.stream);
    EXPECT_TRUE(fields.include_usage);
    EXPECT_EQ(fields.max_tokens, 256);
    EXPECT_FALSE(fields.ignore_eos);
    EXPECT_EQ(fields.sim_output_tokens, 33);
    EXPECT_EQ(engine::count_tokens(fields.prompt_text), 120);
    EXPECT_EQ(fields.prompt_text, server_prompt_text(r));
  }
  options.lengths = LengthsMode::kExact;
  openai::RequestFields fields;
  openai::Error error;
  ASSERT_TRUE(openai::parse_request(openai::Endpoint::kCompletions,
                                    build_request_body(request(50, 9), options), fields, error))
      << error.message;
  EXPECT_EQ(fields.max_tokens, 9);
  EXPECT_TRUE(fields.ignore_eos);
  EXPECT_FALSE(fields.sim_output_tokens);
}

TEST(WorkloadBody, ParsesModes) {
  LengthsMode m = LengthsMode::kExact;
  EXPECT_TRUE(parse_lengths_mode("hidden", m));
  EXPECT_EQ(m, LengthsMode::kHidden);
  EXPECT_TRUE(parse_lengths_mode("hidden-scaled", m));
  EXPECT_EQ(m, LengthsMode::kHiddenScaled);
  EXPECT_STREQ(to_string(m), "hidden-scaled");
  EXPECT_TRUE(is_hidden(m));
  EXPECT_FALSE(is_hidden(LengthsMode::kExact));
  EXPECT_FALSE(parse_lengths_mode("secret", m));
  Api api = Api::kCompletions;
  EXPECT_TRUE(parse_api("chat", api));
  EXPECT_EQ(api, Api::kChat);
  EXPECT_FALSE(parse_api("grpc", api));
}

}  // namespace
}  // namespace eta::workload
