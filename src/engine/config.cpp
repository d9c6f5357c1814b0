// EngineConfig defaults, make_config, block hashing.
#include <algorithm>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/hash.hpp"

namespace eta::engine {

const char* to_string(FinishReason r) {
  switch (r) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
  }
  return "none";
}

int EngineConfig::kv_heads_per_gpu() const {
  const int tp = tensor_parallel_size > 0 ? tensor_parallel_size : 1;
  return std::max(1, arch.kv_heads / tp);
}

int EngineConfig::kv_cache_dtype_bytes() const {
  return kv_cache_dtype.rfind("fp8", 0) == 0 ? 1 : arch.dtype_bytes;
}

double EngineConfig::kv_bytes_per_token_per_gpu() const {
  // The same expression as ModelArch::kv_bytes_per_token(), so TP 1 "auto" is bit-identical.
  return 2.0 * arch.layers * kv_heads_per_gpu() * static_cast<double>(arch.head_dim) *
         kv_cache_dtype_bytes();
}

int EngineConfig::derived_num_gpu_blocks() const {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  const int bs = block_size > 0 ? block_size : 16;
  const double kv_per_token = kv_bytes_per_token_per_gpu();
  if (kv_per_token <= 0) return 0;
  const double tp = tensor_parallel_size > 0 ? tensor_parallel_size : 1;
  const double usable = gpu.mem_gib * kGiB * gpu_memory_utilization - arch.weight_bytes() / tp -
                        arch.activation_reserve_gib * kGiB;
  if (usable <= 0) return 0;
  return static_cast<int>(std::floor(usable / (bs * kv_per_token)));
}

bool check_config(const EngineConfig& c, std::string& error) {
  if (c.tensor_parallel_size < 1) {
    error = fmt::format("tensor_parallel_size must be at least 1 (got {})", c.tensor_parallel_size);
    return false;
  }
  // vLLM's message (ModelConfig.verify_with_parallel_config).
  if (c.arch.q_heads % c.tensor_parallel_size != 0) {
    error = fmt::format(
        "Total number of attention heads ({}) must be divisible by tensor parallel size ({}).",
        c.arch.q_heads, c.tensor_parallel_size);
    return false;
  }
  static constexpr const char* kDtypes[] = {"auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"};
  bool known = false;
  for (const char* d : kDtypes) known = known || c.kv_cache_dtype == d;
  if (!known) {
    error = fmt::format(
        "unknown kv_cache_dtype '{}' (known: auto, bfloat16, fp8, fp8_e4m3, "
        "fp8_e5m2)",
        c.kv_cache_dtype);
    return false;
  }
  if (c.tensor_parallel_size > 1 &&
      (c.gpu.allreduce_busbw_gbps <= 0 || c.gpu.allreduce_latency_us <= 0)) {
    error = fmt::format(
        "GPU profile '{}' has no allreduce_busbw_gbps / allreduce_latency_us: tensor parallel "
        "size {} needs the interconnect",
        c.gpu.name, c.tensor_parallel_size);
    return false;
  }
  return true;
}

EngineConfig EngineConfig::resolved() const {
  EngineConfig c = *this;
  if (c.block_size <= 0) c.block_size = 16;
  if (c.speed <= 0) c.speed = 1.0;
  if (c.max_num_seqs <= 0) c.max_num_seqs = c.gpu.max_num_seqs > 0 ? c.gpu.max_num_seqs : 256;
  if (c.max_num_batched_tokens <= 0) {
    c.max_num_batched_tokens =
        c.gpu.max_num_batched_tokens > 0 ? c.gpu.max_num_batched_tokens : 2048;
  }
  if (c.max_model_len <= 0) c.max_model_len = c.arch.max_model_len;
  if (c.num_gpu_blocks <= 0) c.num_gpu_blocks = c.derived_num_gpu_blocks();
  if (c.long_prefill_token_threshold < 0) c.long_prefill_token_threshold = 0;
  if (c.tensor_parallel_size <= 0) c.tensor_parallel_size = 1;
  return c;
}

namespace {

std::string known_names(const auto& map) {
  std::string out;
  for (const auto& [name, value] : map) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

bool make_config(const ProfileSet& profiles, const std::string& arch, const std::string& gpu,
                 EngineConfig& out, std::string& error) {
  const auto a = profiles.archs.find(arch);
  if (a == profiles.archs.end()) {
    error = fmt::format("unknown model arch '{}' (known: {})", arch, known_names(profiles.archs));
    return false;
  }
  const auto g = profiles.gpus.find(gpu);
  if (g == profiles.gpus.end()) {
    error = fmt::format("unknown GPU profile '{}' (known: {})", gpu, known_names(profiles.gpus));
    return false;
  }
  const auto ref = profiles.archs.find(g->second.linear_ops_arch);
  if (ref == profiles.archs.end()) {
    error = fmt::format("GPU profile '{}' names unknown linear_ops_arch '{}'", gpu,
                        g->second.linear_ops_arch);
    return false;
  }
  EngineConfig c;
  c.arch = a->second;
  c.gpu = g->second;
  c.gpu.linear_ops_arch_params = ref->second.linear_params();
  out = std::move(c);
  return true;
}

uint64_t hash_block(uint64_t parent, std::span<const uint32_t> tokens) {
  uint64_t h = parent;
  for (uint32_t t : tokens) {
    h ^= t;
    h *= 0x100000001b3ull;  // FNV-1a prime
  }
  return nonzero_hash(mix64(h ^ (tokens.size() * 0x9e3779b97f4a7c15ull)));
}

std::vector<uint64_t> chain_block_hashes(std::span<const uint32_t> tokens, int block_size) {
  std::vector<uint64_t> out;
  if (block_size <= 0) return out;
  const std::size_t bs = static_cast<std::size_t>(block_size);
  out.reserve(tokens.size() / bs);
  uint64_t parent = kRootBlockHash;
  for (std::size_t start = 0; start + bs <= tokens.size(); start += bs) {
    parent = hash_block(parent, tokens.subspan(start, bs));
    out.push_back(parent);
  }
  return out;
}

}  // namespace eta::engine
