// Turning simulation results into what `eta cluster-sim` prints and writes: one summary per
// (policy, load) with eta bench's report (src/stats) plus cluster fields, a table per load level,
// and an SVG plot of p99 TTFT and p99 E2E against load (written directly, no plotting stack).
#pragma once

#include <boost/json/object.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cluster_sim/simulator.hpp"
#include "stats/report.hpp"

namespace eta::cluster_sim {

// |predicted - actual| / actual over the requests with a prediction.
struct RelativeError {
  double p50 = 0;
  double p90 = 0;
  int64_t count = 0;
};

struct RunSummary {
  std::string policy;
  double load = 0;          // fraction of capacity (0 when the rate was given directly)
  double rate_rps = 0;      // the arrival rate it ran at
  double capacity_rps = 0;  // the cluster's capacity on this workload
  stats::Report report;
  uint64_t preemptions = 0;
  double prefix_hit_rate = 0;                         // cluster-wide, tokens
  std::vector<std::pair<std::string, double>> share;  // replica -> fraction of completions
  std::vector<std::pair<std::string, uint64_t>> replica_preemptions;
  // Router 0's learned factors (prefill, decode) per replica; empty when the policy reads no
  // speed model (SimConfig::full_router_state).
  std::vector<std::pair<std::string, std::pair<double, double>>> learned_speed;
  RelativeError ttft_error;
  RelativeError e2e_error;
  RelativeError output_error;           // the router's output-length prediction (its point guess)
  RelativeError output_expected_error;  // its capped mean (what the ETA uses)
  // The best constant guess of the same requests' output lengths: the least median relative
  // error any one number reaches (the floor a predictor must beat), and that number.
  double output_floor = 0;
  double output_floor_tokens = 0;
  double output_online_floor = 0;  // the best constant guessed online (study.cpp)
  int64_t lost = 0;
  uint64_t events = 0;
  uint64_t steps = 0;
  uint64_t oracle_steps = 0;
  double sim_duration_s = 0;
  // Admission (SimResult::admission): refusals per reason, and requests that waited in a queue.
  bool admission = false;
  std::map<std::string, int64_t> shed;
  int64_t queued = 0;
  int64_t late_held = 0;  // +late runs: requests late binding held
};

RunSummary summarize_run(const std::string& policy, double load, double rate_rps,
                         double capacity_rps, const SimResult& result, const stats::Slo& slo);

// eta bench's report object plus "policy", "load", "rate_rps", "capacity_rps", "preemptions",
// "prefix_hit_rate", "replica_share", "replica_preemptions", "learned_speed", "prediction" and
// "sim" (events, steps, simulated seconds); with admission, "shed" ({reason: count}, every
// reason admission can give) and "queued".
boost::json::object run_to_json(const RunSummary& run);

// A Markdown table of the runs (all at one load): latency percentiles, goodput, preemptions,
// per-replica share, and p99 ratios to round-robin and to the oracle when they are among them.
std::string render_table(const std::vector<const RunSummary*>& runs);

// With admission: per policy, the requests queued and refused per reason (shed_capacity,
// shed_slo, queue_full, queue_timeout, no_replica).
std::string render_shed_table(const std::vector<const RunSummary*>& runs);

// Two panels (p99 TTFT, p99 E2E; log y) against load, one <path> per policy and panel, with
// data-policy and data-metric attributes, and a legend.
std::string render_svg(const std::vector<RunSummary>& runs, const std::string& title);

}  // namespace eta::cluster_sim
