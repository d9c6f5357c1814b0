// Descriptive statistics with numpy's definitions, so numbers match `vllm bench serve`:
//   percentile: np.percentile(x, q) with the default method "linear" (virtual index (n-1)*q/100,
//               numpy's lerp);
//   median:     np.median; mean: np.mean (pairwise summation); stddev: np.std (ddof = 0).
// Empty input gives 0 (vllm bench serve reports 0 for metrics without samples).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace eta::stats {

// Sum with numpy's pairwise summation (blocks of 128, 8 accumulators).
double pairwise_sum(std::span<const double> values);
double mean(std::span<const double> values);
// Population standard deviation (np.std, ddof = 0).
double stddev(std::span<const double> values);
// `sorted` ascending; q in [0, 100].
double percentile_sorted(std::span<const double> sorted, double q);
// Sorts a copy.
double percentile(std::span<const double> values, double q);
double median_sorted(std::span<const double> sorted);
double median(std::span<const double> values);

struct Summary {
  double mean = 0;
  double p50 = 0;  // np.median
  double p90 = 0;
  double p99 = 0;
  double p999 = 0;
  double std = 0;
  double min = 0;
  double max = 0;
  int64_t count = 0;
};
Summary summarize(std::span<const double> values);
// The same with every value multiplied by `scale` (e.g. 1000 for seconds -> ms); scaling is
// applied to the samples first, as vllm bench serve does.
Summary summarize_scaled(std::span<const double> values, double scale);

}  // namespace eta::stats
