#include "engine/block_pool.hpp"

#include "engine/hash.hpp"

namespace eta::engine {

BlockPool::BlockPool(int num_blocks) : blocks_(num_blocks > 0 ? num_blocks : 0) {
  for (int b = 0; b < this->num_blocks(); ++b) push_tail(b);
  std::size_t cap = 16;
  while (cap < 2 * blocks_.size()) cap *= 2;
  table_.assign(cap, Slot{});
  mask_ = cap - 1;
}

double BlockPool::usage() const {
  if (blocks_.empty()) return 0;
  return 1.0 - static_cast<double>(num_free_) / static_cast<double>(blocks_.size());
}

void BlockPool::push_tail(int b) {
  Block& blk = blocks_[b];
  blk.prev = tail_;
  blk.next = -1;
  if (tail_ >= 0) {
    blocks_[tail_].next = b;
  } else {
    head_ = b;
  }
  tail_ = b;
  ++num_free_;
}

void BlockPool::unlink(int b) {
  Block& blk = blocks_[b];
  if (blk.prev >= 0) {
    blocks_[blk.prev].next = blk.next;
  } else {
    head_ = blk.next;
  }
  if (blk.next >= 0) {
    blocks_[blk.next].prev = blk.prev;
  } else {
    tail_ = blk.prev;
  }
  blk.prev = blk.next = -1;
  --num_free_;
}

int BlockPool::allocate() {
  if (head_ < 0) return -1;
  const int b = head_;
  unlink(b);
  Block& blk = blocks_[b];
  if (blk.hash != 0) {
    erase_hash(blk.hash, b);
    blk.hash = 0;
    --num_cached_;
  }
  blk.ref = 1;
  return b;
}

void BlockPool::touch(int block) {
  Block& blk = blocks_[block];
  if (blk.ref == 0) unlink(block);
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
    if (s.hash == hash) return s.block;
    if (s.hash == 0) return -1;
  }
}

bool BlockPool::register_hash(int block, uint64_t hash) {
  if (hash == 0 || blocks_[block].hash != 0) return false;
  std::size_t i = slot_of(hash);
  for (;; i = (i + 1) & mask_) {
    if (table_[i].hash == hash) return false;  // another block already holds it
    if (table_[i].hash == 0) break;
  }
  // At most one hash per block, and the table has twice as many slots as blocks: never full.
  table_[i] = Slot{hash, block};
  blocks_[block].hash = hash;
  ++num_cached_;
  return true;
}

void BlockPool::erase_hash(uint64_t hash, int block) {
  std::size_t i = slot_of(hash);
  for (;; i = (i + 1) & mask_) {
    if (table_[i].hash == 0) return;
    if (table_[i].hash == hash && table_[i].block == block) break;
  }
  // Backward-shift deletion keeps linear probing correct without tombstones.
  std::size_t hole = i;
  for (std::size_t j = (hole + 1) & mask_; table_[j].hash != 0; j = (j + 1) & mask_) {
    const std::size_t home = slot_of(table_[j].hash);
    // Move j into the hole if its home is not cyclically in (hole, j].
    const bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!in_range) {
      table_[hole] = table_[j];
      hole = j;
    }
  }
  table_[hole] = Slot{};
}

std::vector<int> BlockPool::free_queue() const {
  std::vector<int> out;
  for (int b = head_; b >= 0; b = blocks_[b].next) out.push_back(b);
  return out;
}

}  // namespace eta::engine
