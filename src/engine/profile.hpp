// Engine profiles: GPU and model shapes, loaded from data (data/profiles/*.yaml, built in).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace eta::engine {

struct ModelArch {
  std::string name;
  int layers = 0;
  int hidden = 0;
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int intermediate = 0;
  int vocab = 0;
  double params = 0;
  int dtype_bytes = 2;
  int max_model_len = 0;
  double activation_reserve_gib = 0;
  // Model names (Hugging Face ids or their last path component) that `eta vllm-sim --model`
  // resolves to this shape, compared case-insensitively.
  std::vector<std::string> models;

  // 2 (K,V) x layers x kv_heads x head_dim x dtype_bytes.
  double kv_bytes_per_token() const;
  // Parameters in one layer's linear operators (QKV, O, MLP up/gate/down).
  double linear_params_per_layer() const;
  double weight_bytes() const { return params * dtype_bytes; }
  // linear_params_per_layer() x layers: what linear-operator time scales with.
  double linear_params() const { return linear_params_per_layer() * layers; }
};

struct GpuProfile {
  std::string name;
  std::string description;
  double peak_tflops = 0;
  double mem_bw_tbps = 0;
  double mem_gib = 0;
  double bw_efficiency = 0;
  double flops_efficiency = 0;
  double step_overhead_ms = 0;
  int max_num_seqs = 0;
  int max_num_batched_tokens = 0;
  // Tensor parallelism over the GPUs' interconnect (NVLink): the bus bandwidth NCCL's
  // all-reduce reaches per GPU (nccl-tests' busbw, GB/s) and the latency of one small
  // all-reduce (microseconds). 0: not given; TP > 1 needs both.
  double allreduce_busbw_gbps = 0;
  double allreduce_latency_us = 0;
  std::string linear_ops_arch;
  std::vector<std::pair<int, double>> linear_ops_ms;  // (tokens in step, ms), ascending
  // Linear parameters (per layer x layers) of linear_ops_arch, which scale the table to another
  // arch. Filled in by make_config; 0: looked up in the built-in archs (scale 1 if not there).
  double linear_ops_arch_params = 0;
};

struct ProfileSet {
  std::map<std::string, GpuProfile> gpus;
  std::map<std::string, ModelArch> archs;

  // The profiles built into the binary from data/profiles/*.yaml.
  static const ProfileSet& builtin();
  // Parses YAML text with top-level `gpus:` and/or `archs:` maps. On error returns false and
  // sets `error` to one line naming the problem.
  static bool from_yaml(const std::string& text, ProfileSet& out, std::string& error);
  // Adds/overrides entries from another set.
  void merge(const ProfileSet& other);
  // The arch whose name or one of whose `models` equals `model` (a Hugging Face id such as
  // meta-llama/Llama-2-7b-chat-hf, or a local path), case-insensitively; a path's last
  // component is tried too. nullptr if none.
  const ModelArch* arch_for_model(const std::string& model) const;
};

}  // namespace eta::engine
