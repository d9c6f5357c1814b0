// Helpers for the policy / predict / prefix tests: a small cluster of replicas whose ledgers
// the test drives directly, and engine configs from the built-in profiles.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cluster/ledger.hpp"
#include "cluster/view.hpp"
#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "predict/speed_model.hpp"

namespace eta::testing {

inline engine::EngineConfig config_for(const std::string& arch = "llama-2-7b",
                                       const std::string& gpu = "h100", double speed = 1.0) {
  engine::EngineConfig c;
  std::string error;
  EXPECT_TRUE(engine::make_config(engine::ProfileSet::builtin(), arch, gpu, c, error)) << error;
  c.speed = speed;
  return c.resolved();
}

// N replicas with a ledger each, an h100 speed model each, and views pointing at them.
class TestCluster {
 public:
  explicit TestCluster(int n, const engine::EngineConfig& config = config_for())
      : ledger_(n), names_(static_cast<size_t>(n)) {
    auto tables = predict::StepTables::make(config);
    for (int i = 0; i < n; ++i) {
      speeds_.push_back(std::make_unique<predict::SpeedModel>(tables));
      names_[static_cast<size_t>(i)] = "http://replica-" + std::to_string(i);
      cluster::ReplicaView v;
      v.index = i;
      v.name = names_[static_cast<size_t>(i)];
      v.ledger = &ledger_.summary(i);
      v.speed = speeds_.back().get();
      v.limits.max_num_batched_tokens = config.max_num_batched_tokens;
      v.limits.max_num_seqs = config.max_num_seqs;
      v.limits.num_gpu_blocks = config.num_gpu_blocks;
      v.limits.block_size = config.block_size;
      views_.push_back(v);
    }
  }

  cluster::Ledger& ledger() { return ledger_; }
  cluster::ReplicaView& replica(int i) { return views_[static_cast<size_t>(i)]; }
  predict::SpeedModel& speed(int i) { return *speeds_[static_cast<size_t>(i)]; }
  void set_speed_factor(int i, double f) {
    speeds_[static_cast<size_t>(i)]->set_factors(f, f, 100);
  }

  cluster::ClusterView view(double now = 0) {
    cluster::ClusterView v;
    v.now = now;
    v.replicas = views_;
    v.averages = ledger_.averages();
    return v;
  }

  // Dispatches a request and, if `generated` > 0, relays that many tokens (first included).
  void add(int replica, int prompt, int predicted_output, int generated = 0, int cached = 0) {
    cluster::DispatchInfo info;
    info.prompt_tokens = prompt;
    info.cached_tokens = cached;
    info.predicted_output_tokens = predicted_output;
    ASSERT_TRUE(ledger_.dispatch(next_id_, replica, info, 0));
    if (generated > 0) ledger_.tokens(next_id_, generated, 0);
    ++next_id_;
  }

 private:
  cluster::Ledger ledger_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<predict::SpeedModel>> speeds_;
  std::vector<cluster::ReplicaView> views_;
  uint64_t next_id_ = 1;
};

}  // namespace eta::testing
