// parse_text on a /metrics page the size of a real vLLM 0.10 server's (about 60 families: the
// vllm: gauges, counters and histograms with their real bucket lists, the Python client's
// `_created` series, process/python_gc metrics and the HTTP instrumentator's histograms).
// The router scrapes every replica every 50 ms, so this is per replica per scrape.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "metrics/parse.hpp"
#include "metrics/registry.hpp"

namespace {

using eta::metrics::Registry;

std::vector<double> one_two_five(double max) {
  std::vector<double> b;
  for (double base = 1; base <= max; base *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (base * m <= max) b.push_back(base * m);
    }
  }
  return b;
}

void build_vllm_sized_registry(Registry& reg) {
  const std::vector<std::string> l = {"model_name", "engine"};
  const std::vector<std::string> v = {"meta-llama/Llama-3.1-8B-Instruct", "0"};
  auto created = [&](const std::string& name) {
    reg.gauge(name + "_created", "Created time.", l).with(v).set(1754812345.678);
  };

  reg.gauge("python_info", "Python platform information", {"implementation", "major", "minor"})
      .with({"CPython", "3", "12"})
      .set(1);
  for (const char* g : {"0", "1", "2"}) {
    reg.counter("python_gc_objects_collected", "Objects collected during gc", {"generation"})
        .with({g})
        .inc(1234);
    reg.counter("python_gc_objects_uncollectable", "Uncollectable objects", {"generation"})
        .with({g})
        .inc(0);
    reg.counter("python_gc_collections", "Times this generation was collected", {"generation"})
        .with({g})
        .inc(77);
  }
  for (const char* p : {"process_virtual_memory_bytes", "process_resident_memory_bytes",
                        "process_start_time_seconds", "process_open_fds", "process_max_fds"}) {
    reg.gauge(p, "Process metric.").with().set(123456789);
  }
  reg.counter("process_cpu_seconds", "Total user and system CPU time").with().inc(812.4);

  reg.gauge("vllm:num_requests_running", "Running.", l).with(v).set(37);
  reg.gauge("vllm:num_requests_waiting", "Waiting.", l).with(v).set(4);
  reg.gauge("vllm:kv_cache_usage_perc", "KV usage.", l).with(v).set(0.61234);
  reg.gauge("vllm:gpu_cache_usage_perc", "KV usage (deprecated).", l).with(v).set(0.61234);
  for (const char* c : {"vllm:prefix_cache_queries", "vllm:prefix_cache_hits",
                        "vllm:gpu_prefix_cache_queries", "vllm:gpu_prefix_cache_hits",
                        "vllm:num_preemptions", "vllm:prompt_tokens", "vllm:generation_tokens"}) {
    reg.counter(c, "Counter.", l).with(v).inc(987654);
    created(c);
  }
  auto& success =
      reg.counter("vllm:request_success", "Success.", {"model_name", "engine", "finished_reason"});
  for (const char* r : {"stop", "length", "abort"}) success.with({v[0], v[1], r}).inc(1000);
  created("vllm:request_success");

  auto histogram = [&](const std::string& name, std::vector<double> bounds, double sample) {
    auto& h = reg.histogram(name, "Histogram.", l, bounds).with(v);
    for (size_t i = 0; i < bounds.size(); ++i) h.observe(bounds[i] * 0.9 + sample);
    created(name);
  };
  const std::vector<double> ttft = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                    0.25,  0.5,   0.75, 1,    2.5,  5,    7.5,  10,
                                    20,    40,    80,   160,  640,  2560};
  const std::vector<double> itl = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                                   0.75, 1,     2.5,  5,     7.5, 10,   20,  40,  80};
  const std::vector<double> e2e = {0.3, 0.5, 0.8, 1,  1.5, 2,   2.5, 5,   10,   15,  20,
                                   30,  40,  50,  60, 120, 240, 480, 960, 1920, 7680};
  for (const char* h :
       {"vllm:request_prompt_tokens", "vllm:request_generation_tokens",
        "vllm:request_max_num_generation_tokens", "vllm:request_params_max_tokens"}) {
    histogram(h, one_two_five(131072), 3);
  }
  histogram("vllm:request_params_n", {1, 2, 5, 10, 20}, 0);
  histogram("vllm:iteration_tokens_total",
            {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}, 1);
  histogram("vllm:time_to_first_token_seconds", ttft, 0.01);
  histogram("vllm:inter_token_latency_seconds", itl, 0.001);
  histogram("vllm:time_per_output_token_seconds", itl, 0.001);
  for (const char* h : {"vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds",
                        "vllm:request_inference_time_seconds", "vllm:request_prefill_time_seconds",
                        "vllm:request_decode_time_seconds"}) {
    histogram(h, e2e, 0.2);
  }
  reg.gauge("vllm:cache_config_info", "CacheConfig.",
            {"block_size", "cache_dtype", "calculate_kv_scales", "cpu_offload_gb",
             "enable_prefix_caching", "engine", "gpu_memory_utilization", "is_attention_free",
             "num_cpu_blocks", "num_gpu_blocks", "num_gpu_blocks_override",
             "prefix_caching_hash_algo", "sliding_window", "swap_space", "swap_space_bytes"})
      .with({"16", "auto", "False", "0", "True", "0", "0.9", "False", "None", "31450", "None",
             "builtin", "None", "4", "4294967296"})
      .set(1);

  const std::vector<std::string> hl = {"handler", "method", "status"};
  auto& http = reg.counter("http_requests", "Total number of requests.", hl);
  auto& size =
      reg.histogram("http_request_size_bytes", "Request size.", {"handler"}, one_two_five(1e7));
  auto& dur = reg.histogram("http_request_duration_seconds", "Latency.", {"handler", "method"},
                            {0.1, 0.5, 1});
  auto& highr = reg.histogram("http_request_duration_highr_seconds", "Latency (fine).", {},
                              {0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1,  1.5, 2,
                               2.5,  3,     3.5,  4,     4.5, 5,    7.5, 10,   30, 60});
  for (const char* h : {"/v1/completions", "/v1/chat/completions", "/metrics", "/health"}) {
    http.with({h, "POST", "2xx"}).inc(100);
    size.with({h}).observe(2048);
    dur.with({h, "POST"}).observe(0.3);
    highr.with().observe(0.3);
  }
}

std::string vllm_sized_metrics_text() {
  Registry reg;
  build_vllm_sized_registry(reg);
  return reg.render();
}

void BM_ParseVllmMetrics(benchmark::State& state) {
  const std::string text = vllm_sized_metrics_text();
  eta::metrics::ParsedMetrics parsed;
  std::string error;
  if (!eta::metrics::parse_text(text, parsed, error)) {
    state.SkipWithError(error.c_str());
    return;
  }
  const size_t num_samples = parsed.samples.size();
  const size_t num_families = parsed.types.size();
  for (auto _ : state) {
    const bool ok = eta::metrics::parse_text(text, parsed, error);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(parsed.samples.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["bytes"] = static_cast<double>(text.size());
  state.counters["samples"] = static_cast<double>(num_samples);
  state.counters["families"] = static_cast<double>(num_families);
  state.counters["ns_per_sample"] = benchmark::Counter(
      static_cast<double>(num_samples),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ParseVllmMetrics);

// What the scraper does with the result: the handful of lookups a routing snapshot needs.
void BM_ParseAndReadRoutingGauges(benchmark::State& state) {
  const std::string text = vllm_sized_metrics_text();
  eta::metrics::ParsedMetrics parsed;
  std::string error;
  for (auto _ : state) {
    eta::metrics::parse_text(text, parsed, error);
    double total = parsed.value("vllm:num_requests_running").value_or(0) +
                   parsed.value("vllm:num_requests_waiting").value_or(0) +
                   parsed.value("vllm:kv_cache_usage_perc").value_or(0);
    if (const auto* info = parsed.find("vllm:cache_config_info")) {
      total += static_cast<double>(info->label("block_size")->size());
    }
    benchmark::DoNotOptimize(total);
  }
}
BENCHMARK(BM_ParseAndReadRoutingGauges);

// The other side: rendering the same registry (what `eta vllm-sim` does per scrape).
void BM_RenderVllmSizedRegistry(benchmark::State& state) {
  Registry reg;
  build_vllm_sized_registry(reg);
  for (auto _ : state) {
    std::string text = reg.render();
    benchmark::DoNotOptimize(text.data());
  }
}
BENCHMARK(BM_RenderVllmSizedRegistry);

}  // namespace
