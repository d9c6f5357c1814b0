// least-request: the routable replica with the fewest requests in flight according to the
// router's own ledger (exact and instant; the scrape is not used). Ties are broken at random.
#include <string>

#include "policy/common.hpp"

namespace eta::policy {
namespace {

class LeastRequest final : public Policy {
 public:
  std::string_view name() const override { return "least-request"; }
  Reads reads() const override { return {.prefix = false, .speed = false, .progress = false}; }

  void pick_into(const RequestFeatures&, const ClusterView& view, Rng& rng,
                 Decision& out) override {
    reset(out);
    MinPicker best;
    for (const ReplicaView& r : view.replicas) {
      if (!r.routable) continue;
      const double load = r.in_flight();
      add_candidate(out, r.index, load);
      best.offer(load, r.index, rng);
    }
    out.replica = best.index();
    if (out.replica < 0) {
      out.reason = "no routable replica";
      return;
    }
    if (out.explain)
      out.reason = "least-request: " + std::to_string(static_cast<int>(best.best())) + " in flight";
  }
};

}  // namespace

std::unique_ptr<Policy> make_least_request(ParamReader&) {
  return std::make_unique<LeastRequest>();
}

}  // namespace eta::policy
