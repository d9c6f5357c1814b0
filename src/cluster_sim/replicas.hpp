// `--replicas` specs: which simulated engines make up the cluster.
//
//   SPEC  := ITEM (',' ITEM)*
//   ITEM  := [COUNT 'x'] GPU (':' KEY '=' VALUE)*
//   KEY   := speed | max_num_seqs | max_num_batched_tokens | num_gpu_blocks
//
// e.g. "4xh100", "2xh100,2xa100", "h100:speed=0.6,a100", "2xa100:num_gpu_blocks=2000:speed=0.8".
// GPU is a profile name (engine::ProfileSet: h100, a100, or one from a profile file). Every
// replica runs the same model (`--arch`). Replicas are named r<i>-<gpu> in spec order, zero-padded
// so that names sort in that order.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.hpp"
#include "engine/profile.hpp"

namespace eta::cluster_sim {

inline constexpr int kMaxReplicas = 4096;

struct ReplicaConfig {
  std::string name;             // "r0-h100"
  std::string gpu;              // profile name
  engine::EngineConfig engine;  // resolved
};

// Parses `spec` for model `arch`; false with a one-line error (unknown GPU or key, bad count or
// value, a KV cache that cannot hold one max_model_len sequence, more than kMaxReplicas).
bool parse_replicas(std::string_view spec, const engine::ProfileSet& profiles,
                    const std::string& arch, std::vector<ReplicaConfig>& out, std::string& error);

// Replicas with the same engine configuration (GPU, speed, limits) get the same key.
std::string engine_key(const engine::EngineConfig& config);

}  // namespace eta::cluster_sim
