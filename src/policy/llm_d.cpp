// llm-d: a re-implementation of the llm-d / Gateway API Inference Extension endpoint picker's
// default scheduling profile: weighted scorers, then the max-score picker.
//   queue-scorer                 (maxQ - q) / (maxQ - minQ) over the candidates, 1 if all equal;
//                                q = vllm:num_requests_waiting
//   kv-cache-utilization-scorer  1 - vllm:kv_cache_usage_perc
//   prefix-cache-scorer          matched blocks / prompt blocks (up to max_prefix_blocks), from
//                                the router's own approximate prefix index
//   score = w_queue * queue + w_kv * kv + w_prefix * prefix; the highest wins, ties at random.
// Default weights 2 / 2 / 3 are those of GIE's InferencePool chart default-plugins.yaml (the
// profile llm-d's inference-scheduling guide deploys). Like the real EPP it reads scraped
// metrics only, never the router's in-flight ledger, except when a replica's scrape is stale
// or missing: then its queue is the router's own count of requests without a first token and its
// KV usage the router's estimate of the blocks its in-flight work holds.
#include <algorithm>
#include <iterator>

#include <fmt/format.h>

#include "policy/common.hpp"

namespace eta::policy {
namespace {

class LlmD final : public Policy {
 public:
  LlmD(double wq, double wk, double wp, int max_blocks)
      : w_queue_(wq), w_kv_(wk), w_prefix_(wp), max_blocks_(max_blocks) {}

  std::string_view name() const override { return "llm-d"; }
  Reads reads() const override { return {.prefix = true, .speed = false, .progress = true}; }

  void pick_into(const RequestFeatures& request, const ClusterView& view, Rng& rng,
                 Decision& out) override {
    reset(out);
    queue_.clear();
    kv_.clear();
    double min_q = 1e300, max_q = -1e300;
    for (const ReplicaView& r : view.replicas) {
      if (!r.routable) continue;
      double q = 0, usage = 0;
      if (r.scrape.fresh(view.now, view.stale_after_s)) {
        q = r.scrape.waiting;
        usage = r.scrape.kv_usage;
      } else {
        const cluster::LedgerSummary& l = r.ledger_or_empty();
        q = l.prefilling;
        const double blocks =
            r.limits.num_gpu_blocks > 0 ? r.limits.num_gpu_blocks : r.scrape.num_gpu_blocks;
        const double bs = r.limits.block_size > 0   ? r.limits.block_size
                          : r.scrape.block_size > 0 ? r.scrape.block_size
                                                    : 16;
        usage = blocks > 0 ? std::min(1.0, static_cast<double>(l.kv_tokens) / (blocks * bs)) : 0;
      }
      queue_.push_back(q);
      kv_.push_back(usage);
      min_q = std::min(min_q, q);
      max_q = std::max(max_q, q);
      add_candidate(out, r.index, 0);
    }
    if (out.candidates.empty()) {
      out.reason = "no routable replica";
      return;
    }
    const size_t total_blocks =
        std::min(request.block_hashes.size(), static_cast<size_t>(max_blocks_));
    MinPicker best;
    double best_q = 0, best_kv = 0, best_p = 0;
    for (size_t i = 0; i < out.candidates.size(); ++i) {
      Candidate& c = out.candidates[i];
      const double queue_score = max_q == min_q ? 1.0 : (max_q - queue_[i]) / (max_q - min_q);
      const double kv_score = 1.0 - kv_[i];
      const double matched =
          std::min<double>(request.matched_blocks_on(c.replica), static_cast<double>(total_blocks));
      const double prefix_score =
          total_blocks > 0 ? matched / static_cast<double>(total_blocks) : 0;
      c.score = w_queue_ * queue_score + w_kv_ * kv_score + w_prefix_ * prefix_score;
      const int before = best.index();
      best.offer(-c.score, c.replica, rng);
      if (best.index() != before) {
        best_q = queue_score;
        best_kv = kv_score;
        best_p = prefix_score;
      }
    }
    out.replica = best.index();
    if (!out.explain) return;
    fmt::format_to(std::back_inserter(out.reason),
                   "llm-d: score {:.3f} (queue {:.2f}, kv {:.2f}, prefix {:.2f})", -best.best(),
                   best_q, best_kv, best_p);
  }

 private:
  double w_queue_, w_kv_, w_prefix_;
  int max_blocks_;
  std::vector<double> queue_;
  std::vector<double> kv_;
};

}  // namespace

std::unique_ptr<Policy> make_llm_d(ParamReader& p) {
  const double wq = p.number("queue_weight", 2, 0, 1e6);
  const double wk = p.number("kv_weight", 2, 0, 1e6);
  const double wp = p.number("prefix_weight", 3, 0, 1e6);
  const int max_blocks = p.integer("max_prefix_blocks", 256, 1, 1 << 20);
  return std::make_unique<LlmD>(wq, wk, wp, max_blocks);
}

}  // namespace eta::policy
