#include "engine/block_pool.hpp"

#include "engine/hash.hpp"

namespace eta::engine {

BlockPool::BlockPool(int num_blocks) : blocks_(num_blocks > 0 ? num_blocks : 0) {
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
  if (blk.hash != 0) {  // evicted: its table entry turns stale (no table access here)
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
  if (2 * occupied_ > table_.size()) rebuild();
  return true;
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
  for (int b = head_; b >= 0; b = blocks_[b].next) out.push_back(b);
  return out;
}

}  // namespace eta::engine
