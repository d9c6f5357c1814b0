// Small deterministic hashing and random helpers shared by the engine's sources.
#pragma once

#include <cmath>
#include <cstdint>

namespace eta::engine {

// splitmix64's finaliser: a bijective 64-bit mix.
constexpr uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Block hashes use 0 as "no hash"; a real hash is never 0.
constexpr uint64_t nonzero_hash(uint64_t h) {
  return h == 0 ? 1 : h;
}

// A uniform double in (0, 1) from 64 random bits.
inline double unit_open(uint64_t bits) {
  return (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Hash of a block filled (at least partly) by generated output: there are no token ids to hash,
// so it is derived from the parent's hash, the request's output seed and the block's index.
constexpr uint64_t output_block_hash(uint64_t parent, uint64_t output_seed, int block_index) {
  return nonzero_hash(
      mix64(parent ^ mix64(output_seed + 0x9e3779b97f4a7c15ull * (uint64_t(block_index) + 1))));
}

}  // namespace eta::engine
