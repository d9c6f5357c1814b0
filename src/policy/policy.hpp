// A routing policy: pick(request features, cluster view, rng) -> Decision. Policies are pure
// apart from their own small state (a round-robin cursor, a hash ring): no I/O, no clock (time is
// ClusterView::now), no threads, randomness only from the Rng passed in. One policy object per
// thread of control; the same object routes live traffic (`eta route`) and simulated traffic
// (`eta cluster-sim`). Policies are made by name from the registry (registry.hpp); each is
// documented, with its parameters, in docs/policies.md.
#pragma once

#include <string_view>

#include "cluster/view.hpp"
#include "policy/rng.hpp"

namespace eta::policy {

using cluster::Candidate;
using cluster::ClusterView;
using cluster::Decision;
using cluster::ReplicaView;
using cluster::RequestFeatures;

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;

  // Chooses a replica among view.replicas that are routable. Fills `out`, reusing its storage
  // (the hot path: no allocation once the candidate vector has grown). out.replica is -1 when
  // no replica is routable.
  virtual void pick_into(const RequestFeatures& request, const ClusterView& view, Rng& rng,
                         Decision& out) = 0;

  Decision pick(const RequestFeatures& request, const ClusterView& view, Rng& rng) {
    Decision d;
    pick_into(request, view, rng, d);
    return d;
  }
};

}  // namespace eta::policy
