// Predicts when a request would get its first token and when it would finish on one replica,
// from O(1) aggregates: the router's ledger (and a fresh scrape, for work other routers sent),
// the replica's engine limits and its speed model. The `eta` policy evaluates it for every
// replica; the router also evaluates it for the chosen replica at dispatch (any policy) so the
// speed model can compare the TTFT it predicted at factor 1 with the TTFT it then observes.
//
// The model follows vLLM V1's scheduler (../shared/vllm-interface.md §6):
//  0. A request arriving while a decode step runs starts after it: half a step on average.
//  1. Slots and KV. If the replica already holds max_num_seqs requests it waits until enough
//     in-flight requests finish (read off the remaining-output buckets: requests finish in
//     order of remaining tokens). KV: the request holds its uncached prompt and then its output
//     for its whole life, beside the in-flight requests, each growing by a token per step until
//     it finishes (vLLM preempts the newest request, by recompute, when a running one cannot
//     grow); it waits until that fits. While it waits, a head-of-queue prompt longer than one
//     chunk whose first chunk fits is admitted and preempted at every other step: that thrown
//     away prefill is added to the wait.
//  2. Prefill. Every step decodes the D running sequences first; the rest of the token budget
//     (max_num_batched_tokens - D) goes to prefill, FCFS. The request's first token comes after
//     the prefill queued ahead of it plus its own uncached prompt: ceil(tokens / (budget - D))
//     steps, the full ones timed as full chunked-prefill steps, the last one partial, plus
//     prefill attention (n x (cached + n) pairs per chunk).
//  3. Decode. Its output-1 steps run in a batch of itself, the in-flight requests that have not
//     finished yet (request i overlaps clamp(r_i - s0, 0, output-1) steps, r_i its predicted
//     remaining output, s0 the steps before this request decodes), and the requests that arrive
//     meanwhile: in steady state (Little's law) the replica admits its batch / mean output
//     requests per step, and each stays about a mean output. The batch therefore keeps its size
//     where the replica is in steady state, and refills where requests are about to finish.
//     Each step is timed at the average batch and the average KV the batch reads; each arrival
//     adds its prefill (the linear ops and attention of the average uncached prompt) to the
//     steps this request shares.
// The prefill, the thrown-away prefill and the arrivals' prefill run at the prefill factor; the
// waits and the decode steps at the decode factor.
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
  // Requests that arrive while this one decodes: at the replica's steady-state rate (Little's
  // law: its batch / the mean output), each joins the batch and stalls it with its prefill.
  bool arrivals = true;
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
