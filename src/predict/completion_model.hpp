// Predicts when a request would get its first token and when it would finish on one replica,
// from O(1) aggregates: the router's ledger (and a fresh scrape, for work other routers sent),
// the replica's engine limits and its speed model. The `eta` policy evaluates it for every
// replica; the router also evaluates it for the chosen replica at dispatch (any policy) so the
// speed model can compare the TTFT it predicted at factor 1 with the TTFT it then observes.
//
// The model follows vLLM V1's scheduler (../shared/vllm-interface.md §6):
//  0. A request arriving while a decode step runs starts after it: half a step on average.
//  1. Slots and KV. If the replica already holds max_num_seqs requests, or the request's uncached
//     blocks do not fit in the free KV (num_gpu_blocks minus the blocks in-flight work holds or
//     will hold), it waits until enough in-flight requests finish: read off the remaining-output
//     buckets (requests finish in order of remaining tokens), as decode steps of the current
//     batch.
//  2. Prefill. Every step decodes the D running sequences first; the rest of the token budget
//     (max_num_batched_tokens - D) goes to prefill, FCFS. The request's first token comes after
//     the prefill queued ahead of it plus its own uncached prompt: ceil(tokens / (budget - D))
//     steps, the full ones timed as full chunked-prefill steps, the last one partial, plus
//     prefill attention (n x (cached + n) pairs per chunk).
//  3. Decode. Its remaining output-1 steps run in a batch of itself plus every in-flight
//     request that has not finished yet: request i overlaps min(max(r_i - s0, 0), output-1)
//     steps, r_i its predicted remaining output and s0 the steps that passed before this
//     request decodes. The batch therefore shrinks as in-flight requests finish. Each step is
//     timed at the average batch and the average KV the batch reads.
// Phase 1 runs at the prefill factor, phases 1's waits and 3 at the decode factor. Arrivals after
// this request are not modelled (they are unknown, and the same for every replica).
#pragma once

#include "cluster/view.hpp"
#include "predict/speed_model.hpp"

#if defined(__GNUC__)
#define ETA_ALWAYS_INLINE __attribute__((always_inline))
#else
#define ETA_ALWAYS_INLINE
#endif

namespace eta::predict {

struct CompletionQuery {
  int prompt_tokens = 1;
  int cached_tokens = 0;  // predicted prefix-cache hit on this replica
  int output_tokens = 1;  // predicted output length
};

struct CompletionModelOptions {
  bool use_scrape = true;    // add work a fresh scrape shows beyond the ledger
  bool kv_pressure = true;   // wait for free KV blocks
  bool batch_shrink = true;  // false: the batch keeps every in-flight request (ablation)
};

struct CompletionEstimate {
  double ttft_s = 0;
  double e2e_s = 0;
  double base_ttft_s = 0;    // ttft at learned factors 1 (what the speed model calibrates)
  double base_decode_s = 0;  // decode phase at factor 1
  double wait_s = 0;         // part of ttft spent waiting for a slot, free KV or the step running
  double prefill_tokens_ahead = 0;
  double decode_batch = 0;  // average batch while it decodes
  double itl_s = 0;         // predicted time per output token
};

// The request-only part of a query, computed once per request and reused for every replica.
struct CompletionRequest {
  CompletionRequest(int prompt_tokens, int output_tokens);
  double prompt;
  double output;
  double decode_steps;      // output - 1
  double inv_decode_steps;  // 1 / decode_steps (0 if none)
  double own_kv;            // KV it reads over its decode: sum over steps of its context
};

CompletionEstimate estimate_completion(const cluster::ReplicaView& replica,
                                       const CompletionQuery& query,
                                       const cluster::ClusterView& view, const SpeedModel& speed,
                                       const CompletionModelOptions& options = {});
// The same for the routing loop: `request` prepared once, `cached_tokens` for this replica.
// Inline (completion_model_inline.hpp): it runs once per replica per request.
ETA_ALWAYS_INLINE inline CompletionEstimate estimate_completion(
    const cluster::ReplicaView& replica, const CompletionRequest& request, int cached_tokens,
    const cluster::ClusterView& view, const SpeedModel& speed,
    const CompletionModelOptions& options);

}  // namespace eta::predict

#include "predict/completion_model_inline.hpp"  // IWYU pragma: export
