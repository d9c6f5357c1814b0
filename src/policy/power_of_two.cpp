// power-of-two: two distinct routable replicas drawn at random; the one with fewer requests in
// flight (router ledger) wins, the first drawn on a tie.
#include <string>

#include "policy/common.hpp"

namespace eta::policy {
namespace {

class PowerOfTwo final : public Policy {
 public:
  std::string_view name() const override { return "power-of-two"; }
  Reads reads() const override { return {.prefix = false, .speed = false, .progress = false}; }

  void pick_into(const RequestFeatures&, const ClusterView& view, Rng& rng,
                 Decision& out) override {
    reset(out);
    positions_.clear();
    for (size_t i = 0; i < view.replicas.size(); ++i) {
      const ReplicaView& r = view.replicas[i];
      if (!r.routable) continue;
      add_candidate(out, r.index, r.in_flight());
      positions_.push_back(i);
    }
    const size_t m = positions_.size();
    if (m == 0) {
      out.reason = "no routable replica";
      return;
    }
    if (m == 1) {
      out.replica = view.replicas[positions_[0]].index;
      out.reason = "power-of-two: only one routable";
      return;
    }
    const size_t a = rng.below(m);
    size_t b = rng.below(m - 1);
    if (b >= a) ++b;
    const ReplicaView& ra = view.replicas[positions_[a]];
    const ReplicaView& rb = view.replicas[positions_[b]];
    const bool take_b = rb.in_flight() < ra.in_flight();
    out.replica = take_b ? rb.index : ra.index;
    if (!out.explain) return;
    out.reason = "power-of-two: " + std::to_string(take_b ? rb.in_flight() : ra.in_flight()) +
                 " vs " + std::to_string(take_b ? ra.in_flight() : rb.in_flight()) + " in flight";
  }

 private:
  std::vector<size_t> positions_;
};

}  // namespace

std::unique_ptr<Policy> make_power_of_two(ParamReader&) {
  return std::make_unique<PowerOfTwo>();
}

}  // namespace eta::policy
