// Which prompt-prefix blocks each replica probably holds in its prefix cache, learned from what
// the router sent where (like llm-d's approximate prefix scorer and SGLang's cache_aware tree,
// not from the replicas' KV events). Blocks are the chained hashes of full 16-token blocks
// (engine::chain_block_hashes), so a block hash stands for its whole prefix.
//
// Per replica the index is an LRU bounded by that replica's KV capacity in blocks
// (num_gpu_blocks), evicting least recently used blocks as vLLM evicts free cached blocks. A
// dispatch touches the prompt's blocks last-to-first, so a prompt's first block is the most
// recent and a chain is evicted from its tail: a parent block is always more recent than its
// children, and every replica's set stays prefix-closed (holding block i implies holding its
// ancestors). match_all relies on that to skip work.
//
// Cost: insert O(blocks x holders per block) amortised; match O(matched blocks x holders per
// block), the holders being at most the replicas; match_all O(blocks + holders that
// drop out along the way), computed once per request for every replica. Single-threaded.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "prefix/flat_map.hpp"

namespace eta::prefix {

class PrefixIndex {
 public:
  // `default_capacity_blocks`: the LRU bound of a replica until set_capacity; 0 = unbounded.
  explicit PrefixIndex(int num_replicas = 0, int64_t default_capacity_blocks = 0);

  void resize(int num_replicas);  // grows only
  int num_replicas() const { return static_cast<int>(replicas_.size()); }

  // The replica's capacity in index blocks (its num_gpu_blocks x its block_size / 16 when the
  // block sizes differ); evicts at once if the replica holds more. <= 0: unbounded.
  void set_capacity(int replica, int64_t blocks);
  int64_t capacity(int replica) const { return replicas_[replica].capacity; }
  int64_t size(int replica) const { return replicas_[replica].size; }
  size_t distinct_blocks() const { return block_of_hash_.size(); }

  // The replica was sent a request with these prompt blocks: it now holds them, most recently
  // used; evicts its least recently used blocks beyond capacity.
  void insert(int replica, std::span<const uint64_t> hashes);
  // Leading blocks of `hashes` the replica holds (stops at the first miss).
  uint32_t match(int replica, std::span<const uint64_t> hashes) const;
  // out[r] = match(r, hashes) for every replica r < out.size(), in one walk over the blocks.
  // Returns the longest match.
  uint32_t match_all(std::span<const uint64_t> hashes, std::span<uint32_t> out) const;
  // Forget everything the replica holds (it restarted, or was removed).
  void clear_replica(int replica);

 private:
  static constexpr uint32_t kNil = 0xffffffffu;

  struct Node {  // one (block, replica) holding
    uint64_t hash = 0;
    uint32_t replica = 0;
    uint32_t block = kNil;                            // BlockEntry index
    uint32_t lru_prev = kNil, lru_next = kNil;        // towards MRU / towards LRU
    uint32_t holder_prev = kNil, holder_next = kNil;  // the block's other holders
  };
  struct BlockEntry {
    uint32_t head = kNil;  // first holder node
    uint32_t holders = 0;
  };
  struct Replica {
    uint32_t mru = kNil, lru = kNil;
    int64_t size = 0;
    int64_t capacity = 0;
  };

  uint32_t find_node(uint32_t replica, uint64_t hash) const;
  // The replica's node among the block's holders (at most one per replica), or kNil.
  uint32_t holder_of(uint32_t block, uint32_t replica) const;
  void touch(uint32_t replica, uint64_t hash);
  void lru_unlink(Replica& r, uint32_t n);
  void lru_push_front(Replica& r, uint32_t n);
  void remove_node(uint32_t n);
  void evict_to_capacity(uint32_t replica);

  int64_t default_capacity_;
  std::vector<Replica> replicas_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> free_nodes_;
  std::vector<BlockEntry> blocks_;
  std::vector<uint32_t> free_blocks_;
  FlatMap64 block_of_hash_;              // hash -> BlockEntry index (its holders: its nodes)
  mutable std::vector<uint32_t> alive_;  // match_all scratch
};

}  // namespace eta::prefix
