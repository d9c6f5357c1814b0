// least-load: a re-implementation of SMG's (the SGLang model gateway's) `least_load` policy from
// its published behaviour (lightseekorg/smg, model_gateway/src/policies/least_load.rs, 2026):
// the replica with the smallest estimated drain time plus a KV-pressure barrier,
//   score = (queued_tokens + in_flight_tokens) / throughput + kv_weight * k / (1 - k)
//   queued_tokens     the replica's waiting-queue token work. SGLang reports it
//                     (num_waiting_uncached_tokens); vLLM's /metrics has only the waiting count,
//                     so it is vllm:num_requests_waiting x the router's average uncached prompt
//   in_flight_tokens  prompt tokens this policy sent to the replica since its last scrape (reset
//                     when a newer scrape arrives): the correction against herding between polls
//   throughput        the replica's generation rate over the last scrape interval
//                     (vllm:generation_tokens_total; SGLang's gen_throughput), default_throughput
//                     (2000 tokens/s) when it reports none
//   k                 KV usage (vllm:kv_cache_usage_perc), clamped to [0, 0.999]
// A replica without a fresh scrape while others have one: its in-flight count x
// mean_prefill_tokens (1024) / the mean reported throughput. No fresh scrape anywhere:
// join-shortest-queue on the router's in-flight count. Lowest score wins; ties at random (SMG
// keeps the first).
#include <algorithm>
#include <iterator>
#include <vector>

#include <fmt/format.h>

#include "policy/common.hpp"

namespace eta::policy {
namespace {

class LeastLoad final : public Policy {
 public:
  LeastLoad(double kv_weight, double mean_prefill, double default_tps)
      : kv_weight_(kv_weight), mean_prefill_(mean_prefill), default_tps_(default_tps) {}

  std::string_view name() const override { return "least-load"; }
  Reads reads() const override { return {.prefix = false, .speed = false, .progress = false}; }

  void pick_into(const RequestFeatures& request, const ClusterView& view, Rng& rng,
                 Decision& out) override {
    reset(out);
    if (view.topology_version != topology_ || view.replicas.size() != state_.size()) {
      topology_ = view.topology_version;
      state_.assign(view.replicas.size(), State{});
    }
    // Fleet-nominal throughput: the mean of the positive reports.
    double tps_sum = 0;
    int tps_count = 0;
    bool any_fresh = false;
    for (const ReplicaView& r : view.replicas) {
      if (!r.routable || !r.scrape.fresh(view.now, view.stale_after_s)) continue;
      any_fresh = true;
      if (r.scrape.generation_tps > 0) {
        tps_sum += r.scrape.generation_tps;
        ++tps_count;
      }
    }
    const double nominal = tps_count > 0 ? tps_sum / tps_count : default_tps_;
    MinPicker best;
    for (size_t i = 0; i < view.replicas.size(); ++i) {
      const ReplicaView& r = view.replicas[i];
      if (!r.routable) continue;
      State& st = state_[i];
      double score = 0;
      if (r.scrape.fresh(view.now, view.stale_after_s)) {
        if (r.scrape.time_s != st.scrape_time) {  // a newer scrape covers what was sent before
          st.scrape_time = r.scrape.time_s;
          st.in_flight_tokens = 0;
        }
        const double queued = r.scrape.waiting * view.averages.uncached_prompt_tokens;
        const double tps = r.scrape.generation_tps > 0 ? r.scrape.generation_tps : default_tps_;
        const double k = std::clamp(r.scrape.kv_usage, 0.0, 0.999);
        score = (queued + st.in_flight_tokens) / tps + kv_weight_ * k / (1 - k);
      } else if (any_fresh) {
        score = r.in_flight() * mean_prefill_ / nominal;
      } else {
        score = r.in_flight();
      }
      add_candidate(out, r.index, score);
      const int before = best.index();
      best.offer(score, r.index, rng);
      if (best.index() != before) chosen_ = i;
    }
    out.replica = best.index();
    if (out.replica < 0) {
      out.reason = "no routable replica";
      return;
    }
    state_[chosen_].in_flight_tokens += std::max(request.prompt_tokens, 1);
    if (out.explain)
      fmt::format_to(std::back_inserter(out.reason), "least-load: {:.3f}s drain + kv barrier",
                     best.best());
  }

 private:
  struct State {
    double scrape_time = -1;      // the scrape the in-flight count started from
    double in_flight_tokens = 0;  // prompt tokens sent since
  };
  double kv_weight_, mean_prefill_, default_tps_;
  std::vector<State> state_;  // per view position
  size_t chosen_ = 0;
  uint64_t topology_ = 0;
};

}  // namespace

std::unique_ptr<Policy> make_least_load(ParamReader& p) {
  const double kv_weight = p.number("kv_pressure_weight", 0.15, 0, 1e6);
  const double mean_prefill = p.number("mean_prefill_tokens", 1024, 1, 1e9);
  const double tps = p.number("default_throughput", 2000, 1e-6, 1e12);
  return std::make_unique<LeastLoad>(kv_weight, mean_prefill, tps);
}

}  // namespace eta::policy
