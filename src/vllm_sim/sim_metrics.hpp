// The `vllm:` metrics of one simulated engine, with vLLM V1's names, types, labels, help texts
// and buckets (../shared/vllm-interface.md §5, and the 2026 set of §9: no
// time_per_output_token_seconds; request_time_per_output_token_seconds,
// num_requests_waiting_by_reason, cache_config_info with kv_cache_size_tokens and
// kv_cache_max_concurrency; finished_reason error and repetition declared). Every time is in
// simulated seconds, so a load generator sees the same figures whatever the time scale. Pure: no
// networking.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "metrics/registry.hpp"

namespace eta::vllm_sim {

// vLLM's build_1_2_5_buckets(max_value): 1, 2, 5, 10, 20, 50, ... up to max_value.
std::vector<double> buckets_1_2_5(double max_value);

struct SimMetricsConfig {
  std::string model_name;
  engine::EngineConfig engine;           // resolved
  bool num_gpu_blocks_override = false;  // --num-gpu-blocks was given
};

class SimMetrics {
 public:
  SimMetrics(metrics::Registry& registry, const SimMetricsConfig& config);

  // Running/waiting/kv-usage gauges from the engine (after every step(), add and abort).
  void sync_gauges(const engine::Engine& engine);
  // The engine's cumulative counters (prefix cache, preemptions, prompt and generation tokens),
  // when a step's results are delivered.
  void sync_counters(const engine::Engine& engine);
  void observe_iteration_tokens(int num_scheduled_tokens);
  void observe_first_token(double ttft_seconds);
  void observe_inter_token(double seconds);
  // A request that finished in the engine (stop or length).
  void observe_finished(const engine::FinishedRequest& r, int max_tokens_param);
  // The n of a request (once per request, at arrival).
  void observe_params_n(int n);
  // A request aborted by its client.
  void count_abort();

 private:
  metrics::Gauge& running_;
  metrics::Gauge& waiting_;
  metrics::Gauge& kv_usage_;
  metrics::Counter& prefix_queries_;
  metrics::Counter& prefix_hits_;
  metrics::Counter& preemptions_;
  metrics::Counter& prompt_tokens_;
  metrics::Counter& generation_tokens_;
  metrics::CounterFamily& success_;
  metrics::Counter& success_stop_;
  metrics::Counter& success_length_;
  metrics::Counter& success_abort_;
  metrics::Counter& success_error_;       // declared (2026): the sim never errors mid-request
  metrics::Counter& success_repetition_;  // declared (2026): no repetition detection in the sim
  metrics::Gauge& waiting_capacity_;      // num_requests_waiting_by_reason{reason="capacity"}
  metrics::Gauge& waiting_deferred_;      // {reason="deferred"}: always 0 (nothing defers)
  metrics::Histogram& request_prompt_tokens_;
  metrics::Histogram& request_generation_tokens_;
  metrics::Histogram& iteration_tokens_;
  metrics::Histogram& request_max_num_generation_tokens_;
  metrics::Histogram& request_params_n_;
  metrics::Histogram& request_params_max_tokens_;
  metrics::Histogram& ttft_;
  metrics::Histogram& request_tpot_;  // vllm:request_time_per_output_token_seconds
  metrics::Histogram& itl_;
  metrics::Histogram& e2e_;
  metrics::Histogram& queue_time_;
  metrics::Histogram& inference_time_;
  metrics::Histogram& prefill_time_;
  metrics::Histogram& decode_time_;
  engine::EngineCounters last_{};
};

}  // namespace eta::vllm_sim
