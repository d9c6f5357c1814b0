#include "cluster_sim/oracle.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace eta::cluster_sim {

void Oracle::pick(const engine::EngineRequest& request, double now,
                  std::span<const OracleReplica> replicas, const RequestMaker& make_request,
                  policy::Rng& rng, cluster::Decision& out) {
  out.replica = -1;
  out.reason.clear();
  out.candidates.clear();
  double best = std::numeric_limits<double>::infinity();
  int ties = 0;
  for (size_t i = 0; i < replicas.size(); ++i) {
    const OracleReplica& rep = replicas[i];
    if (!rep.routable || !rep.engine) continue;
    // What will reach the engine, in arrival order: requests in transit, then this one.
    pending_.clear();
    for (int64_t id : rep.in_transit) make_request(id, pending_.emplace_back());
    std::stable_sort(pending_.begin(), pending_.end(),
                     [](const engine::EngineRequest& a, const engine::EngineRequest& b) {
                       return a.arrival_time < b.arrival_time;
                     });
    pending_.push_back(request);
    engine::Engine copy = rep.engine->clone();
    double t = rep.busy ? rep.next_step_s : pending_.front().arrival_time;
    size_t next = 0;
    bool feasible = true;
    double first_token = -1;
    double finish = -1;
    while (finish < 0) {
      while (next < pending_.size() && pending_[next].arrival_time <= t) {
        const bool target = next + 1 == pending_.size();
        const bool added = copy.add_request(pending_[next]);
        if (!added && target) feasible = false;
        ++next;
      }
      if (!feasible) break;
      if (!copy.has_unfinished()) {
        if (next >= pending_.size()) break;  // cannot happen: the target is unfinished
        t = pending_[next].arrival_time;
        continue;
      }
      copy.step(t, scratch_);
      ++steps_;
      if (scratch_.idle()) {
        if (next >= pending_.size()) break;  // stuck (cannot happen with a fitting request)
        t = std::max(t, pending_[next].arrival_time);
        continue;
      }
      t = scratch_.end;
      if (next < pending_.size()) continue;  // the target has not arrived yet
      for (const engine::TokenEvent& ev : scratch_.tokens) {
        if (ev.id != request.id) continue;
        if (ev.first) first_token = t;
        if (ev.finished != engine::FinishReason::kNone) finish = t;
      }
      if (finish < 0 && t + delay_ - now > best) break;  // cannot beat the best: abandon
    }
    if (!feasible) continue;
    cluster::Candidate& c = out.candidates.emplace_back();
    c.replica = static_cast<int>(i);
    c.ttft_s = first_token >= 0 ? first_token + delay_ - now : t + delay_ - now;
    c.e2e_s = finish >= 0 ? finish + delay_ - now : t + delay_ - now;
    c.score = c.e2e_s;
    if (finish < 0) continue;  // abandoned
    if (c.e2e_s < best) {
      best = c.e2e_s;
      out.replica = c.replica;
      ties = 1;
    } else if (c.e2e_s == best) {
      ++ties;
      if (rng.below(static_cast<uint64_t>(ties)) == 0) out.replica = c.replica;
    }
  }
  if (out.replica < 0) {
    out.reason = "oracle: no replica can hold the request";
    return;
  }
  if (out.explain) fmt::format_to(std::back_inserter(out.reason), "oracle: e2e {:.3f}s", best);
}

}  // namespace eta::cluster_sim
