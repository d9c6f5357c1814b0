// Late binding (issue 2.4, item 5): every policy commits a request to a replica at its arrival.
// Under a burst, a request that every replica would only queue is better held at the router and
// sent to whichever replica can start it first (one queue in front of several servers beats a
// queue per server). `late_binding_decide` says whether a request waits and, if not, where it
// goes; late_binding.rule picks how:
//  - "wait" (the pooled queue, the default): hold while every candidate's predicted wait for
//    this request (model_ttft: the completion model's TTFT there now minus its TTFT there with
//    nothing queued ahead) is over wait_margin_s and over wait_fraction x the rest of its TTFT
//    there: it would start sooner by waiting for the first replica to free than by joining a
//    queue now (predictions err; the router sees the replica that really frees first). A held
//    request goes, once some candidate is within those bounds, to the policy's pick if it is
//    one of them, else to the one among them with the least predicted TTFT (the replica that
//    starts it first); a request never held goes to the policy's pick, as without late binding.
//  - "busy": hold while every candidate is busy: its waiting queue is not empty (a fresh
//    scrape's vllm:num_requests_waiting, or more uncached prompt in the router's own ledger than
//    one step's token budget), its sequence slots are full or, with a threshold, its predicted
//    TTFT is over it. Once not held it goes to the policy's pick.
// Either way a request is held at most max_hold_s (then the policy's pick) and only while fewer
// than max_held wait. Held requests wait in the router queue (router_queue.hpp) in arrival
// order, are routed again whenever a request finishes or gets its first token (capacity frees)
// and on the queue timer, and nothing is refused for it. Pure; the live router
// (core/routing.cpp) and eta cluster-sim use it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string_view>
#include <vector>

#include "cluster/view.hpp"
#include "router/core/admission.hpp"

namespace eta::predict {
class SpeedModel;
}

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

// Whether `rule` names a hold rule ("busy", "wait").
bool late_binding_rule_known(std::string_view rule);

// The completion model's predicted TTFT for the request on replica `v` and its predicted wait
// there: that TTFT minus the TTFT on the same replica with nothing queued ahead of it (no
// prefill pending, no waiting request; the decoding batch as it is).
struct ModelTtft {
  double ttft_s = 0;
  double wait_s = 0;
};
ModelTtft model_ttft(const cluster::ReplicaView& v, const cluster::RequestFeatures& f,
                     const cluster::ClusterView& view, const predict::SpeedModel& speed);

struct LateBindingVerdict {
  bool hold = false;
  int replica = -1;  // where to send it when not held
};

// The decision for one routing attempt of a request: `pick` is the policy's choice, `held_s`
// how long the request has been held so far (0 at arrival), `was_held` whether it was, `mask`
// the candidates (by replica index, 1 = candidate). `ttft_of(i)`: the pick's predicted TTFT on
// replica i (NaN when none; "busy" reads it); `model_of(v)`: model_ttft on replica view v ("wait").
template <typename TtftOf, typename ModelOf>
LateBindingVerdict late_binding_decide(const LateBindingConfig& config,
                                       const cluster::ClusterView& view,
                                       const std::vector<char>& mask, int pick, double held_s,
                                       bool was_held, TtftOf&& ttft_of, ModelOf&& model_of) {
  LateBindingVerdict out;
  out.replica = pick;
  if (!config.enabled || held_s >= config.max_hold_s) return out;
  if (config.rule != "wait") {
    out.hold = late_binding_hold(config, view, mask, held_s, ttft_of);
    return out;
  }
  bool any = false;
  int first = -1;  // the candidate within the margin with the least predicted TTFT
  double first_ttft = std::numeric_limits<double>::infinity();
  bool pick_free = false;
  for (const cluster::ReplicaView& v : view.replicas) {
    const size_t i = static_cast<size_t>(v.index);
    if (i >= mask.size() || !mask[i]) continue;
    any = true;
    const ModelTtft m = model_of(v);
    if (m.wait_s > std::max(config.wait_margin_s, config.wait_fraction * (m.ttft_s - m.wait_s)))
      continue;
    if (v.index == pick) pick_free = true;
    if (first < 0 || m.ttft_s < first_ttft) {
      first = v.index;
      first_ttft = m.ttft_s;
    }
  }
  if (!any) return out;
  if (first < 0) {
    out.hold = true;
    return out;
  }
  if (was_held && !pick_free) out.replica = first;
  return out;
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
