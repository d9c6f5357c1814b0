#include "prefix/prefix_index.hpp"

#include <algorithm>

namespace eta::prefix {
namespace {
constexpr uint32_t kAlive = 0xfffffffeu;
constexpr uint32_t kAliveHere = 0xfffffffdu;
}  // namespace

PrefixIndex::PrefixIndex(int num_replicas, int64_t default_capacity_blocks)
    : default_capacity_(default_capacity_blocks) {
  resize(num_replicas);
}

void PrefixIndex::resize(int num_replicas) {
  while (static_cast<int>(replicas_.size()) < num_replicas) {
    Replica r;
    r.capacity = default_capacity_;
    replicas_.push_back(r);
  }
}

void PrefixIndex::set_capacity(int replica, int64_t blocks) {
  replicas_[replica].capacity = blocks;
  evict_to_capacity(static_cast<uint32_t>(replica));
}

uint32_t PrefixIndex::find_node(uint32_t replica, uint64_t hash) const {
  const uint32_t b = block_of_hash_.find(hash);
  return b == FlatMap64::kNone ? kNil : holder_of(b, replica);
}

uint32_t PrefixIndex::holder_of(uint32_t block, uint32_t replica) const {
  for (uint32_t n = blocks_[block].head; n != kNil; n = nodes_[n].holder_next)
    if (nodes_[n].replica == replica) return n;
  return kNil;
}

void PrefixIndex::lru_unlink(Replica& r, uint32_t n) {
  Node& node = nodes_[n];
  if (node.lru_prev != kNil)
    nodes_[node.lru_prev].lru_next = node.lru_next;
  else
    r.mru = node.lru_next;
  if (node.lru_next != kNil)
    nodes_[node.lru_next].lru_prev = node.lru_prev;
  else
    r.lru = node.lru_prev;
  node.lru_prev = node.lru_next = kNil;
}

void PrefixIndex::lru_push_front(Replica& r, uint32_t n) {
  Node& node = nodes_[n];
  node.lru_prev = kNil;
  node.lru_next = r.mru;
  if (r.mru != kNil) nodes_[r.mru].lru_prev = n;
  r.mru = n;
  if (r.lru == kNil) r.lru = n;
}

void PrefixIndex::touch(uint32_t replica, uint64_t hash) {
  Replica& r = replicas_[replica];
  uint32_t b = block_of_hash_.find(hash);
  uint32_t n = b == FlatMap64::kNone ? kNil : holder_of(b, replica);
  if (n != kNil) {
    if (r.mru != n) {
      lru_unlink(r, n);
      lru_push_front(r, n);
    }
    return;
  }

  if (b == FlatMap64::kNone) {
    if (!free_blocks_.empty()) {
      b = free_blocks_.back();
      free_blocks_.pop_back();
      blocks_[b] = BlockEntry{};
    } else {
      b = static_cast<uint32_t>(blocks_.size());
      blocks_.emplace_back();
    }
    block_of_hash_.set(hash, b);
  }
  if (!free_nodes_.empty()) {
    n = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    n = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& node = nodes_[n];
  node = Node{};
  node.hash = hash;
  node.replica = replica;
  node.block = b;
  BlockEntry& e = blocks_[b];
  node.holder_next = e.head;
  if (e.head != kNil) nodes_[e.head].holder_prev = n;
  e.head = n;
  e.holders += 1;
  lru_push_front(r, n);
  r.size += 1;
}

void PrefixIndex::remove_node(uint32_t n) {
  Node& node = nodes_[n];
  Replica& r = replicas_[node.replica];
  lru_unlink(r, n);
  r.size -= 1;
  BlockEntry& e = blocks_[node.block];
  if (node.holder_prev != kNil)
    nodes_[node.holder_prev].holder_next = node.holder_next;
  else
    e.head = node.holder_next;
  if (node.holder_next != kNil) nodes_[node.holder_next].holder_prev = node.holder_prev;
  e.holders -= 1;
  if (e.holders == 0) {
    block_of_hash_.erase(node.hash);
    free_blocks_.push_back(node.block);
  }
  node.block = kNil;
  free_nodes_.push_back(n);
}

void PrefixIndex::evict_to_capacity(uint32_t replica) {
  Replica& r = replicas_[replica];
  if (r.capacity <= 0) return;
  while (r.size > r.capacity) remove_node(r.lru);
}

void PrefixIndex::insert(int replica, std::span<const uint64_t> hashes) {
  if (replica < 0 || replica >= num_replicas()) return;
  const auto rep = static_cast<uint32_t>(replica);
  // Last to first: the first block ends up most recent, so chains are evicted tail first.
  // A prompt longer than the capacity keeps its first `capacity` blocks.
  const Replica& r = replicas_[rep];
  size_t count = hashes.size();
  if (r.capacity > 0 && static_cast<int64_t>(count) > r.capacity)
    count = static_cast<size_t>(r.capacity);
  for (size_t i = count; i-- > 0;) touch(rep, hashes[i]);
  evict_to_capacity(rep);
}

uint32_t PrefixIndex::match(int replica, std::span<const uint64_t> hashes) const {
  if (replica < 0 || replica >= num_replicas()) return 0;
  uint32_t m = 0;
  for (uint64_t h : hashes) {
    if (find_node(static_cast<uint32_t>(replica), h) == kNil) break;
    ++m;
  }
  return m;
}

uint32_t PrefixIndex::match_all(std::span<const uint64_t> hashes, std::span<uint32_t> out) const {
  std::fill(out.begin(), out.end(), 0u);
  if (hashes.empty() || out.empty()) return 0;
  alive_.clear();
  uint32_t best = 0;
  size_t depth = 0;
  for (; depth < hashes.size(); ++depth) {
    const uint32_t b = block_of_hash_.find(hashes[depth]);
    if (b == FlatMap64::kNone) break;
    const BlockEntry& e = blocks_[b];
    if (depth == 0) {
      for (uint32_t n = e.head; n != kNil; n = nodes_[n].holder_next) {
        const uint32_t r = nodes_[n].replica;
        if (r < out.size()) {
          out[r] = kAlive;
          alive_.push_back(r);
        }
      }
      if (alive_.empty()) break;
      continue;
    }
    // Prefix-closed sets: if this block has as many holders as there are replicas still
    // matching, they are the same replicas and nobody drops out here.
    if (e.holders == alive_.size()) continue;
    for (uint32_t n = e.head; n != kNil; n = nodes_[n].holder_next) {
      const uint32_t r = nodes_[n].replica;
      if (r < out.size() && out[r] == kAlive) out[r] = kAliveHere;
    }
    size_t kept = 0;
    for (uint32_t r : alive_) {
      if (out[r] == kAliveHere) {
        out[r] = kAlive;
        alive_[kept++] = r;
      } else {
        out[r] = static_cast<uint32_t>(depth);  // matched blocks 0..depth-1
        best = std::max(best, out[r]);
      }
    }
    alive_.resize(kept);
    if (kept == 0) break;
  }
  for (uint32_t r : alive_) out[r] = static_cast<uint32_t>(depth);
  if (!alive_.empty()) best = std::max(best, static_cast<uint32_t>(depth));
  return best;
}

void PrefixIndex::clear_replica(int replica) {
  if (replica < 0 || replica >= num_replicas()) return;
  Replica& r = replicas_[replica];
  while (r.lru != kNil) remove_node(r.lru);
}

}  // namespace eta::prefix
