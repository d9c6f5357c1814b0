// The seeded random generator every policy draws from. Policies never own randomness: the caller
// passes an Rng into pick(), so a test (or `eta cluster-sim`) with a fixed seed replays exactly.
// xoshiro256** seeded through splitmix64; uniform draws use our own arithmetic (not <random>'s
// distributions, whose output differs between standard libraries).
#pragma once

#include <cstdint>

#include "util/xoshiro.hpp"

namespace eta::policy {

class Rng : public util::Xoshiro256 {
 public:
  explicit Rng(uint64_t seed = 0x9e3779b97f4a7c15ull) : Xoshiro256(seed) {}

  // Uniform integer in [0, n); n must be > 0 (Lemire's multiply-shift; the bias for n < 2^32 is
  // below 2^-32, irrelevant here).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

  // Uniform double in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

}  // namespace eta::policy
