// Helpers shared by the policies. Internal to src/policy/.
#pragma once

#include <limits>
#include <memory>

#include "policy/params.hpp"
#include "policy/policy.hpp"

namespace eta::policy {

inline void reset(Decision& d) {
  d.replica = -1;
  d.reason.clear();
  d.candidates.clear();
}

inline void add_candidate(Decision& d, int replica, double score) {
  Candidate c;
  c.replica = replica;
  c.score = score;
  d.candidates.push_back(c);
}

// The minimum of values offered one by one; equal minima are broken uniformly at random
// (reservoir sampling: the k-th tie replaces the choice with probability 1/k). The Rng is drawn
// only on ties, so policies stay cheap and deterministic when values differ.
class MinPicker {
 public:
  void offer(double value, int index, Rng& rng) {
    if (value < best_) {
      best_ = value;
      index_ = index;
      ties_ = 1;
    } else if (value == best_ && index_ >= 0) {
      ++ties_;
      if (rng.below(static_cast<uint64_t>(ties_)) == 0) index_ = index;
    }
  }
  int index() const { return index_; }
  double best() const { return best_; }

 private:
  double best_ = std::numeric_limits<double>::infinity();
  int index_ = -1;
  int ties_ = 0;
};

// One factory per policy file.
std::unique_ptr<Policy> make_round_robin(ParamReader& p);
std::unique_ptr<Policy> make_random(ParamReader& p);
std::unique_ptr<Policy> make_least_request(ParamReader& p);
std::unique_ptr<Policy> make_power_of_two(ParamReader& p);
std::unique_ptr<Policy> make_session(ParamReader& p);
std::unique_ptr<Policy> make_llm_d(ParamReader& p);
std::unique_ptr<Policy> make_cache_aware(ParamReader& p);
std::unique_ptr<Policy> make_eta(ParamReader& p);
std::unique_ptr<Policy> make_llm_d_latency(ParamReader& p);
std::unique_ptr<Policy> make_least_load(ParamReader& p);

}  // namespace eta::policy
