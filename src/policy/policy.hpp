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

  // What the policy reads beyond the ledger's counts and the scrapes. An owner may skip
  // maintaining what no policy of its reads: `eta cluster-sim` does (the prefix index and the
  // speed models are most of a router's per-request and per-token work); `eta route` keeps
  // everything (its admin API reports it). Reading something not declared here is a bug: the
  // simulator would hand the policy an empty prefix index or unlearned speed models.
  struct Reads {
    bool prefix = true;  // RequestFeatures::matched_blocks (the prefix index), and the ledger's
                         // prefill / KV token sums that depend on them
    bool speed = true;   // ReplicaView::speed (learned factors) and the ledger's predictions
    // The ledger's per-token progress: the prefilling / decoding split, context and KV tokens,
    // remaining output, the work averages. false: only in_flight (moved by dispatch and finish).
    bool progress = true;
    // The pool's TTFT / TPOT regressor (ClusterView::latency, llm-d-latency). Off by default: only
    // the policy that reads it makes cluster-sim learn it.
    bool latency = false;
  };
  virtual Reads reads() const { return {}; }

  Decision pick(const RequestFeatures& request, const ClusterView& view, Rng& rng) {
    Decision d;
    pick_into(request, view, rng, d);
    return d;
  }
};

}  // namespace eta::policy
