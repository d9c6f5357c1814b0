// Seeded, portable random numbers for workload generation. Every draw is computed here (not with
// <random>'s distributions, whose algorithms differ between standard libraries), so a seed gives
// the same workload on every platform.
#pragma once

#include <cmath>
#include <cstdint>

#include "util/xoshiro.hpp"

namespace eta::workload {

// splitmix64: a bijective 64-bit mix (also used to derive independent seeds).
constexpr uint64_t mix_seed(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// A seed for the stream named by (a, b): independent of the seeds of other pairs.
constexpr uint64_t derive_seed(uint64_t a, uint64_t b) {
  return mix_seed(mix_seed(a) ^ b);
}

// The project's xoshiro256** (util/xoshiro.hpp) with the distributions workloads draw from.
class Rng : public util::Xoshiro256 {
 public:
  explicit Rng(uint64_t seed) : Xoshiro256(seed) {}

  // Uniform in (0, 1): never 0 or 1, so logs are finite.
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  // Uniform integer in [lo, hi] (lo <= hi).
  int64_t uniform_int(int64_t lo, int64_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    if (span == 0) return static_cast<int64_t>(next());
    return lo + static_cast<int64_t>(next() % span);
  }
  bool bernoulli(double p) { return uniform() < p; }
  double exponential(double mean) { return -std::log(uniform()) * mean; }
  // Standard normal (Box-Muller; one draw per call, so the stream is simple to reason about).
  double normal() {
    const double u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Gamma(shape k, scale theta), Marsaglia-Tsang; mean k*theta, CV 1/sqrt(k).
  double gamma(double shape, double scale) {
    if (shape < 1.0) {
      const double g = gamma(shape + 1.0, 1.0);
      return g * std::pow(uniform(), 1.0 / shape) * scale;
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = 0;
      double v = 0;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const double u = uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
      if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale;
    }
  }
  // Log-normal with the given mean and coefficient of variation (std/mean); cv 0 gives `mean`.
  double lognormal_mean_cv(double mean, double cv) {
    if (cv <= 0) return mean;
    const double sigma2 = std::log1p(cv * cv);
    const double mu = std::log(mean) - 0.5 * sigma2;
    return std::exp(mu + std::sqrt(sigma2) * normal());
  }

 private:
  static constexpr uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace eta::workload
