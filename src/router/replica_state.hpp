// What the router learns about a replica from polling it, as pure functions and small state
// machines (no networking): the health tracker with failure/success thresholds, the /metrics
// scrape turned into a cluster::ScrapeSnapshot, and the /v1/models list.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/view.hpp"
#include "metrics/parse.hpp"

namespace eta::router {

// Consecutive failures make a replica unhealthy (failure_threshold), consecutive successes make
// it healthy again (success_threshold). Before its first result a replica is unhealthy; the
// first result decides at once (a replica that answers at start-up is routable without waiting
// for success_threshold checks).
class HealthTracker {
 public:
  HealthTracker(int failure_threshold = 2, int success_threshold = 1)
      : failure_threshold_(failure_threshold), success_threshold_(success_threshold) {}

  // Records one result; returns true if healthy() changed.
  bool record(bool ok);
  bool healthy() const { return healthy_; }
  bool known() const { return known_; }
  int consecutive_failures() const { return failures_; }
  int consecutive_successes() const { return successes_; }

 private:
  int failure_threshold_;
  int success_threshold_;
  bool known_ = false;
  bool healthy_ = false;
  int failures_ = 0;
  int successes_ = 0;
};

// Cumulative counters of the previous scrape, for rates over the interval.
struct ScrapeCounters {
  bool valid = false;
  double prefix_queries = 0;
  double prefix_hits = 0;
  // least-load's throughput: vllm:generation_tokens_total at the last scrape, and when.
  double generation_tokens = -1;  // < 0: none seen yet
  double generation_time = 0;
};

// Builds a snapshot from a parsed vLLM /metrics page: running/waiting summed over engines,
// kv usage averaged (vllm:kv_cache_usage_perc, else the deprecated vllm:gpu_cache_usage_perc),
// num_gpu_blocks summed and block_size from vllm:cache_config_info (when it carries 2026's
// kv_cache_size_tokens, num_gpu_blocks is that capacity in blocks of block_size: on hybrid models
// the product of the other two is wrong), waiting from vllm:num_requests_waiting_by_reason when
// the plain gauge is absent, preemptions (cumulative), and
// the prefix-cache hit rate over the interval since the previous scrape (hits / queries deltas
// of vllm:prefix_cache_*, else vllm:gpu_prefix_cache_*; 0 without queries). Returns false with
// a reason when the page has no vllm:num_requests_running / _waiting (not a vLLM replica).
bool snapshot_from_metrics(const metrics::ParsedMetrics& parsed, double now,
                           ScrapeCounters& counters, cluster::ScrapeSnapshot& out,
                           std::string& error);

// One replica's GET /v1/models: model ids, each card as serialized JSON (for the router's union),
// and the simulator's vendor field `eta_time_scale` (simulated seconds per wall second) when
// every card carries the same one.
struct ModelList {
  std::vector<std::string> ids;
  std::vector<std::string> cards;
  std::optional<double> time_scale;
};
bool parse_models_body(std::string_view body, ModelList& out, std::string& error);

}  // namespace eta::router
