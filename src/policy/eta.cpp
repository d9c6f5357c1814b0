// eta: for every routable replica, predict when this request would get its first token and when
// it would finish there (predict/completion_model.hpp: queued prefill under the token budget,
// KV admission, its own uncached prefill, its decode in a batch that keeps its steady-state size
// and is stalled by the prefill of requests arriving meanwhile, the replica's learned speed),
// and pick the smallest objective:
//   e2e  (default)  predicted e2e + ttft_weight x predicted ttft (default weight 1: the sum of
//                   the two latencies a client sees)
//   ttft            predicted time to first token
//   slo             requests meeting the SLOs first (ttft <= ttft_slo_s and e2e <= e2e_slo_s),
//                   then the smallest e2e objective
// Equal objectives are broken at random.
// Above `shortlist_above` replicas (default 64) the full estimate runs on a shortlist only: the
// `shortlist` replicas (default 32) with the smallest O(1) cheap score (queued
// prefill, its own uncached prompt and a decode step of the current batch, at the learned
// factors), plus up to 8 replicas with the longest prefix match. Up to the threshold every
// replica gets the full estimate, so decisions there are unchanged.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "policy/common.hpp"
#include "predict/completion_model.hpp"

namespace eta::policy {
namespace {

enum class Objective { kE2e, kTtft, kSlo };

constexpr double kSloMissPenalty = 1e6;  // seconds added to a prediction that misses an SLO
constexpr size_t kPrefixShortlist = 8;   // replicas with the longest prefix match always evaluated

struct Shortlisting {
  int above = 64;  // replica count above which the shortlist is used
  int size = 32;   // replicas evaluated by the cheap score
};

class Eta final : public Policy {
 public:
  Eta(Objective objective, double ttft_weight, double ttft_slo, double e2e_slo,
      predict::CompletionModelOptions opts, Shortlisting shortlist,
      std::unique_ptr<predict::SpeedModel> fallback)
      : objective_(objective),
        ttft_weight_(ttft_weight),
        ttft_slo_(ttft_slo > 0 ? ttft_slo : std::numeric_limits<double>::infinity()),
        e2e_slo_(e2e_slo > 0 ? e2e_slo : std::numeric_limits<double>::infinity()),
        options_(opts),
        shortlist_(shortlist),
        fallback_(std::move(fallback)) {}

  std::string_view name() const override { return "eta"; }

  void pick_into(const RequestFeatures& request, const ClusterView& view, Rng& rng,
                 Decision& out) override {
    reset(out);
    out.candidates.reserve(view.replicas.size());
    const predict::CompletionRequest q(request.prompt_tokens, request.output_tokens());
    MinPicker best;
    size_t chosen = 0;  // position of the chosen candidate
    double best_score = std::numeric_limits<double>::infinity();
    double runner_up = std::numeric_limits<double>::infinity();
    if (view.replicas.size() <= static_cast<size_t>(shortlist_.above) ||
        view.replicas.size() <= static_cast<size_t>(shortlist_.size)) {
      for (const ReplicaView& r : view.replicas) {
        if (!r.routable) continue;
        const predict::SpeedModel& speed = r.speed ? *r.speed : *fallback_;
        const predict::CompletionEstimate e = predict::estimate_completion(
            r, q, request.cached_tokens_on(r.index), view, speed, options_);
        double score = e.e2e_s + ttft_weight_ * e.ttft_s;  // score_of, as the loop had it
        if (objective_ == Objective::kTtft) {
          score = e.ttft_s;
        } else if (objective_ == Objective::kSlo) {
          score += e.ttft_s <= ttft_slo_ && e.e2e_s <= e2e_slo_ ? 0.0 : kSloMissPenalty;
        }
        Candidate& c = out.candidates.emplace_back();
        c.replica = r.index;
        c.ttft_s = e.ttft_s;
        c.e2e_s = e.e2e_s;
        c.e2e_spread_s = spread(request, e);
        c.score = score;
        const int before = best.index();
        best.offer(score, r.index, rng);
        if (best.index() != before) chosen = out.candidates.size() - 1;
        if (score < best_score) {
          runner_up = best_score;
          best_score = score;
        } else if (score < runner_up) {
          runner_up = score;
        }
      }
    } else {
      // Off the hot path above (its own function) so that loop keeps its state in registers.
      pick_shortlisted(request, view, q, rng, out, best, chosen, best_score, runner_up);
    }
    out.replica = best.index();
    if (out.replica < 0) {
      out.reason = "no routable replica";
      return;
    }
    if (!out.explain) return;
    const Candidate& c = out.candidates[chosen];
    if (objective_ == Objective::kTtft) {
      fmt::format_to(std::back_inserter(out.reason), "eta: ttft {:.3f}s (e2e {:.3f}s)", c.ttft_s,
                     c.e2e_s);
    } else {
      fmt::format_to(std::back_inserter(out.reason), "eta: e2e {:.3f}s (ttft {:.3f}s)", c.e2e_s,
                     c.ttft_s);
    }
    if (objective_ == Objective::kSlo)
      out.reason += c.score >= kSloMissPenalty ? ", misses slo" : ", meets slo";
    if (std::isfinite(runner_up)) {
      const auto unpenalised = [this](double s) {
        return objective_ == Objective::kSlo && s >= kSloMissPenalty ? s - kSloMissPenalty : s;
      };
      fmt::format_to(std::back_inserter(out.reason), ", score {:.3f}s, next best {:.3f}s",
                     unpenalised(c.score), unpenalised(runner_up));
    }
  }

  // Above the threshold: every routable replica is listed (in view order), only the shortlist
  // is predicted.
  [[gnu::noinline]] void pick_shortlisted(const RequestFeatures& request, const ClusterView& view,
                                          const predict::CompletionRequest& q, Rng& rng,
                                          Decision& out, MinPicker& best, size_t& chosen,
                                          double& best_score, double& runner_up) {
    const auto evaluate = [&](const ReplicaView& r, Candidate& c, size_t pos) {
      const predict::SpeedModel& speed = r.speed ? *r.speed : *fallback_;
      const predict::CompletionEstimate e = predict::estimate_completion(
          r, q, request.cached_tokens_on(r.index), view, speed, options_);
      const double score = score_of(e.ttft_s, e.e2e_s);
      c.ttft_s = e.ttft_s;
      c.e2e_s = e.e2e_s;
      c.e2e_spread_s = spread(request, e);
      c.score = score;
      const int before = best.index();
      best.offer(score, r.index, rng);
      if (best.index() != before) chosen = pos;
      if (score < best_score) {
        runner_up = best_score;
        best_score = score;
      } else if (score < runner_up) {
        runner_up = score;
      }
    };
    cheap_.clear();
    prefix_.clear();
    view_pos_.clear();
    for (size_t i = 0; i < view.replicas.size(); ++i) {
      const ReplicaView& r = view.replicas[i];
      if (!r.routable) continue;
      Candidate& c = out.candidates.emplace_back();
      c.replica = r.index;
      c.score = std::numeric_limits<double>::infinity();  // not predicted, never chosen
      const int pos = static_cast<int>(out.candidates.size() - 1);
      view_pos_.push_back(static_cast<int>(i));
      const int cached = request.cached_tokens_on(r.index);
      cheap_.push_back({cheap_score(r, q, cached, view), pos});
      if (cached > 0) prefix_.push_back({-static_cast<double>(cached), pos});
    }
    const auto by_key = [](const Keyed& a, const Keyed& b) { return a.key < b.key; };
    const size_t k = std::min(cheap_.size(), static_cast<size_t>(shortlist_.size));
    if (k < cheap_.size())
      std::nth_element(cheap_.begin(), cheap_.begin() + static_cast<std::ptrdiff_t>(k),
                       cheap_.end(), by_key);
    cheap_.resize(k);
    if (prefix_.size() > kPrefixShortlist) {
      std::nth_element(prefix_.begin(),
                       prefix_.begin() + static_cast<std::ptrdiff_t>(kPrefixShortlist),
                       prefix_.end(), by_key);
      prefix_.resize(kPrefixShortlist);
    }
    cheap_.insert(cheap_.end(), prefix_.begin(), prefix_.end());
    // Evaluate in view order so that ties break as in the full evaluation.
    std::sort(cheap_.begin(), cheap_.end(),
              [](const Keyed& a, const Keyed& b) { return a.pos < b.pos; });
    int last = -1;
    for (const Keyed& s : cheap_) {
      if (s.pos == last) continue;
      last = s.pos;
      const size_t pos = static_cast<size_t>(s.pos);
      evaluate(view.replicas[static_cast<size_t>(view_pos_[pos])], out.candidates[pos], pos);
    }
  }

 private:
  struct Keyed {
    double key;
    int pos;  // position in Decision::candidates
  };

  // The finish's spread from the output length's: its standard deviation in tokens at the
  // predicted time per output token there.
  static double spread(const RequestFeatures& request, const predict::CompletionEstimate& e) {
    const int out = request.output_tokens();
    return out > 1 ? (e.e2e_s - e.ttft_s) / (out - 1) * request.predicted_output_sd : 0.0;
  }

  double score_of(double ttft, double e2e) const {
    if (objective_ == Objective::kTtft) return ttft;
    double score = e2e + ttft_weight_ * ttft;
    if (objective_ == Objective::kSlo)
      score += ttft <= ttft_slo_ && e2e <= e2e_slo_ ? 0.0 : kSloMissPenalty;
    return score;
  }

  // O(1) ranking score for the shortlist: the prefill queued ahead (ledger plus a fresh scrape's
  // extra waiting requests at the average uncached prompt) and its own uncached prompt at the
  // full-step cost per token, then its decode steps at the current batch's step cost (linear
  // ops of the running sequences and the KV they read), at the replica's learned factors. No
  // waits for slots or KV, no arrivals: cheaper than, and ranking like, the full estimate.
  double cheap_score(const ReplicaView& r, const predict::CompletionRequest& q, int cached,
                     const ClusterView& view) const {
    const predict::SpeedModel& speed = r.speed ? *r.speed : *fallback_;
    const predict::StepTables& T = speed.tables();
    const cluster::LedgerSummary& L = r.ledger_or_empty();
    double prefill_ahead = static_cast<double>(L.pending_prefill_tokens);
    double decoding = L.decoding;
    double context = static_cast<double>(L.context_tokens);
    if (options_.use_scrape && r.scrape.fresh(view.now, view.stale_after_s)) {
      const cluster::ScrapeSnapshot& s = r.scrape;
      const double extra = std::max(0, s.running + s.waiting - L.in_flight);
      const double extra_wait =
          std::min(extra, static_cast<double>(std::max(0, s.waiting - L.prefilling)));
      const double extra_run = extra - extra_wait;
      prefill_ahead += extra_wait * view.averages.uncached_prompt_tokens;
      decoding += extra_run;
      context += extra_run * (view.averages.prompt_tokens + 0.5 * view.averages.output_tokens);
    }
    const double uncached = std::clamp(q.prompt - cached, 1.0, q.prompt);
    const double per_token = T.full_step_linear_ms() / T.config().max_num_batched_tokens;
    const double ttft = (prefill_ahead + uncached) * per_token * speed.inv_prefill_factor();
    const double step = T.decode_step_ms(decoding + 1) + T.kv_ms_per_token() * (context + q.prompt);
    const double e2e = ttft + q.decode_steps * step * speed.inv_decode_factor();
    return objective_ == Objective::kTtft ? ttft : e2e + ttft_weight_ * ttft;
  }

  Objective objective_;
  double ttft_weight_;
  double ttft_slo_;
  double e2e_slo_;
  predict::CompletionModelOptions options_;
  Shortlisting shortlist_;
  std::vector<Keyed> cheap_;   // scratch, reused across decisions
  std::vector<Keyed> prefix_;  // scratch
  std::vector<int> view_pos_;  // scratch: candidate position -> view position
  std::unique_ptr<predict::SpeedModel> fallback_;
};

}  // namespace

std::unique_ptr<Policy> make_eta(ParamReader& p) {
  const std::string objective = p.choice("objective", "e2e", {"e2e", "ttft", "slo"});
  const double ttft_weight = p.number("ttft_weight", 1, 0, 1e6);
  const double ttft_slo = p.number("ttft_slo_s", 0, 0, 1e9);
  const double e2e_slo = p.number("e2e_slo_s", 0, 0, 1e9);
  predict::CompletionModelOptions opts;
  opts.use_scrape = p.boolean("use_scrape", true);
  opts.kv_pressure = p.boolean("kv_pressure", true);
  opts.batch_shrink = p.boolean("batch_shrink", true);
  opts.arrivals = p.boolean("arrivals", true);
  Shortlisting shortlist;
  shortlist.above = p.integer("shortlist_above", 64, 0, 1 << 30);
  shortlist.size = p.integer("shortlist", 32, 1, 1 << 30);
  const std::string gpu = p.text("default_gpu", "h100");
  const std::string arch = p.text("default_arch", "llama-2-7b");
  Objective obj = objective == "ttft"  ? Objective::kTtft
                  : objective == "slo" ? Objective::kSlo
                                       : Objective::kE2e;
  if (obj == Objective::kSlo && ttft_slo <= 0 && e2e_slo <= 0)
    p.fail("objective=slo needs ttft_slo_s and/or e2e_slo_s");
  engine::EngineConfig config;
  std::string error;
  if (!engine::make_config(engine::ProfileSet::builtin(), arch, gpu, config, error)) {
    p.fail(error);
    return nullptr;
  }
  return std::make_unique<Eta>(obj, ttft_weight, ttft_slo, e2e_slo, opts, shortlist,
                               std::make_unique<predict::SpeedModel>(config.resolved()));
}

}  // namespace eta::policy
