#include <gtest/gtest.h>

#include <list>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "engine/block_pool.hpp"
#include "engine/engine.hpp"

namespace eta::engine {
namespace {

TEST(EngineBlockPool, FreedBlocksQueueInReverseAndEvictLru) {
  BlockPool pool(4);
  EXPECT_EQ(pool.free_queue(), (std::vector<int>{0, 1, 2, 3}));
  std::vector<int32_t> a{pool.allocate(), pool.allocate()};
  std::vector<int32_t> b{pool.allocate(), pool.allocate()};
  EXPECT_EQ(a, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(pool.allocate(), -1);
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_DOUBLE_EQ(pool.usage(), 1.0);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(pool.register_hash(i, 100 + i));
  EXPECT_FALSE(pool.register_hash(0, 200));  // already has one
  pool.release(a);
  pool.release(b);
  // A request's tail block goes first in the queue, so it is evicted first.
  EXPECT_EQ(pool.free_queue(), (std::vector<int>{1, 0, 3, 2}));
  EXPECT_DOUBLE_EQ(pool.usage(), 0.0);  // cached free blocks count as free
  EXPECT_EQ(pool.num_cached(), 4);
  EXPECT_EQ(pool.allocate(), 1);
  EXPECT_EQ(pool.lookup(101), -1);  // evicted
  EXPECT_EQ(pool.block_hash(1), 0u);
  EXPECT_EQ(pool.lookup(100), 0);  // still cached
  EXPECT_EQ(pool.num_cached(), 3);
}

TEST(EngineBlockPool, HitOnFreeBlockLeavesTheFreeQueueAndRefCounts) {
  BlockPool pool(3);
  std::vector<int32_t> a{pool.allocate()};
  ASSERT_TRUE(pool.register_hash(a[0], 42));
  EXPECT_FALSE(pool.register_hash(pool.allocate(), 42));  // another block holds 42
  pool.release(a);
  EXPECT_TRUE(pool.is_free(0));
  pool.touch(pool.lookup(42));
  pool.touch(pool.lookup(42));
  EXPECT_EQ(pool.ref_count(0), 2);
  EXPECT_EQ(pool.free_queue(), (std::vector<int>{2}));
  pool.release(a);
  EXPECT_EQ(pool.ref_count(0), 1);
  EXPECT_FALSE(pool.is_free(0));
  pool.release(a);
  EXPECT_TRUE(pool.is_free(0));
  EXPECT_EQ(pool.lookup(42), 0);
}

TEST(EngineBlockPool, HashTableSurvivesChurn) {
  // Many registrations and evictions through a small table (stale entries, rebuilds).
  BlockPool pool(8);
  std::vector<int32_t> held;
  for (uint64_t round = 0; round < 200; ++round) {
    const int b = pool.allocate();
    ASSERT_GE(b, 0);
    ASSERT_TRUE(pool.register_hash(b, round * 7919 + 1));
    held.push_back(b);
    if (held.size() == 4) {
      pool.release(held);
      held.clear();
    }
    for (uint64_t r = round >= 7 ? round - 7 : 0; r <= round; ++r) {
      const int found = pool.lookup(r * 7919 + 1);
      if (found >= 0) {
        EXPECT_EQ(pool.block_hash(found), r * 7919 + 1);
      }
    }
    EXPECT_EQ(pool.lookup(round * 7919 + 1), b);
  }
}

// The pool against a plain model of vLLM's BlockPool (a list as the free queue, a map from hash
// to block) under random operations: every answer, the free queue and the counts must agree.
TEST(EngineBlockPool, MatchesAPlainModelUnderRandomOperations) {
  for (const int n : {1, 3, 8, 37}) {
    BlockPool pool(n);
    std::list<int> free_list;
    for (int b = 0; b < n; ++b) free_list.push_back(b);
    std::vector<int> ref(static_cast<std::size_t>(n), 0);
    std::vector<uint64_t> hash_of(static_cast<std::size_t>(n), 0);
    std::map<uint64_t, int> holder;
    std::vector<std::vector<int32_t>> held;  // "requests": each holds one reference per block
    uint64_t state = 12345 + static_cast<uint64_t>(n);
    auto next = [&state](uint64_t bound) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return (state >> 33) % bound;
    };
    const uint64_t hashes = 3 * static_cast<uint64_t>(n) + 2;  // small: hashes recur
    for (int op = 0; op < 20000; ++op) {
      switch (next(5)) {
        case 0: {  // allocate a few blocks for a new holder
          std::vector<int32_t> got;
          for (uint64_t k = next(3) + 1; k > 0; --k) {
            const int b = pool.allocate();
            if (free_list.empty()) {
              ASSERT_EQ(b, -1);
              break;
            }
            ASSERT_EQ(b, free_list.front());
            free_list.pop_front();
            if (hash_of[b] != 0) holder.erase(hash_of[b]);
            hash_of[b] = 0;
            ref[b] = 1;
            got.push_back(b);
          }
          if (!got.empty()) held.push_back(got);
          break;
        }
        case 1: {  // a holder finishes
          if (held.empty()) break;
          const std::size_t k = next(held.size());
          pool.release(held[k]);
          for (auto it = held[k].rbegin(); it != held[k].rend(); ++it) {
            if (--ref[*it] == 0) free_list.push_back(*it);
          }
          held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
          break;
        }
        case 2: {  // register a hash on a held block
          if (held.empty()) break;
          const auto& h = held[next(held.size())];
          const int b = h[next(h.size())];
          const uint64_t hash = next(hashes) + 1;
          const bool expect = hash_of[b] == 0 && holder.count(hash) == 0;
          ASSERT_EQ(pool.register_hash(b, hash), expect);
          if (expect) {
            hash_of[b] = hash;
            holder[hash] = b;
          }
          break;
        }
        case 3: {  // a cache hit: a new holder takes a reference to a cached block
          const uint64_t hash = next(hashes) + 1;
          const auto it = holder.find(hash);
          const int b = pool.lookup(hash);
          ASSERT_EQ(b, it == holder.end() ? -1 : it->second);
          if (b < 0) break;
          pool.touch(b);
          if (ref[b]++ == 0) free_list.remove(b);
          held.push_back({b});
          break;
        }
        default: {  // look everything up
          for (uint64_t hash = 1; hash <= hashes; ++hash) {
            const auto it = holder.find(hash);
            ASSERT_EQ(pool.lookup(hash), it == holder.end() ? -1 : it->second) << hash;
          }
          ASSERT_EQ(pool.free_queue(), std::vector<int>(free_list.begin(), free_list.end()));
          break;
        }
      }
      ASSERT_EQ(pool.num_free(), static_cast<int>(free_list.size()));
      ASSERT_EQ(pool.num_cached(), static_cast<int>(holder.size()));
      for (int b = 0; b < n; ++b) {
        ASSERT_EQ(pool.ref_count(b), ref[b]);
        ASSERT_EQ(pool.block_hash(b), hash_of[b]);
      }
    }
  }
}

// Engine-level prefix caching.
EngineConfig cache_config(int num_blocks) {
  EngineConfig c;
  std::string error;
  EXPECT_TRUE(make_config(ProfileSet::builtin(), "llama-2-7b", "h100", c, error)) << error;
  c.num_gpu_blocks = num_blocks;
  return c;
}

std::vector<uint32_t> tokens(int n, uint32_t salt) {
  std::vector<uint32_t> t(static_cast<std::size_t>(n));
  std::iota(t.begin(), t.end(), salt * 100000);
  return t;
}

EngineRequest prompt_req(RequestId id, const std::vector<uint32_t>& prompt, int output) {
  EngineRequest r;
  r.id = id;
  r.prompt_tokens = static_cast<int>(prompt.size());
  r.block_hashes = chain_block_hashes(prompt, 16);
  r.output_tokens = output;
  r.output_seed = 7;
  return r;
}

double run_to_end(Engine& e, double now) {
  while (e.has_unfinished()) now = e.step(now).end;
  return now;
}

TEST(EnginePrefixCache, ChainHashesCoverFullBlocksOnly) {
  EXPECT_EQ(chain_block_hashes(tokens(40, 1), 16).size(), 2u);
  const auto a = chain_block_hashes(tokens(48, 1), 16);
  auto other = tokens(48, 1);
  other[20] = 5;
  const auto b = chain_block_hashes(other, 16);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], b[0]);
  EXPECT_NE(a[1], b[1]);
  EXPECT_NE(a[2], b[2]);  // chained: a change propagates
}

TEST(EnginePrefixCache, HitsSkipPrefillButNotTheLastToken) {
  Engine e(cache_config(100));
  const auto prompt = tokens(64, 1);
  ASSERT_TRUE(e.add_request(prompt_req(1, prompt, 4)));
  const double now = run_to_end(e, 0);
  ASSERT_TRUE(e.add_request(prompt_req(2, prompt, 4)));
  const StepResult s = e.step(now);
  // 64 prompt tokens: at most 63 from the cache, i.e. 3 full blocks; 16 computed.
  EXPECT_EQ(s.num_prefill_tokens, 16);
  ASSERT_EQ(s.tokens.size(), 1u);  // the prompt is done: first token
  EXPECT_EQ(e.counters().prefix_cache_queries, 128u);
  EXPECT_EQ(e.counters().prefix_cache_hits, 48u);
  const double end = run_to_end(e, s.end);
  (void)end;
  // The first request's prefill costs more than the second's.
  Engine cold(cache_config(100));
  ASSERT_TRUE(cold.add_request(prompt_req(1, prompt, 4)));
  EXPECT_GT(cold.step(0).end - 0, s.end - now);
}

TEST(EnginePrefixCache, OnlyFullBlocksHit) {
  Engine e(cache_config(100));
  const auto prompt = tokens(40, 2);
  ASSERT_TRUE(e.add_request(prompt_req(1, prompt, 30)));
  const double now = run_to_end(e, 0);
  auto longer = prompt;
  longer.resize(45, 9);  // same first 40 tokens, 2 full blocks in common
  ASSERT_TRUE(e.add_request(prompt_req(2, longer, 1)));
  const StepResult s = e.step(now);
  EXPECT_EQ(s.num_prefill_tokens, 45 - 32);
  ASSERT_EQ(s.finished.size(), 1u);
  EXPECT_EQ(s.finished[0].cached_prompt_tokens, 32);
}

TEST(EnginePrefixCache, RequestsSharingAPrefixShareBlocks) {
  Engine e(cache_config(100));
  auto p1 = tokens(64, 3);
  auto p2 = p1;
  p2.resize(80, 11);
  p1.resize(70, 12);
  ASSERT_TRUE(e.add_request(prompt_req(1, p1, 100)));
  const StepResult s1 = e.step(0);
  EXPECT_EQ(e.num_free_blocks(), 100 - 5);
  ASSERT_TRUE(e.add_request(prompt_req(2, p2, 100)));
  const StepResult s2 = e.step(s1.end);
  EXPECT_EQ(s2.num_prefill_tokens, 80 - 64);
  // The four shared blocks are referenced by both requests: #2 needs only 1 more block.
  EXPECT_EQ(e.num_free_blocks(), 100 - 6);
  const BlockPool& pool = e.block_pool();
  const auto hashes = chain_block_hashes(p2, 16);
  for (int i = 0; i < 4; ++i) {
    const int b = pool.lookup(hashes[static_cast<std::size_t>(i)]);
    ASSERT_GE(b, 0);
    EXPECT_EQ(pool.ref_count(b), 2) << i;
  }
  EXPECT_TRUE(e.abort_request(1));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(pool.ref_count(pool.lookup(hashes[static_cast<std::size_t>(i)])), 1);
  }
  EXPECT_EQ(e.num_free_blocks(), 100 - 5);  // #1's own last block went back
}

TEST(EnginePrefixCache, EvictionIsLruAndTailFirst) {
  Engine e(cache_config(8));
  const auto pa = tokens(48, 4);
  const auto pb = tokens(48, 5);
  ASSERT_TRUE(e.add_request(prompt_req(1, pa, 1)));  // 3 blocks, all full and registered
  double now = run_to_end(e, 0);
  ASSERT_TRUE(e.add_request(prompt_req(2, pb, 1)));
  now = run_to_end(e, now);
  // Free queue: 2 never-used blocks, then A's blocks tail first, then B's.
  // A request of 3 blocks' worth takes the 2 unused ones and A's last block.
  ASSERT_TRUE(e.add_request(prompt_req(3, tokens(40, 6), 1)));
  now = run_to_end(e, now);
  const BlockPool& pool = e.block_pool();
  const auto ha = chain_block_hashes(pa, 16);
  const auto hb = chain_block_hashes(pb, 16);
  EXPECT_EQ(pool.lookup(ha[2]), -1);
  EXPECT_GE(pool.lookup(ha[1]), 0);
  EXPECT_GE(pool.lookup(ha[0]), 0);
  for (uint64_t h : hb) EXPECT_GE(pool.lookup(h), 0);
  // A's first two blocks still hit.
  ASSERT_TRUE(e.add_request(prompt_req(4, pa, 1)));
  const StepResult s = e.step(now);
  EXPECT_EQ(s.num_prefill_tokens, 48 - 32);
}

TEST(EnginePrefixCache, UsageFraction) {
  Engine e(cache_config(10));
  EXPECT_EQ(e.kv_cache_usage(), 0.0);
  ASSERT_TRUE(e.add_request(prompt_req(1, tokens(40, 7), 5)));
  const StepResult s = e.step(0);
  EXPECT_DOUBLE_EQ(e.kv_cache_usage(), 0.3);
  run_to_end(e, s.end);
  EXPECT_DOUBLE_EQ(e.kv_cache_usage(), 0.0);  // cached blocks are free
  EXPECT_EQ(e.block_pool().num_cached(), 2);  // 44 computed tokens: 2 full blocks
}

TEST(EnginePrefixCache, PreemptionUnderPressureCompletesAndCachingCanBeOff) {
  EngineConfig c = cache_config(6);
  Engine e(c);
  const auto p = tokens(20, 8);
  ASSERT_TRUE(e.add_request(prompt_req(1, p, 60)));  // 79 tokens max: 5 blocks
  EngineRequest other = prompt_req(2, tokens(30, 9), 3);
  ASSERT_TRUE(e.add_request(other));  // 2 blocks
  double now = 0;
  uint64_t preemptions = 0;
  while (e.has_unfinished()) {
    const StepResult s = e.step(now);
    preemptions += s.preempted.size();
    now = s.end;
  }
  EXPECT_EQ(e.counters().generation_tokens, 63u);
  // Disabled caching: no queries.
  c.enable_prefix_caching = false;
  Engine off(c);
  ASSERT_TRUE(off.add_request(prompt_req(1, p, 5)));
  run_to_end(off, 0);
  EXPECT_EQ(off.counters().prefix_cache_queries, 0u);
  EXPECT_EQ(off.block_pool().num_cached(), 0);
}

TEST(EnginePrefixCache, ResumedRequestHitsItsOwnBlocks) {
  // Two requests; #2 (newest) is preempted when #1 grows. On resume, #2's blocks that were
  // freed to the cache and not reused are hits, so it recomputes less than it had.
  Engine e(cache_config(9));
  ASSERT_TRUE(e.add_request(prompt_req(1, tokens(48, 10), 60)));  // grows to 7 blocks
  ASSERT_TRUE(e.add_request(prompt_req(2, tokens(64, 11), 20)));  // grows to 6 blocks
  double now = 0;
  int resumed_prefill = -1;
  int outputs_of_2 = 0;
  int known_at_preemption = 0;
  while (e.has_unfinished()) {
    const StepResult s = e.step(now);
    if (known_at_preemption > 0 && resumed_prefill < 0 && s.num_prefill_tokens > 0) {
      resumed_prefill = s.num_prefill_tokens;
    }
    for (const TokenEvent& t : s.tokens) outputs_of_2 += t.id == 2 ? 1 : 0;
    for (RequestId id : s.preempted) {
      if (id == 2 && known_at_preemption == 0) known_at_preemption = 64 + outputs_of_2;
    }
    now = s.end;
  }
  ASSERT_GT(known_at_preemption, 0);
  EXPECT_GT(e.counters().prefix_cache_hits, 0u);
  // It recomputes its known tokens minus what was still cached (at least its first block).
  EXPECT_GT(resumed_prefill, 0);
  EXPECT_LE(resumed_prefill, known_at_preemption - 16);
  EXPECT_EQ(e.counters().generation_tokens, 80u);
}

}  // namespace
}  // namespace eta::engine
