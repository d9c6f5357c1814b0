#include "predict/completion_model.hpp"

#include <array>

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

double steps_until_kv_fits(const cluster::RemainingOutputSummary& rem, double extra,
                           double extra_remaining, double level, double limit) {
  constexpr int kB = cluster::kRemainingBuckets;
  std::array<double, kB> count = rem.count;
  std::array<double, kB> tokens = rem.remaining_tokens;
  if (extra > 0) {
    const int b =
        cluster::RemainingOutputSummary::bucket_of(static_cast<int64_t>(extra_remaining / extra));
    count[b] += extra;
    tokens[b] += extra_remaining;
  }
  double n = 0;
  for (int b = 0; b < kB; ++b) n += count[b];
  if (n <= 0) return level <= limit ? 0 : kNeverFits;
  const double each = level / n;
  // peak[b]: the KV just before bucket b's requests finish (at their mean remaining r_b): the
  // requests of buckets >= b, each grown by r_b. The KV from step w on peaks at the largest
  // peak of the buckets still running at w.
  std::array<double, kB + 1> suffix_peak{};
  double alive = 0;
  for (int b = kB - 1; b >= 0; --b) {
    double peak = 0;
    if (count[b] > 0) {
      alive += count[b];
      peak = alive * (each + tokens[b] / count[b]);
    }
    suffix_peak[b] = std::max(suffix_peak[b + 1], peak);
  }
  if (std::max(level, suffix_peak[0]) <= limit) return 0;
  for (int b = 0; b < kB; ++b) {
    if (count[b] <= 0) continue;
    if (suffix_peak[b + 1] <= limit) return tokens[b] / count[b];
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
