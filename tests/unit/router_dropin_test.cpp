// The router as a drop-in in front of vLLM (issue 11): the routes table, upstream auth headers
// and configuration, exact token counts of multi-token stream events and the stream the client
// gets back, and the 2026 metrics.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "metrics/parse.hpp"
#include "router/config.hpp"
#include "router/headers.hpp"
#include "router/replica_state.hpp"
#include "router/routes.hpp"
#include "router/sse.hpp"

namespace eta::router {
namespace {

TEST(RouterRoutes, EveryVllmRouteIsInTheTable) {
  struct Want {
    const char* method;
    const char* path;
    RouteClass cls;
  };
  for (const Want& w : std::initializer_list<Want>{
           {"POST", "/v1/completions", RouteClass::kGenerate},
           {"POST", "/v1/chat/completions", RouteClass::kGenerate},
           {"POST", "/v1/responses", RouteClass::kGenerate},
           {"POST", "/v1/messages", RouteClass::kGenerate},
           {"POST", "/v1/messages/count_tokens", RouteClass::kPooling},
           {"POST", "/v1/completions/render", RouteClass::kPooling},
           {"POST", "/v1/chat/completions/render", RouteClass::kPooling},
           {"POST", "/v1/audio/transcriptions", RouteClass::kGenerate},
           {"POST", "/v1/audio/translations", RouteClass::kGenerate},
           {"POST", "/v1/embeddings", RouteClass::kPooling},
           {"POST", "/pooling", RouteClass::kPooling},
           {"POST", "/classify", RouteClass::kPooling},
           {"POST", "/score", RouteClass::kPooling},
           {"POST", "/v1/score", RouteClass::kPooling},
           {"POST", "/rerank", RouteClass::kPooling},
           {"POST", "/v1/rerank", RouteClass::kPooling},
           {"POST", "/v2/rerank", RouteClass::kPooling},
           {"POST", "/tokenize", RouteClass::kUtility},
           {"POST", "/detokenize", RouteClass::kUtility},
           {"GET", "/v1/models", RouteClass::kOwn},
           {"GET", "/health", RouteClass::kOwn},
           {"GET", "/metrics", RouteClass::kOwn},
           {"GET", "/version", RouteClass::kOwn},
           {"GET", "/ping", RouteClass::kOwn},
       }) {
    const RouteMatch m = match_route(w.method, w.path);
    ASSERT_NE(m.spec, nullptr) << w.path;
    EXPECT_EQ(m.spec->cls, w.cls) << w.path;
  }
}

TEST(RouterRoutes, StoredResponsesAndUnknownPaths) {
  RouteMatch m = match_route("GET", "/v1/responses/resp_123");
  ASSERT_NE(m.spec, nullptr);
  EXPECT_EQ(m.spec->cls, RouteClass::kStored);
  EXPECT_EQ(m.id, "resp_123");
  m = match_route("POST", "/v1/responses/resp_123/cancel");
  ASSERT_NE(m.spec, nullptr);
  EXPECT_EQ(m.spec->name, "responses_cancel");
  EXPECT_EQ(m.id, "resp_123");
  EXPECT_EQ(match_route("GET", "/v1/responses/").spec, nullptr);
  EXPECT_EQ(match_route("GET", "/v1/responses/a/b").spec, nullptr);
  EXPECT_EQ(match_route("GET", "/admin/replicas").spec, nullptr);
  m = match_route("GET", "/v1/completions");
  EXPECT_EQ(m.spec, nullptr);
  EXPECT_EQ(m.allow, "POST");  // a 405
  m = match_route("DELETE", "/ping");
  EXPECT_EQ(m.allow, "GET, POST");
}

TEST(RouterUpstreamAuth, Headers) {
  const http::Headers client{{"Authorization", "Bearer client-key"}, {"X-Other", "1"}};
  // no router keys, no upstream key: the client's key goes through
  http::Headers h = client;
  set_upstream_authorization(h, false, "");
  EXPECT_EQ(h, client);
  // router keys: never the client's
  h = client;
  set_upstream_authorization(h, true, "");
  EXPECT_EQ(h, (http::Headers{{"X-Other", "1"}}));
  // an upstream key replaces it
  h = client;
  set_upstream_authorization(h, false, "up");
  EXPECT_EQ(h, (http::Headers{{"X-Other", "1"}, {"Authorization", "Bearer up"}}));
  h = {{"authorization", "Bearer client-key"}};
  set_upstream_authorization(h, true, "up");
  EXPECT_EQ(h, (http::Headers{{"Authorization", "Bearer up"}}));
}

TEST(RouterUpstreamAuth, Config) {
  const std::string path = ::testing::TempDir() + "/eta-upstream-key";
  {
    std::ofstream f(path);
    f << "# the replicas' key\n\n  sk-upstream  \n";
  }
  RouterConfig c;
  std::string error;
  ASSERT_TRUE(
      parse_config_yaml("replicas:\n  - {url: http://127.0.0.1:8001, api_key: k1}\n"
                        "  - http://127.0.0.1:8002\nupstream_api_key_file: " +
                            path +
                            "\nstream_usage: false\n"
                            "request_estimates: {image_tokens: 10}\n",
                        "eta.yaml", c, error))
      << error;
  ASSERT_TRUE(validate_config(c, error)) << error;
  EXPECT_EQ(c.replicas[0].api_key, "k1");
  EXPECT_EQ(c.upstream_api_key, "sk-upstream");
  EXPECT_FALSE(c.stream_usage);
  EXPECT_EQ(c.request_estimates.image_tokens, 10);
  // the flag
  RouterConfig d;
  RouteFlags f;
  f.values["upstream_api_key_file"] = path;
  ASSERT_TRUE(apply_flags(f, d, error));
  ASSERT_TRUE(validate_config(d, error)) << error;
  EXPECT_EQ(d.upstream_api_key, "sk-upstream");
  // a missing file: one line, never a key
  RouterConfig e;
  e.upstream_api_key_file = path + ".missing";
  EXPECT_FALSE(validate_config(e, error));
  EXPECT_NE(error.find("upstream_api_key_file"), std::string::npos);
  EXPECT_EQ(error.find('\n'), std::string::npos);
  RouterConfig g;
  EXPECT_FALSE(
      parse_config_yaml("replicas:\n  - {url: http://h:1, apikey: x}\n", "eta.yaml", g, error));
  EXPECT_NE(error.find("api_key"), std::string::npos);  // the known keys are listed
  std::remove(path.c_str());
}

// A chat stream of 4-token events (vLLM --stream-interval 4), with the continuous usage the
// router asks for.
std::string chunk(const std::string& content, int completion_tokens, bool finish = false) {
  return "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
         "\"delta\":{\"content\":\"" +
         content + "\"},\"finish_reason\":" + (finish ? "\"length\"" : "null") +
         "}],\"usage\":{\"prompt_tokens\":7,\"total_tokens\":" +
         std::to_string(7 + completion_tokens) +
         ",\"completion_tokens\":" + std::to_string(completion_tokens) + "}}\n\n";
}
const std::string kRole =
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":7,"
    "\"total_tokens\":7,\"completion_tokens\":0}}\n\n";
const std::string kUsageChunk =
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{"
    "\"prompt_tokens\":7,\"total_tokens\":19,\"completion_tokens\":12}}\n\n";
std::string four_token_stream() {
  return kRole + chunk(" a b c d", 4) + chunk(" e f g h", 8) + chunk(" i j k l", 12, true) +
         kUsageChunk + "data: [DONE]\n\n";
}

TEST(RouterSse, FourTokenEventsCountFourTokens) {
  const std::string s = four_token_stream();
  StreamTokenCounter c;
  EXPECT_EQ(c.feed(s), 12);
  EXPECT_EQ(c.usage_completion_tokens(), 12);
  // every split of the bytes counts the same, and each event its own 4
  for (size_t cut = 0; cut <= s.size(); cut += 7) {
    StreamTokenCounter d;
    EXPECT_EQ(d.feed(s.substr(0, cut)) + d.feed(s.substr(cut)), 12) << cut;
  }
  StreamTokenCounter e;
  EXPECT_EQ(e.feed(kRole + chunk(" a b c d", 4)), 4);
  EXPECT_EQ(e.feed(chunk(" e f g h", 8)), 4);
  // without usage (a replica ignoring continuous_usage_stats) an event counts one
  StreamTokenCounter plain;
  EXPECT_EQ(plain.feed("data: {\"choices\":[{\"index\":0,\"text\":\" a b c d\"}]}\n\n"), 1);
}

TEST(RouterSse, TheClientGetsExactlyItsStream) {
  const std::string s = four_token_stream();
  auto strip = [](std::string chunk_text) {
    const size_t u = chunk_text.find(",\"usage\"");
    const size_t end = chunk_text.rfind("}}");
    return chunk_text.erase(u, end + 1 - u);  // keeps the closing brace of the object
  };
  // What vLLM sends without continuous usage: no usage member on chunks.
  const std::string plain = strip(kRole) + strip(chunk(" a b c d", 4)) +
                            strip(chunk(" e f g h", 8)) + strip(chunk(" i j k l", 12, true));
  for (size_t cut : {size_t{0}, size_t{1}, size_t{50}, s.size() / 2, s.size()}) {
    for (bool include_usage : {false, true}) {
      UsageStreamRewriter r(include_usage, false);
      std::string out;
      r.feed(s.substr(0, cut), out);
      r.feed(s.substr(cut), out);
      EXPECT_EQ(out, plain + (include_usage ? kUsageChunk : "") + "data: [DONE]\n\n")
          << cut << " " << include_usage;
      EXPECT_EQ(r.pending_bytes(), 0u);
    }
  }
  // Comments and other events pass as they came.
  UsageStreamRewriter r(false, false);
  std::string out;
  r.feed(": keep-alive\n\nevent: x\ndata: {\"usage\":1}\n\n", out);
  EXPECT_EQ(out, ": keep-alive\n\nevent: x\ndata: {\"usage\":1}\n\n");
}

TEST(RouterSse, RewriterIsBoundedAndSurvivesGarbage) {
  // An event that never ends is relayed as it came once over the bound, and so is the rest.
  UsageStreamRewriter r(false, false);
  std::string out;
  const std::string big(UsageStreamRewriter::kMaxEventBytes + 10, 'x');
  r.feed("data: " + big, out);
  EXPECT_EQ(r.pending_bytes(), 0u);
  EXPECT_EQ(out, "data: " + big);
  r.feed("\n\n" + chunk(" a", 1), out);
  EXPECT_EQ(out, "data: " + big + "\n\n" + chunk(" a", 1));
  // Truncated or hostile JSON: no crash, bytes relayed.
  const std::string s = four_token_stream();
  for (size_t cut = 0; cut < s.size(); cut += 3) {
    UsageStreamRewriter g(false, false);
    std::string o;
    std::string bad = s.substr(0, cut) + "\n\n" + "data: {\"usage\":{\"a\":\"\\\n\n";
    g.feed(bad, o);
    EXPECT_LE(o.size(), bad.size());
  }
}

TEST(RouterSse, ContinuousUsageBody) {
  EXPECT_EQ(
      with_continuous_usage(R"({"model":"m","stream":true})"),
      R"({"stream_options":{"include_usage":true,"continuous_usage_stats":true},"model":"m","stream":true})");
  EXPECT_EQ(
      with_continuous_usage(R"({"stream":true,"stream_options":{"include_usage":true}})"),
      R"({"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}})");
  EXPECT_EQ(with_continuous_usage("{}"),
            R"({"stream_options":{"include_usage":true,"continuous_usage_stats":true}})");
  EXPECT_EQ(with_continuous_usage("[1]"), "");
}

TEST(RouterSse, ResponsesStreamIdAndTokens) {
  StreamTokenCounter c;
  const std::string s =
      "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":"
      "\"resp_abc\",\"status\":\"in_progress\"}}\n\n"
      "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
      "\"delta\":\" hi\"}\n\n"
      "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":"
      "\"resp_abc\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";
  EXPECT_EQ(c.feed(s), 1);
  EXPECT_EQ(c.response_id(), "resp_abc");
  EXPECT_EQ(c.usage_completion_tokens(), 1);
  EXPECT_EQ(response_id_of(R"({"id":"resp_x","object":"response"})"), "resp_x");
  EXPECT_EQ(parse_body_usage(R"({"id":"resp_x","usage":{"output_tokens":5}})").completion_tokens,
            5);
}

TEST(RouterScrape, KvCacheSizeTokensAndWaitingByReason) {
  const char* text =
      R"(vllm:cache_config_info{block_size="16",engine="0",kv_cache_size_tokens="32000",num_gpu_blocks="7372"} 1
vllm:num_requests_running{engine="0"} 1
vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 2
vllm:num_requests_waiting_by_reason{engine="0",reason="deferred"} 1
)";
  metrics::ParsedMetrics m;
  std::string error;
  ASSERT_TRUE(metrics::parse_text(text, m, error)) << error;
  ScrapeCounters counters;
  cluster::ScrapeSnapshot s;
  ASSERT_TRUE(snapshot_from_metrics(m, 0, counters, s, error)) << error;
  EXPECT_EQ(s.num_gpu_blocks * s.block_size, 32000);  // not 7372 x 16
  EXPECT_EQ(s.waiting, 3);
}

}  // namespace
}  // namespace eta::router
