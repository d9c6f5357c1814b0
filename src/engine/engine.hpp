// A model of one vLLM V1 engine core: scheduler, KV block pool with prefix caching, and the
// step-time model. A pure state machine: no sockets, no threads, no sleeping. Whoever owns it
// calls step(now) with a clock of their own (scaled wall time in `eta vllm-sim`, virtual time in
// `eta cluster-sim`) and delivers the step's results at result.end.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/profile.hpp"

namespace eta::engine {

class BlockPool;
using RequestId = uint64_t;

enum class FinishReason { kNone, kStop, kLength, kAbort };
const char* to_string(FinishReason r);

struct EngineConfig {
  ModelArch arch;
  GpuProfile gpu;
  double speed = 1.0;              // 0.5: every step takes twice as long
  int max_num_seqs = 0;            // 0: the GPU profile's vLLM default
  int max_num_batched_tokens = 0;  // 0: the GPU profile's vLLM default
  int num_gpu_blocks = 0;          // 0: derived from GPU memory, utilisation, weights, KV/token
  int block_size = 16;
  int max_model_len = 0;  // 0: the arch's
  double gpu_memory_utilization = 0.9;
  bool enable_prefix_caching = true;
  int long_prefill_token_threshold = 0;  // 0: off (vLLM's default for a single-request prefill)
  // Tensor parallelism (vLLM's --tensor-parallel-size): the replica spans this many GPUs of the
  // profile; weights, KV heads, attention heads and the vocabulary are split over them and
  // every layer adds two all-reduces over the GPUs' interconnect (docs/architecture.md, engine).
  int tensor_parallel_size = 1;
  // vLLM's --kv-cache-dtype: "auto" (the model's dtype), "bfloat16", or fp8 ("fp8",
  // "fp8_e4m3", "fp8_e5m2": one byte per element, half the KV bytes of a 16-bit model).
  std::string kv_cache_dtype = "auto";

  // Returns a copy with every 0 default filled in.
  EngineConfig resolved() const;
  // Blocks that fit in one GPU's memory, as vLLM sizes them on every worker:
  // floor((mem*util - weights/TP - activations) / (block * KV bytes per token per GPU)).
  int derived_num_gpu_blocks() const;
  // KV heads on one GPU: max(1, kv_heads / TP) (vLLM replicates a KV head when TP > kv_heads).
  int kv_heads_per_gpu() const;
  // Bytes of one KV element: 1 for an fp8 kv_cache_dtype, else the model's dtype_bytes.
  int kv_cache_dtype_bytes() const;
  // 2 (K,V) x layers x kv_heads_per_gpu x head_dim x kv_cache_dtype_bytes: what one GPU stores
  // (and reads in attention) per token. Equals arch.kv_bytes_per_token() at TP 1, "auto".
  double kv_bytes_per_token_per_gpu() const;
};

// Checks what vLLM checks at start-up about parallelism and the KV dtype: TP >= 1, attention
// heads divisible by TP, a known kv_cache_dtype, an interconnect in the GPU profile when TP > 1.
// Returns false with one line in `error`.
bool check_config(const EngineConfig& config, std::string& error);

// Builds an EngineConfig from profile names; returns false with a one-line error if unknown.
bool make_config(const ProfileSet& profiles, const std::string& arch, const std::string& gpu,
                 EngineConfig& out, std::string& error);

// Hash of one full block given its parent's hash and the block's token ids (vLLM's chained
// block hash; the first block's parent is kRootBlockHash).
inline constexpr uint64_t kRootBlockHash = 0xcbf29ce484222325ull;
uint64_t hash_block(uint64_t parent, std::span<const uint32_t> tokens);
// Chained hashes of every *full* block of `tokens`.
std::vector<uint64_t> chain_block_hashes(std::span<const uint32_t> tokens, int block_size);

struct EngineRequest {
  RequestId id = 0;
  int prompt_tokens = 0;
  // Chained hashes of the prompt's full blocks (chain_block_hashes). May be empty when prefix
  // caching is not wanted for this request.
  std::vector<uint64_t> block_hashes;
  // The request stops after this many output tokens, with this reason (kStop: it produced EOS
  // naturally; kLength: it hit max_tokens / max_model_len).
  int output_tokens = 1;
  FinishReason finish_reason = FinishReason::kLength;
  // Seeds the request's generated content; output blocks are hashed from it, so two requests
  // with the same prompt and seed produce identical, cacheable output blocks. A block holding
  // output is hashed from (parent block hash, output_seed, block index) since the engine never
  // sees output token ids; requests whose prompts differ only in their last, partial block must
  // therefore use different seeds (mix a hash of the whole prompt into it).
  uint64_t output_seed = 0;
  double arrival_time = 0;  // when it reached the engine (simulated seconds)
};

struct TokenEvent {
  RequestId id = 0;
  int index = 0;                                // 0-based index of this output token
  bool first = false;                           // index == 0
  FinishReason finished = FinishReason::kNone;  // set on the last token
};

struct FinishedRequest {
  RequestId id = 0;
  FinishReason reason = FinishReason::kNone;
  int prompt_tokens = 0;
  int output_tokens = 0;
  int cached_prompt_tokens = 0;  // prefix-cache hit at first scheduling
  double arrival_time = 0;
  double first_scheduled_time = 0;
  double first_token_time = 0;
  double finish_time = 0;
};

struct StepResult {
  double start = 0;
  double end = 0;  // start + step duration; results are visible from here
  int num_scheduled_tokens = 0;
  int num_prefill_tokens = 0;
  int num_decode_seqs = 0;
  int num_running_after = 0;
  std::vector<TokenEvent> tokens;  // one per request that produced a token, in batch order
  std::vector<FinishedRequest> finished;
  std::vector<RequestId> preempted;
  std::vector<RequestId> first_scheduled;  // requests scheduled for the first time this step
  bool idle() const { return num_scheduled_tokens == 0; }
};

// What the step-time model needs to know about a batch.
struct BatchShape {
  int num_tokens = 0;             // tokens computed in the step (prefill chunks + decodes)
  int num_sampled = 0;            // sequences that sample a token (lm_head rows)
  int64_t decode_kv_tokens = 0;   // sum of context lengths of decoding sequences
  double prefill_attn_pairs = 0;  // sum over prefill chunks of n * (c + n)
  int64_t prefill_kv_tokens = 0;  // sum over prefill chunks of the cached context c they read
};

class StepTimeModel {
 public:
  explicit StepTimeModel(const EngineConfig& resolved_config);
  // Duration of one step in seconds, already divided by the speed factor.
  double step_seconds(const BatchShape& b) const;
  // Components, in milliseconds, before the speed factor (for docs and tests).
  double linear_ms(int num_tokens) const;
  double lm_head_ms(int num_sampled) const;
  double decode_attention_ms(int64_t kv_tokens) const;
  double prefill_attention_ms(double attn_pairs, int64_t kv_tokens) const;
  // Tensor parallelism's two all-reduces per layer of num_tokens x hidden activations (0 at
  // TP 1): 2 x layers x (latency + 2(N-1)/N x bytes / bus bandwidth), NCCL's ring cost.
  double allreduce_ms(int num_tokens) const;
  double overhead_ms() const;
  // The sum of the components, in milliseconds, before the speed factor (0 for an empty batch).
  double step_ms(const BatchShape& b) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

struct EngineCounters {
  uint64_t prefix_cache_queries = 0;  // tokens looked up
  uint64_t prefix_cache_hits = 0;     // tokens found
  uint64_t preemptions = 0;
  uint64_t prompt_tokens = 0;  // prompt tokens of requests that finished prefill
  uint64_t generation_tokens = 0;
  uint64_t steps = 0;
};

class Engine {
 public:
  explicit Engine(const EngineConfig& config);
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;

  // A deep copy of the whole state (requests, queues, block pool and prefix cache, counters):
  // stepping the copy never touches this engine. For `eta cluster-sim`'s oracle, which asks
  // "when would this request finish here" by simulating a copy's future. Call between steps.
  Engine clone() const;

  const EngineConfig& config() const;  // resolved
  const StepTimeModel& step_time_model() const;

  // Queues a request (waiting, FCFS). The caller validates lengths against max_model_len;
  // returns false if the id is already known or the request can never fit in the KV cache.
  bool add_request(EngineRequest request);
  // Removes a waiting or running request and frees its blocks. Returns false if unknown.
  bool abort_request(RequestId id);

  bool has_unfinished() const;
  // Schedules and executes one step starting at `now` (simulated seconds). If nothing is
  // schedulable, returns an idle result with end == now.
  StepResult step(double now);
  // The same, reusing `out`'s vectors (no allocation in steady state).
  void step(double now, StepResult& out);

  int num_running() const;
  int num_waiting() const;
  double kv_cache_usage() const;  // fraction of blocks in use, 0..1
  int num_free_blocks() const;
  const EngineCounters& counters() const;
  // The KV block pool (read-only; for tests and diagnostics).
  const BlockPool& block_pool() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eta::engine
