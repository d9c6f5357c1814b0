#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "metrics/parse.hpp"
#include "metrics/registry.hpp"

namespace eta::metrics {
namespace {

// What a vLLM 0.10 V1 server's /metrics looks like (abridged by hand; the Python client adds
// `_created` series and puts `_total` on counters' HELP/TYPE lines).
constexpr const char* kVllmSample =
    R"(# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 12345.0
python_gc_objects_collected_total{generation="1"} 678.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.4213483146067416
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 52000.0
# HELP vllm:prefix_cache_queries_created Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_created gauge
vllm:prefix_cache_queries_created{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 1.7548123456789e+09
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 31000.0
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="meta-llama/Llama-3.1-8B-Instruct"} 90.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="meta-llama/Llama-3.1-8B-Instruct"} 10.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="meta-llama/Llama-3.1-8B-Instruct"} 2.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_sum{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 12.5
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 60.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="1.0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 100.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 102.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 102.0

# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",calculate_kv_scales="False",cpu_offload_gb="0",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",is_attention_free="False",num_cpu_blocks="None",num_gpu_blocks="31450",num_gpu_blocks_override="None",prefix_caching_hash_algo="builtin",sliding_window="None",swap_space="4",swap_space_bytes="4294967296"} 1.0
# HELP vllm:lora_requests_info Running stats on lora requests.
# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql-lora,chat-lora",waiting_lora_adapters=""} 1.7548123e+09
# HELP http_requests_total Total number of requests by method, status and handler.
# TYPE http_requests_total counter
http_requests_total{handler="/v1/completions",method="POST",status="2xx"} 102.0
)";

TEST(MetricsParse, RealisticVllmSample) {
  ParsedMetrics m;
  std::string error;
  ASSERT_TRUE(parse_text(kVllmSample, m, error)) << error;
  EXPECT_EQ(m.samples.size(), 21u);
  EXPECT_EQ(m.types.at("vllm:num_requests_running"), "gauge");
  EXPECT_EQ(m.types.at("vllm:num_preemptions_total"), "counter");
  EXPECT_EQ(m.types.at("vllm:time_to_first_token_seconds"), "histogram");
  EXPECT_EQ(m.value("vllm:num_requests_running"), 7.0);
  EXPECT_EQ(m.value("vllm:num_requests_waiting", {{"engine", "0"}}), 3.0);
  EXPECT_DOUBLE_EQ(*m.value("vllm:kv_cache_usage_perc"), 0.4213483146067416);
  EXPECT_EQ(m.value("vllm:kv_cache_usage_perc", {{"engine", "1"}}), std::nullopt);
  EXPECT_EQ(m.value("vllm:prefix_cache_hits_total"), 31000.0);
  EXPECT_EQ(m.sum("vllm:request_success_total"), 102.0);
  EXPECT_EQ(m.sum("vllm:request_success_total", {{"finished_reason", "length"}}), 10.0);
  EXPECT_EQ(m.value("vllm:time_to_first_token_seconds_bucket", {{"le", "+Inf"}}), 102.0);
  EXPECT_EQ(m.value("vllm:time_to_first_token_seconds_count"), 102.0);

  const Sample* info = m.find("vllm:cache_config_info");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->labels.size(), 15u);
  ASSERT_NE(info->label("block_size"), nullptr);
  EXPECT_EQ(*info->label("block_size"), "16");
  EXPECT_EQ(*info->label("num_gpu_blocks"), "31450");
  EXPECT_EQ(*info->label("enable_prefix_caching"), "True");
  EXPECT_EQ(info->label("nope"), nullptr);
  EXPECT_EQ(info->labels.front().first, "block_size");  // text order is kept
  EXPECT_EQ(info->value, 1.0);

  const Sample* lora = m.find("vllm:lora_requests_info");
  ASSERT_NE(lora, nullptr);
  EXPECT_EQ(*lora->label("running_lora_adapters"), "sql-lora,chat-lora");
  EXPECT_EQ(*lora->label("waiting_lora_adapters"), "");
}

TEST(MetricsParse, RoundTripsRegistryOutput) {
  Registry reg;
  reg.gauge("vllm:num_requests_running", "Running.", {"model_name", "engine"})
      .with({"m\"o\\d\nel", "0"})
      .set(5);
  auto& success = reg.counter("vllm:request_success", "Finished.", {"finished_reason"});
  success.with({"stop"}).inc(41);
  success.with({"length"}).inc(1);
  auto& h = reg.histogram("vllm:e2e_request_latency_seconds", "E2E.", {"model_name"},
                          {0.3, 0.5, 0.8, 1, 1.5})
                .with({"m"});
  for (double v : {0.1, 0.4, 0.9, 2.0, 7.0}) h.observe(v);
  reg.gauge("weird_values", "Special values.", {"k"})
      .with({"nan"})
      .set(std::numeric_limits<double>::quiet_NaN());
  reg.gauge("weird_values", "Special values.", {"k"})
      .with({"neginf"})
      .set(-std::numeric_limits<double>::infinity());
  reg.gauge("weird_values", "Special values.", {"k"}).with({"tiny"}).set(1.5e-300);

  ParsedMetrics m;
  std::string error;
  ASSERT_TRUE(parse_text(reg.render(), m, error)) << error;
  EXPECT_EQ(m.types.at("vllm:num_requests_running"), "gauge");
  EXPECT_EQ(m.types.at("vllm:request_success_total"), "counter");
  EXPECT_EQ(m.types.at("vllm:e2e_request_latency_seconds"), "histogram");

  const Sample* running = m.find("vllm:num_requests_running");
  ASSERT_NE(running, nullptr);
  EXPECT_EQ(*running->label("model_name"), "m\"o\\d\nel");
  EXPECT_EQ(*running->label("engine"), "0");
  EXPECT_EQ(running->value, 5.0);
  EXPECT_EQ(m.value("vllm:request_success_total", {{"finished_reason", "stop"}}), 41.0);
  EXPECT_EQ(m.sum("vllm:request_success_total"), 42.0);

  const std::string b = "vllm:e2e_request_latency_seconds_bucket";
  EXPECT_EQ(m.value(b, {{"le", "0.3"}}), 1.0);
  EXPECT_EQ(m.value(b, {{"le", "0.5"}}), 2.0);
  EXPECT_EQ(m.value(b, {{"le", "0.8"}}), 2.0);
  EXPECT_EQ(m.value(b, {{"le", "1"}}), 3.0);
  EXPECT_EQ(m.value(b, {{"le", "1.5"}}), 3.0);
  EXPECT_EQ(m.value(b, {{"le", "+Inf"}, {"model_name", "m"}}), 5.0);
  EXPECT_DOUBLE_EQ(*m.value("vllm:e2e_request_latency_seconds_sum"), 10.4);
  EXPECT_EQ(m.value("vllm:e2e_request_latency_seconds_count"), 5.0);

  EXPECT_TRUE(std::isnan(*m.value("weird_values", {{"k", "nan"}})));
  EXPECT_EQ(m.value("weird_values", {{"k", "neginf"}}), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(m.value("weird_values", {{"k", "tiny"}}), 1.5e-300);
}

TEST(MetricsParse, AcceptsGrammarVariants) {
  const std::string text =
      "\n"
      "   \n"
      "# just a comment\n"
      "#TYPE spaced gauge\n"
      "spaced { a = \"1\" , b=\"2\", } 4 1700000000000\n"
      "no_labels 1e3\r\n"
      "with_tabs\t-2.5\t-17\n"
      "empty_set{} +Inf\n"
      "inf_lower{x=\"y\"} -inf\n"
      "nan_value NaN\n"
      "# EOF\n"
      "last_line_without_newline 0.25";
  ParsedMetrics m;
  std::string error;
  ASSERT_TRUE(parse_text(text, m, error)) << error;
  ASSERT_EQ(m.samples.size(), 7u);
  EXPECT_EQ(m.types.at("spaced"), "gauge");
  EXPECT_EQ(*m.samples[0].label("a"), "1");
  EXPECT_EQ(*m.samples[0].label("b"), "2");
  EXPECT_EQ(m.samples[0].value, 4.0);
  EXPECT_EQ(m.value("no_labels"), 1000.0);
  EXPECT_EQ(m.value("with_tabs"), -2.5);
  EXPECT_EQ(m.value("empty_set"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(m.value("inf_lower"), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(*m.value("nan_value")));
  EXPECT_EQ(m.value("last_line_without_newline"), 0.25);
}

// Parses `text`, expects failure, and returns the error.
std::string parse_error(const std::string& text, const ParseLimits& limits = {}) {
  ParsedMetrics m;
  std::string error;
  EXPECT_FALSE(parse_text(text, m, error, limits)) << "accepted: " << text;
  EXPECT_TRUE(m.samples.empty());
  EXPECT_TRUE(m.types.empty());
  EXPECT_EQ(error.find('\n'), std::string::npos) << "error is not one line: " << error;
  return error;
}

TEST(MetricsParse, RejectsBadLinesWithTheirLineNumber) {
  const std::string good = "# TYPE a gauge\na 1\n";
  EXPECT_EQ(parse_error(good + "b{x=\"1\"} 2\n{oops} 3\n"),
            "metrics text line 4: expected a metric name, got \"{oops} 3\"");
  EXPECT_EQ(parse_error(good + "c{x=\"unterminated} 2\n"),
            "metrics text line 3: unterminated value of label x");
  EXPECT_EQ(parse_error(good + "c{x=\"1\" 2\n"),
            "metrics text line 3: expected ',' or '}' after the value of label x");
  EXPECT_EQ(parse_error(good + "c{x=\"1\",\n"),
            "metrics text line 3: unterminated label set for c");
  EXPECT_EQ(parse_error("c{x}\n"), "metrics text line 1: expected '=' after label name x");
  EXPECT_EQ(parse_error("c{x=1} 2\n"),
            "metrics text line 1: expected '\"' to open the value of label x");
  EXPECT_EQ(parse_error("c{1x=\"1\"} 2\n"),
            "metrics text line 1: invalid label name at \"1x=\"1\"} 2\"");
  EXPECT_EQ(parse_error("c{x=\"\\t\"} 2\n"),
            "metrics text line 1: invalid escape sequence '\\t' in the value of label x");
  EXPECT_EQ(parse_error("c{x=\"1\",x=\"2\"} 2\n"), "metrics text line 1: duplicate label x on c");
  EXPECT_EQ(parse_error("\n\nc\n"), "metrics text line 3: missing value after metric name c");
  EXPECT_EQ(parse_error("c{x=\"1\"}\n"), "metrics text line 1: missing value for c");
  EXPECT_EQ(parse_error("c 12abc\n"), "metrics text line 1: invalid value \"12abc\" for c");
  EXPECT_EQ(parse_error("c ++1\n"), "metrics text line 1: invalid value \"++1\" for c");
  EXPECT_EQ(parse_error("c 1 2.5\n"), "metrics text line 1: invalid timestamp \"2.5\" for c");
  EXPECT_EQ(parse_error("c 1 2 3\n"),
            "metrics text line 1: unexpected text after the timestamp: \" 3\"");
  EXPECT_EQ(parse_error("c-d 1\n"),
            "metrics text line 1: unexpected character '-' in metric name c");
  EXPECT_EQ(parse_error("# TYPE c gaug\n"),
            "metrics text line 1: TYPE line for c has an invalid type \"gaug\"");
  EXPECT_EQ(parse_error("# TYPE 9c gauge\n"),
            "metrics text line 1: TYPE line with an invalid metric name \"9c\"");
  // Control bytes from a hostile replica are not echoed back raw.
  EXPECT_EQ(parse_error(std::string("\x01\x02 1\n")),
            "metrics text line 1: expected a metric name, got \"?? 1\"");
}

TEST(MetricsParse, RejectsTextOverTheLimits) {
  ParseLimits limits;
  limits.max_bytes = 64;
  EXPECT_EQ(parse_error(std::string(65, '#'), limits),
            "metrics text is 65 bytes, over the limit of 64");

  limits = {};
  limits.max_samples = 2;
  EXPECT_EQ(parse_error("a 1\nb 2\n# c\nc 3\n", limits),
            "metrics text line 4: more than 2 samples");

  limits = {};
  limits.max_line = 10;
  EXPECT_EQ(parse_error("a 1\nbbbbbbbbbbbb 2\n", limits),
            "metrics text line 2: line is 14 bytes, over the limit of 10");

  limits = {};
  limits.max_labels = 2;
  EXPECT_EQ(parse_error("a{x=\"1\",y=\"2\"} 1\nb{x=\"1\",y=\"2\",z=\"3\"} 1\n", limits),
            "metrics text line 2: more than 2 labels on b");

  // A single huge line under the default limits.
  const std::string huge = "a{x=\"" + std::string(100000, 'v') + "\"} 1\n";
  EXPECT_EQ(parse_error(huge),
            "metrics text line 1: line is 100009 bytes, over the limit of 65536");
}

TEST(MetricsParse, OverflowingValuesBecomeInfinityLikePrometheus) {
  ParsedMetrics m;
  std::string error;
  ASSERT_TRUE(parse_text("big 1e999\nsmall -1e999\ntiny 1e-999\n", m, error)) << error;
  EXPECT_EQ(m.value("big"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(m.value("small"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(m.value("tiny"), 0.0);
}

TEST(MetricsParse, ReusesTheOutputObject) {
  ParsedMetrics m;
  std::string error;
  ASSERT_TRUE(parse_text("a 1\n# TYPE a gauge\n", m, error));
  ASSERT_TRUE(parse_text("b 2\n", m, error));
  EXPECT_EQ(m.samples.size(), 1u);
  EXPECT_EQ(m.find("a"), nullptr);
  EXPECT_TRUE(m.types.empty());
}

TEST(MetricsParse, ReuseHandlesChangingLabelShapes) {
  ParsedMetrics m;
  std::string error;
  ASSERT_TRUE(
      parse_text("a{x=\"1\",y=\"2\"} 1\nb{z=\"long value that is not small\"} 2\n", m, error));
  ASSERT_TRUE(parse_text("a{x=\"q\\\"uote\"} 3\nb 4\nc{k=\"v\"} 5\n", m, error)) << error;
  ASSERT_EQ(m.samples.size(), 3u);
  ASSERT_EQ(m.samples[0].labels.size(), 1u);
  EXPECT_EQ(*m.samples[0].label("x"), "q\"uote");
  EXPECT_EQ(m.samples[0].label("y"), nullptr);
  EXPECT_TRUE(m.samples[1].labels.empty());
  EXPECT_EQ(m.value("c", {{"k", "v"}}), 5.0);
}

TEST(MetricsParse, MutatedInputNeverCrashes) {
  // Deterministic mutations of a real page: each either parses or fails with a one-line error.
  std::mt19937 rng(42);
  const std::string base = kVllmSample;
  constexpr char kAlphabet[] = "{}\"\\=, \n\t#x1.e+-\x00\xff";  // includes a NUL byte
  const std::string alphabet(kAlphabet, sizeof kAlphabet - 1);
  ParsedMetrics m;
  std::string error;
  int failures = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          text.erase(pos, 1 + rng() % 8);
          break;
        default:
          text.insert(pos, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    if (!parse_text(text, m, error)) {
      ++failures;
      EXPECT_EQ(error.rfind("metrics text line ", 0), 0u) << error;
      EXPECT_EQ(error.find('\n'), std::string::npos);
      EXPECT_TRUE(m.samples.empty());
    }
  }
  EXPECT_GT(failures, 100);  // the mutations do hit the error paths
}

}  // namespace
}  // namespace eta::metrics
