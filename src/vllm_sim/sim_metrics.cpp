#include "vllm_sim/sim_metrics.hpp"

#include <algorithm>
#include <cstdio>

namespace eta::vllm_sim {

namespace {

using metrics::Registry;

const std::vector<std::string> kLabels = {"model_name", "engine"};

std::vector<std::string> with_reason() {
  auto l = kLabels;
  l.push_back("finished_reason");
  return l;
}

const std::vector<double> kIterationTokenBuckets = {1,   8,    16,   32,   64,   128,  256,
                                                    512, 1024, 2048, 4096, 8192, 16384};
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                          0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                          20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kItlBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                         0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kRequestLatencyBuckets = {
    0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
    30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
const std::vector<double> kParamsNBuckets = {1, 2, 5, 10, 20};

std::string format_double(double v) {
  // Python's str(float) for the values that occur here (0.9 -> "0.9").
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

metrics::Gauge& gauge(Registry& r, const char* name, const char* help,
                      const std::vector<std::string>& values) {
  return r.gauge(name, help, kLabels).with(values);
}
metrics::Counter& counter(Registry& r, const char* name, const char* help,
                          const std::vector<std::string>& values) {
  return r.counter(name, help, kLabels).with(values);
}
metrics::Histogram& histogram(Registry& r, const char* name, const char* help,
                              std::vector<double> bounds, const std::vector<std::string>& values) {
  return r.histogram(name, help, kLabels, std::move(bounds)).with(values);
}

// Registers vllm:cache_config_info first (vLLM logs it at engine start) and returns the
// registry, so that it can run before the member initialisers below.
Registry& register_cache_config(Registry& r, const SimMetricsConfig& c) {
  const auto& e = c.engine;
  std::vector<std::pair<std::string, std::string>> info = {
      {"block_size", std::to_string(e.block_size)},
      {"gpu_memory_utilization", format_double(e.gpu_memory_utilization)},
      {"swap_space", "4"},
      {"cache_dtype", e.kv_cache_dtype},
      {"is_attention_free", "False"},
      {"num_gpu_blocks_override",
       c.num_gpu_blocks_override ? std::to_string(e.num_gpu_blocks) : "None"},
      {"sliding_window", "None"},
      {"enable_prefix_caching", e.enable_prefix_caching ? "True" : "False"},
      {"prefix_caching_hash_algo", "builtin"},
      {"cpu_offload_gb", "0"},
      {"calculate_kv_scales", "False"},
      {"num_gpu_blocks", std::to_string(e.num_gpu_blocks)},
      {"num_cpu_blocks", "0"},
      {"engine", "0"},
  };
  std::vector<std::string> names, values;
  for (auto& [k, v] : info) {
    names.push_back(k);
    values.push_back(v);
  }
  r.gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", names)
      .with(values)
      .set(1);
  return r;
}

}  // namespace

std::vector<double> buckets_1_2_5(double max_value) {
  std::vector<double> out;
  for (double exponent = 1;; exponent *= 10) {
    for (double mantissa : {1.0, 2.0, 5.0}) {
      double v = mantissa * exponent;
      if (v > max_value) return out;
      out.push_back(v);
    }
  }
}

SimMetrics::SimMetrics(Registry& registry, const SimMetricsConfig& config)
    : running_(gauge(register_cache_config(registry, config), "vllm:num_requests_running",
                     "Number of requests in model execution batches.", {config.model_name, "0"})),
      waiting_(gauge(registry, "vllm:num_requests_waiting",
                     "Number of requests waiting to be processed.", {config.model_name, "0"})),
      kv_usage_(gauge(registry, "vllm:kv_cache_usage_perc",
                      "KV-cache usage. 1 means 100 percent usage.", {config.model_name, "0"})),
      prefix_queries_(counter(registry, "vllm:prefix_cache_queries",
                              "Prefix cache queries, in terms of number of queried tokens.",
                              {config.model_name, "0"})),
      prefix_hits_(counter(registry, "vllm:prefix_cache_hits",
                           "Prefix cache hits, in terms of number of cached tokens.",
                           {config.model_name, "0"})),
      preemptions_(counter(registry, "vllm:num_preemptions",
                           "Cumulative number of preemption from the engine.",
                           {config.model_name, "0"})),
      prompt_tokens_(counter(registry, "vllm:prompt_tokens", "Number of prefill tokens processed.",
                             {config.model_name, "0"})),
      generation_tokens_(counter(registry, "vllm:generation_tokens",
                                 "Number of generation tokens processed.",
                                 {config.model_name, "0"})),
      success_(registry.counter("vllm:request_success", "Count of successfully processed requests.",
                                with_reason())),
      success_stop_(success_.with({config.model_name, "0", "stop"})),
      success_length_(success_.with({config.model_name, "0", "length"})),
      success_abort_(success_.with({config.model_name, "0", "abort"})),
      request_prompt_tokens_(
          histogram(registry, "vllm:request_prompt_tokens", "Number of prefill tokens processed.",
                    buckets_1_2_5(config.engine.max_model_len), {config.model_name, "0"})),
      request_generation_tokens_(histogram(
          registry, "vllm:request_generation_tokens", "Number of generation tokens processed.",
          buckets_1_2_5(config.engine.max_model_len), {config.model_name, "0"})),
      iteration_tokens_(histogram(registry, "vllm:iteration_tokens_total",
                                  "Histogram of number of tokens per engine_step.",
                                  kIterationTokenBuckets, {config.model_name, "0"})),
      request_max_num_generation_tokens_(
          histogram(registry, "vllm:request_max_num_generation_tokens",
                    "Histogram of maximum number of requested generation tokens.",
                    buckets_1_2_5(config.engine.max_model_len), {config.model_name, "0"})),
      request_params_n_(histogram(registry, "vllm:request_params_n",
                                  "Histogram of the n request parameter.", kParamsNBuckets,
                                  {config.model_name, "0"})),
      request_params_max_tokens_(histogram(registry, "vllm:request_params_max_tokens",
                                           "Histogram of the max_tokens request parameter.",
                                           buckets_1_2_5(config.engine.max_model_len),
                                           {config.model_name, "0"})),
      ttft_(histogram(registry, "vllm:time_to_first_token_seconds",
                      "Histogram of time to first token in seconds.", kTtftBuckets,
                      {config.model_name, "0"})),
      tpot_(histogram(registry, "vllm:time_per_output_token_seconds",
                      "Histogram of time per output token in seconds.DEPRECATED: Use "
                      "vllm:inter_token_latency_seconds instead.",
                      kItlBuckets, {config.model_name, "0"})),
      itl_(histogram(registry, "vllm:inter_token_latency_seconds",
                     "Histogram of inter-token latency in seconds.", kItlBuckets,
                     {config.model_name, "0"})),
      e2e_(histogram(registry, "vllm:e2e_request_latency_seconds",
                     "Histogram of e2e request latency in seconds.", kRequestLatencyBuckets,
                     {config.model_name, "0"})),
      queue_time_(histogram(registry, "vllm:request_queue_time_seconds",
                            "Histogram of time spent in WAITING phase for request.",
                            kRequestLatencyBuckets, {config.model_name, "0"})),
      inference_time_(histogram(registry, "vllm:request_inference_time_seconds",
                                "Histogram of time spent in RUNNING phase for request.",
                                kRequestLatencyBuckets, {config.model_name, "0"})),
      prefill_time_(histogram(registry, "vllm:request_prefill_time_seconds",
                              "Histogram of time spent in PREFILL phase for request.",
                              kRequestLatencyBuckets, {config.model_name, "0"})),
      decode_time_(histogram(registry, "vllm:request_decode_time_seconds",
                             "Histogram of time spent in DECODE phase for request.",
                             kRequestLatencyBuckets, {config.model_name, "0"})) {}

void SimMetrics::sync_gauges(const engine::Engine& engine) {
  running_.set(engine.num_running());
  waiting_.set(engine.num_waiting());
  kv_usage_.set(engine.kv_cache_usage());
}

void SimMetrics::sync_counters(const engine::Engine& engine) {
  const auto& c = engine.counters();
  auto delta = [](uint64_t now, uint64_t before) {
    return now > before ? static_cast<double>(now - before) : 0.0;
  };
  prefix_queries_.inc(delta(c.prefix_cache_queries, last_.prefix_cache_queries));
  prefix_hits_.inc(delta(c.prefix_cache_hits, last_.prefix_cache_hits));
  preemptions_.inc(delta(c.preemptions, last_.preemptions));
  prompt_tokens_.inc(delta(c.prompt_tokens, last_.prompt_tokens));
  generation_tokens_.inc(delta(c.generation_tokens, last_.generation_tokens));
  last_ = c;
}

void SimMetrics::observe_iteration_tokens(int n) {
  if (n > 0) iteration_tokens_.observe(n);
}

void SimMetrics::observe_first_token(double ttft) {
  ttft_.observe(std::max(ttft, 0.0));
}

void SimMetrics::observe_inter_token(double seconds) {
  seconds = std::max(seconds, 0.0);
  itl_.observe(seconds);
  tpot_.observe(seconds);
}

void SimMetrics::observe_finished(const engine::FinishedRequest& r, int max_tokens_param) {
  if (r.reason == engine::FinishReason::kStop) {
    success_stop_.inc();
  } else if (r.reason == engine::FinishReason::kAbort) {
    success_abort_.inc();
  } else {
    success_length_.inc();
  }
  request_prompt_tokens_.observe(r.prompt_tokens);
  request_generation_tokens_.observe(r.output_tokens);
  request_max_num_generation_tokens_.observe(max_tokens_param);
  request_params_n_.observe(1);
  request_params_max_tokens_.observe(max_tokens_param);
  auto nonneg = [](double v) { return std::max(v, 0.0); };
  e2e_.observe(nonneg(r.finish_time - r.arrival_time));
  queue_time_.observe(nonneg(r.first_scheduled_time - r.arrival_time));
  inference_time_.observe(nonneg(r.finish_time - r.first_scheduled_time));
  prefill_time_.observe(nonneg(r.first_token_time - r.first_scheduled_time));
  decode_time_.observe(nonneg(r.finish_time - r.first_token_time));
}

void SimMetrics::count_abort() {
  success_abort_.inc();
}

}  // namespace eta::vllm_sim
