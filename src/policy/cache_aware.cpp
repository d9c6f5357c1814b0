// cache-aware: SGLang model gateway's cache_aware policy, on the router's own in-flight counts
// (as SGLang counts its own in-flight requests per worker) and its approximate prefix index.
//   1. Load is imbalanced if (max - min) > balance_abs_threshold AND max > balance_rel_threshold
//      x min, over routable replicas' in-flight requests: pick the least loaded.
//   2. Otherwise, if the best prefix match ratio (matched blocks / prompt blocks) exceeds
//      cache_threshold: pick the best-matching replica (ties: less loaded, then random).
//   3. Otherwise the least loaded (SGLang since PR #14650; earlier: the smallest tree).
// SGLang matches characters of the raw text in a radix tree; here the match is in 16-token
// blocks, so prompts shorter than one block never match.
#include <algorithm>
#include <iterator>

#include <fmt/format.h>

#include "policy/common.hpp"

namespace eta::policy {
namespace {

class CacheAware final : public Policy {
 public:
  CacheAware(double abs_threshold, double rel_threshold, double cache_threshold)
      : abs_(abs_threshold), rel_(rel_threshold), cache_(cache_threshold) {}

  std::string_view name() const override { return "cache-aware"; }
  Reads reads() const override { return {.prefix = true, .speed = false, .progress = false}; }

  void pick_into(const RequestFeatures& request, const ClusterView& view, Rng& rng,
                 Decision& out) override {
    reset(out);
    double min_load = 1e300, max_load = -1e300;
    uint32_t best_match = 0;
    MinPicker least;
    for (const ReplicaView& r : view.replicas) {
      if (!r.routable) continue;
      const double load = r.in_flight();
      add_candidate(out, r.index, load);
      min_load = std::min(min_load, load);
      max_load = std::max(max_load, load);
      best_match = std::max(best_match, request.matched_blocks_on(r.index));
      least.offer(load, r.index, rng);
    }
    if (out.candidates.empty()) {
      out.reason = "no routable replica";
      return;
    }
    if (max_load - min_load > abs_ && max_load > rel_ * min_load) {
      out.replica = least.index();
      if (!out.explain) return;
      fmt::format_to(std::back_inserter(out.reason),
                     "cache-aware: imbalanced ({:.0f} vs {:.0f}), least loaded", max_load,
                     min_load);
      return;
    }
    const size_t blocks = request.block_hashes.size();
    const double ratio =
        blocks > 0 ? static_cast<double>(best_match) / static_cast<double>(blocks) : 0;
    if (ratio > cache_) {
      MinPicker matched;
      for (const Candidate& c : out.candidates)
        if (request.matched_blocks_on(c.replica) == best_match)
          matched.offer(c.score, c.replica, rng);
      out.replica = matched.index();
      if (!out.explain) return;
      fmt::format_to(std::back_inserter(out.reason), "cache-aware: prefix match {:.2f}", ratio);
      return;
    }
    out.replica = least.index();
    if (!out.explain) return;
    fmt::format_to(std::back_inserter(out.reason),
                   "cache-aware: match {:.2f} below threshold, least loaded", ratio);
  }

 private:
  double abs_, rel_, cache_;
};

}  // namespace

std::unique_ptr<Policy> make_cache_aware(ParamReader& p) {
  const double abs_threshold = p.number("balance_abs_threshold", 32, 0, 1e9);
  const double rel_threshold = p.number("balance_rel_threshold", 1.5, 1.0, 1e9);
  const double cache_threshold = p.number("cache_threshold", 0.5, 0, 1);
  return std::make_unique<CacheAware>(abs_threshold, rel_threshold, cache_threshold);
}

}  // namespace eta::policy
