// eta_engine_fidelity: compares the simulated engine with the calibration facts in
// shared/data/calibration/ and measures its saturation throughput on the Azure conversation
// trace. Prints markdown.
//
//   eta_engine_fidelity [--calibration CSV] [--trace azure_llm_2023_conv.csv]
//   eta_engine_fidelity --tp ARCH [--trace CSV]    tensor parallelism 1/2/4/8 of one shape
//
// Defaults are the files under ../shared/data next to the source tree. Everything runs in
// simulated time; the whole run takes a few seconds of CPU. Without --tp the output is what it
// was before tensor parallelism existed (TP 1 throughout).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.hpp"

#ifndef ETA_SHARED_DIR
#define ETA_SHARED_DIR "../shared"
#endif

namespace {

using eta::engine::Engine;
using eta::engine::EngineConfig;
using eta::engine::EngineRequest;
using eta::engine::FinishReason;
using eta::engine::RequestId;
using eta::engine::StepResult;

constexpr const char* kArch = "llama-2-7b";

EngineConfig config_for(const std::string& arch, const std::string& gpu) {
  EngineConfig c;
  std::string error;
  if (!eta::engine::make_config(eta::engine::ProfileSet::builtin(), arch, gpu, c, error)) {
    std::fprintf(stderr, "eta_engine_fidelity: %s\n", error.c_str());
    std::exit(2);
  }
  return c;
}

// (gpu prefix in the CSV, tokens) -> ms
std::map<std::pair<std::string, int>, double> read_calibration(const std::string& path) {
  std::map<std::pair<std::string, int>, double> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("gpu,", 0) == 0) continue;
    std::stringstream ss(line);
    std::string gpu, tokens, ms;
    std::getline(ss, gpu, ',');
    std::getline(ss, tokens, ',');
    std::getline(ss, ms, ',');
    const std::string short_name = gpu.substr(0, gpu.find('-'));  // "h100-80gb" -> "h100"
    out[{short_name, std::stoi(tokens)}] = std::stod(ms);
  }
  return out;
}

std::string pct(double model, double reference) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", 100.0 * (model - reference) / reference);
  return buf;
}

// Deviation from a range: 0 inside, else relative to the nearest bound.
std::string range_dev(double v, double lo, double hi) {
  if (v >= lo && v <= hi) return "in range";
  return v < lo ? pct(v, lo) + " (below)" : pct(v, hi) + " (above)";
}

// Steady decode: `seqs` requests with `prompt` tokens each; once all decode, the mean step time
// over `window` steps (each step gives every request one token, so it is the ITL).
struct DecodeResult {
  double itl_ms = 0;
  double mean_context = 0;
  uint64_t preemptions = 0;
};

DecodeResult steady_decode(const EngineConfig& c, int seqs, int prompt, int window) {
  Engine e(c);
  for (int i = 0; i < seqs; ++i) {
    EngineRequest r;
    r.id = static_cast<RequestId>(i + 1);
    r.prompt_tokens = prompt;
    r.output_tokens = 100000;
    r.output_seed = static_cast<uint64_t>(i);
    if (!e.add_request(r)) {
      std::fprintf(stderr, "eta_engine_fidelity: request does not fit\n");
      std::exit(1);
    }
  }
  double now = 0;
  StepResult s;
  // Until every request has its first token and the step is pure decode.
  std::vector<int> outputs(static_cast<std::size_t>(seqs) + 1, 0);
  while (s.num_decode_seqs != seqs) {
    e.step(now, s);
    now = s.end;
    for (const auto& t : s.tokens) ++outputs[t.id];
  }
  const double start = now;
  double context_sum = 0;
  for (int k = 0; k < window; ++k) {
    // A decoding sequence attends to prompt + outputs so far (the newest token included).
    for (int i = 1; i <= seqs; ++i) context_sum += prompt + outputs[static_cast<std::size_t>(i)];
    e.step(now, s);
    now = s.end;
    for (const auto& t : s.tokens) ++outputs[t.id];
  }
  DecodeResult d;
  d.itl_ms = (now - start) / window * 1e3;
  d.mean_context = context_sum / (static_cast<double>(window) * seqs);
  d.preemptions = e.counters().preemptions;
  return d;
}

// A prompt alone: time from its arrival to its first token.
double prefill_ms(const EngineConfig& c, int prompt, int* steps) {
  Engine e(c);
  EngineRequest r;
  r.id = 1;
  r.prompt_tokens = prompt;
  r.output_tokens = 1;
  e.add_request(r);
  double now = 0;
  *steps = 0;
  while (e.has_unfinished()) {
    now = e.step(now).end;
    ++*steps;
  }
  return now * 1e3;
}

struct TraceRow {
  int prompt = 0;
  int output = 0;
};

std::vector<TraceRow> read_trace(const std::string& path) {
  std::vector<TraceRow> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header TIMESTAMP,ContextTokens,GeneratedTokens
  while (std::getline(in, line)) {
    const auto a = line.find(',');
    const auto b = line.find(',', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    rows.push_back({std::atoi(line.c_str() + a + 1), std::atoi(line.c_str() + b + 1)});
  }
  return rows;
}

struct Throughput {
  int requests = 0;
  int skipped = 0;  // prompt does not fit the context
  int capped = 0;   // output cut to the context (finish "length")
  double window_s = 0;
  uint64_t window_tokens = 0;
  int window_finished = 0;
  double total_s = 0;
  uint64_t preemptions = 0;
  double mean_running = 0;
  double mean_step_ms = 0;
  uint64_t steps = 0;
};

// Saturation: the waiting queue is topped up to at least `depth` requests before every step,
// so the engine always has work; throughput is measured while the trace lasts (the drain at the
// end, with a shrinking batch, is excluded).
Throughput saturate(const EngineConfig& c, const std::vector<TraceRow>& trace, int depth) {
  Throughput t;
  Engine e(c);
  const int max_len = e.config().max_model_len;
  std::mt19937_64 rng(12345);
  std::vector<uint32_t> tokens;
  std::size_t next = 0;
  RequestId id = 0;
  double now = 0;
  uint64_t tokens_out = 0;
  int finished = 0;
  double running_sum = 0;
  StepResult s;
  bool trace_left = true;
  while (trace_left || e.has_unfinished()) {
    while (trace_left && e.num_waiting() < depth) {
      if (next >= trace.size()) {
        trace_left = false;
        t.window_s = now;
        t.window_tokens = tokens_out;
        t.window_finished = finished;
        break;
      }
      const TraceRow row = trace[next++];
      if (row.prompt >= max_len) {
        ++t.skipped;
        continue;
      }
      int output = std::max(row.output, 1);
      FinishReason reason = FinishReason::kStop;
      if (row.prompt + output > max_len) {
        output = max_len - row.prompt;
        reason = FinishReason::kLength;
        ++t.capped;
      }
      tokens.resize(static_cast<std::size_t>(row.prompt));
      for (uint32_t& tok : tokens) tok = static_cast<uint32_t>(rng() % 32000);
      EngineRequest r;
      r.id = ++id;
      r.prompt_tokens = row.prompt;
      r.block_hashes = eta::engine::chain_block_hashes(tokens, c.block_size);
      r.output_tokens = output;
      r.finish_reason = reason;
      r.output_seed = rng();
      r.arrival_time = now;
      if (!e.add_request(std::move(r))) {
        ++t.skipped;
        continue;
      }
      ++t.requests;
    }
    e.step(now, s);
    if (s.idle()) break;  // cannot happen with work queued; guards against a hang
    now = s.end;
    tokens_out += s.tokens.size();
    finished += static_cast<int>(s.finished.size());
    running_sum += e.num_running() + static_cast<double>(s.finished.size());
  }
  t.total_s = now;
  t.preemptions = e.counters().preemptions;
  t.steps = e.counters().steps;
  t.mean_running = t.steps ? running_sum / static_cast<double>(t.steps) : 0;
  t.mean_step_ms = t.steps ? now / static_cast<double>(t.steps) * 1e3 : 0;
  return t;
}

// vLLM's benchmark_latency: `batch` requests of `prompt` tokens arrive together and each
// generates exactly `output` tokens; the time until the last one finishes.
double batch_latency_s(const EngineConfig& c, int batch, int prompt, int output) {
  Engine e(c);
  for (int i = 0; i < batch; ++i) {
    EngineRequest r;
    r.id = static_cast<RequestId>(i + 1);
    r.prompt_tokens = prompt;
    r.output_tokens = output;
    r.output_seed = static_cast<uint64_t>(i);
    if (!e.add_request(r)) return -1;
  }
  double now = 0;
  while (e.has_unfinished()) now = e.step(now).end;
  return now;
}

// Tensor parallelism of one shape on both GPU profiles: KV capacity, decode ITL, prefill,
// the all-reduce share of a step, vLLM's published benchmark_latency figure, and saturation
// throughput on the trace (max_model_len 4096 for every TP size so that the rows compare).
int tp_study(const std::string& arch, const std::string& trace_path) {
  const std::vector<TraceRow> trace = read_trace(trace_path);
  std::printf("# Tensor parallelism: %s (block 16, util 0.9, max_model_len 4096)\n\n",
              arch.c_str());
  std::printf(
      "| GPU | TP | KV blocks per GPU | KV tokens | ITL batch 1 ms | ITL batch 64 ms | "
      "all-reduce share of a batch-1 step | prefill 4096 alone ms | output tok/s (trace) | "
      "tok/s per GPU | preemptions |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string g : {"h100", "a100"}) {
    for (int tp : {1, 2, 4, 8}) {
      EngineConfig c = config_for(arch, g);
      c.tensor_parallel_size = tp;
      c.max_model_len = 4096;
      std::string error;
      if (!eta::engine::check_config(c, error)) {
        std::printf("| %s | %d | %s |\n", g.c_str(), tp, error.c_str());
        continue;
      }
      const EngineConfig r = c.resolved();
      if (r.num_gpu_blocks * static_cast<int64_t>(r.block_size) < r.max_model_len) {
        std::printf(
            "| %s | %d | %d (does not fit: weights %.0f GB per GPU) | - | - | - | - | - "
            "| - | - | - |\n",
            g.c_str(), tp, r.num_gpu_blocks, r.arch.weight_bytes() / tp / 1e9);
        continue;
      }
      const DecodeResult d1 = steady_decode(r, 1, 496, 32);
      const DecodeResult d64 = steady_decode(r, 64, 496, 32);
      const eta::engine::StepTimeModel m(r);
      eta::engine::BatchShape one;
      one.num_tokens = 1;
      one.num_sampled = 1;
      one.decode_kv_tokens = 497;
      int steps = 0;
      const double prefill = prefill_ms(r, 4096, &steps);
      std::string tput = "-", per_gpu = "-", pre = "-";
      if (!trace.empty()) {
        const Throughput t = saturate(r, trace, 64);
        const double tok_s = t.window_s > 0 ? static_cast<double>(t.window_tokens) / t.window_s : 0;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.0f", tok_s);
        tput = buf;
        std::snprintf(buf, sizeof buf, "%.0f", tok_s / tp);
        per_gpu = buf;
        pre = std::to_string(t.preemptions);
      }
      std::printf("| %s | %d | %d | %lld | %.2f | %.2f | %.0f%% | %.1f | %s | %s | %s |%s\n",
                  g.c_str(), tp, r.num_gpu_blocks,
                  static_cast<long long>(r.num_gpu_blocks) * r.block_size, d1.itl_ms, d64.itl_ms,
                  100.0 * m.allreduce_ms(1) / m.step_ms(one), prefill, tput.c_str(),
                  per_gpu.c_str(), pre.c_str(), d64.preemptions ? " (batch 64 preempted)" : "");
    }
  }
  // vLLM PR #2192 (custom all-reduce, Dec 2023): benchmark_latency.py, Llama 70B on A100-80G,
  // -tp 4, batch 64, input 256, output 256: 14.57 s (16.37 s with NCCL before it). An older
  // vLLM (V0 scheduler and kernels) than the one the profiles describe.
  std::printf(
      "\n## vLLM benchmark_latency, published (vLLM PR #2192): Llama 70B, A100-80G, TP 4, "
      "batch 64, 256 in, 256 out\n\n| shape | model s | published s | deviation |\n"
      "|---|---|---|---|\n");
  EngineConfig c = config_for(arch, "a100");
  c.tensor_parallel_size = 4;
  c.max_model_len = 4096;
  const double s = batch_latency_s(c.resolved(), 64, 256, 256);
  std::printf("| %s | %.2f | 14.57 | %s |\n", arch.c_str(), s, pct(s, 14.57).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string calibration =
      std::string(ETA_SHARED_DIR) + "/data/calibration/llama-2-7b-linear-ops.csv";
  std::string trace_path = std::string(ETA_SHARED_DIR) + "/data/azure_llm_2023_conv.csv";
  std::string tp_arch;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--calibration" || a == "--trace") && i + 1 < argc) {
      (a == "--calibration" ? calibration : trace_path) = argv[++i];
    } else if (a == "--tp" && i + 1 < argc) {
      tp_arch = argv[++i];
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: eta_engine_fidelity [--calibration CSV] [--trace CSV] [--tp ARCH]\n");
      return 0;
    } else {
      std::fprintf(stderr, "eta_engine_fidelity: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (!tp_arch.empty()) return tp_study(tp_arch, trace_path);
  const auto csv = read_calibration(calibration);
  if (csv.empty()) {
    std::fprintf(stderr, "eta_engine_fidelity: cannot read %s\n", calibration.c_str());
    return 2;
  }

  const std::vector<std::string> gpus = {"h100", "a100"};
  std::printf("# Engine fidelity (%s, defaults: vLLM V1 batch limits, block 16, util 0.9)\n\n",
              kArch);

  std::printf("## Linear operators per step (model = the GPU profile's table)\n\n");
  std::printf("| GPU | tokens in step | model ms | CSV ms | deviation |\n|---|---|---|---|---|\n");
  for (const std::string& g : gpus) {
    const eta::engine::StepTimeModel m(config_for(kArch, g).resolved());
    for (const auto& [key, ms] : csv) {
      if (key.first != g) continue;
      std::printf("| %s | %d | %.2f | %.2f | %s |\n", g.c_str(), key.second,
                  m.linear_ms(key.second), ms, pct(m.linear_ms(key.second), ms).c_str());
    }
  }

  std::printf("\n## Decode inter-token latency (steady decode, every sequence in the batch)\n\n");
  std::printf(
      "| GPU | batch | context (tokens, mean over the batch) | model ITL ms | calibration fact | "
      "deviation |\n"
      "|---|---|---|---|---|---|\n");
  struct Case {
    int batch;
    int prompt;
  };
  // 256 x 512 tokens (131k) exceeds llama-2-7b's KV cache on 80 GB (~118k tokens): batch 256
  // uses a shorter prompt so that it runs without preemption. The first requests decode while
  // the last ones still prefill, so the mean context is measured, not set.
  const Case cases[] = {{1, 496}, {32, 496}, {64, 496}, {256, 352}};
  for (const std::string& g : gpus) {
    const EngineConfig c = config_for(kArch, g);
    const bool h100 = g == "h100";
    for (const Case& k : cases) {
      const DecodeResult d = steady_decode(c, k.batch, k.prompt, 32);
      std::string fact = "-";
      std::string dev = "-";
      if (k.batch == 1) {
        const double ref = h100 ? 6.0 : 10.0;
        fact = h100 ? "about 6 ms" : "about 10 ms";
        dev = pct(d.itl_ms, ref);
      } else if (k.batch <= 64) {
        fact = h100 ? "10-15 ms (moderate batch)" : "15-25 ms (moderate batch)";
        dev = h100 ? range_dev(d.itl_ms, 10, 15) : range_dev(d.itl_ms, 15, 25);
      } else {
        fact = "none published (KV-read bound)";
      }
      std::printf("| %s | %d | %.0f | %.2f | %s | %s |%s\n", g.c_str(), k.batch, d.mean_context,
                  d.itl_ms, fact.c_str(), dev.c_str(), d.preemptions ? " (preempted!)" : "");
    }
  }

  std::printf("\n## Prefill of one prompt alone (arrival to first token)\n\n");
  std::printf(
      "Facts: per chunk of n new tokens after c computed ones (chunks of at most "
      "max_num_batched_tokens), the CSV's linear-operator time at n tokens plus the calibration "
      "README's attention FLOPs, 4 x layers x hidden x n x (c + n), at 65%% of peak FLOP/s.\n\n");
  std::printf(
      "| GPU | prompt | steps | model ms | CSV linear ops ms | facts: linear + attention ms | "
      "deviation from facts |\n|---|---|---|---|---|---|---|\n");
  for (const std::string& g : gpus) {
    const EngineConfig c = config_for(kArch, g);
    const EngineConfig r = c.resolved();
    for (int prompt : {512, 4096}) {
      int steps = 0;
      const double ms = prefill_ms(c, prompt, &steps);
      double linear = 0;
      double facts = 0;
      bool have_all = true;
      for (int done = 0; done < prompt;) {
        const int n = std::min(prompt - done, r.max_num_batched_tokens);
        const auto it = csv.find({g, n});
        if (it == csv.end()) {
          have_all = false;
          break;
        }
        const double flops = 4.0 * r.arch.layers * r.arch.hidden * static_cast<double>(n) *
                             static_cast<double>(done + n);
        linear += it->second;
        facts += it->second + flops / (r.gpu.flops_efficiency * r.gpu.peak_tflops * 1e12) * 1e3;
        done += n;
      }
      std::printf("| %s | %d | %d | %.1f | %.1f | %.1f | %s |\n", g.c_str(), prompt, steps, ms,
                  linear, facts, have_all ? pct(ms, facts).c_str() : "-");
    }
  }

  const std::vector<TraceRow> trace = read_trace(trace_path);
  if (trace.empty()) {
    std::printf("\n(trace %s not readable: saturation throughput skipped)\n", trace_path.c_str());
    return 0;
  }
  std::printf(
      "\n## Saturation throughput on the Azure conversation trace (%zu requests)\n\n"
      "Prompts of ContextTokens random tokens (no prefix sharing), output = GeneratedTokens "
      "(stop); the waiting queue is kept at >= 64 requests; rates are measured in simulated "
      "time while the trace lasts (the final drain is excluded).\n\n",
      trace.size());
  std::printf(
      "| GPU | arch | requests run | skipped (prompt >= context) | output capped to context | "
      "output tok/s | requests/s | mean running | mean step ms | preemptions |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string& arch : {std::string("llama-3.1-8b"), std::string(kArch)}) {
    for (const std::string& g : gpus) {
      const EngineConfig c = config_for(arch, g);
      const Throughput t = saturate(c.resolved(), trace, 64);
      std::printf("| %s | %s | %d | %d | %d | %.0f | %.2f | %.0f | %.1f | %llu |\n", g.c_str(),
                  arch.c_str(), t.requests, t.skipped, t.capped,
                  t.window_s > 0 ? static_cast<double>(t.window_tokens) / t.window_s : 0.0,
                  t.window_s > 0 ? t.window_finished / t.window_s : 0.0, t.mean_running,
                  t.mean_step_ms, static_cast<unsigned long long>(t.preemptions));
    }
  }
  return 0;
}
