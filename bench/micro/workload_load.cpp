// Loading the real traces: parse + prompt segments (+ chained block hashes of every prompt).
// Run: build/bench/eta_micro_bench --benchmark_filter=Load
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "workload/trace.hpp"

namespace {

std::string data_dir() {
  if (const char* env = std::getenv("ETA_SHARED_DIR")) return std::string(env) + "/data";
  // bench/micro/ -> repo -> ../shared/data
  return (std::filesystem::path(__FILE__).parent_path() / "../../../shared/data").string();
}

void load(benchmark::State& state, const std::string& file, bool hashes) {
  eta::workload::TraceOptions options;
  options.compute_block_hashes = hashes;
  const std::string path = data_dir() + "/" + file;
  int64_t requests = 0;
  int64_t tokens = 0;
  for (auto _ : state) {
    eta::workload::Workload w;
    std::string error;
    if (!eta::workload::load_trace_file(path, options, w, error)) {
      state.SkipWithError(error.c_str());
      return;
    }
    requests = static_cast<int64_t>(w.requests.size());
    tokens = 0;
    for (const auto& r : w.requests) tokens += r.prompt_tokens;
    benchmark::DoNotOptimize(w);
  }
  state.counters["requests"] = static_cast<double>(requests);
  state.counters["prompt_tokens/s"] = benchmark::Counter(
      static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_LoadMooncakeWithHashes(benchmark::State& state) {
  load(state, "mooncake_conversation.jsonl", true);
}
void BM_LoadMooncakeNoHashes(benchmark::State& state) {
  load(state, "mooncake_conversation.jsonl", false);
}
void BM_LoadAzureWithHashes(benchmark::State& state) {
  load(state, "azure_llm_2023_conv.csv", true);
}

BENCHMARK(BM_LoadMooncakeWithHashes)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadMooncakeNoHashes)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadAzureWithHashes)->Unit(benchmark::kMillisecond);

}  // namespace
