#include "router/replica_state.hpp"

#include <algorithm>
#include <cmath>

#include <simdjson.h>

namespace eta::router {

bool HealthTracker::record(bool ok) {
  const bool before = healthy_;
  if (ok) {
    failures_ = 0;
    ++successes_;
    if (!known_ || successes_ >= success_threshold_) healthy_ = true;
  } else {
    successes_ = 0;
    ++failures_;
    if (!known_ || failures_ >= failure_threshold_) healthy_ = false;
  }
  known_ = true;
  return healthy_ != before;
}

namespace {

// Sum of every sample named `name` (any labels); nullopt if there is none.
std::optional<double> sum_of(const metrics::ParsedMetrics& m, std::string_view name) {
  double total = 0;
  bool found = false;
  for (const metrics::Sample& s : m.samples) {
    if (s.name != name) continue;
    if (std::isfinite(s.value)) total += s.value;
    found = true;
  }
  if (!found) return std::nullopt;
  return total;
}

std::optional<double> mean_of(const metrics::ParsedMetrics& m, std::string_view name) {
  double total = 0;
  int n = 0;
  for (const metrics::Sample& s : m.samples) {
    if (s.name != name || !std::isfinite(s.value)) continue;
    total += s.value;
    ++n;
  }
  if (n == 0) return std::nullopt;
  return total / n;
}

int to_int(const std::string* text) {
  if (!text) return 0;
  char* end = nullptr;
  const double v = std::strtod(text->c_str(), &end);
  if (end == text->c_str() || !std::isfinite(v) || v < 0 || v > 2e9) return 0;
  return static_cast<int>(v);
}

}  // namespace

bool snapshot_from_metrics(const metrics::ParsedMetrics& m, double now, ScrapeCounters& counters,
                           cluster::ScrapeSnapshot& out, std::string& error) {
  const std::optional<double> running = sum_of(m, "vllm:num_requests_running");
  std::optional<double> waiting = sum_of(m, "vllm:num_requests_waiting");
  // 2026: the waiting requests by reason (capacity, deferred) sum to num_requests_waiting.
  if (!waiting) waiting = sum_of(m, "vllm:num_requests_waiting_by_reason");
  if (!running || !waiting) {
    error = "no vllm:num_requests_running / vllm:num_requests_waiting in /metrics";
    return false;
  }
  cluster::ScrapeSnapshot s;
  s.valid = true;
  s.time_s = now;
  s.running = static_cast<int>(std::max(0.0, *running));
  s.waiting = static_cast<int>(std::max(0.0, *waiting));
  std::optional<double> kv = mean_of(m, "vllm:kv_cache_usage_perc");
  if (!kv) kv = mean_of(m, "vllm:gpu_cache_usage_perc");
  s.kv_usage = std::clamp(kv.value_or(0.0), 0.0, 1.0);
  int blocks = 0;
  int block_size = 0;
  int64_t kv_tokens = 0;  // 2026: kv_cache_size_tokens, the capacity that holds on hybrid models
  for (const metrics::Sample& sample : m.samples) {
    if (sample.name != "vllm:cache_config_info") continue;
    blocks += to_int(sample.label("num_gpu_blocks"));
    kv_tokens += to_int(sample.label("kv_cache_size_tokens"));
    if (block_size == 0) block_size = to_int(sample.label("block_size"));
  }
  if (kv_tokens > 0) {
    // num_gpu_blocks x block_size is wrong on hybrid models (block_size is the minimum over the
    // KV-cache groups): the token capacity, in blocks of the reported size.
    if (block_size <= 0) block_size = 16;
    blocks = static_cast<int>(std::min<int64_t>(kv_tokens / block_size, 2000000000));
  }
  s.num_gpu_blocks = blocks;
  s.block_size = block_size;
  s.preemptions = sum_of(m, "vllm:num_preemptions_total").value_or(0.0);

  std::optional<double> queries = sum_of(m, "vllm:prefix_cache_queries_total");
  std::optional<double> hits = sum_of(m, "vllm:prefix_cache_hits_total");
  if (!queries || !hits) {
    queries = sum_of(m, "vllm:gpu_prefix_cache_queries_total");
    hits = sum_of(m, "vllm:gpu_prefix_cache_hits_total");
  }
  s.prefix_hit_rate = 0;
  if (queries && hits) {
    if (counters.valid && *queries >= counters.prefix_queries && *hits >= counters.prefix_hits) {
      const double dq = *queries - counters.prefix_queries;
      const double dh = *hits - counters.prefix_hits;
      s.prefix_hit_rate = dq > 0 ? std::clamp(dh / dq, 0.0, 1.0) : 0.0;
    }
    counters.valid = true;
    counters.prefix_queries = *queries;
    counters.prefix_hits = *hits;
  } else {
    counters.valid = false;
  }
  // least-load: the generation rate over the last interval (a restart resets the counter).
  if (const std::optional<double> gen = sum_of(m, "vllm:generation_tokens_total")) {
    if (counters.generation_tokens >= 0 && *gen >= counters.generation_tokens &&
        now > counters.generation_time)
      s.generation_tps = (*gen - counters.generation_tokens) / (now - counters.generation_time);
    counters.generation_tokens = *gen;
    counters.generation_time = now;
  }
  out = s;
  return true;
}

bool parse_models_body(std::string_view body, ModelList& out, std::string& error) {
  out = ModelList{};
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size(), true).get(doc) != simdjson::SUCCESS) {
    error = "/v1/models is not JSON";
    return false;
  }
  simdjson::dom::array data;
  if (doc["data"].get_array().get(data) != simdjson::SUCCESS) {
    error = "/v1/models has no data list";
    return false;
  }
  bool all_scaled = true;
  std::optional<double> scale;
  for (simdjson::dom::element card : data) {
    std::string_view id;
    if (card["id"].get_string().get(id) != simdjson::SUCCESS || id.empty()) continue;
    out.ids.emplace_back(id);
    out.cards.push_back(simdjson::minify(card));
    double ts = 0;
    if (card["eta_time_scale"].get_double().get(ts) == simdjson::SUCCESS && ts > 0 &&
        std::isfinite(ts) && (!scale || *scale == ts)) {
      scale = ts;
    } else {
      all_scaled = false;
    }
  }
  if (all_scaled && scale) out.time_scale = scale;
  return true;
}

}  // namespace eta::router
