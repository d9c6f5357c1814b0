#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cluster/state.hpp"
#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "engine/tokenizer.hpp"
#include "openai/extract.hpp"
#include "openai/request.hpp"
#include "predict/token_estimate.hpp"
#include "router/features.hpp"

namespace eta::router {
namespace {

// The router reads requests leniently (openai::extract_request); the model is the body's.
struct Parsed {
  openai::ExtractedRequest req;
  openai::RequestFields fields;  // the strict parse, for what the simulator would read
};
Parsed parse(openai::Endpoint endpoint, const std::string& body) {
  Parsed p;
  openai::Error e;
  EXPECT_TRUE(openai::parse_request(endpoint, body, p.fields, e)) << e.message;
  openai::extract_request(
      endpoint == openai::Endpoint::kChat ? openai::Api::kChat : openai::Api::kCompletions, body,
      "", {}, p.req);
  return p;
}
void extract_request_info(const Parsed& p, std::string_view header, int block_size,
                          RequestInfo& info) {
  router::extract_request_info(p.req, p.req.model, header, block_size, info);
}
void prepare_request(const cluster::ClusterState& state, const Parsed& p, std::string_view header,
                     RequestInfo& info, cluster::PreparedRequest& out) {
  router::prepare_request(state, p.req, p.req.model, header, info, out);
}

cluster::ClusterState make_state(int replicas) {
  cluster::ClusterStateOptions o;
  o.hash_block_size = kHashBlockSize;
  cluster::ClusterState state(o);
  for (int i = 0; i < replicas; ++i) {
    cluster::ReplicaSpec spec;
    spec.name = "http://127.0.0.1:" + std::to_string(8001 + i);
    std::string error;
    EXPECT_TRUE(engine::make_config(engine::ProfileSet::builtin(), "llama-2-7b", "h100",
                                    spec.engine, error))
        << error;
    state.add_replica(spec);
  }
  return state;
}

void expect_same_features(const cluster::RequestFeatures& a, const cluster::RequestFeatures& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.prompt_tokens, b.prompt_tokens);
  EXPECT_EQ(std::vector<uint64_t>(a.block_hashes.begin(), a.block_hashes.end()),
            std::vector<uint64_t>(b.block_hashes.begin(), b.block_hashes.end()));
  EXPECT_EQ(a.hash_block_size, b.hash_block_size);
  EXPECT_EQ(std::vector<uint32_t>(a.matched_blocks.begin(), a.matched_blocks.end()),
            std::vector<uint32_t>(b.matched_blocks.begin(), b.matched_blocks.end()));
  EXPECT_EQ(a.max_tokens, b.max_tokens);
  EXPECT_EQ(a.ignore_eos, b.ignore_eos);
  EXPECT_EQ(a.predicted_output_tokens, b.predicted_output_tokens);
  EXPECT_EQ(a.session_hash, b.session_hash);
}

std::string long_prompt(int words) {
  std::string s;
  for (int i = 0; i < words; ++i) s += (i ? " " : "") + std::string("w") + std::to_string(i % 10);
  return s;
}

TEST(RouterFeatures, CompletionPrompt) {
  const std::string prompt = long_prompt(100);
  const auto f = parse(openai::Endpoint::kCompletions,
                       "{\"model\":\"m\",\"prompt\":\"" + prompt + "\",\"max_tokens\":50}");
  RequestInfo info;
  extract_request_info(f, "", kHashBlockSize, info);
  predict::PromptEstimate expected;
  predict::estimate_prompt(prompt, kHashBlockSize, expected);
  EXPECT_EQ(info.model, "m");
  EXPECT_FALSE(info.stream);
  EXPECT_EQ(info.prompt_tokens, expected.tokens);
  EXPECT_EQ(info.block_hashes, expected.block_hashes);
  EXPECT_EQ(info.max_tokens, 50);
  EXPECT_FALSE(info.ignore_eos);
  EXPECT_FALSE(info.session_hash.has_value());
}

TEST(RouterFeatures, TokenPromptAndChat) {
  auto f = parse(openai::Endpoint::kCompletions,
                 "{\"model\":\"m\",\"prompt\":[1,2,3,4,5],\"stream\":true}");
  RequestInfo info;
  extract_request_info(f, "", kHashBlockSize, info);
  EXPECT_EQ(info.prompt_tokens, 5);
  EXPECT_TRUE(info.stream);
  EXPECT_EQ(info.max_tokens, 16);  // completions default

  f = parse(openai::Endpoint::kChat,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}");
  extract_request_info(f, "", kHashBlockSize, info);
  predict::PromptEstimate expected;
  predict::estimate_prompt(openai::render_chat_prompt(f.fields.messages), kHashBlockSize, expected);
  EXPECT_EQ(info.prompt_tokens, expected.tokens);
  EXPECT_FALSE(info.max_tokens.has_value());  // chat without max_tokens: up to the context
}

TEST(RouterFeatures, SessionKeyFromHeaderThenUser) {
  const auto f = parse(openai::Endpoint::kCompletions,
                       "{\"model\":\"m\",\"prompt\":\"x\",\"user\":\"alice\"}");
  RequestInfo info;
  extract_request_info(f, "", kHashBlockSize, info);
  EXPECT_EQ(info.session_hash, predict::hash_session_key("alice"));
  extract_request_info(f, "sess-9", kHashBlockSize, info);
  EXPECT_EQ(info.session_hash, predict::hash_session_key("sess-9"));
}

// The output predictor's shape context: the endpoint and the stop settings, as prepared.
TEST(RouterFeatures, EndpointAndStopSettingsShapeTheOutputContext) {
  cluster::ClusterState state = make_state(1);
  const auto shape = [&](openai::Endpoint endpoint, const std::string& body) {
    RequestInfo info;
    cluster::PreparedRequest prepared;
    prepare_request(state, parse(endpoint, body), "", info, prepared);
    EXPECT_EQ(prepared.features.output_shape, info.output_shape);
    return info.output_shape;
  };
  const uint64_t plain =
      shape(openai::Endpoint::kCompletions, "{\"model\":\"m\",\"prompt\":\"x\"}");
  const uint64_t stop = shape(openai::Endpoint::kCompletions,
                              "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[\"\\n\"]}");
  const uint64_t stop2 = shape(openai::Endpoint::kCompletions,
                               "{\"model\":\"m\",\"prompt\":\"y\",\"stop\":[\"\\n\"]}");
  const uint64_t chat =
      shape(openai::Endpoint::kChat,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
  EXPECT_NE(plain, stop);
  EXPECT_EQ(stop, stop2);  // the prompt is not part of it
  EXPECT_NE(plain, chat);
}

TEST(RouterFeatures, IgnoreEosWithMaxTokensIsExact) {
  cluster::ClusterState state = make_state(2);
  const auto f = parse(openai::Endpoint::kCompletions,
                       "{\"model\":\"m\",\"prompt\":\"hello\",\"max_tokens\":77,"
                       "\"ignore_eos\":true}");
  RequestInfo info;
  cluster::PreparedRequest prepared;
  prepare_request(state, f, "", info, prepared);
  EXPECT_EQ(prepared.features.predicted_output_tokens, 77);
  EXPECT_TRUE(prepared.features.ignore_eos);
}

// The router must predict output lengths, never read them from the simulator's vendor field.
TEST(RouterFeatures, EtaSimFieldChangesNothing) {
  cluster::ClusterState state = make_state(3);
  // Teach the predictor something, and give a replica some prefix, so that the features are
  // not trivially default.
  {
    const auto warm = parse(openai::Endpoint::kCompletions,
                            "{\"model\":\"m\",\"prompt\":\"" + long_prompt(80) + "\"}");
    RequestInfo info;
    cluster::PreparedRequest p;
    prepare_request(state, warm, "", info, p);
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(state.on_dispatch(100 + i, i % 3, p.features, i * 0.1));
      state.on_finish(100 + i, i * 0.1 + 0.05, 40 + i);
    }
  }
  const std::vector<std::pair<openai::Endpoint, std::string>> bodies = {
      {openai::Endpoint::kCompletions,
       "{\"model\":\"m\",\"prompt\":\"" + long_prompt(80) + "\",\"max_tokens\":300%s}"},
      {openai::Endpoint::kCompletions, "{\"model\":\"m\",\"prompt\":\"" + long_prompt(80) +
                                           "\",\"max_tokens\":300,"
                                           "\"ignore_eos\":true%s}"},
      {openai::Endpoint::kChat,
       "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"user\":\"u\"%s}"},
  };
  for (const auto& [endpoint, pattern_binding] : bodies) {
    const auto& pattern = pattern_binding;  // clang 14 cannot capture a structured binding
    auto with = [&](const std::string& extra) {
      std::string body = pattern;
      body.replace(body.find("%s"), 2, extra);
      return body;
    };
    const auto plain = parse(endpoint, with(""));
    const auto told = parse(endpoint, with(",\"eta_sim\":{\"output_tokens\":3}"));
    ASSERT_TRUE(told.fields.sim_output_tokens.has_value());  // the simulator would read it...
    RequestInfo info_a, info_b;
    cluster::PreparedRequest a, b;
    prepare_request(state, plain, "", info_a, a);
    prepare_request(state, told, "", info_b, b);
    // ...the router computes exactly the same thing with or without it.
    expect_same_features(a.features, b.features);
    EXPECT_EQ(info_a.model, info_b.model);
    EXPECT_EQ(info_a.prompt_tokens, info_b.prompt_tokens);
    EXPECT_EQ(info_a.block_hashes, info_b.block_hashes);
    EXPECT_EQ(info_a.max_tokens, info_b.max_tokens);
    EXPECT_EQ(info_a.session_hash, info_b.session_hash);
    EXPECT_NE(a.features.predicted_output_tokens, 3);
  }
}

// n sequences share one prefill; each is predicted one sequence's output (dropin).
TEST(RouterFeatures, NSequencesAndBatchesMultiplyTheOutput) {
  cluster::ClusterState state = make_state(2);
  const auto one = parse(openai::Endpoint::kCompletions,
                         "{\"model\":\"m\",\"prompt\":\"hello\",\"max_tokens\":20,"
                         "\"ignore_eos\":true}");
  openai::ExtractedRequest three;
  openai::extract_request(openai::Api::kCompletions,
                          "{\"model\":\"m\",\"prompt\":\"hello\",\"max_tokens\":20,"
                          "\"ignore_eos\":true,\"n\":3}",
                          "", {}, three);
  RequestInfo info;
  cluster::PreparedRequest a, b;
  prepare_request(state, one, "", info, a);
  EXPECT_EQ(a.features.predicted_output_tokens, 20);
  router::prepare_request(state, three, "m", "", info, b);
  EXPECT_EQ(info.sequences, 3);
  EXPECT_EQ(b.features.predicted_output_tokens, 60);
  EXPECT_EQ(b.features.prompt_tokens, a.features.prompt_tokens);  // one prefill

  openai::ExtractedRequest batch;
  openai::extract_request(openai::Api::kCompletions,
                          "{\"model\":\"m\",\"prompt\":[\"hello\",\"hello\"],\"max_tokens\":20,"
                          "\"ignore_eos\":true}",
                          "", {}, batch);
  router::prepare_request(state, batch, "m", "", info, b);
  EXPECT_EQ(info.sequences, 2);
  EXPECT_EQ(b.features.predicted_output_tokens, 40);
  EXPECT_EQ(b.features.prompt_tokens, 2 * a.features.prompt_tokens);  // two prefills
}

// Pooling and other prefill-only routes predict no decode: one output (the prefill's result).
TEST(RouterFeatures, PoolingPredictsNoDecode) {
  cluster::ClusterState state = make_state(2);
  openai::ExtractedRequest req;
  openai::extract_request(openai::Api::kEmbeddings,
                          "{\"model\":\"e\",\"input\":[\"one two\",\"three four five\"]}", "", {},
                          req);
  EXPECT_FALSE(req.decode);
  RequestInfo info;
  cluster::PreparedRequest p;
  router::prepare_request(state, req, "e", "", info, p);
  EXPECT_FALSE(info.decode);
  EXPECT_EQ(info.sequences, 1);
  EXPECT_EQ(p.features.predicted_output_tokens, 1);
  EXPECT_EQ(p.features.max_tokens, 1);
  EXPECT_TRUE(p.features.ignore_eos);  // exact: the output predictor learns nothing from it
  EXPECT_EQ(info.prompt_tokens,
            engine::count_tokens("one two") + engine::count_tokens("three four five"));
}

TEST(RouterFeatures, SessionIdInTheBody) {
  openai::ExtractedRequest req;
  openai::extract_request(openai::Api::kChat,
                          "{\"messages\":[],\"session_id\":\"s-1\",\"user\":\"u\"}", "", {}, req);
  RequestInfo info;
  router::extract_request_info(req, "m", "", kHashBlockSize, info);
  EXPECT_EQ(info.session_hash, predict::hash_session_key("s-1"));
  router::extract_request_info(req, "m", "hdr", kHashBlockSize, info);
  EXPECT_EQ(info.session_hash, predict::hash_session_key("hdr"));
}

}  // namespace
}  // namespace eta::router
