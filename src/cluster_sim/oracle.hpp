// The oracle: a clairvoyant router that knows every request's true output length and every
// replica's exact state. For each replica it clones the engine (engine::Engine::clone), adds the
// requests already on their way to it and then this one, and steps the copy until this request
// finishes, assuming nothing else arrives; it picks the replica where that simulated finish is
// earliest. It lives here rather than in src/policy because it needs the engines.
//
// It is greedy (best for this request, given what is already there) and knows nothing of
// future arrivals, so it is a strong reference rather than a true optimum. A candidate whose
// simulated time passes the best finish found so far is abandoned (its numbers are then lower
// bounds).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "cluster/view.hpp"
#include "engine/engine.hpp"
#include "policy/rng.hpp"

namespace eta::cluster_sim {

struct OracleReplica {
  const engine::Engine* engine = nullptr;
  bool routable = true;
  // When the engine can start its next step: the end of the step it is running, or (idle) now.
  double next_step_s = 0;
  bool busy = false;
  // Requests dispatched there that have not reached the engine yet (ids for make_request).
  std::span<const int64_t> in_transit;
};

class Oracle {
 public:
  // Builds the engine request for an id, with the time it reaches the engine.
  using RequestMaker = std::function<void(int64_t id, engine::EngineRequest& out)>;

  explicit Oracle(double network_delay_s) : delay_(network_delay_s) {}

  // Candidates carry the simulated TTFT and E2E as the client would see them (network delay
  // both ways included); the chosen replica has the smallest E2E (ties at random).
  void pick(const engine::EngineRequest& request, double now,
            std::span<const OracleReplica> replicas, const RequestMaker& make_request,
            policy::Rng& rng, cluster::Decision& out);

  uint64_t steps() const { return steps_; }

 private:
  double delay_;
  uint64_t steps_ = 0;
  engine::StepResult scratch_;
  std::vector<engine::EngineRequest> pending_;
};

}  // namespace eta::cluster_sim
