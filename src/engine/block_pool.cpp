#include "engine/block_pool.hpp"

#include <algorithm>

#include "engine/hash.hpp"

namespace eta::engine {

BlockPool::BlockPool(int num_blocks) : blocks_(num_blocks > 0 ? num_blocks : 0) {
  // The ring holds every free block plus holes; twice the blocks leaves compaction half of it.
  std::size_t ring = 16;
  while (ring < 2 * blocks_.size()) ring *= 2;
  ring_.assign(ring, kHole);
  ring_mask_ = static_cast<uint32_t>(ring - 1);
  for (int b = 0; b < this->num_blocks(); ++b) push_tail(b);
  // Four slots per block: stale entries (see register_hash) fill at most half the table before
  // rebuild() drops them, and the live ones are at most a quarter of it.
  std::size_t cap = 16;
  while (cap < 4 * blocks_.size()) cap *= 2;
  table_.assign(cap, Slot{});
  mask_ = cap - 1;
}

double BlockPool::usage() const {
  if (blocks_.empty()) return 0;
  return 1.0 - static_cast<double>(num_free_) / static_cast<double>(blocks_.size());
}

void BlockPool::push_tail(int b) {
  if (tail_ - head_ == static_cast<uint32_t>(ring_.size())) compact();
  const uint32_t pos = tail_++ & ring_mask_;
  ring_[pos] = b;
  blocks_[b].pos = pos;
  ++num_free_;
}

void BlockPool::compact() {
  uint32_t out = head_;
  for (uint32_t in = head_; in != tail_; ++in) {
    const int32_t b = ring_[in & ring_mask_];
    if (b == kHole) continue;
    const uint32_t pos = out++ & ring_mask_;
    ring_[pos] = b;
    blocks_[b].pos = pos;
  }
  for (uint32_t k = out; k != tail_; ++k) ring_[k & ring_mask_] = kHole;
  tail_ = out;
}

int BlockPool::allocate() {
  if (num_free_ == 0) return -1;
  int32_t b;
  do {
    b = ring_[head_++ & ring_mask_];
  } while (b == kHole);
  --num_free_;
  Block& blk = blocks_[b];
  if (blk.hash != 0) {  // evicted: its table entry turns stale (no table access here)
    if (listener_.p) [[unlikely]]
      listener_.p->on_block_removed(blk.hash);
    blk.hash = 0;
    --num_cached_;
  }
  blk.ref = 1;
  return b;
}

void BlockPool::touch(int block) {
  Block& blk = blocks_[block];
  if (blk.ref == 0) {
    ring_[blk.pos] = kHole;
    --num_free_;
  }
  ++blk.ref;
}

void BlockPool::release(std::span<const int32_t> blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    Block& blk = blocks_[*it];
    if (--blk.ref == 0) push_tail(*it);
  }
}

std::size_t BlockPool::slot_of(uint64_t hash) const {
  return mix64(hash) & mask_;
}

int BlockPool::lookup(uint64_t hash) const {
  if (hash == 0) return -1;
  for (std::size_t i = slot_of(hash);; i = (i + 1) & mask_) {
    const Slot& s = table_[i];
    if (s.hash == hash) return blocks_[s.block].hash == hash ? s.block : -1;
    if (s.hash == 0) return -1;
  }
}

bool BlockPool::register_hash(int block, uint64_t hash) {
  if (hash == 0 || blocks_[block].hash != 0) return false;
  std::size_t i = slot_of(hash);
  for (;; i = (i + 1) & mask_) {
    Slot& s = table_[i];
    if (s.hash == hash) {
      // The one entry for this hash: live if its block still holds it, else stale (reused).
      if (blocks_[s.block].hash == hash) return false;  // another block holds it
      s.block = block;
      break;
    }
    if (s.hash == 0) {
      s = Slot{hash, block};
      ++occupied_;
      break;
    }
  }
  blocks_[block].hash = hash;
  ++num_cached_;
  if (listener_.p) [[unlikely]]
    listener_.p->on_block_stored(hash);
  if (2 * occupied_ > table_.size()) rebuild();
  return true;
}

void BlockPool::register_hashes(std::span<const int32_t> blocks, std::span<const uint64_t> hashes) {
  const std::size_t n = std::min(blocks.size(), hashes.size());
  for (std::size_t k = 0; k < n && hashes[k] != 0; ++k) {
    __builtin_prefetch(&table_[slot_of(hashes[k])]);
  }
  for (std::size_t k = 0; k < n && hashes[k] != 0; ++k) register_hash(blocks[k], hashes[k]);
}

void BlockPool::rebuild() {
  std::fill(table_.begin(), table_.end(), Slot{});
  occupied_ = 0;
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    const uint64_t hash = blocks_[b].hash;
    if (hash == 0) continue;
    std::size_t i = slot_of(hash);
    while (table_[i].hash != 0) i = (i + 1) & mask_;
    table_[i] = Slot{hash, static_cast<int32_t>(b)};
    ++occupied_;
  }
}

std::vector<int> BlockPool::free_queue() const {
  std::vector<int> out;
  for (uint32_t k = head_; k != tail_; ++k) {
    const int32_t b = ring_[k & ring_mask_];
    if (b != kHole) out.push_back(b);
  }
  return out;
}

}  // namespace eta::engine
