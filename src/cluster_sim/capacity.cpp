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

namespace eta::cluster_sim {

namespace {

// Least-squares growth over [a, b] of the number of requests in the system (arrived, not yet
// completed), sampled at kSamples points: slope x (b - a).
double backlog_growth(const std::vector<double>& arrivals, const std::vector<double>& completions,
                      double a, double b) {
  constexpr int kSamples = 64;
  if (!(b > a)) return 0;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int k = 0; k < kSamples; ++k) {
    const double t = a + (b - a) * (k + 0.5) / kSamples;
    const auto in = std::upper_bound(arrivals.begin(), arrivals.end(), t) - arrivals.begin();
    const auto out =
        std::upper_bound(completions.begin(), completions.end(), t) - completions.begin();
    const double y = static_cast<double>(in - out);
    sx += t;
    sy += y;
    sxx += t * t;
    sxy += t * y;
  }
  const double n = kSamples;
  const double var = sxx - sx * sx / n;
  return var > 0 ? (sxy - sx * sy / n) / var * (b - a) : 0;
}

}  // namespace

LoadProbe evaluate_probe(const workload::Workload& w, const std::vector<RequestPlan>& plans,
                         const SimResult& result, const stats::Slo& slo) {
  LoadProbe p;
  const size_t n = std::min(w.requests.size(), result.records.size());
  if (n == 0) return p;
  std::vector<double> arrivals, completions, e2e;
  int64_t good = 0, total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i < plans.size() && plans[i].rejected) continue;
    const stats::RequestRecord& rec = result.records[i];
    arrivals.push_back(w.requests[i].arrival_s);
    ++total;
    if (!rec.ok()) continue;
    if (slo.any() && stats::meets_slo(rec, slo)) ++good;
    completions.push_back(rec.start_s + rec.e2e_s);  // the simulator's clock is the arrivals'
    e2e.push_back(rec.e2e_s);
  }
  if (arrivals.empty()) return p;
  std::sort(arrivals.begin(), arrivals.end());
  std::sort(completions.begin(), completions.end());
  const double t0 = arrivals.front(), t1 = arrivals.back();
  // Warm-up: the first kSustainWarmup of the span, and at least the median E2E (the time the
  // pipeline takes to fill).
  double median_e2e = 0;
  if (!e2e.empty()) {
    std::nth_element(e2e.begin(), e2e.begin() + static_cast<std::ptrdiff_t>(e2e.size() / 2),
                     e2e.end());
    median_e2e = e2e[e2e.size() / 2];
  }
  const double start =
      std::min(t0 + std::max(kSustainWarmup * (t1 - t0), median_e2e), t0 + 0.5 * (t1 - t0));
  const double mid = 0.5 * (start + t1);
  const auto count = [&](double a, double b) {
    return static_cast<double>(std::upper_bound(arrivals.begin(), arrivals.end(), b) -
                               std::upper_bound(arrivals.begin(), arrivals.end(), a));
  };
  const double arrived = count(start, t1), arrived2 = count(mid, t1);
  const double growth = backlog_growth(arrivals, completions, start, t1);
  const double growth2 = backlog_growth(arrivals, completions, mid, t1);
  const double window = t1 - start;
  p.offered_rps = window > 0 ? arrived / window : 0;
  // Completions keep pace with arrivals when the backlog does not grow: completed = arrived -
  // growth over the window.
  p.completed_rps = window > 0 ? std::max(0.0, arrived - growth) / window : 0;
  p.second_half_ratio = arrived2 > 0 ? std::max(0.0, arrived2 - growth2) / arrived2 : 1.0;
  p.slo_fraction = total > 0 ? static_cast<double>(good) / static_cast<double>(total) : 0;
  p.sustained = window > 0 && p.completed_rps >= kSustainRatio * p.offered_rps &&
                p.second_half_ratio >= kSustainRatio;
  // Goodput counts only in a steady state: a rate the cluster cannot sustain has no goodput
  // capacity, however many requests of a finite run met the SLOs.
  p.meets_goodput = slo.any() && p.sustained && p.slo_fraction >= kGoodputFraction;
  return p;
}

bool measure_policy_capacity(const SimConfig& config, const workload::Workload& base,
                             const std::vector<RequestPlan>& plans, const PolicyChoice& policy,
                             const workload::ArrivalSpec& arrival, double isolated_rps,
                             const stats::Slo& slo, PolicyCapacity& out, std::string& error) {
  out = PolicyCapacity{};
  out.policy = policy.name;
  std::map<double, LoadProbe> done;
  const auto probe = [&](double rate, LoadProbe& p) {
    if (auto it = done.find(rate); it != done.end()) {
      p = it->second;
      return true;
    }
    workload::Workload w = base;
    workload::ArrivalSpec spec = arrival;
    spec.rate = rate;
    if (!workload::apply_arrivals(w, spec, error)) return false;
    SimResult result;
    if (!run_simulation(config, w, plans, policy, result, error)) return false;
    p = evaluate_probe(w, plans, result, slo);
    p.rate_rps = rate;
    done.emplace(rate, p);
    out.probes.push_back(p);
    return true;
  };
  const double ceiling = kProbeCeiling * isolated_rps;
  for (int which = 0; which < (slo.any() ? 2 : 1); ++which) {
    double lo = 0, hi = ceiling;
    LoadProbe p;
    if (!probe(hi, p)) return false;
    const auto ok = [which](const LoadProbe& q) {
      return which == 0 ? q.sustained : q.meets_goodput;
    };
    if (ok(p)) {
      lo = hi;
    } else {
      for (int step = 0; step < kBisectSteps; ++step) {
        const double m = 0.5 * (lo + hi);
        if (!probe(m, p)) return false;
        (ok(p) ? lo : hi) = m;
      }
    }
    (which == 0 ? out.sustained_rps : out.goodput_rps) = lo;
  }
  return true;
}

}  // namespace eta::cluster_sim
