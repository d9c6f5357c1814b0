// The inline body of estimate_completion for the routing loop (included by
// completion_model.hpp; inlined so the eta policy keeps the estimate in registers).
#pragma once

#include <algorithm>
#include <cmath>

namespace eta::predict {
namespace detail {

inline constexpr double kMinPrefillChunk = 16;  // tokens per step prefill gets under heavy decode
inline constexpr double kNeverFits = 1e7;       // steps: the request cannot fit on this replica

// Steps until `k` of the bucketed in-flight requests have finished (they finish in order of
// remaining output; a bucket's requests at its mean). Cold path.
double steps_until_finished(const cluster::RemainingOutputSummary& rem, double k);
// Steps until the in-flight requests' KV stays within `limit` tokens for the rest of their
// lives: they hold `level` tokens now (the same each), each grows by one per step and leaves
// when its remaining output is done (bucketed; `extra` more requests with `extra_remaining`
// tokens to go, seen only in a scrape, join the buckets). Cold path.
double steps_until_kv_fits(const cluster::RemainingOutputSummary& rem, double extra,
                           double extra_remaining, double level, double limit);

// Sum over the bucketed requests of the decode steps they share with a request that starts
// decoding after `s0` steps and decodes for `steps`: sum of clamp(r_i - s0, 0, steps), each
// bucket's requests at their mean remaining. Two doubles per instruction where the compiler
// has vector extensions (SSE2 is x86-64's baseline).
inline double bucket_overlap(const cluster::RemainingOutputSummary& rem, double s0, double steps) {
  static_assert(cluster::kRemainingBuckets % 4 == 0);
  const double* c = rem.count.data();
  const double* r = rem.remaining_tokens.data();
#if defined(__GNUC__)
  typedef double V2 __attribute__((vector_size(16)));
  const V2 vs0 = {s0, s0};
  const V2 vsteps = {steps, steps};
  const V2 zero = {0, 0};
  V2 acc0 = zero, acc1 = zero;
  for (int b = 0; b < cluster::kRemainingBuckets; b += 4) {
    V2 c0, c1, r0, r1;
    __builtin_memcpy(&c0, c + b, sizeof(V2));
    __builtin_memcpy(&c1, c + b + 2, sizeof(V2));
    __builtin_memcpy(&r0, r + b, sizeof(V2));
    __builtin_memcpy(&r1, r + b + 2, sizeof(V2));
    V2 v0 = r0 - c0 * vs0;
    V2 v1 = r1 - c1 * vs0;
    const V2 h0 = c0 * vsteps;
    const V2 h1 = c1 * vsteps;
    v0 = v0 < zero ? zero : v0;
    v1 = v1 < zero ? zero : v1;
    v0 = v0 < h0 ? v0 : h0;
    v1 = v1 < h1 ? v1 : h1;
    acc0 += v0;
    acc1 += v1;
  }
  const V2 acc = acc0 + acc1;
  return acc[0] + acc[1];
#else
  double acc = 0;
  for (int b = 0; b < cluster::kRemainingBuckets; ++b)
    acc += std::clamp(r[b] - c[b] * s0, 0.0, c[b] * steps);
  return acc;
#endif
}

// Integral over [0, x] of min(s, cap) ds.
inline double ramp_integral(double x, double cap) {
  return x <= cap ? 0.5 * x * x : cap * (x - 0.5 * cap);
}

}  // namespace detail

ETA_ALWAYS_INLINE inline CompletionEstimate estimate_completion(
    const cluster::ReplicaView& replica, const CompletionRequest& req, int cached_tokens,
    const cluster::ClusterView& view, const SpeedModel& speed,
    const CompletionModelOptions& options) {
  using detail::kMinPrefillChunk;
  using detail::kNeverFits;
  const cluster::LedgerSummary& L = replica.ledger_or_empty();
  const StepTables& T = speed.tables();
  const engine::EngineConfig& cfg = T.config();
  const cluster::ScrapeSnapshot& scrape = replica.scrape;
  const cluster::EngineLimits& lim = replica.limits;

  const double budget =
      lim.max_num_batched_tokens > 0 ? lim.max_num_batched_tokens : cfg.max_num_batched_tokens;
  const double max_seqs = lim.max_num_seqs > 0 ? lim.max_num_seqs : cfg.max_num_seqs;
  const double gpu_blocks = lim.num_gpu_blocks > 0      ? lim.num_gpu_blocks
                            : scrape.num_gpu_blocks > 0 ? scrape.num_gpu_blocks
                                                        : cfg.num_gpu_blocks;
  const double block_size = lim.block_size > 0      ? lim.block_size
                            : scrape.block_size > 0 ? scrape.block_size
                                                    : cfg.block_size;

  // What is on the replica: the ledger, plus what a fresh scrape shows beyond it.
  double prefilling = L.prefilling;
  double prefill_ahead = static_cast<double>(L.pending_prefill_tokens);
  double prefill_pairs = L.pending_prefill_pairs;
  double prefill_prompts = static_cast<double>(L.prefill_prompt_tokens);
  double decoding = L.decoding;
  double context = static_cast<double>(L.context_tokens);
  double kv_tokens = static_cast<double>(L.kv_tokens);
  double in_flight = L.in_flight;
  double extra_wait = 0, extra_run = 0;
  const cluster::WorkAverages& avg = view.averages;
  const bool fresh = options.use_scrape && scrape.fresh(view.now, view.stale_after_s);
  if (fresh) {
    // Branch-free: with no extra work every term below adds zero.
    const double extra = std::max(0, scrape.running + scrape.waiting - L.in_flight);
    extra_wait = std::min(extra, static_cast<double>(std::max(0, scrape.waiting - L.prefilling)));
    extra_run = extra - extra_wait;
    const double u = avg.uncached_prompt_tokens;
    prefilling += extra_wait;
    prefill_ahead += extra_wait * u;
    prefill_pairs += extra_wait * u * (avg.prompt_tokens - 0.5 * u);
    prefill_prompts += extra_wait * avg.prompt_tokens;
    decoding += extra_run;
    context += extra_run * (avg.prompt_tokens + 0.5 * avg.output_tokens);
    kv_tokens += extra_wait * u + extra_run * (u + 0.5 * avg.output_tokens);
    in_flight += extra;
  }
  const double others = prefilling + decoding;

  const double uncached = std::clamp(req.prompt - cached_tokens, 1.0, req.prompt);
  const double hit = req.prompt - uncached;

  // Cost of one decode step of the current batch (waiting phases).
  const double kv_ms = T.kv_ms_per_token();
  const double wait_step_ms =
      decoding > 0 ? T.decode_step_ms(decoding) + kv_ms * context : T.decode_step_ms(1);

  // 0. A request that arrives while a decode step runs waits for it to end: half a step on
  // average. (With prefill queued, the step in progress is already counted in the queue.)
  double wait_steps = decoding > 0 && prefill_ahead <= 0 ? 0.5 : 0;
  double thrash_ms = 0;  // prefill thrown away while the queue waits for KV (prefill factor)

  // 1. Slots and KV (compared in tokens: each request holds a partly filled last block).
  if (others + 1 > max_seqs || (options.kv_pressure && gpu_blocks > 0)) {
    if (others + 1 > max_seqs)
      wait_steps =
          std::max(wait_steps, detail::steps_until_finished(L.remaining, others + 1 - max_seqs));
    if (options.kv_pressure && gpu_blocks > 0) {
      // The request holds its uncached prompt and then its output for its whole life, beside
      // the others, each growing by a token per step until it finishes (vLLM preempts the
      // newest request when a running one cannot grow). It waits until that fits.
      const double capacity = gpu_blocks * block_size;
      const double limit = capacity - 0.5 * block_size * (in_flight + 1) - uncached - req.output;
      double level = kv_tokens;
      if (fresh) level = std::max(level, scrape.kv_usage * capacity);
      const double extra_remaining = (extra_run * 0.5 + extra_wait) * avg.output_tokens;
      const double growth =
          static_cast<double>(L.predicted_remaining_decode_tokens) + extra_remaining;
      if (level + growth > limit) {
        const double kv_steps =
            limit < 0 ? kNeverFits
                      : detail::steps_until_kv_fits(L.remaining, extra_run + extra_wait,
                                                    extra_remaining, level, limit);
        wait_steps = std::max(wait_steps, kv_steps);
        // Meanwhile, if the head of the queue needs more than one chunk and its first chunk
        // fits in the KV free now, it is admitted and then preempted (recomputed) at the next
        // step, when it cannot grow: every other step carries a chunk of prefill thrown away.
        const double head = prefilling > 0 ? prefill_ahead / prefilling : uncached;
        const double piece = std::max(budget - decoding, kMinPrefillChunk);
        if (head > piece && capacity - (level - prefill_ahead) >= piece) {
          thrash_ms = 0.5 * kv_steps *
                      (T.linear_ms(static_cast<int>(decoding + piece)) -
                       T.linear_ms(static_cast<int>(decoding)) +
                       T.prefill_ms_per_pair() * 0.5 * piece * piece);
        }
      }
    }
  }
  const double wait_ms = wait_steps * wait_step_ms;

  // 2. Prefill: the queue ahead and its own uncached prompt, chunked under the token budget.
  const double chunk = std::max(budget - decoding, kMinPrefillChunk);
  const double prefill_tokens = prefill_ahead + uncached;
  const double steps1 = std::ceil(prefill_tokens / chunk);
  const double full_steps = steps1 - 1;
  const double last_chunk = prefill_tokens - full_steps * chunk;
  const double decode_part = T.lm_head_ms(decoding + 1) + kv_ms * context + T.overhead_ms();
  const double full_linear = full_steps <= 0 ? 0
                             : decoding + chunk == cfg.max_num_batched_tokens
                                 ? T.full_step_linear_ms()
                                 : T.linear_ms(static_cast<int>(decoding + chunk));
  const double attn_pairs = uncached * (hit + 0.5 * uncached) + prefill_pairs;
  const double prefill_ms = full_steps * (full_linear + decode_part) +
                            T.linear_ms(static_cast<int>(decoding + last_chunk)) + decode_part +
                            T.prefill_ms_per_pair() * attn_pairs +
                            T.prefill_ms_per_cached_token() * hit;

  // 3. Decode: output-1 steps beside the in-flight requests that have not finished yet, and
  // beside the requests that arrive meanwhile.
  const double steps2 = req.decode_steps;
  double decode_ms = 0;
  double stall_ms = 0;  // prefill of requests arriving while it decodes (at the prefill factor)
  double batch = 1;
  double step_ms = T.decode_step_ms(1) + kv_ms * req.prompt;
  if (steps2 > 0) {
    // Steps that pass before this request decodes: its wait, then the prefill steps.
    const double s0 = wait_steps + steps1;
    // Arrivals per step in steady state (Little's law): the batch over a request's mean life.
    const double mean_output = std::max(avg.output_tokens, 1.0);
    const double rate = options.arrivals ? others / mean_output : 0;
    double overlap = 0;  // sum over other requests of the steps they share with this one
    if (options.batch_shrink) {
      overlap = detail::bucket_overlap(L.remaining, s0, steps2);
      if (extra_run + extra_wait > 0)
        overlap += extra_run * std::clamp(0.5 * avg.output_tokens - s0, 0.0, steps2) +
                   extra_wait * std::clamp(avg.output_tokens - s0, 0.0, steps2);
      // Requests arriving from now on: one that arrived s steps ago is still there with
      // probability ~ [s < mean_output], so at step s about rate x min(s, mean_output) are.
      if (rate > 0)
        overlap += rate * (detail::ramp_integral(s0 + steps2, mean_output) -
                           detail::ramp_integral(s0, mean_output));
    } else {
      overlap = others * steps2;  // the batch keeps its size: arrivals replace departures
    }
    // Others read their context (grown by s0 by then); this request reads its own.
    const double others_context =
        others > 0 ? (context + prefill_prompts) / others + s0 : avg.prompt_tokens;
    const double kv_total = overlap * others_context + req.own_kv;
    batch = 1 + overlap * req.inv_decode_steps;
    step_ms = T.decode_step_ms(batch) + kv_ms * kv_total * req.inv_decode_steps;
    decode_ms = steps2 * step_ms;
    if (rate > 0) {
      // Each arrival's uncached prompt is computed in steps this request shares: the linear
      // ops it adds to them, and its attention.
      const double u = std::max(avg.uncached_prompt_tokens, 1.0);
      const double rows = std::min(batch, budget - 1);
      const double piece = std::min(u, std::max(budget - rows, kMinPrefillChunk));
      const double added =
          (T.linear_ms(static_cast<int>(rows + piece)) - T.linear_ms(static_cast<int>(rows))) *
          (u / piece);
      const double pairs = u * (std::max(avg.prompt_tokens - u, 0.0) + 0.5 * u);
      stall_ms = rate * steps2 * (added + T.prefill_ms_per_pair() * pairs);
    }
  }

  const double inv_fp = speed.inv_prefill_factor() * 1e-3;  // ms -> s at the learned speed
  const double inv_fd = speed.inv_decode_factor() * 1e-3;
  CompletionEstimate e;
  e.wait_s = wait_ms * inv_fd + thrash_ms * inv_fp;
  e.ttft_s = e.wait_s + prefill_ms * inv_fp;
  e.e2e_s = e.ttft_s + decode_ms * inv_fd + stall_ms * inv_fp;
  e.base_ttft_s = (wait_ms + thrash_ms + prefill_ms) * 1e-3;
  e.base_decode_s = (decode_ms + stall_ms) * 1e-3;
  e.prefill_tokens_ahead = prefill_ahead;
  e.decode_batch = batch;
  e.itl_s = steps2 > 0 ? (decode_ms * inv_fd + stall_ms * inv_fp) / steps2 : step_ms * inv_fd;
  return e;
}

}  // namespace eta::predict
