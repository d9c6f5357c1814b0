// CPU cost of one engine step in steady decode: N running requests, each emitting one token per
// step (the target is <= 50 us for 256). Run:
//   eta_micro_bench --benchmark_filter=EngineStep
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/engine.hpp"

namespace {

using eta::engine::Engine;
using eta::engine::EngineConfig;
using eta::engine::EngineRequest;
using eta::engine::StepResult;

constexpr int kPromptTokens = 128;
constexpr int kIterations = 20000;

// An engine whose `seqs` requests have all finished their prefill and decode from now on; the
// pool is large enough for kIterations more tokens each, so nothing finishes or is preempted.
Engine decoding_engine(int seqs, double& now) {
  EngineConfig c;
  std::string error;
  if (!eta::engine::make_config(eta::engine::ProfileSet::builtin(), "llama-2-7b", "h100", c,
                                error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::abort();
  }
  c.num_gpu_blocks = seqs * ((kPromptTokens + kIterations + 64) / 16 + 1);
  c.max_num_seqs = seqs;
  c.max_num_batched_tokens = 8192;
  Engine e(c);
  for (int i = 0; i < seqs; ++i) {
    std::vector<uint32_t> prompt(kPromptTokens);
    for (int t = 0; t < kPromptTokens; ++t) prompt[t] = static_cast<uint32_t>(i * 1000 + t);
    EngineRequest r;
    r.id = static_cast<eta::engine::RequestId>(i + 1);
    r.prompt_tokens = kPromptTokens;
    r.block_hashes = eta::engine::chain_block_hashes(prompt, 16);
    r.output_tokens = kIterations + 1000;
    r.output_seed = static_cast<uint64_t>(i);
    e.add_request(std::move(r));
  }
  now = 0;
  StepResult s;
  while (e.num_waiting() > 0 || s.num_prefill_tokens > 0 || s.tokens.empty()) {
    e.step(now, s);
    now = s.end;
  }
  return e;
}

void BM_EngineStepDecode(benchmark::State& state) {
  const int seqs = static_cast<int>(state.range(0));
  double now = 0;
  Engine e = decoding_engine(seqs, now);
  StepResult s;
  for (auto _ : state) {
    e.step(now, s);
    now = s.end;
    benchmark::DoNotOptimize(s.tokens.data());
  }
  if (s.num_decode_seqs != seqs) state.SkipWithError("not a steady decode batch");
  state.counters["seqs"] = seqs;
  state.SetItemsProcessed(state.iterations() * seqs);  // tokens
}
BENCHMARK(BM_EngineStepDecode)
    ->Arg(256)
    ->Arg(1024)
    ->Iterations(kIterations)
    ->Unit(benchmark::kMicrosecond);

// The same through the by-value step(now), which allocates a fresh StepResult each step.
void BM_EngineStepDecodeByValue(benchmark::State& state) {
  const int seqs = static_cast<int>(state.range(0));
  double now = 0;
  Engine e = decoding_engine(seqs, now);
  for (auto _ : state) {
    StepResult s = e.step(now);
    now = s.end;
    benchmark::DoNotOptimize(s.tokens.data());
  }
  state.SetItemsProcessed(state.iterations() * seqs);
}
BENCHMARK(BM_EngineStepDecodeByValue)
    ->Arg(256)
    ->Iterations(kIterations)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
