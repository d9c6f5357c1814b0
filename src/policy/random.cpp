// random: a uniformly random routable replica, or weighted by ReplicaView::weight when the
// weights differ.
#include "policy/common.hpp"

namespace eta::policy {
namespace {

class Random final : public Policy {
 public:
  std::string_view name() const override { return "random"; }
  Reads reads() const override { return {.prefix = false, .speed = false, .progress = false}; }

  void pick_into(const RequestFeatures&, const ClusterView& view, Rng& rng,
                 Decision& out) override {
    reset(out);
    double total = 0;
    bool weighted = false;
    double first_weight = -1;
    for (const ReplicaView& r : view.replicas) {
      if (!r.routable) continue;
      add_candidate(out, r.index, r.weight);
      const double w = r.weight > 0 ? r.weight : 0;
      total += w;
      if (first_weight < 0) first_weight = w;
      if (w != first_weight) weighted = true;
    }
    if (out.candidates.empty()) {
      out.reason = "no routable replica";
      return;
    }
    if (!weighted || total <= 0) {
      out.replica = out.candidates[rng.below(out.candidates.size())].replica;
      out.reason = "random";
      return;
    }
    double x = rng.uniform() * total;
    out.replica = out.candidates.back().replica;
    for (const Candidate& c : out.candidates) {
      const double w = c.score > 0 ? c.score : 0;
      if (x < w) {
        out.replica = c.replica;
        break;
      }
      x -= w;
    }
    out.reason = "random (weighted)";
  }
};

}  // namespace

std::unique_ptr<Policy> make_random(ParamReader&) {
  return std::make_unique<Random>();
}

}  // namespace eta::policy
