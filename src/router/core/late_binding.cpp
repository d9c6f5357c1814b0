#include "router/core/late_binding.hpp"

#include <algorithm>
#include <cmath>

#include "predict/completion_model.hpp"

namespace eta::router {

bool replica_busy(const LateBindingConfig& config, const cluster::ReplicaView& v,
                  const cluster::ClusterView& view, double predicted_ttft_s) {
  if (v.scrape.fresh(view.now, view.stale_after_s) && v.scrape.waiting > 0) return true;
  const cluster::LedgerSummary& l = v.ledger_or_empty();
  // Every sequence slot is taken (the router's requests, or all of them by the scrape).
  if (v.limits.max_num_seqs > 0 &&
      (l.in_flight >= v.limits.max_num_seqs ||
       (v.scrape.fresh(view.now, view.stale_after_s) &&
        v.scrape.running + v.scrape.waiting >= v.limits.max_num_seqs))) {
    return true;
  }
  // The router's own view: more uncached prompt waiting to prefill than one engine step takes.
  const int budget = v.limits.max_num_batched_tokens > 0 ? v.limits.max_num_batched_tokens : 2048;
  if (l.pending_prefill_tokens > budget) return true;
  return config.ttft_threshold_s > 0 && std::isfinite(predicted_ttft_s) &&
         predicted_ttft_s > config.ttft_threshold_s;
}

bool late_binding_rule_known(std::string_view rule) {
  return rule == "busy" || rule == "wait";
}

ModelTtft model_ttft(const cluster::ReplicaView& v, const cluster::RequestFeatures& f,
                     const cluster::ClusterView& view, const predict::SpeedModel& speed) {
  predict::CompletionQuery q;
  q.prompt_tokens = std::max(1, f.prompt_tokens);
  q.cached_tokens = f.cached_tokens_on(v.index);
  q.output_tokens = f.output_tokens();
  ModelTtft out;
  out.ttft_s = predict::estimate_completion(v, q, view, speed).ttft_s;
  // The same replica with nothing queued ahead: the prefilling requests (the ledger's, and the
  // waiting ones a fresh scrape shows) gone, the decoding batch kept. The difference is the
  // part of the TTFT that waiting at the router could avoid; the batch's slowdown of its own
  // prefill stays whenever it goes there.
  const cluster::LedgerSummary& l = v.ledger_or_empty();
  cluster::LedgerSummary ahead_gone = l;
  ahead_gone.prefilling = 0;
  ahead_gone.pending_prefill_tokens = 0;
  ahead_gone.prefill_prompt_tokens = 0;
  ahead_gone.pending_prefill_pairs = 0;
  ahead_gone.in_flight = l.decoding;
  ahead_gone.kv_tokens = std::max<int64_t>(0, l.kv_tokens - l.pending_prefill_tokens);
  cluster::ReplicaView ref = v;
  ref.ledger = &ahead_gone;
  ref.scrape.waiting = 0;
  ref.scrape.running = std::max(0, v.scrape.running - l.prefilling);
  out.wait_s = std::max(0.0, out.ttft_s - predict::estimate_completion(ref, q, view, speed).ttft_s);
  return out;
}

bool queue_behind(const AdmissionConfig& admission, const LateBindingConfig& late,
                  size_t queue_length) {
  return queue_first(admission, queue_length) || (late.enabled && queue_length > 0);
}

int queue_capacity(const AdmissionConfig& admission, const LateBindingConfig& late) {
  return admission.queue_size + (late.enabled ? late.max_held : 0);
}

double queue_deadline(const AdmissionConfig& admission, const LateBindingConfig& late, bool held,
                      double now, double recheck_s) {
  if (!held) return now + admission.queue_timeout_s;
  return now + late.max_hold_s +
         std::max(admission.queue_size > 0 ? admission.queue_timeout_s : 0.0, 2 * recheck_s);
}

}  // namespace eta::router
