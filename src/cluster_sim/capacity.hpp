// The cluster's saturation throughput on a workload, which `--load` is a fraction of.
//
// Definition: the sum over replicas of each replica's saturated throughput in requests/s on this
// workload. A replica's saturated throughput is measured by running its engine alone on the
// workload's requests (in workload order, with the same lengths mode, so the same output lengths
// and context checks as the run), adding requests whenever fewer than kSaturationQueue wait, so
// its queue never empties: completions/s over the steady window, from the completion of the first
// kWarmupFraction of the requests to the moment the last request is added (after that the queue
// drains and the rate falls). Arrival times play no part. Requests vLLM would reject are skipped.
// A workload with fewer than kMinCapacityRequests usable requests is repeated (each repetition's
// block hashes re-salted, so a repetition finds no prefix-cache hits its original would not).
// Replicas with identical engine configurations are measured once.
//
// This is the replicas' throughput in isolation: it ignores routing. A cluster can only reach it
// if the router keeps every replica saturated, so load 1.0 is an upper bound that no policy
// reaches with stable queues, and load 0.85 is a high but sustainable load.
#pragma once

#include <string>
#include <vector>

#include "cluster_sim/simulator.hpp"
#include "stats/report.hpp"
#include "workload/arrivals.hpp"

namespace eta::cluster_sim {

inline constexpr int kSaturationQueue = 64;
inline constexpr double kWarmupFraction = 0.1;
inline constexpr int kMinCapacityRequests = 1000;

struct ReplicaCapacity {
  std::string name;
  std::string gpu;
  double requests_per_s = 0;
  double output_tokens_per_s = 0;
  int64_t completions = 0;  // in the steady window
  double window_s = 0;
  double mean_running = 0;  // sequences per step in the window
  uint64_t preemptions = 0;
};

struct Capacity {
  std::vector<ReplicaCapacity> replicas;
  double total_requests_per_s = 0;
};

bool measure_capacity(const SimConfig& config, const workload::Workload& w,
                      const std::vector<RequestPlan>& plans, Capacity& out, std::string& error);

// The honest load axis: what a cluster *sustains* with a given policy under the workload's own
// arrival process (issue 14 item 2), found by bisection on the arrival rate.
//   sustained  the highest rate at which the number of requests in the system does not grow:
//              after a warm-up (the first kSustainWarmup of the arrival span, at least the
//              median E2E), its least-squares growth over the window is <= (1 - kSustainRatio)
//              x the window's arrivals (completed >= kSustainRatio x offered), over the window
//              and over its second half
//   goodput    the highest sustained rate at which >= kGoodputFraction of all requests meet the
//              SLOs
// Each probe is a full run (run_simulation) at that rate with the arrival process `arrival`
// (its rate replaced); the bisection runs between 0 and kProbeCeiling x the isolated capacity
// for kBisectSteps steps (~1 % of it); a capacity at the ceiling is reported as the ceiling.
inline constexpr double kSustainRatio = 0.97;
inline constexpr double kSustainWarmup = 0.1;
inline constexpr double kGoodputFraction = 0.9;
inline constexpr double kProbeCeiling = 1.25;
inline constexpr int kBisectSteps = 7;

struct LoadProbe {
  double rate_rps = 0;
  double offered_rps = 0;        // arrivals in the window after the warm-up, per second
  double completed_rps = 0;      // (arrived - backlog growth) in that window, per second
  double second_half_ratio = 0;  // the same / arrived, over the window's second half
  double slo_fraction = 0;       // requests meeting the SLOs, of all
  bool sustained = false;
  bool meets_goodput = false;
};

struct PolicyCapacity {
  std::string policy;
  double sustained_rps = 0;
  double goodput_rps = 0;         // 0 when no SLO is set
  std::vector<LoadProbe> probes;  // in the order run
};

// Evaluates one finished run of workload `w` (its arrival times as run); requests vLLM rejects
// (plans[i].rejected) are left out.
LoadProbe evaluate_probe(const workload::Workload& w, const std::vector<RequestPlan>& plans,
                         const SimResult& result, const stats::Slo& slo);

bool measure_policy_capacity(const SimConfig& config, const workload::Workload& base,
                             const std::vector<RequestPlan>& plans, const PolicyChoice& policy,
                             const workload::ArrivalSpec& arrival, double isolated_rps,
                             const stats::Slo& slo, PolicyCapacity& out, std::string& error);

}  // namespace eta::cluster_sim
