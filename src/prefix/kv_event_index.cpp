#include "prefix/kv_event_index.hpp"

#include <algorithm>

#include "engine/engine.hpp"

namespace eta::prefix {

void KvEventIndex::resize(int num_replicas) {
  if (num_replicas > this->num_replicas()) replicas_.resize(static_cast<size_t>(num_replicas));
}

void KvEventIndex::set_active(int replica, bool active) {
  if (replica < 0 || replica >= num_replicas()) return;
  replicas_[replica].stats.active = active;
}

void KvEventIndex::clear(int replica) {
  if (replica < 0 || replica >= num_replicas()) return;
  Replica& r = replicas_[replica];
  r.by_engine_hash.clear();
  r.held.clear();
  r.seeds.clear();
  r.stats.clears += 1;
  r.stats.blocks = 0;
  r.stats.seeds = 0;
}

void KvEventIndex::store(Replica& r, const kv_events::Event& e) {
  const size_t n = e.block_hashes.size();
  const bool keyed = e.block_size == block_size_ && block_size_ > 0 &&
                     e.token_ids.size() == n * static_cast<size_t>(block_size_);
  uint64_t parent_key = engine::kRootBlockHash;
  if (e.parent_block_hash) {
    auto it = r.by_engine_hash.find(*e.parent_block_hash);
    parent_key = it != r.by_engine_hash.end() ? it->second.key : 0;
  }
  const std::span<const uint32_t> tokens(e.token_ids);
  for (size_t i = 0; i < n; ++i) {
    uint64_t key = 0;
    if (keyed && parent_key != 0) {
      key = engine::hash_block(parent_key, tokens.subspan(i * static_cast<size_t>(block_size_),
                                                          static_cast<size_t>(block_size_)));
    }
    Stored& s = r.by_engine_hash[e.block_hashes[i]];
    if (s.copies == 0) s.key = key;
    s.copies += 1;
    r.stats.stored += 1;
    if (s.key != 0) {
      r.held[s.key] += 1;
      r.seeds.erase(s.key);
    } else {
      r.stats.unkeyed += 1;
    }
    parent_key = s.key;
  }
}

void KvEventIndex::remove(Replica& r, const kv_events::Event& e) {
  for (uint64_t h : e.block_hashes) {
    auto it = r.by_engine_hash.find(h);
    if (it == r.by_engine_hash.end()) {
      r.stats.removed_unknown += 1;
      continue;
    }
    r.stats.removed += 1;
    const uint64_t key = it->second.key;
    if (--it->second.copies == 0) r.by_engine_hash.erase(it);
    if (key == 0) continue;
    auto k = r.held.find(key);
    if (k != r.held.end() && --k->second == 0) r.held.erase(k);
  }
}

void KvEventIndex::apply(int replica, const kv_events::EventBatch& batch, double now) {
  if (replica < 0 || replica >= num_replicas()) return;
  now_ = std::max(now_, now);
  Replica& r = replicas_[replica];
  r.stats.batches += 1;
  for (const kv_events::Event& e : batch.events) {
    // Blocks offloaded to CPU memory (medium "CPU") are not in the GPU prefix cache.
    if (e.type != kv_events::EventType::kAllBlocksCleared && !e.medium.empty() && e.medium != "GPU")
      continue;
    switch (e.type) {
      case kv_events::EventType::kBlockStored:
        store(r, e);
        break;
      case kv_events::EventType::kBlockRemoved:
        remove(r, e);
        break;
      case kv_events::EventType::kAllBlocksCleared:
        clear(replica);
        break;
    }
  }
  r.stats.blocks = r.held.size();
  r.stats.seeds = r.seeds.size();
}

void KvEventIndex::apply_keyed(int replica, std::span<const KeyedOp> ops, double now) {
  if (replica < 0 || replica >= num_replicas()) return;
  now_ = std::max(now_, now);
  Replica& r = replicas_[replica];
  r.stats.batches += 1;
  for (const KeyedOp& op : ops) {
    if (op.stored) {
      Stored& s = r.by_engine_hash[op.key];
      s.key = op.key;
      s.copies += 1;
      r.held[op.key] += 1;
      r.seeds.erase(op.key);
      r.stats.stored += 1;
      continue;
    }
    auto it = r.by_engine_hash.find(op.key);
    if (it == r.by_engine_hash.end()) {
      r.stats.removed_unknown += 1;
      continue;
    }
    r.stats.removed += 1;
    if (--it->second.copies == 0) r.by_engine_hash.erase(it);
    auto k = r.held.find(op.key);
    if (k != r.held.end() && --k->second == 0) r.held.erase(k);
  }
  r.stats.blocks = r.held.size();
  r.stats.seeds = r.seeds.size();
}

void KvEventIndex::seed(int replica, std::span<const uint64_t> keys, double now) {
  if (replica < 0 || replica >= num_replicas()) return;
  now_ = std::max(now_, now);
  Replica& r = replicas_[replica];
  if (!r.stats.active) return;
  // Expired seeds go when the map has doubled since the last sweep (amortised O(1) per seed).
  if (r.seeds.size() >= r.sweep_at) {
    std::erase_if(r.seeds, [&](const auto& kv) { return kv.second <= now_; });
    r.sweep_at = std::max<size_t>(4096, 2 * r.seeds.size());
  }
  for (uint64_t k : keys)
    if (!r.held.count(k)) r.seeds[k] = now + seed_ttl_s_;
  r.stats.seeds = r.seeds.size();
}

bool KvEventIndex::holds(const Replica& r, uint64_t key) const {
  if (r.held.count(key)) return true;
  auto it = r.seeds.find(key);
  return it != r.seeds.end() && it->second > now_;
}

uint32_t KvEventIndex::match(int replica, std::span<const uint64_t> keys) const {
  if (replica < 0 || replica >= num_replicas()) return 0;
  const Replica& r = replicas_[replica];
  uint32_t m = 0;
  for (uint64_t k : keys) {
    if (!holds(r, k)) break;
    ++m;
  }
  return m;
}

void KvEventIndex::override_matches(std::span<const uint64_t> keys, std::span<uint32_t> out) const {
  const size_t n = std::min(out.size(), replicas_.size());
  for (size_t i = 0; i < n; ++i)
    if (live(static_cast<int>(i))) out[i] = match(static_cast<int>(i), keys);
}

}  // namespace eta::prefix
