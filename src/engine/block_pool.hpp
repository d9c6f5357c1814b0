// The KV block pool with prefix caching, as in vLLM V1's BlockPool: reference-counted blocks,
// free blocks kept in an LRU queue (allocation takes from the head, freed blocks go to the tail),
// and a map from block hash to the block that holds it. A free block keeps its hash (and stays
// a cache hit) until it is evicted, i.e. handed out again by allocate().
//
// Every operation is O(1) (amortised) and allocation-free after construction. The free queue is
// a ring of block ids (contiguous, so allocating n blocks reads n consecutive ids instead of
// chasing links); a cache hit on a free block leaves a hole in the ring that allocation skips,
// and the ring is compacted when it runs full. The hash map is an open-addressing table (linear
// probing) with four slots per block. Eviction does not touch the table: a block that loses its
// hash leaves a stale entry (one whose block no longer holds that hash), which lookups treat as
// absent and a later registration of the same hash reuses; when live and stale entries fill half
// the table it is rebuilt from the blocks' hashes. The table's slots are random memory accesses,
// so this saves a cache miss and a probe sequence per allocation.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace eta::engine {

// Told of every hash the pool registers (a block became a cache entry) and every hash it evicts
// (allocate() handed the block out again): what vLLM's BlockPool reports as KV-cache events
// (BlockStored / BlockRemoved). `eta vllm-sim --kv-events-config` publishes them; cluster-sim
// models them. Without a listener the pool pays one predictable branch per registration and
// eviction. A copy of the pool (Engine::clone) has no listener.
class BlockPoolListener {
 public:
  virtual ~BlockPoolListener() = default;
  virtual void on_block_stored(uint64_t hash) = 0;
  virtual void on_block_removed(uint64_t hash) = 0;
};

class BlockPool {
 public:
  explicit BlockPool(int num_blocks);

  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  // Blocks with reference count 0 (cached or not): what allocate() can hand out.
  int num_free() const { return num_free_; }
  // 1 - free / total.
  double usage() const;

  // Takes the least recently freed block (evicting its hash), with reference count 1.
  // Returns -1 when no block is free.
  int allocate();
  // A cache hit: one more reference; a free block leaves the free queue.
  void touch(int block);
  // Drops one reference from each block; blocks reaching 0 are appended to the free queue in
  // reverse order of `blocks`, so a request's tail blocks are evicted first.
  void release(std::span<const int32_t> blocks);

  // The block holding `hash`, or -1.
  int lookup(uint64_t hash) const;
  // Records that `block` (full) holds `hash`, unless another block already does. Returns true
  // if registered.
  bool register_hash(int block, uint64_t hash);
  // register_hash(blocks[i], hashes[i]) in order, for as long as hashes[i] != 0; the table slots
  // are prefetched first so that their cache misses overlap.
  void register_hashes(std::span<const int32_t> blocks, std::span<const uint64_t> hashes);

  uint64_t block_hash(int block) const { return blocks_[block].hash; }
  int ref_count(int block) const { return blocks_[block].ref; }
  bool is_free(int block) const { return blocks_[block].ref == 0; }
  // Block ids of the free queue from head (next to evict) to tail; for tests.
  std::vector<int> free_queue() const;
  int num_cached() const { return num_cached_; }  // blocks that hold a hash

  void set_listener(BlockPoolListener* listener) { listener_.p = listener; }

 private:
  struct Block {
    uint64_t hash = 0;  // 0: none
    int32_t ref = 0;
    uint32_t pos = 0;  // its index in ring_ while free
  };
  struct Slot {
    uint64_t hash = 0;  // 0: empty
    int32_t block = -1;
  };
  static constexpr int32_t kHole = -1;

  void push_tail(int b);
  void compact();  // drops the ring's holes
  std::size_t slot_of(uint64_t hash) const;
  void rebuild();  // drops the stale entries

  std::vector<Block> blocks_;
  std::vector<int32_t> ring_;  // the free queue: ids or holes, from head_ to tail_ (masked)
  uint32_t ring_mask_ = 0;
  uint32_t head_ = 0;  // free-running counters; tail_ - head_ entries are in use
  uint32_t tail_ = 0;
  int num_free_ = 0;
  int num_cached_ = 0;
  std::vector<Slot> table_;  // at most one entry per hash, live or stale
  std::size_t mask_ = 0;
  std::size_t occupied_ = 0;  // live + stale entries
  struct ListenerSlot {  // not copied: a clone's events would be of a future that never happens
    BlockPoolListener* p = nullptr;
    ListenerSlot() = default;
    ListenerSlot(const ListenerSlot&) {}
    ListenerSlot& operator=(const ListenerSlot&) {
      p = nullptr;
      return *this;
    }
  };
  ListenerSlot listener_;
};

}  // namespace eta::engine
