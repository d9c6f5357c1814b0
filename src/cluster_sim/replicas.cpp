#include "cluster_sim/replicas.hpp"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace eta::cluster_sim {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_int(std::string_view text, int& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

bool parse_double(std::string_view text, double& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && std::isfinite(out);
}

struct Item {
  int count = 1;
  engine::EngineConfig config;
  std::string gpu;
};

bool parse_item(std::string_view text, const engine::ProfileSet& profiles, const std::string& arch,
                Item& item, std::string& error) {
  const std::string quoted = "replica '" + std::string(text) + "'";
  if (text.empty()) {
    error = "empty replica in --replicas";
    return false;
  }
  std::string_view head = text.substr(0, text.find(':'));
  std::string_view rest = head.size() < text.size() ? text.substr(head.size() + 1) : "";
  const size_t x = head.find('x');
  // "2xh100": a count before the first 'x' when everything before it is a number.
  if (x != std::string_view::npos && x > 0 && parse_int(head.substr(0, x), item.count)) {
    if (item.count < 1 || item.count > kMaxReplicas) {
      error = quoted + ": the count must be between 1 and " + std::to_string(kMaxReplicas);
      return false;
    }
    head = head.substr(x + 1);
  } else {
    item.count = 1;
  }
  item.gpu = std::string(trim(head));
  if (item.gpu.empty()) {
    error = quoted + ": no GPU named";
    return false;
  }
  if (!engine::make_config(profiles, arch, item.gpu, item.config, error)) {
    error = quoted + ": " + error;
    return false;
  }
  while (!rest.empty()) {
    std::string_view kv = rest.substr(0, rest.find(':'));
    rest = kv.size() < rest.size() ? rest.substr(kv.size() + 1) : "";
    kv = trim(kv);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      error = quoted + ": '" + std::string(kv) + "' is not key=value";
      return false;
    }
    const std::string_view key = trim(kv.substr(0, eq));
    const std::string_view value = trim(kv.substr(eq + 1));
    const std::string bad = quoted + ": " + std::string(key) + " must be ";
    if (key == "speed") {
      if (!parse_double(value, item.config.speed) || !(item.config.speed > 0)) {
        error = bad + "a positive number, got '" + std::string(value) + "'";
        return false;
      }
      continue;
    }
    int* target = key == "max_num_seqs"             ? &item.config.max_num_seqs
                  : key == "max_num_batched_tokens" ? &item.config.max_num_batched_tokens
                  : key == "num_gpu_blocks"         ? &item.config.num_gpu_blocks
                                                    : nullptr;
    if (!target) {
      error = quoted + ": unknown key '" + std::string(key) +
              "' (known: speed, max_num_seqs, max_num_batched_tokens, num_gpu_blocks)";
      return false;
    }
    if (!parse_int(value, *target) || *target < 1) {
      error = bad + "a positive integer, got '" + std::string(value) + "'";
      return false;
    }
  }
  item.config = item.config.resolved();
  if (item.config.num_gpu_blocks <= 0) {
    error = quoted + ": no KV cache blocks fit on " + item.gpu + " for " + arch +
            " (set num_gpu_blocks)";
    return false;
  }
  const int64_t capacity =
      static_cast<int64_t>(item.config.num_gpu_blocks) * item.config.block_size;
  if (item.config.max_model_len > capacity) {
    error = quoted + ": the model's max seq len (" + std::to_string(item.config.max_model_len) +
            ") is larger than the KV cache (" + std::to_string(capacity) + " tokens)";
    return false;
  }
  return true;
}

}  // namespace

bool parse_replicas(std::string_view spec, const engine::ProfileSet& profiles,
                    const std::string& arch, std::vector<ReplicaConfig>& out, std::string& error) {
  out.clear();
  spec = trim(spec);
  if (spec.empty()) {
    error = "--replicas is empty (e.g. 4xh100 or 2xh100,2xa100)";
    return false;
  }
  std::vector<Item> items;
  int total = 0;
  while (true) {
    const size_t comma = spec.find(',');
    Item item;
    if (!parse_item(trim(spec.substr(0, comma)), profiles, arch, item, error)) return false;
    total += item.count;
    if (total > kMaxReplicas) {
      error = "--replicas: more than " + std::to_string(kMaxReplicas) + " replicas";
      return false;
    }
    items.push_back(std::move(item));
    if (comma == std::string_view::npos) break;
    spec = spec.substr(comma + 1);
  }
  const int width = static_cast<int>(std::to_string(std::max(total - 1, 0)).size());
  for (const Item& item : items) {
    for (int k = 0; k < item.count; ++k) {
      ReplicaConfig r;
      r.name = fmt::format("r{:0{}}-{}", out.size(), width, item.gpu);
      r.gpu = item.gpu;
      r.engine = item.config;
      out.push_back(std::move(r));
    }
  }
  return true;
}

std::string engine_key(const engine::EngineConfig& c) {
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}", c.gpu.name, c.arch.name, c.speed, c.max_num_seqs,
                     c.max_num_batched_tokens, c.num_gpu_blocks, c.block_size, c.max_model_len);
}

}  // namespace eta::cluster_sim
