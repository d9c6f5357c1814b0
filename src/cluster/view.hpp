// What a routing policy sees: a read-only snapshot of every replica (health, scraped vllm:
// gauges and their age, the router's own ledger of in-flight work, the replica's learned speed and
// engine limits), the request's features, and the decision it returns. No HTTP notion here: the
// same types serve `eta route` (live) and `eta cluster-sim` (virtual time). Time is seconds on the
// caller's clock (ClusterView::now); nothing here reads a clock.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eta::predict {
class SpeedModel;
class LatencyModel;
}  // namespace eta::predict

namespace eta::cluster {

// What the last scrape of a replica's /metrics said (vllm: names, ../shared/vllm-interface.md §5).
struct ScrapeSnapshot {
  bool valid = false;      // false: never scraped successfully (or the last scrape failed)
  double time_s = 0;       // when it was taken, on the ClusterView clock
  int running = 0;         // vllm:num_requests_running (all clients, not only this router)
  int waiting = 0;         // vllm:num_requests_waiting
  double kv_usage = 0;     // vllm:kv_cache_usage_perc, 0..1 (referenced blocks / num_gpu_blocks)
  int num_gpu_blocks = 0;  // vllm:cache_config_info{num_gpu_blocks}; 0 = unknown
  int block_size = 0;      // vllm:cache_config_info{block_size}; 0 = unknown
  double prefix_hit_rate = 0;  // hits/queries of vllm:prefix_cache_* over the last interval
  double preemptions = 0;      // vllm:num_preemptions_total (cumulative)
  // vllm:generation_tokens_total per second over the last interval (least-load's throughput,
  // SMG's gen_throughput); 0 = unknown or nothing generated.
  double generation_tps = 0;

  double age_s(double now) const { return now - time_s; }
  // Valid and no older than `stale_after_s`.
  bool fresh(double now, double stale_after_s) const {
    return valid && age_s(now) <= stale_after_s;
  }
};

// Remaining-output distribution of a replica's in-flight requests, in log2 buckets: bucket k
// holds requests whose predicted remaining output is in [2^k, 2^(k+1)) tokens (the last bucket:
// everything from 2^(kRemainingBuckets-1) up). Enough to model how a batch shrinks as its
// requests finish, in O(buckets) without looking at requests. Doubles so that the policy's
// arithmetic needs no conversions; they only ever hold integers.
inline constexpr int kRemainingBuckets = 12;
struct RemainingOutputSummary {
  std::array<double, kRemainingBuckets> count{};             // requests in the bucket
  std::array<double, kRemainingBuckets> remaining_tokens{};  // sum of their predicted remaining

  static int bucket_of(int64_t remaining) {
    if (remaining < 2) return 0;
    const int b = 63 - __builtin_clzll(static_cast<uint64_t>(remaining));
    return b < kRemainingBuckets ? b : kRemainingBuckets - 1;
  }
};

// The router's own, exact and instant account of what it has in flight on one replica (what it
// dispatched and has not seen finish). Maintained incrementally by cluster::Ledger.
struct LedgerSummary {
  int in_flight = 0;                   // dispatched, not finished or aborted
  int prefilling = 0;                  // of those, no first token seen yet (waiting or in prefill)
  int decoding = 0;                    // of those, first token seen
  int64_t pending_prefill_tokens = 0;  // uncached prompt tokens of the prefilling requests
  int64_t prefill_prompt_tokens = 0;   // full prompt tokens of the prefilling requests
  // Prefill attention work of the prefilling requests: sum of uncached x (cached + uncached/2)
  // query-key pairs (what engine::BatchShape::prefill_attn_pairs adds up over their chunks).
  double pending_prefill_pairs = 0;
  int64_t context_tokens = 0;  // prompt + generated tokens of the decoding requests
  int64_t kv_tokens = 0;       // KV the in-flight work holds or will hold now: uncached prompt +
                               // generated, over every in-flight request
  int64_t predicted_remaining_decode_tokens = 0;  // sum of predicted remaining output tokens
  RemainingOutputSummary remaining;
};

inline constexpr LedgerSummary kEmptyLedger{};

// Engine limits that shape a replica's scheduling. 0 = unknown: the replica's speed-model
// profile supplies the value.
struct EngineLimits {
  int max_num_batched_tokens = 0;
  int max_num_seqs = 0;
  int num_gpu_blocks = 0;  // from the scrape's cache_config_info when known
  int block_size = 0;
};

struct ReplicaView {
  int index = 0;          // the replica's id; Decision::replica and prefix matches use it
  std::string_view name;  // stable name (URL), the same on every router (session hashing)
  bool routable = true;   // healthy, serves the model, not drained
  double weight = 1.0;    // relative capacity hint: `random` and `session` use it
  ScrapeSnapshot scrape;
  const LedgerSummary* ledger = nullptr;       // nullptr: nothing in flight
  const predict::SpeedModel* speed = nullptr;  // nullptr: the policy's default (h100)
  EngineLimits limits;

  const LedgerSummary& ledger_or_empty() const { return ledger ? *ledger : kEmptyLedger; }
  int in_flight() const { return ledger ? ledger->in_flight : 0; }
};

// Average request sizes the router has seen, used to size work that a fresh scrape shows on a
// replica but this router did not send (other routers, other clients).
struct WorkAverages {
  double prompt_tokens = 512;
  double uncached_prompt_tokens = 512;
  double output_tokens = 256;
};

struct ClusterView {
  double now = 0;
  double stale_after_s = 2.0;  // scrapes older than this are ignored (llm-d/GIE's default)
  std::span<const ReplicaView> replicas;
  WorkAverages averages;
  // Bumped by the owner whenever the set of replicas (names, indices) changes; policies that
  // cache per-topology structures (session's hash ring) rebuild on change.
  uint64_t topology_version = 0;
  // The pool's learned TTFT / TPOT regressor (llm-d-latency; cluster::ClusterState learns it
  // from the completions it relays); nullptr when the owner keeps none.
  const predict::LatencyModel* latency = nullptr;
};

// What a policy knows about the request. Spans point into the caller's storage and only need to
// live for the pick() call.
struct RequestFeatures {
  std::string_view model;
  int prompt_tokens = 0;  // estimated with the toy tokenizer
  // Chained hashes of the prompt's full blocks of hash_block_size tokens
  // (engine::chain_block_hashes).
  std::span<const uint64_t> block_hashes;
  int hash_block_size = 16;
  // Per replica index: how many leading blocks of block_hashes that replica is believed to hold
  // (prefix::PrefixIndex::match_all, computed once per request). Empty: no prefix knowledge;
  // indices past the end count as 0.
  std::span<const uint32_t> matched_blocks;
  std::optional<int> max_tokens;
  bool ignore_eos = false;
  int predicted_output_tokens = 0;  // predict::OutputLengthPredictor; <= 0 counts as 1
  // The predicted output-length distribution beyond its capped mean (predicted_output_tokens):
  // a point guess with the least median relative error, and the standard deviation (tokens);
  // 0: none.
  int predicted_output_point = 0;
  double predicted_output_sd = 0;
  std::optional<uint64_t> session_hash;  // hash of the session key (header / `user`), if any
  // Hash of what else shapes the answer's length: the endpoint and the stop settings (0: none
  // known); one of the output predictor's contexts.
  uint64_t output_shape = 0;

  uint32_t matched_blocks_on(int replica_index) const {
    return replica_index >= 0 && static_cast<size_t>(replica_index) < matched_blocks.size()
               ? matched_blocks[static_cast<size_t>(replica_index)]
               : 0;
  }
  // Prompt tokens the replica is predicted to find in its prefix cache (vLLM always recomputes
  // at least the last prompt token).
  int cached_tokens_on(int replica_index) const {
    const int64_t t = static_cast<int64_t>(matched_blocks_on(replica_index)) * hash_block_size;
    const int64_t cap = prompt_tokens > 0 ? prompt_tokens - 1 : 0;
    return static_cast<int>(t < cap ? t : cap);
  }
  int output_tokens() const { return predicted_output_tokens > 0 ? predicted_output_tokens : 1; }
};

inline constexpr double kNotPredicted = std::numeric_limits<double>::quiet_NaN();

struct Candidate {
  int replica = -1;
  double ttft_s = kNotPredicted;  // predicted time to first token there (policies that predict)
  double e2e_s = kNotPredicted;   // predicted end-to-end latency there
  double e2e_spread_s = kNotPredicted;  // its standard deviation from the output length's
  double score = 0;  // the policy's ranking value (see docs/policies.md: lower or higher wins)
};

struct Decision {
  int replica = -1;    // ReplicaView::index of the chosen replica; -1: none routable
  std::string reason;  // short, for logs and the admin API
  // false: the caller never reads `reason` (cluster-sim), so policies skip formatting it.
  bool explain = true;
  std::vector<Candidate> candidates;  // every routable replica considered, in view order

  bool ok() const { return replica >= 0; }
  const Candidate* candidate(int replica_index) const {
    for (const Candidate& c : candidates)
      if (c.replica == replica_index) return &c;
    return nullptr;
  }
};

}  // namespace eta::cluster
