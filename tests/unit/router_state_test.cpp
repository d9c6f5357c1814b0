// Beast-free pieces of the router: decision log ring, health tracker, scrape snapshots, model
// lists, header filtering, admin bodies.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "metrics/parse.hpp"
#include "router/admin.hpp"
#include "router/decision_log.hpp"
#include "router/headers.hpp"
#include "router/replica_state.hpp"

namespace eta::router {
namespace {

// ---- decision log ----------------------------------------------------------------------------

void log(DecisionLog& d, uint64_t id) {
  DecisionRecord* r = d.next();
  ASSERT_NE(r, nullptr);
  r->request_id = id;
  r->model = "m";
  r->chosen = "http://a:1";
  r->reason = "r" + std::to_string(id);
  r->candidates.resize(1);
  r->candidates[0].replica = "http://a:1";
  r->candidates[0].ttft_s = std::nan("");
  r->candidates[0].e2e_s = 0.5;
  r->candidates[0].score = 1;
}

TEST(RouterDecisionLog, RingKeepsTheLastN) {
  DecisionLog d(3);
  EXPECT_EQ(d.size(), 0u);
  for (uint64_t i = 1; i <= 2; ++i) log(d, i);
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.recent(0).request_id, 2u);
  EXPECT_EQ(d.recent(1).request_id, 1u);
  for (uint64_t i = 3; i <= 7; ++i) log(d, i);
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.total(), 7u);
  EXPECT_EQ(d.recent(0).request_id, 7u);
  EXPECT_EQ(d.recent(1).request_id, 6u);
  EXPECT_EQ(d.recent(2).request_id, 5u);
}

TEST(RouterDecisionLog, JsonOldestFirstWithNullForUnpredicted) {
  DecisionLog d(10);
  for (uint64_t i = 1; i <= 4; ++i) log(d, i);
  const std::string j = d.to_json(2);
  EXPECT_NE(j.find("\"total\":4"), std::string::npos) << j;
  const size_t three = j.find("\"request_id\":3");
  const size_t four = j.find("\"request_id\":4");
  ASSERT_NE(three, std::string::npos) << j;
  ASSERT_NE(four, std::string::npos) << j;
  EXPECT_LT(three, four);
  EXPECT_EQ(j.find("\"request_id\":2"), std::string::npos);
  EXPECT_NE(j.find("\"predicted_ttft_s\":null"), std::string::npos) << j;
  EXPECT_NE(d.to_json(100).find("\"request_id\":1"), std::string::npos);
}

TEST(RouterDecisionLog, ZeroCapacityLogsNothing) {
  DecisionLog d(0);
  EXPECT_EQ(d.next(), nullptr);
  EXPECT_EQ(d.to_json(5), "{\"total\":0,\"decisions\":[]}");
}

// ---- health ----------------------------------------------------------------------------------

TEST(RouterHealth, ThresholdsAndFirstResult) {
  HealthTracker h(2, 2);
  EXPECT_FALSE(h.healthy());
  EXPECT_TRUE(h.record(true));  // the first result decides at once
  EXPECT_TRUE(h.healthy());
  EXPECT_FALSE(h.record(false));  // one failure is not enough
  EXPECT_TRUE(h.healthy());
  EXPECT_TRUE(h.record(false));
  EXPECT_FALSE(h.healthy());
  EXPECT_FALSE(h.record(true));  // two successes needed
  EXPECT_FALSE(h.healthy());
  EXPECT_TRUE(h.record(true));
  EXPECT_TRUE(h.healthy());
  EXPECT_FALSE(h.record(false));
  EXPECT_FALSE(h.record(true));  // a success resets the failure count
  EXPECT_FALSE(h.record(false));
  EXPECT_TRUE(h.healthy());
}

TEST(RouterHealth, FirstFailureMakesUnhealthyKnown) {
  HealthTracker h(2, 1);
  EXPECT_FALSE(h.known());
  EXPECT_FALSE(h.record(false));
  EXPECT_TRUE(h.known());
  EXPECT_FALSE(h.healthy());
  EXPECT_TRUE(h.record(true));
}

// ---- scrape ----------------------------------------------------------------------------------

const char* kMetrics = R"(# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="7372"} 1
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 2
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} %Q
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="m"} %H
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} 4
)";

metrics::ParsedMetrics page(int queries, int hits) {
  std::string text = kMetrics;
  text.replace(text.find("%Q"), 2, std::to_string(queries));
  text.replace(text.find("%H"), 2, std::to_string(hits));
  metrics::ParsedMetrics m;
  std::string error;
  EXPECT_TRUE(metrics::parse_text(text, m, error)) << error;
  return m;
}

TEST(RouterScrape, SnapshotAndPrefixRate) {
  ScrapeCounters counters;
  cluster::ScrapeSnapshot s;
  std::string error;
  ASSERT_TRUE(snapshot_from_metrics(page(100, 50), 1.5, counters, s, error)) << error;
  EXPECT_TRUE(s.valid);
  EXPECT_DOUBLE_EQ(s.time_s, 1.5);
  EXPECT_EQ(s.running, 3);
  EXPECT_EQ(s.waiting, 2);
  EXPECT_DOUBLE_EQ(s.kv_usage, 0.25);
  EXPECT_EQ(s.num_gpu_blocks, 7372);
  EXPECT_EQ(s.block_size, 16);
  EXPECT_DOUBLE_EQ(s.preemptions, 4);
  EXPECT_DOUBLE_EQ(s.prefix_hit_rate, 0);  // no previous scrape: no rate yet
  ASSERT_TRUE(snapshot_from_metrics(page(300, 200), 1.6, counters, s, error));
  EXPECT_DOUBLE_EQ(s.prefix_hit_rate, 0.75);  // 150 hits of 200 queries over the interval
  ASSERT_TRUE(snapshot_from_metrics(page(300, 200), 1.7, counters, s, error));
  EXPECT_DOUBLE_EQ(s.prefix_hit_rate, 0);                                    // nothing queried
  ASSERT_TRUE(snapshot_from_metrics(page(10, 5), 1.8, counters, s, error));  // restarted
  EXPECT_DOUBLE_EQ(s.prefix_hit_rate, 0);
}

// least-load's throughput: the vllm:generation_tokens_total delta over the interval.
TEST(RouterScrape, GenerationRateOverTheInterval) {
  const auto with_tokens = [](double tokens) {
    std::string text = std::string(kMetrics) +
                       "# TYPE vllm:generation_tokens_total counter\n"
                       "vllm:generation_tokens_total{engine=\"0\",model_name=\"m\"} " +
                       std::to_string(tokens) + "\n";
    text.replace(text.find("%Q"), 2, "1");
    text.replace(text.find("%H"), 2, "0");
    metrics::ParsedMetrics m;
    std::string error;
    EXPECT_TRUE(metrics::parse_text(text, m, error)) << error;
    return m;
  };
  ScrapeCounters counters;
  cluster::ScrapeSnapshot s;
  std::string error;
  ASSERT_TRUE(snapshot_from_metrics(with_tokens(1000), 2.0, counters, s, error)) << error;
  EXPECT_DOUBLE_EQ(s.generation_tps, 0);  // no previous scrape
  ASSERT_TRUE(snapshot_from_metrics(with_tokens(1500), 2.5, counters, s, error));
  EXPECT_DOUBLE_EQ(s.generation_tps, 1000);  // 500 tokens in 0.5 s
  ASSERT_TRUE(snapshot_from_metrics(with_tokens(20), 3.0, counters, s, error));  // restarted
  EXPECT_DOUBLE_EQ(s.generation_tps, 0);
  ASSERT_TRUE(snapshot_from_metrics(page(1, 0), 3.5, counters, s, error));  // none exported
  EXPECT_DOUBLE_EQ(s.generation_tps, 0);
}

TEST(RouterScrape, NotAVllmPage) {
  metrics::ParsedMetrics m;
  std::string error;
  ASSERT_TRUE(metrics::parse_text("up 1\n", m, error));
  ScrapeCounters counters;
  cluster::ScrapeSnapshot s;
  EXPECT_FALSE(snapshot_from_metrics(m, 0, counters, s, error));
  EXPECT_NE(error.find("vllm:num_requests_running"), std::string::npos);
}

TEST(RouterModels, ParsesIdsCardsAndTimeScale) {
  ModelList l;
  std::string error;
  ASSERT_TRUE(parse_models_body(
      R"({"object":"list","data":[{"id":"a","object":"model","eta_time_scale":20},)"
      R"({"id":"b","object":"model","eta_time_scale":20}]})",
      l, error))
      << error;
  ASSERT_EQ(l.ids.size(), 2u);
  EXPECT_EQ(l.ids[1], "b");
  EXPECT_EQ(l.cards[0], R"({"id":"a","object":"model","eta_time_scale":20})");
  EXPECT_EQ(l.time_scale, 20.0);
  ASSERT_TRUE(parse_models_body(R"({"object":"list","data":[{"id":"a"}]})", l, error));
  EXPECT_FALSE(l.time_scale.has_value());
  EXPECT_FALSE(parse_models_body("[]", l, error));
  EXPECT_FALSE(parse_models_body("nope", l, error));
}

// ---- headers ---------------------------------------------------------------------------------

TEST(RouterHeaders, ForwardStripsHopByHopAndEta) {
  const http::Headers in = {{"Host", "router:1"},
                            {"Content-Type", "application/json"},
                            {"Content-Length", "12"},
                            {"Connection", "keep-alive, X-Private"},
                            {"X-Private", "secret"},
                            {"Keep-Alive", "timeout=5"},
                            {"Transfer-Encoding", "chunked"},
                            {"X-ETA-Replica", "http://evil:1"},
                            {"x-eta-predicted-ttft-ms", "1"},
                            {"Authorization", "Bearer k"},
                            {"x-session-id", "s1"}};
  http::Headers out;
  forward_request_headers(in, out);
  const http::Headers expected = {
      {"Content-Type", "application/json"}, {"Authorization", "Bearer k"}, {"x-session-id", "s1"}};
  EXPECT_EQ(out, expected);
}

TEST(RouterHeaders, RelayKeepsEndToEndHeaders) {
  const http::HeaderView raw[] = {{"content-type", "text/event-stream; charset=utf-8"},
                                  {"transfer-encoding", "chunked"},
                                  {"date", "today"},
                                  {"x-eta-replica", "forged"},
                                  {"content-length", "5"},
                                  {"x-request-id", "abc"}};
  http::ResponseHead head;
  head.headers = raw;
  http::Headers out;
  std::string type;
  relay_response_headers(head, out, type);
  EXPECT_EQ(type, "text/event-stream; charset=utf-8");
  const http::Headers expected = {{"date", "today"}, {"x-request-id", "abc"}};
  EXPECT_EQ(out, expected);
}

TEST(RouterHeaders, BearerToken) {
  EXPECT_EQ(bearer_token("Bearer sk-1"), "sk-1");
  EXPECT_EQ(bearer_token("bearer   sk-2 "), "sk-2");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token(""), "");
}

TEST(RouterHeaders, CookieAndQueryValues) {
  EXPECT_EQ(cookie_value("theme=dark; eta_admin_token=t1", "eta_admin_token"), "t1");
  EXPECT_EQ(cookie_value("eta_admin_token=t2;theme=dark", "eta_admin_token"), "t2");
  EXPECT_EQ(cookie_value("x_eta_admin_token=t3", "eta_admin_token"), "");  // whole names only
  EXPECT_EQ(cookie_value("eta_admin_token", "eta_admin_token"), "");
  EXPECT_EQ(cookie_value("", "eta_admin_token"), "");
  EXPECT_EQ(query_value("a=1&token=t4&b=2", "token"), "t4");
  EXPECT_EQ(query_value("atoken=t5", "token"), "");
  EXPECT_EQ(query_value("token=", "token"), "");
  EXPECT_EQ(query_value("", "token"), "");
}

// ---- admin -----------------------------------------------------------------------------------

TEST(RouterAdmin, Bodies) {
  AdminReplicaBody b;
  std::string e;
  ASSERT_TRUE(parse_admin_body(R"({"url":"http://a:1","weight":2,"gpu":"a100"})", true, b, e)) << e;
  EXPECT_EQ(b.url, "http://a:1");
  EXPECT_EQ(b.weight, 2.0);
  EXPECT_EQ(b.gpu, "a100");
  EXPECT_FALSE(parse_admin_body(R"({"url":"http://a:1","weight":2})", false, b, e));
  EXPECT_NE(e.find("unknown field 'weight'"), std::string::npos) << e;
  ASSERT_TRUE(parse_admin_body(R"({"url":"http://a:1","force":true})", false, b, e)) << e;
  EXPECT_TRUE(b.force);
  EXPECT_FALSE(parse_admin_body(R"({"weight":1})", true, b, e));
  EXPECT_EQ(e, "url is required");
  EXPECT_FALSE(parse_admin_body("[1]", true, b, e));
}

TEST(RouterAdmin, ReplicaJson) {
  ReplicaReport r;
  r.url = "http://a:1";
  r.models = {"m"};
  r.healthy = true;
  r.predicted_ttft_s = std::nan("");
  const std::string j = replicas_json(std::span<const ReplicaReport>(&r, 1));
  EXPECT_EQ(j.rfind("{\"replicas\":[{\"url\":\"http://a:1\"", 0), 0u) << j;
  EXPECT_NE(j.find("\"models\":[\"m\"]"), std::string::npos) << j;
  EXPECT_NE(j.find("\"ttft_s\":null"), std::string::npos) << j;
  EXPECT_NE(j.find("\"age_s\":null"), std::string::npos) << j;
}

}  // namespace
}  // namespace eta::router
