// Late binding (issue 2.4, item 5): every policy commits a request to a replica at its arrival.
// Under a burst, a request that every replica would only queue is better held at the router and
// sent to whichever replica can start it first (one queue in front of several servers beats a
// queue per server). `hold` says whether a request waits: every candidate is busy — its waiting
// queue is not empty (a fresh scrape's vllm:num_requests_waiting, or more uncached prompt in the
// router's own ledger than one step's token budget) or, with a threshold, its predicted TTFT is
// over it — and the request has been held less than max_hold_s. Held requests wait in the router
// queue (router_queue.hpp) in arrival order, are routed again whenever a request finishes or
// gets its first token (capacity frees) and on the queue timer, and once max_hold_s is over they
// go to the policy's pick. Pure; the live router (core/routing.cpp) and eta cluster-sim use it.
#pragma once

#include <cstddef>
#include <vector>

#include "cluster/view.hpp"
#include "router/core/admission.hpp"

namespace eta::router {

// Whether replica `v` cannot start a new request's prefill now. `predicted_ttft_s`: the
// policy's TTFT for this request there (NaN or infinity when it did not predict one).
bool replica_busy(const LateBindingConfig& config, const cluster::ReplicaView& v,
                  const cluster::ClusterView& view, double predicted_ttft_s);

// Whether to hold the request: late binding on, held less than max_hold_s so far, and every
// candidate (mask: by replica index, 1 = candidate) busy. `ttft_of(i)`: the pick's predicted
// TTFT on replica i (NaN when none).
template <typename TtftOf>
bool late_binding_hold(const LateBindingConfig& config, const cluster::ClusterView& view,
                       const std::vector<char>& mask, double held_s, TtftOf&& ttft_of) {
  if (!config.enabled || held_s >= config.max_hold_s) return false;
  bool any = false;
  for (const cluster::ReplicaView& v : view.replicas) {
    const size_t i = static_cast<size_t>(v.index);
    if (i >= mask.size() || !mask[i]) continue;
    any = true;
    if (!replica_busy(config, v, view, ttft_of(v.index))) return false;
  }
  return any;
}

// The router queue's rules with late binding on (the live router and cluster-sim both use these):
// a newcomer queues behind any waiting request (admission's or late binding's, FIFO); the queue
// holds admission's queue_size plus late binding's max_held; a held request's deadline lets it be
// routed once more after its hold (the queue timer wakes every `recheck_s`), so it times out only
// if admission then still keeps it.
bool queue_behind(const AdmissionConfig& admission, const LateBindingConfig& late,
                  size_t queue_length);
int queue_capacity(const AdmissionConfig& admission, const LateBindingConfig& late);
double queue_deadline(const AdmissionConfig& admission, const LateBindingConfig& late, bool held,
                      double now, double recheck_s);

}  // namespace eta::router
