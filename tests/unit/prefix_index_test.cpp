#include <gtest/gtest.h>

#include <random>
#include <unordered_map>
#include <vector>

#include "prefix/flat_map.hpp"
#include "prefix/prefix_index.hpp"

namespace eta::prefix {
namespace {

// A chain of block hashes for a prompt: `shared` blocks from family `root`, then `own` blocks
// unique to `tag`.
std::vector<uint64_t> chain(uint64_t root, int shared, uint64_t tag = 0, int own = 0) {
  std::vector<uint64_t> h;
  uint64_t x = root * 0x9e3779b97f4a7c15ull + 1;
  for (int i = 0; i < shared; ++i)
    h.push_back(x = x * 6364136223846793005ull + 1442695040888963407ull);
  for (int i = 0; i < own; ++i)
    h.push_back(x = (x ^ (tag * 0xff51afd7ed558ccdull)) * 6364136223846793005ull + 7);
  return h;
}

TEST(PrefixFlatMap, AgreesWithUnorderedMapUnderRandomInsertsAndErases) {
  FlatMap64 m(16);
  std::unordered_map<uint64_t, uint32_t> ref;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t key = rng() % 5000;  // many collisions of probe runs
    if (rng() % 3 == 0) {
      EXPECT_EQ(m.erase(key), ref.erase(key) == 1);
    } else {
      const uint32_t v = static_cast<uint32_t>(rng() % 1000);
      m.set(key, v);
      ref[key] = v;
    }
  }
  EXPECT_EQ(m.size(), ref.size());
  for (uint64_t k = 0; k < 5000; ++k) {
    auto it = ref.find(k);
    EXPECT_EQ(m.find(k), it == ref.end() ? FlatMap64::kNone : it->second) << k;
  }
}

TEST(PrefixIndex, MatchStopsAtFirstMissAndCountsLeadingBlocks) {
  PrefixIndex idx(3);
  const auto a = chain(1, 10);
  idx.insert(0, a);
  EXPECT_EQ(idx.match(0, a), 10u);
  EXPECT_EQ(idx.match(1, a), 0u);
  // Same first 6 blocks, different tail.
  auto b = chain(1, 6, 99, 4);
  EXPECT_EQ(idx.match(0, b), 6u);
  // A longer prompt extending a.
  auto c = a;
  c.push_back(12345);
  EXPECT_EQ(idx.match(0, c), 10u);
  // A miss in the middle stops the count even if later blocks are held.
  auto d = a;
  d[3] = 777;
  EXPECT_EQ(idx.match(0, d), 3u);
  EXPECT_EQ(idx.match(0, {}), 0u);
}

TEST(PrefixIndex, MatchAllEqualsPerReplicaMatch) {
  const int n = 16;
  PrefixIndex idx(n, 300);
  std::mt19937_64 rng(11);
  // Families of prompts sharing prefixes, sent to random replicas; small capacity evicts a lot.
  for (int i = 0; i < 3000; ++i) {
    const uint64_t family = rng() % 5;
    const int shared = 5 + static_cast<int>(family) * 7;
    idx.insert(static_cast<int>(rng() % n),
               chain(family, shared, rng() % 50, static_cast<int>(rng() % 30)));
  }
  std::vector<uint32_t> out(n);
  for (int q = 0; q < 500; ++q) {
    const uint64_t family = rng() % 6;
    const auto h =
        chain(family, 5 + static_cast<int>(family) * 7, rng() % 50, static_cast<int>(rng() % 30));
    const uint32_t best = idx.match_all(h, out);
    uint32_t expected_best = 0;
    for (int r = 0; r < n; ++r) {
      ASSERT_EQ(out[r], idx.match(r, h)) << "query " << q << " replica " << r;
      expected_best = std::max(expected_best, out[r]);
    }
    EXPECT_EQ(best, expected_best);
  }
}

TEST(PrefixIndex, LruEvictionIsBoundedByCapacity) {
  PrefixIndex idx(2);
  idx.set_capacity(0, 100);
  for (uint64_t p = 0; p < 50; ++p) idx.insert(0, chain(p + 100, 10));
  EXPECT_EQ(idx.size(0), 100);
  // The 10 most recent prompts survive whole; older ones are gone.
  for (uint64_t p = 40; p < 50; ++p) EXPECT_EQ(idx.match(0, chain(p + 100, 10)), 10u) << p;
  for (uint64_t p = 0; p < 40; ++p) EXPECT_EQ(idx.match(0, chain(p + 100, 10)), 0u) << p;
  // The other replica is untouched by replica 0's evictions.
  idx.insert(1, chain(100, 10));
  EXPECT_EQ(idx.match(1, chain(100, 10)), 10u);
  // Shrinking the capacity evicts at once.
  idx.set_capacity(0, 25);
  EXPECT_EQ(idx.size(0), 25);
}

TEST(PrefixIndex, TouchRefreshesAndChainsEvictFromTheTail) {
  PrefixIndex idx(1);
  idx.set_capacity(0, 30);
  const auto hot = chain(1, 10);
  idx.insert(0, hot);
  idx.insert(0, chain(2, 10));
  idx.insert(0, hot);  // refresh: hot is now the most recent
  idx.insert(0, chain(3, 10));
  idx.insert(0, chain(4, 5));  // needs 5 blocks: evicts the tail of prompt 2 first
  EXPECT_EQ(idx.match(0, hot), 10u);
  EXPECT_EQ(idx.match(0, chain(2, 10)), 5u);  // its first half survives, prefix-closed
  EXPECT_EQ(idx.match(0, chain(3, 10)), 10u);
  EXPECT_EQ(idx.match(0, chain(4, 5)), 5u);
}

TEST(PrefixIndex, SharedBlocksAreCountedPerReplicaAndClearReplicaForgets) {
  PrefixIndex idx(3);
  const auto sys = chain(9, 8);
  for (int r = 0; r < 3; ++r) idx.insert(r, sys);
  EXPECT_EQ(idx.distinct_blocks(), 8u);
  std::vector<uint32_t> out(3);
  EXPECT_EQ(idx.match_all(sys, out), 8u);
  EXPECT_EQ(out, (std::vector<uint32_t>{8, 8, 8}));
  idx.clear_replica(1);
  EXPECT_EQ(idx.size(1), 0);
  idx.match_all(sys, out);
  EXPECT_EQ(out, (std::vector<uint32_t>{8, 0, 8}));
  for (int r : {0, 2}) idx.clear_replica(r);
  EXPECT_EQ(idx.distinct_blocks(), 0u);
}

TEST(PrefixIndex, PromptLongerThanCapacityKeepsItsFirstBlocks) {
  PrefixIndex idx(1);
  idx.set_capacity(0, 4);
  const auto h = chain(5, 10);
  idx.insert(0, h);
  EXPECT_EQ(idx.size(0), 4);
  EXPECT_EQ(idx.match(0, h), 4u);
}

}  // namespace
}  // namespace eta::prefix
