// round-robin: the next routable replica after the previous pick, in view order.
#include "policy/common.hpp"

namespace eta::policy {
namespace {

class RoundRobin final : public Policy {
 public:
  std::string_view name() const override { return "round-robin"; }
  Reads reads() const override { return {.prefix = false, .speed = false, .progress = false}; }

  void pick_into(const RequestFeatures&, const ClusterView& view, Rng&, Decision& out) override {
    reset(out);
    const size_t n = view.replicas.size();
    for (size_t i = 0; i < n; ++i) {
      const ReplicaView& r = view.replicas[i];
      if (r.routable) add_candidate(out, r.index, static_cast<double>(r.in_flight()));
    }
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (cursor_ + k) % n;
      if (!view.replicas[i].routable) continue;
      out.replica = view.replicas[i].index;
      cursor_ = i + 1;
      out.reason = "round-robin";
      return;
    }
    out.reason = "no routable replica";
  }

 private:
  size_t cursor_ = 0;
};

}  // namespace

std::unique_ptr<Policy> make_round_robin(ParamReader&) {
  return std::make_unique<RoundRobin>();
}

}  // namespace eta::policy
