#include "predict/completion_model.hpp"

namespace eta::predict {
namespace detail {

double steps_until_finished(const cluster::RemainingOutputSummary& rem, double k) {
  double done = 0;
  for (int b = 0; b < cluster::kRemainingBuckets; ++b) {
    const double c = rem.count[b];
    if (c <= 0) continue;
    done += c;
    if (done >= k) return rem.remaining_tokens[b] / c;
  }
  return kNeverFits;
}

double steps_until_freed(const cluster::RemainingOutputSummary& rem, double deficit,
                         double avg_kv_tokens, double block_size) {
  double freed = 0;
  for (int b = 0; b < cluster::kRemainingBuckets; ++b) {
    const double c = rem.count[b];
    if (c <= 0) continue;
    freed += (c * avg_kv_tokens + rem.remaining_tokens[b]) / block_size;
    if (freed >= deficit) return rem.remaining_tokens[b] / c;
  }
  return kNeverFits;
}

}  // namespace detail

CompletionRequest::CompletionRequest(int prompt_tokens, int output_tokens)
    : prompt(std::max(prompt_tokens, 1)), output(std::max(output_tokens, 1)) {
  decode_steps = output - 1;
  inv_decode_steps = decode_steps > 0 ? 1.0 / decode_steps : 0;
  own_kv = decode_steps * (prompt + 0.5 * decode_steps);
}

CompletionEstimate estimate_completion(const cluster::ReplicaView& replica,
                                       const CompletionQuery& query,
                                       const cluster::ClusterView& view, const SpeedModel& speed,
                                       const CompletionModelOptions& options) {
  return estimate_completion(replica, CompletionRequest(query.prompt_tokens, query.output_tokens),
                             query.cached_tokens, view, speed, options);
}

}  // namespace eta::predict
