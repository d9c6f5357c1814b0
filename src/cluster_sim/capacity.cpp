#include "cluster_sim/capacity.hpp"

#include <algorithm>
#include <map>

#include "engine/hash.hpp"

namespace eta::cluster_sim {
namespace {

bool measure_one(const engine::EngineConfig& config, const workload::Workload& w,
                 const std::vector<RequestPlan>& plans, ReplicaCapacity& out, std::string& error) {
  std::vector<size_t> usable;
  for (size_t i = 0; i < w.requests.size(); ++i)
    if (!plans[i].rejected) usable.push_back(i);
  if (usable.empty()) {
    error = "no request of the workload fits the model's context";
    return false;
  }
  const size_t n = usable.size();
  const auto min_requests = static_cast<size_t>(kMinCapacityRequests);
  const size_t total = n >= min_requests ? n : (min_requests + n - 1) / n * n;
  const auto warmup_completions =
      static_cast<int64_t>(kWarmupFraction * static_cast<double>(total));

  engine::Engine e(config);
  engine::StepResult result;
  size_t fed = 0;
  int64_t completions = 0;
  double now = 0;
  double window_start = -1;
  int64_t completions_at_start = 0;
  int64_t tokens_at_start = 0;
  int64_t tokens = 0;
  double running_sum = 0;
  int64_t window_steps = 0;
  uint64_t preemptions_at_start = 0;
  uint64_t preemptions_in_window = 0;
  double window_end = -1;
  int64_t completions_at_end = 0;
  int64_t tokens_at_end = 0;
  while (true) {
    while (fed < total && e.num_waiting() < kSaturationQueue) {
      const size_t k = usable[fed % usable.size()];
      const uint64_t round = fed / usable.size();
      engine::EngineRequest r = make_engine_request(w.requests[k], plans[k], fed, now);
      if (round > 0) {
        for (uint64_t& h : r.block_hashes) h = engine::mix64(h ^ engine::mix64(round));
        r.output_seed = engine::mix64(r.output_seed ^ round);
      }
      ++fed;
      e.add_request(std::move(r));  // false: longer than the KV cache; skipped
    }
    if (fed == total && window_end < 0 && window_start >= 0) {
      window_end = now;
      completions_at_end = completions;
      tokens_at_end = tokens;
    }
    if (!e.has_unfinished()) break;
    e.step(now, result);
    if (result.idle()) break;
    now = result.end;
    tokens += static_cast<int64_t>(result.tokens.size());
    completions += static_cast<int64_t>(result.finished.size());
    if (window_start < 0 && completions >= std::max<int64_t>(warmup_completions, 1)) {
      window_start = now;
      completions_at_start = completions;
      tokens_at_start = tokens;
      preemptions_at_start = e.counters().preemptions;
    }
    if (window_end < 0) preemptions_in_window = e.counters().preemptions - preemptions_at_start;
    if (window_start >= 0 && window_end < 0) {
      running_sum += result.num_running_after;
      ++window_steps;
    }
  }
  if (window_start < 0 || window_end <= window_start) {
    // Too few requests for a steady window: the whole run.
    window_start = 0;
    window_end = now;
    completions_at_start = 0;
    completions_at_end = completions;
    tokens_at_start = 0;
    tokens_at_end = tokens;
  }
  out.window_s = window_end - window_start;
  out.completions = completions_at_end - completions_at_start;
  if (!(out.window_s > 0) || out.completions <= 0) {
    error = "capacity: the engine completed nothing (is every request too long for its KV cache?)";
    return false;
  }
  out.requests_per_s = static_cast<double>(out.completions) / out.window_s;
  out.output_tokens_per_s = static_cast<double>(tokens_at_end - tokens_at_start) / out.window_s;
  out.mean_running = window_steps > 0 ? running_sum / static_cast<double>(window_steps) : 0;
  out.preemptions = preemptions_in_window;
  return true;
}

}  // namespace

bool measure_capacity(const SimConfig& config, const workload::Workload& w,
                      const std::vector<RequestPlan>& plans, Capacity& out, std::string& error) {
  out = Capacity{};
  std::map<std::string, ReplicaCapacity> measured;
  for (const ReplicaConfig& r : config.replicas) {
    const std::string key = engine_key(r.engine);
    auto it = measured.find(key);
    if (it == measured.end()) {
      ReplicaCapacity c;
      if (!measure_one(r.engine, w, plans, c, error)) return false;
      it = measured.emplace(key, c).first;
    }
    ReplicaCapacity c = it->second;
    c.name = r.name;
    c.gpu = r.gpu;
    out.total_requests_per_s += c.requests_per_s;
    out.replicas.push_back(std::move(c));
  }
  return true;
}

}  // namespace eta::cluster_sim
