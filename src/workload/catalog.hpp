// Named workloads: "NAME" or "NAME:key=value,key=value", e.g. "shared-prefix:k=8,L=2048,f=0.8".
//   azure-conv     <data_dir>/azure_llm_2023_conv.csv
//   mooncake-conv  <data_dir>/mooncake_conversation.jsonl
//   synthetic | shared-prefix | multi-turn | bursty-mix   (synthetic.hpp)
//   a path (contains '/' or ends in .csv/.jsonl/.json): a trace file in either format
// Keys every workload takes: n (keep the first n requests), seed, api (completions|chat),
// rate (traces: scale times to this mean rate; generators: their arrival rate).
// The list of keys and defaults: workload_help() and docs/workloads.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "workload/workload.hpp"

namespace eta::workload {

inline constexpr std::string_view kAzureConvFile = "azure_llm_2023_conv.csv";
inline constexpr std::string_view kMooncakeConvFile = "mooncake_conversation.jsonl";

struct WorkloadContext {
  std::string data_dir;  // directory holding the trace files (e.g. "<repo>/../shared/data")
  uint64_t seed = 0;     // default seed (a "seed=" key overrides it)
  bool compute_block_hashes = true;
  int block_size = kDefaultBlockSize;
};

struct WorkloadSpec {
  std::string name;  // workload name or file path
  std::map<std::string, std::string> params;
};
// Splits "name:k=v,k=v"; false with an error on an empty name, a key without '=', or a
// repeated key.
bool parse_workload_spec(std::string_view text, WorkloadSpec& out, std::string& error);

// Builds the workload; false with a one-line error (unknown name or key, bad value, unreadable
// or malformed file naming the file and line).
bool make_workload(std::string_view spec, const WorkloadContext& context, Workload& out,
                   std::string& error);

// The built-in names, in a stable order.
const std::vector<std::string>& workload_names();
// One paragraph per workload: what it is, its keys and their defaults.
std::string workload_help();

// The directory holding the named traces: `given` if not empty; else $ETA_SHARED_DIR/data; else
// the nearest shared/data above the working directory, then above the executable; else
// "../shared/data".
std::string resolve_data_dir(const std::string& given);

}  // namespace eta::workload
