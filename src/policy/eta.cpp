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
#include <cmath>
#include <iterator>
#include <limits>

#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "policy/common.hpp"
#include "predict/completion_model.hpp"

namespace eta::policy {
namespace {

enum class Objective { kE2e, kTtft, kSlo };

constexpr double kSloMissPenalty = 1e6;  // seconds added to a prediction that misses an SLO

class Eta final : public Policy {
 public:
  Eta(Objective objective, double ttft_weight, double ttft_slo, double e2e_slo,
      predict::CompletionModelOptions opts, std::unique_ptr<predict::SpeedModel> fallback)
      : objective_(objective),
        ttft_weight_(ttft_weight),
        ttft_slo_(ttft_slo > 0 ? ttft_slo : std::numeric_limits<double>::infinity()),
        e2e_slo_(e2e_slo > 0 ? e2e_slo : std::numeric_limits<double>::infinity()),
        options_(opts),
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
    for (const ReplicaView& r : view.replicas) {
      if (!r.routable) continue;
      const predict::SpeedModel& speed = r.speed ? *r.speed : *fallback_;
      const predict::CompletionEstimate e = predict::estimate_completion(
          r, q, request.cached_tokens_on(r.index), view, speed, options_);
      double score = e.e2e_s + ttft_weight_ * e.ttft_s;
      if (objective_ == Objective::kTtft) {
        score = e.ttft_s;
      } else if (objective_ == Objective::kSlo) {
        score += e.ttft_s <= ttft_slo_ && e.e2e_s <= e2e_slo_ ? 0.0 : kSloMissPenalty;
      }
      Candidate& c = out.candidates.emplace_back();
      c.replica = r.index;
      c.ttft_s = e.ttft_s;
      c.e2e_s = e.e2e_s;
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
    out.replica = best.index();
    if (out.replica < 0) {
      out.reason = "no routable replica";
      return;
    }
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

 private:
  Objective objective_;
  double ttft_weight_;
  double ttft_slo_;
  double e2e_slo_;
  predict::CompletionModelOptions options_;
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
  return std::make_unique<Eta>(obj, ttft_weight, ttft_slo, e2e_slo, opts,
                               std::make_unique<predict::SpeedModel>(config.resolved()));
}

}  // namespace eta::policy
