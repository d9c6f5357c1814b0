// llm-d-latency: a re-implementation of llm-d's predicted-latency routing (the EPP's
// predicted-latency producer + latency-scorer + weighted-random picker, llm-d-router /
// gateway-api-inference-extension, 2026) from its published behaviour:
//   1. Predict, for every routable endpoint, this request's TTFT and TPOT there with the pool's
//      online Bayesian-ridge models (predict/latency_model.hpp; learned by cluster::ClusterState
//      from the completions the router relays). Until both models are fitted: the composite
//      fallback, kv_weight x (1 - KV) + queue_weight x queue score + prefix_weight x prefix score
//      (llm-d's composite scorer; the highest wins).
//   2. Headroom against the request's SLOs: ttft_slo_s - TTFT and tpot_slo_s x slo_buffer - TPOT
//      (llm-d takes them from x-llm-d-slo-ttft-ms / -tpot-ms; here they are policy parameters,
//      by default 0: a request without SLO headers, for which llm-d prefers the endpoint with the
//      lowest predicted latency; every endpoint is then in the negative tier).
//   3. Global affinity gate: if some endpoints hold >= affinity_gate_tau_global of the prompt's
//      prefix, keep only those (skipped with probability epsilon_explore_sticky, and when their
//      best predicted TTFT is more than affinity_max_ttft_penalty_s above the best overall).
//   4. Tiers: positive (both headrooms >= 0) and negative. When both exist the negative tier is
//      explored with probability epsilon_explore_neg (1 %), else the positive one is used.
//   5. Within the tier, the same affinity gate at affinity_gate_tau (0.80), then a weighted random
//      draw. Positive tier, strategy `least` (default): headrooms min-max normalised within the
//      tier, blended ttft_weight 0.8 / tpot_weight 0.2, weight (1 - blend) x 99 + 1 (best fit:
//      the endpoint nearest its limits is likeliest); `most` prefers the largest headroom.
//      Negative tier: endpoints with no request of this router running are strictly preferred;
//      then by category (both, TTFT only, TPOT only negative), each deficit min-max normalised
//      and blended 0.8 / 0.2, weight (1 - blend) x 80 + 2; an endpoint in no category gets 1.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <vector>

#include <fmt/format.h>

#include "policy/common.hpp"
#include "predict/latency_model.hpp"

namespace eta::policy {
namespace {

struct Params {
  double ttft_slo = 0, tpot_slo = 0, slo_buffer = 1.0;  // 0: the request carries no SLO
  double ttft_weight = 0.8, tpot_weight = 0.2;
  double neg_ttft_weight = 0.8, neg_tpot_weight = 0.2;
  bool most = false;  // headroom strategy: least (false) or most
  double eps_neg = 0.01, eps_sticky = 0.01;
  double tau_global = 0.99, tau = 0.80, max_ttft_penalty = 5.0;
  double kv_weight = 1, queue_weight = 1, prefix_weight = 1;  // composite fallback
};

constexpr int kWeightMax = 100;  // positive tier weights 1 .. kWeightMax
constexpr int kMinWeight = 1;
constexpr int kNegRange = 80;  // negative tier weights kMinWeight + 1 .. kMinWeight + 1 + 80
constexpr double kEps = 1e-9;

class LlmDLatency final : public Policy {
 public:
  explicit LlmDLatency(Params p) : p_(p) {}

  std::string_view name() const override { return "llm-d-latency"; }
  Reads reads() const override {
    return {.prefix = true, .speed = false, .progress = true, .latency = true};
  }

  void pick_into(const RequestFeatures& request, const ClusterView& view, Rng& rng,
                 Decision& out) override {
    reset(out);
    ends_.clear();
    const size_t blocks = request.block_hashes.size();
    for (const ReplicaView& r : view.replicas) {
      if (!r.routable) continue;
      End e;
      e.view = &r;
      e.prefix = blocks > 0 ? static_cast<double>(request.matched_blocks_on(r.index)) /
                                  static_cast<double>(blocks)
                            : 0.0;
      ends_.push_back(e);
      add_candidate(out, r.index, 0);
    }
    if (ends_.empty()) {
      out.reason = "no routable replica";
      return;
    }
    const predict::LatencyModel* model = view.latency;
    if (!model || !model->ready()) {
      composite(request, view, rng, out);
      return;
    }
    for (size_t i = 0; i < ends_.size(); ++i) {
      End& e = ends_[i];
      const predict::LatencyFeatures f =
          predict::latency_features(*e.view, view, request.prompt_tokens, e.prefix);
      e.ttft = model->predict_ttft_s(f);
      e.tpot = model->predict_tpot_s(f);
      e.ttft_headroom = p_.ttft_slo - e.ttft;
      e.tpot_headroom = p_.tpot_slo * p_.slo_buffer - e.tpot;
      Candidate& c = out.candidates[i];
      c.ttft_s = e.ttft;
      c.score = p_.ttft_weight * e.ttft_headroom + p_.tpot_weight * e.tpot_headroom;
    }
    // 3. global affinity gate
    all_.clear();
    for (size_t i = 0; i < ends_.size(); ++i) all_.push_back(i);
    affinity_gate(all_, p_.tau_global, rng);
    // 4. tiers
    pos_.clear();
    neg_.clear();
    for (size_t i : all_)
      (ends_[i].ttft_headroom >= 0 && ends_[i].tpot_headroom >= 0 ? pos_ : neg_).push_back(i);
    bool negative = pos_.empty();
    if (!pos_.empty() && !neg_.empty() && rng.uniform() < p_.eps_neg) negative = true;
    const size_t chosen = negative ? pick_negative(view, rng) : pick_positive(rng);
    out.replica = ends_[chosen].view->index;
    if (out.explain)
      fmt::format_to(
          std::back_inserter(out.reason),
          "llm-d-latency: {} tier, ttft {:.3f}s tpot {:.4f}s (headroom {:.3f}s / {:.4f}s)",
          negative ? "negative" : "positive", ends_[chosen].ttft, ends_[chosen].tpot,
          ends_[chosen].ttft_headroom, ends_[chosen].tpot_headroom);
  }

 private:
  struct End {
    const ReplicaView* view = nullptr;
    double prefix = 0;
    double ttft = 0, tpot = 0, ttft_headroom = 0, tpot_headroom = 0;
  };

  // Keeps the endpoints of `set` with prefix score >= tau, if any, unless exploring or their best
  // predicted TTFT is more than the penalty above the set's best.
  void affinity_gate(std::vector<size_t>& set, double tau, Rng& rng) {
    if (set.size() <= 1) return;
    gate_.clear();
    double best_all = 1e300, best_sticky = 1e300;
    for (size_t i : set) {
      best_all = std::min(best_all, ends_[i].ttft);
      if (ends_[i].prefix >= tau) {
        gate_.push_back(i);
        best_sticky = std::min(best_sticky, ends_[i].ttft);
      }
    }
    if (gate_.empty() || gate_.size() == set.size()) return;
    if (rng.uniform() < p_.eps_sticky) return;
    if (best_sticky - best_all > p_.max_ttft_penalty) return;
    set.swap(gate_);
  }

  size_t draw(Rng& rng) {
    int total = 0;
    for (int w : weights_) total += w;
    int x = static_cast<int>(rng.below(static_cast<uint64_t>(std::max(total, 1))));
    for (size_t k = 0; k < weights_.size(); ++k) {
      if (x < weights_[k]) return tier_[k];
      x -= weights_[k];
    }
    return tier_.back();
  }

  size_t pick_positive(Rng& rng) {
    tier_ = pos_;
    affinity_gate(tier_, p_.tau, rng);
    if (tier_.size() == 1) return tier_[0];
    double min_t = 1e300, max_t = -1e300, min_p = 1e300, max_p = -1e300;
    for (size_t i : tier_) {
      min_t = std::min(min_t, ends_[i].ttft_headroom);
      max_t = std::max(max_t, ends_[i].ttft_headroom);
      min_p = std::min(min_p, ends_[i].tpot_headroom);
      max_p = std::max(max_p, ends_[i].tpot_headroom);
    }
    double a = p_.ttft_weight, b = p_.tpot_weight;
    if (a + b <= 0) a = 1, b = 0;
    const double sum = a + b;
    a /= sum;
    b /= sum;
    weights_.clear();
    for (size_t i : tier_) {
      const double nt =
          max_t - min_t > kEps ? (ends_[i].ttft_headroom - min_t) / (max_t - min_t + kEps) : 0.5;
      const double np =
          max_p - min_p > kEps ? (ends_[i].tpot_headroom - min_p) / (max_p - min_p + kEps) : 0.5;
      const double combined = a * nt + b * np;
      const double f = p_.most ? combined : 1.0 - combined;
      weights_.push_back(static_cast<int>(f * (kWeightMax - kMinWeight)) + kMinWeight + 1);
    }
    return draw(rng);
  }

  size_t pick_negative(const ClusterView&, Rng& rng) {
    // Strictly prefer endpoints with nothing of ours running.
    tier_.clear();
    for (size_t i : neg_)
      if (ends_[i].view->in_flight() == 0) tier_.push_back(i);
    if (tier_.empty()) tier_ = neg_;
    affinity_gate(tier_, p_.tau, rng);
    if (tier_.size() == 1) return tier_[0];
    double a = p_.neg_ttft_weight, b = p_.neg_tpot_weight;
    if (a + b <= 0) a = 1, b = 0;
    const double sum = a + b;
    a /= sum;
    b /= sum;
    // Categories: both negative, TTFT only, TPOT only; each normalised within itself.
    std::vector<size_t> order;
    weights_.clear();
    order.reserve(tier_.size());
    for (int cat = 0; cat < 3; ++cat) {
      cat_.clear();
      for (size_t i : tier_) {
        const bool nt = ends_[i].ttft_headroom < 0, np = ends_[i].tpot_headroom < 0;
        const int c = nt && np ? 0 : nt ? 1 : np ? 2 : 3;
        if (c == cat) cat_.push_back(i);
      }
      if (cat_.empty()) continue;
      double min_t = 1e300, max_t = -1e300, min_p = 1e300, max_p = -1e300;
      for (size_t i : cat_) {
        const double dt = std::max(0.0, -ends_[i].ttft_headroom);
        const double dp = std::max(0.0, -ends_[i].tpot_headroom);
        min_t = std::min(min_t, dt);
        max_t = std::max(max_t, dt);
        min_p = std::min(min_p, dp);
        max_p = std::max(max_p, dp);
      }
      for (size_t i : cat_) {
        const double dt = std::max(0.0, -ends_[i].ttft_headroom);
        const double dp = std::max(0.0, -ends_[i].tpot_headroom);
        const double nt = max_t - min_t > kEps ? (dt - min_t) / (max_t - min_t + kEps) : 0.0;
        const double np = max_p - min_p > kEps ? (dp - min_p) / (max_p - min_p + kEps) : 0.0;
        const double blended = a * nt + b * np;
        weights_.push_back(static_cast<int>((1.0 - blended) * kNegRange) + kMinWeight + 1);
        order.push_back(i);
      }
    }
    for (size_t i : tier_) {  // neither headroom negative (the buffer factor): minimal weight
      if (ends_[i].ttft_headroom >= 0 && ends_[i].tpot_headroom >= 0) {
        weights_.push_back(kMinWeight);
        order.push_back(i);
      }
    }
    tier_ = order;
    return draw(rng);
  }

  // No fitted model yet: llm-d's composite of KV headroom, queue and prefix (highest wins).
  void composite(const RequestFeatures& request, const ClusterView& view, Rng& rng, Decision& out) {
    double min_q = 1e300, max_q = -1e300;
    for (End& e : ends_) {
      const predict::LatencyFeatures f =
          predict::latency_features(*e.view, view, request.prompt_tokens, e.prefix);
      e.ttft = f.waiting;   // scratch: the queue
      e.tpot = f.kv_usage;  // scratch: the KV usage
      min_q = std::min(min_q, f.waiting);
      max_q = std::max(max_q, f.waiting);
    }
    MinPicker best;
    for (size_t i = 0; i < ends_.size(); ++i) {
      const End& e = ends_[i];
      const double queue = max_q == min_q ? 1.0 : (max_q - e.ttft) / (max_q - min_q);
      const double score =
          p_.kv_weight * (1 - e.tpot) + p_.queue_weight * queue + p_.prefix_weight * e.prefix;
      out.candidates[i].score = score;
      best.offer(-score, e.view->index, rng);
    }
    out.replica = best.index();
    if (out.explain)
      fmt::format_to(std::back_inserter(out.reason),
                     "llm-d-latency: no fitted model yet, composite score {:.3f}", -best.best());
  }

  Params p_;
  std::vector<End> ends_;
  std::vector<size_t> all_, pos_, neg_, tier_, gate_, cat_;
  std::vector<int> weights_;
};

}  // namespace

std::unique_ptr<Policy> make_llm_d_latency(ParamReader& r) {
  Params p;
  p.ttft_slo = r.number("ttft_slo_s", p.ttft_slo, 0, 1e9);
  p.tpot_slo = r.number("tpot_slo_s", p.tpot_slo, 0, 1e9);
  p.slo_buffer = r.number("slo_buffer_factor", p.slo_buffer, 0, 1e3);
  p.ttft_weight = r.number("ttft_weight", p.ttft_weight, 0, 1e6);
  p.tpot_weight = r.number("tpot_weight", p.tpot_weight, 0, 1e6);
  p.neg_ttft_weight = r.number("neg_ttft_weight", p.neg_ttft_weight, 0, 1e6);
  p.neg_tpot_weight = r.number("neg_tpot_weight", p.neg_tpot_weight, 0, 1e6);
  p.most = r.choice("strategy", "least", {"least", "most"}) == "most";
  p.eps_neg = r.number("epsilon_explore_neg", p.eps_neg, 0, 1);
  p.eps_sticky = r.number("epsilon_explore_sticky", p.eps_sticky, 0, 1);
  p.tau_global = r.number("affinity_gate_tau_global", p.tau_global, 0, 1);
  p.tau = r.number("affinity_gate_tau", p.tau, 0, 1);
  p.max_ttft_penalty = r.number("affinity_max_ttft_penalty_s", p.max_ttft_penalty, 0, 1e9);
  p.kv_weight = r.number("kv_weight", p.kv_weight, 0, 1e6);
  p.queue_weight = r.number("queue_weight", p.queue_weight, 0, 1e6);
  p.prefix_weight = r.number("prefix_weight", p.prefix_weight, 0, 1e6);
  return std::make_unique<LlmDLatency>(p);
}

}  // namespace eta::policy
