// Cost of one dashboard tick on the router's thread (docs/benchmarks.md §6): the per-replica
// minute windows read for N replicas (advance, p50, p99, rates), and snapshot_json — the replica
// reports, the newest decisions (each with N candidates), the accuracy of the completions since
// the last tick and of the last 1,000 — serialized once. The setting of "64 replicas at 1,000
// requests/s, 4 events/s": 250 new decisions and completions per tick, 10 decisions sent.
// Recording one completion into a window is BM_ReplicaWindowRecord.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "router/dashboard.hpp"
#include "router/window_stats.hpp"

namespace {

using namespace eta::router;

struct Fixture {
  std::vector<ReplicaReport> reports;
  std::vector<ReplicaWindow> windows;
  DecisionLog decisions{1000};
  CompletionLog completions{1000};
  double now = 120.0;

  explicit Fixture(int n) {
    std::mt19937_64 rng(1);
    std::lognormal_distribution<double> ttft(std::log(0.2), 0.7);
    reports.resize(static_cast<size_t>(n));
    windows.assign(static_cast<size_t>(n), ReplicaWindow(0));
    for (int r = 0; r < n; ++r) {
      ReplicaReport& rep = reports[static_cast<size_t>(r)];
      rep.url = "http://10.0.0." + std::to_string(r) + ":8000";
      rep.gpu = "h100";
      rep.arch = "llama-2-7b";
      rep.healthy = rep.health_known = rep.routable = rep.models_known = true;
      rep.models = {"llama-2-7b"};
      rep.scrape.valid = true;
      rep.scrape.running = 30;
      rep.scrape.kv_usage = 0.5;
      rep.predicted_ttft_s = 0.2;
      rep.predicted_e2e_s = 4.0;
      // A minute of 1,000 requests/s spread over the replicas.
      ReplicaWindow& w = windows[static_cast<size_t>(r)];
      for (int i = 0; i < 60000 / n; ++i) w.record(60.0 + i * (60.0 * n / 60000), ttft(rng), 200);
    }
    for (int i = 0; i < 1000; ++i) {
      DecisionRecord* d = decisions.next();
      d->request_id = static_cast<uint64_t>(i);
      d->policy = "eta";
      d->model = "llama-2-7b";
      d->chosen = reports[0].url;
      d->reason = "lowest predicted e2e";
      d->candidates.resize(static_cast<size_t>(n));
      for (int r = 0; r < n; ++r) {
        d->candidates[static_cast<size_t>(r)] = {reports[static_cast<size_t>(r)].url,
                                                 0.2 + r * 1e-3, 4.0 + r * 1e-2, 4.0 + r * 1e-2};
      }
      CompletionRecord c;
      c.request_id = static_cast<uint64_t>(i);
      c.predicted_ttft_s = ttft(rng);
      c.actual_ttft_s = ttft(rng);
      c.predicted_e2e_s = 4 * ttft(rng);
      c.actual_e2e_s = 4 * ttft(rng);
      completions.add(c);
    }
  }
};

void BM_DashboardWindows(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    f.now += 0.25;
    for (size_t r = 0; r < f.windows.size(); ++r) {
      ReplicaWindow& w = f.windows[r];
      w.advance(f.now);
      ReplicaReport& rep = f.reports[r];
      rep.ttft_p50_s = w.ttft_quantile(0.5);
      rep.ttft_p99_s = w.ttft_quantile(0.99);
      rep.requests_per_s = w.requests_per_s(f.now);
      rep.tokens_per_s = w.tokens_per_s(f.now);
    }
    benchmark::DoNotOptimize(f.reports.data());
  }
}
BENCHMARK(BM_DashboardWindows)->Arg(16)->Arg(64);

void BM_DashboardSnapshot(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  SnapshotMeta meta;
  meta.policy = "eta";
  meta.max_decisions = 10;
  size_t bytes = 0;
  for (auto _ : state) {
    StreamCursor cursor{f.decisions.total() - 250, f.completions.total() - 250};
    std::string s = snapshot_json(f.reports, f.decisions, f.completions, meta, cursor);
    bytes = s.size();
    benchmark::DoNotOptimize(s.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_DashboardSnapshot)->Arg(16)->Arg(64);

void BM_ReplicaWindowRecord(benchmark::State& state) {
  ReplicaWindow w(0);
  double t = 0;
  for (auto _ : state) {
    t += 1e-3;
    w.record(t, 0.05 + std::fmod(t, 0.3), 100);
  }
  benchmark::DoNotOptimize(w.ttft_samples());
}
BENCHMARK(BM_ReplicaWindowRecord);

}  // namespace
