// vLLM's KV-cache events (vllm/distributed/kv_events.py), as eta's publisher (`eta vllm-sim
// --kv-events-config`) sends them and eta's consumers (the router, cluster-sim) read them. See
// docs/architecture.md "KV-cache events" and ../shared/vllm-interface.md §10.
//
// A block hash on the wire is an unsigned 64-bit integer (vLLM's default) or the digest's bytes
// (VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0). Consumers here keep 64 bits either way: the integer,
// or the last 8 bytes of the digest read big-endian (the digest's low 64 bits as an integer).
// Hashes are opaque ids: consumers recompute their own block keys from token_ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace eta::kv_events {

enum class EventType { kBlockStored, kBlockRemoved, kAllBlocksCleared };
const char* to_string(EventType t);

struct Event {
  EventType type = EventType::kBlockStored;
  std::vector<uint64_t> block_hashes;         // BlockStored, BlockRemoved
  std::optional<uint64_t> parent_block_hash;  // BlockStored; empty: nil (a chain's first block)
  std::vector<uint32_t> token_ids;            // BlockStored: every token of the new full blocks
  int block_size = 0;                         // BlockStored
  std::string medium = "GPU";                 // empty: nil
  int group_idx = 0;
  bool operator==(const Event&) const = default;
};

struct EventBatch {
  double ts = 0;  // the publisher's time.time()
  std::vector<Event> events;
  std::optional<int> data_parallel_rank;
  bool operator==(const EventBatch&) const = default;
};

// The encodings seen across vLLM versions (vllm-interface.md §10): events as maps tagged by
// "type" (2026, PR #42892) or positional arrays with the tag first (before); the batch as an
// array [ts, events, dp_rank] (every release) or a map (one 2026 snapshot).
struct EncodeOptions {
  bool events_as_maps = true;
  bool batch_as_map = false;
  bool byte_hashes = false;  // 32-byte digests instead of 64-bit integers
};

}  // namespace eta::kv_events
