// Turns a simulated engine's block-pool reports (engine::BlockPoolListener) into vLLM's
// KV-cache events, for `eta vllm-sim --kv-events-config`. The pool knows only hashes; the
// recorder learns each admitted request's blocks (parent hash and token ids, prompt and output
// blocks alike) from add_request, and forgets them at end_request. Events of one engine step
// are collected in order and taken as one batch (take()), as vLLM publishes one batch per
// scheduler step: consecutive stores of one chain become one BlockStored, each eviction one
// BlockRemoved. Pure and single-threaded.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/block_pool.hpp"
#include "kv_events/event.hpp"

namespace eta::kv_events {

class BlockEventRecorder : public engine::BlockPoolListener {
 public:
  explicit BlockEventRecorder(int block_size) : block_size_(block_size) {}

  // A request the engine accepted: its prompt token ids, prompt block hashes (as given to the
  // engine), output seed and output length (the engine's output blocks are hashed from them).
  void add_request(uint64_t id, std::span<const uint32_t> prompt_tokens,
                   std::span<const uint64_t> block_hashes, uint64_t output_seed, int output_tokens);
  void end_request(uint64_t id);
  // The engine's cache was reset: queued as AllBlocksCleared.
  void all_cleared();

  void on_block_stored(uint64_t hash) override;
  void on_block_removed(uint64_t hash) override;

  bool empty() const { return events_.empty(); }
  // Moves the collected events into `out.events` (replacing them); false if there are none.
  bool take(EventBatch& out);
  uint64_t unknown_stores() const { return unknown_stores_; }

 private:
  struct Info {
    uint64_t parent = 0;  // 0: none (a chain's first block)
    std::vector<uint32_t> tokens;
    uint32_t refs = 0;
  };
  int block_size_;
  std::unordered_map<uint64_t, Info> blocks_;                     // hash -> what it holds
  std::unordered_map<uint64_t, std::vector<uint64_t>> requests_;  // id -> its hashes
  std::vector<Event> events_;
  uint64_t unknown_stores_ = 0;
};

}  // namespace eta::kv_events
