// Decision time of the routing policies (Policy::pick_into with a reused Decision, as the router
// calls it) at 4, 16, 64 and 1,024 replicas, and the once-per-request prefix match over every
// replica (PrefixIndex::match_all). Each replica carries a realistic ledger (a few dozen requests
// in flight at random stages), half of them a fresh scrape showing extra work from other
// routers. Targets (docs/benchmarks.md): eta <= 2 us at 16 replicas, <= 20 us at 1,024. eta runs
// its full estimate on every replica up to 64 replicas and on a shortlist above (docs/policies.md,
// eta); BM_PolicyDecide_EtaFull/1024 is the full evaluation of every replica, for comparison.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cluster/ledger.hpp"
#include "cluster/view.hpp"
#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "policy/registry.hpp"
#include "predict/speed_model.hpp"
#include "prefix/prefix_index.hpp"

namespace {

using namespace eta;

struct Fixture {
  cluster::Ledger ledger;
  std::vector<std::string> names;
  std::vector<std::unique_ptr<predict::SpeedModel>> speeds;
  std::vector<cluster::ReplicaView> views;
  prefix::PrefixIndex index;
  std::vector<uint64_t> prompt;  // the request's block hashes
  std::vector<uint32_t> matched;
  cluster::RequestFeatures features;

  explicit Fixture(int n) : ledger(n), names(static_cast<size_t>(n)), index(n) {
    engine::EngineConfig config;
    std::string error;
    engine::make_config(engine::ProfileSet::builtin(), "llama-2-7b", "h100", config, error);
    config = config.resolved();
    auto tables = predict::StepTables::make(config);
    std::mt19937_64 rng(42);
    uint64_t id = 1;
    for (int r = 0; r < n; ++r) {
      speeds.push_back(std::make_unique<predict::SpeedModel>(tables));
      speeds.back()->set_factors(0.6 + 0.4 * static_cast<double>(rng() % 100) / 100, 1.0, 50);
      // 20..60 requests in flight, a third still prefilling.
      const int in_flight = 20 + static_cast<int>(rng() % 41);
      for (int i = 0; i < in_flight; ++i) {
        cluster::DispatchInfo info;
        info.prompt_tokens = 100 + static_cast<int>(rng() % 3000);
        info.cached_tokens = static_cast<int>(rng() % 200);
        info.predicted_output_tokens = 20 + static_cast<int>(rng() % 800);
        ledger.dispatch(id, r, info, 0);
        if (rng() % 3 != 0) ledger.tokens(id, 1 + static_cast<int>(rng() % 400), 0);
        ++id;
      }
      names[static_cast<size_t>(r)] = "http://10.0.0." + std::to_string(r) + ":8000";
      cluster::ReplicaView v;
      v.index = r;
      v.name = names[static_cast<size_t>(r)];
      v.ledger = &ledger.summary(r);
      v.speed = speeds.back().get();
      v.limits = {config.max_num_batched_tokens, config.max_num_seqs, config.num_gpu_blocks,
                  config.block_size};
      if (r % 2 == 0) {
        v.scrape.valid = true;
        v.scrape.running = v.ledger->in_flight + static_cast<int>(rng() % 10);
        v.scrape.waiting = static_cast<int>(rng() % 8);
        v.scrape.kv_usage = 0.3 + 0.5 * static_cast<double>(rng() % 100) / 100;
        v.scrape.num_gpu_blocks = config.num_gpu_blocks;
        v.scrape.block_size = 16;
      }
      views.push_back(v);
    }
    // Prefix index: a 100-block system prompt on every replica, then per-user conversations;
    // the request continues one of them (125 blocks, 2000 tokens).
    std::vector<uint64_t> system(100);
    for (auto& h : system) h = rng();
    for (int r = 0; r < n; ++r) {
      index.set_capacity(r, config.num_gpu_blocks);
      for (int conv = 0; conv < 20; ++conv) {
        std::vector<uint64_t> h = system;
        for (int b = 0; b < 25; ++b) h.push_back(rng());
        index.insert(r, h);
      }
    }
    prompt = system;
    for (int b = 0; b < 25; ++b) prompt.push_back(rng());
    index.insert(n / 2, prompt);
    matched.resize(static_cast<size_t>(n));
    index.match_all(prompt, matched);
    features.model = "llama-2-7b";
    features.prompt_tokens = static_cast<int>(prompt.size()) * 16 + 7;
    features.block_hashes = prompt;
    features.matched_blocks = matched;
    features.predicted_output_tokens = 180;
  }

  cluster::ClusterView view() {
    cluster::ClusterView v;
    v.now = 0.5;
    v.replicas = views;
    v.averages = ledger.averages();
    return v;
  }
};

void decide(benchmark::State& state, const char* policy_name) {
  Fixture f(static_cast<int>(state.range(0)));
  std::string error;
  auto policy = policy::make_policy(policy_name, {}, error);
  if (!policy) {
    state.SkipWithError(error.c_str());
    return;
  }
  policy::Rng rng(1);
  cluster::Decision d;
  const cluster::ClusterView view = f.view();
  f.features.session_hash = 0x1234567890abcdefull;  // only `session` reads it
  for (auto _ : state) {
    policy->pick_into(f.features, view, rng, d);
    benchmark::DoNotOptimize(d.replica);
  }
  state.counters["ns_per_replica"] = benchmark::Counter(
      static_cast<double>(state.range(0)),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_PolicyDecide_Eta(benchmark::State& s) {
  decide(s, "eta");
}
void BM_PolicyDecide_EtaFull(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  std::string error;
  auto policy = policy::make_policy("eta", {{"shortlist_above", "1000000"}}, error);
  if (!policy) {
    state.SkipWithError(error.c_str());
    return;
  }
  policy::Rng rng(1);
  cluster::Decision d;
  const cluster::ClusterView view = f.view();
  for (auto _ : state) {
    policy->pick_into(f.features, view, rng, d);
    benchmark::DoNotOptimize(d.replica);
  }
}
void BM_PolicyDecide_LlmD(benchmark::State& s) {
  decide(s, "llm-d");
}
void BM_PolicyDecide_CacheAware(benchmark::State& s) {
  decide(s, "cache-aware");
}
void BM_PolicyDecide_LeastRequest(benchmark::State& s) {
  decide(s, "least-request");
}
void BM_PolicyDecide_PowerOfTwo(benchmark::State& s) {
  decide(s, "power-of-two");
}
void BM_PolicyDecide_Session(benchmark::State& s) {
  decide(s, "session");
}

// The prefix match of one request against every replica (done once per request, shared by all
// policies), then eta's pick: the whole per-request routing decision.
void BM_PolicyPrefixMatchAll(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.index.match_all(f.prompt, f.matched));
  }
}

void BM_PolicyDecide_EtaWithPrefixMatch(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  std::string error;
  auto policy = policy::make_policy("eta", {}, error);
  policy::Rng rng(1);
  cluster::Decision d;
  const cluster::ClusterView view = f.view();
  for (auto _ : state) {
    f.index.match_all(f.prompt, f.matched);
    policy->pick_into(f.features, view, rng, d);
    benchmark::DoNotOptimize(d.replica);
  }
}

BENCHMARK(BM_PolicyDecide_Eta)->Arg(4)->Arg(16)->Arg(64)->Arg(1024);
BENCHMARK(BM_PolicyDecide_EtaFull)->Arg(1024);
BENCHMARK(BM_PolicyDecide_EtaWithPrefixMatch)->Arg(4)->Arg(16)->Arg(64)->Arg(1024);
BENCHMARK(BM_PolicyPrefixMatchAll)->Arg(4)->Arg(16)->Arg(64)->Arg(1024);
BENCHMARK(BM_PolicyDecide_LlmD)->Arg(16)->Arg(1024);
BENCHMARK(BM_PolicyDecide_CacheAware)->Arg(16)->Arg(1024);
BENCHMARK(BM_PolicyDecide_LeastRequest)->Arg(16)->Arg(1024);
BENCHMARK(BM_PolicyDecide_PowerOfTwo)->Arg(16)->Arg(1024);
BENCHMARK(BM_PolicyDecide_Session)->Arg(16)->Arg(1024);

}  // namespace
