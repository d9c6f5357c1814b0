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

}  // namespace eta::cluster_sim
