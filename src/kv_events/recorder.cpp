#include "kv_events/recorder.hpp"

#include "engine/engine.hpp"
#include "engine/hash.hpp"
#include "engine/tokenizer.hpp"

namespace eta::kv_events {

void BlockEventRecorder::add_request(uint64_t id, std::span<const uint32_t> prompt,
                                     std::span<const uint64_t> block_hashes, uint64_t output_seed,
                                     int output_tokens) {
  const size_t bs = static_cast<size_t>(block_size_);
  if (bs == 0) return;
  std::vector<uint64_t>& mine = requests_[id];
  const size_t full_prompt = prompt.size() / bs;
  // The engine hashes output blocks only when every full prompt block has a hash.
  const bool extend = block_hashes.size() == full_prompt;
  const size_t total = prompt.size() + static_cast<size_t>(output_tokens > 0 ? output_tokens : 0);
  const size_t blocks = extend ? total / bs : block_hashes.size();
  std::vector<uint32_t> tokens(prompt.begin(), prompt.end());
  if (blocks * bs > tokens.size()) {
    tokens.reserve(blocks * bs);
    for (int i = 0; tokens.size() < blocks * bs; ++i) {
      const std::vector<uint32_t> t = engine::tokenize(engine::output_token_text(output_seed, i));
      tokens.insert(tokens.end(), t.begin(), t.end());
    }
  }
  uint64_t parent = 0;
  for (size_t k = 0; k < blocks; ++k) {
    const uint64_t h = k < block_hashes.size() ? block_hashes[k]
                                               : engine::output_block_hash(
                                                     parent == 0 ? engine::kRootBlockHash : parent,
                                                     output_seed, static_cast<int>(k));
    Info& info = blocks_[h];
    if (info.refs++ == 0) {
      info.parent = parent;
      info.tokens.assign(tokens.begin() + static_cast<std::ptrdiff_t>(k * bs),
                         tokens.begin() + static_cast<std::ptrdiff_t>((k + 1) * bs));
    }
    mine.push_back(h);
    parent = h;
  }
}

void BlockEventRecorder::end_request(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  for (uint64_t h : it->second) {
    auto b = blocks_.find(h);
    if (b != blocks_.end() && --b->second.refs == 0) blocks_.erase(b);
  }
  requests_.erase(it);
}

void BlockEventRecorder::all_cleared() {
  Event e;
  e.type = EventType::kAllBlocksCleared;
  events_.push_back(std::move(e));
}

void BlockEventRecorder::on_block_stored(uint64_t hash) {
  auto it = blocks_.find(hash);
  if (it == blocks_.end()) {
    ++unknown_stores_;
    return;
  }
  const Info& info = it->second;
  if (!events_.empty()) {
    Event& last = events_.back();
    if (last.type == EventType::kBlockStored && !last.block_hashes.empty() &&
        last.block_hashes.back() == info.parent) {
      last.block_hashes.push_back(hash);
      last.token_ids.insert(last.token_ids.end(), info.tokens.begin(), info.tokens.end());
      return;
    }
  }
  Event e;
  e.type = EventType::kBlockStored;
  e.block_hashes.push_back(hash);
  if (info.parent != 0) e.parent_block_hash = info.parent;
  e.token_ids = info.tokens;
  e.block_size = block_size_;
  events_.push_back(std::move(e));
}

void BlockEventRecorder::on_block_removed(uint64_t hash) {
  Event e;
  e.type = EventType::kBlockRemoved;
  e.block_hashes.push_back(hash);
  events_.push_back(std::move(e));
}

bool BlockEventRecorder::take(EventBatch& out) {
  if (events_.empty()) return false;
  out.events.swap(events_);
  events_.clear();
  return true;
}

}  // namespace eta::kv_events
