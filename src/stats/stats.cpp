#include "stats/stats.hpp"

#include <algorithm>
#include <cmath>

namespace eta::stats {

namespace {

constexpr std::size_t kPairwiseBlock = 128;

// numpy/core/src/umath/loops_utils.h.src: pairwise_sum for doubles.
double pairwise(const double* a, std::size_t n) {
  if (n < 8) {
    double res = 0.;
    for (std::size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= kPairwiseBlock) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += a[i + static_cast<std::size_t>(j)];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

// numpy's _lerp: a + (b - a) * t, computed from b's side when t >= 0.5.
double lerp(double a, double b, double t) {
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

}  // namespace

double pairwise_sum(std::span<const double> values) {
  return pairwise(values.data(), values.size());
}

double mean(std::span<const double> values) {
  if (values.empty()) return 0;
  return pairwise_sum(values) / static_cast<double>(values.size());
}

double stddev(std::span<const double> values) {
  if (values.empty()) return 0;
  const double m = mean(values);
  std::vector<double> sq(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double d = values[i] - m;
    sq[i] = d * d;
  }
  return std::sqrt(pairwise_sum(sq) / static_cast<double>(values.size()));
}

double percentile_sorted(std::span<const double> sorted, double q) {
  const std::size_t n = sorted.size();
  if (n == 0) return 0;
  q = std::clamp(q, 0.0, 100.0) / 100.0;
  const double virtual_index = static_cast<double>(n - 1) * q;
  const double below = std::floor(virtual_index);
  const std::size_t lo = std::min(static_cast<std::size_t>(below), n - 1);
  const std::size_t hi = std::min(lo + 1, n - 1);
  const double gamma = virtual_index - below;
  return lerp(sorted[lo], sorted[hi], gamma);
}

double percentile(std::span<const double> values, double q) {
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  return percentile_sorted(sorted, q);
}

double median_sorted(std::span<const double> sorted) {
  const std::size_t n = sorted.size();
  if (n == 0) return 0;
  if (n % 2 == 1) return sorted[n / 2];
  // np.median takes the mean of the two middle values.
  return (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
}

double median(std::span<const double> values) {
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  return median_sorted(sorted);
}

Summary summarize(std::span<const double> values) {
  Summary s;
  s.count = static_cast<int64_t>(values.size());
  if (values.empty()) return s;
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  s.mean = mean(values);
  s.std = stddev(values);
  s.p50 = median_sorted(sorted);
  s.p90 = percentile_sorted(sorted, 90);
  s.p99 = percentile_sorted(sorted, 99);
  s.p999 = percentile_sorted(sorted, 99.9);
  s.min = sorted.front();
  s.max = sorted.back();
  return s;
}

Summary summarize_scaled(std::span<const double> values, double scale) {
  std::vector<double> scaled(values.begin(), values.end());
  for (double& v : scaled) v *= scale;
  return summarize(scaled);
}

}  // namespace eta::stats
