// What each replica's prefix cache holds according to its own KV-cache events (vLLM's
// BlockStored / BlockRemoved / AllBlocksCleared, src/kv_events/), for the replicas that publish
// them; the others keep PrefixIndex's guess from dispatches. Pure and single-threaded: the
// owner (ClusterState) applies decoded batches in order.
//
// Keys: the engine's block hashes are opaque (a seeded sha256 in vLLM), so each stored block's
// key is recomputed from its token ids as the router keys a prompt (engine::hash_block chained
// from the parent's key, the first block from kRootBlockHash), as llm-d does. A block whose
// parent is unknown (stored before this consumer joined) or whose block size differs from the
// index's gets no key: its removal still balances, it never matches.
//
// Physical copies: vLLM does not de-duplicate, so one logical block may be stored and removed
// several times; an engine hash holds a count, a key is held while any copy is.
//
// Seeds: on dispatch the prompt's keys are seeded for `seed_ttl_s`, so that a sibling arriving
// before the replica's events are back still sees them; a seed ends when a BlockStored for its
// key arrives, on a clear, or when it expires.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "kv_events/event.hpp"

namespace eta::prefix {

struct KvEventReplicaStats {
  bool active = false;           // the replica's estimates come from its events
  uint64_t batches = 0;          // batches applied
  uint64_t stored = 0;           // blocks stored (physical copies)
  uint64_t removed = 0;          // blocks removed
  uint64_t removed_unknown = 0;  // removals of blocks never seen stored
  uint64_t unkeyed = 0;          // stored blocks without a key (unknown parent, other block size)
  uint64_t clears = 0;           // AllBlocksCleared, restarts, lost gaps
  size_t blocks = 0;             // distinct keys held now
  size_t seeds = 0;
};

class KvEventIndex {
 public:
  explicit KvEventIndex(int block_size = 16, double seed_ttl_s = 10.0)
      : block_size_(block_size), seed_ttl_s_(seed_ttl_s) {}

  void resize(int num_replicas);
  int num_replicas() const { return static_cast<int>(replicas_.size()); }
  // The replica publishes events: its matches come from here once the first batch has come
  // (until then, and for a replica whose publisher never answers, the router's own index).
  void set_active(int replica, bool active);
  bool active(int replica) const {
    return replica >= 0 && replica < num_replicas() && replicas_[replica].stats.active;
  }
  bool live(int replica) const { return active(replica) && replicas_[replica].stats.batches > 0; }

  void apply(int replica, const kv_events::EventBatch& batch, double now);
  // A block stored (true) or removed (false) whose engine hash is already the index's key: the
  // cluster simulator's engines hash blocks exactly as the router keys them, and its events skip
  // the wire format (what the events say, not how they travel).
  struct KeyedOp {
    uint64_t key = 0;
    bool stored = true;
  };
  void apply_keyed(int replica, std::span<const KeyedOp> ops, double now);
  // Forget the replica's blocks and seeds (AllBlocksCleared, a restart, a gap replay could not
  // fill).
  void clear(int replica);
  void seed(int replica, std::span<const uint64_t> keys, double now);

  // Leading keys the replica holds (or has seeded).
  uint32_t match(int replica, std::span<const uint64_t> keys) const;
  // out[r] = match(r, keys) for every live replica r < out.size(); others untouched.
  void override_matches(std::span<const uint64_t> keys, std::span<uint32_t> out) const;

  const KvEventReplicaStats& stats(int replica) const { return replicas_[replica].stats; }

 private:
  struct Stored {
    uint64_t key = 0;  // 0: none
    uint32_t copies = 0;
  };
  struct Replica {
    std::unordered_map<uint64_t, Stored> by_engine_hash;
    std::unordered_map<uint64_t, uint32_t> held;  // key -> physical copies
    std::unordered_map<uint64_t, double> seeds;   // key -> expiry
    size_t sweep_at = 4096;                       // seeds' size that triggers dropping expired
    KvEventReplicaStats stats;
  };
  void store(Replica& r, const kv_events::Event& e);
  void remove(Replica& r, const kv_events::Event& e);
  bool holds(const Replica& r, uint64_t key) const;

  int block_size_;
  double seed_ttl_s_;
  double now_ = 0;  // the latest time seen (apply, seed): seeds expire against it
  std::vector<Replica> replicas_;
};

}  // namespace eta::prefix
