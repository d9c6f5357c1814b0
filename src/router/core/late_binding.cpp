#include "router/core/late_binding.hpp"

#include <algorithm>
#include <cmath>

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
