// Peer sync's cost per request (docs/benchmarks.md "Peer sync"): one request's three events at
// the origin (dispatch with 64 prefix blocks, first token, finish), each encoded as its own packet
// (the worst case: no batching with other events of the same loop turn), decoded and applied at
// one receiver (ledger + prefix index). BM_PeerSyncSend is the origin's side alone.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "cluster/state.hpp"
#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "peer/peer_sync.hpp"

namespace {

using namespace eta;

struct Side {
  explicit Side(uint64_t id) : sync(id, state) {
    engine::EngineConfig config;
    std::string error;
    engine::make_config(engine::ProfileSet::builtin(), "llama-2-7b", "h100", config, error);
    for (int i = 0; i < 4; ++i) {
      cluster::ReplicaSpec spec;
      spec.name = "http://127.0.0.1:800" + std::to_string(i);
      spec.engine = config;
      state.add_replica(spec);
      sync.set_replica(i, spec.name);
    }
  }
  cluster::ClusterState state;
  peer::PeerSync sync;
};

void run(benchmark::State& bs, bool receive) {
  Side a(1), b(2);
  std::vector<uint64_t> hashes(64);
  cluster::PreparedRequest p;
  uint64_t id = 0;
  int64_t bytes = 0;
  for (auto _ : bs) {
    ++id;
    for (size_t i = 0; i < hashes.size(); ++i) hashes[i] = id * 131 + i;
    a.state.prepare("m", 1024, hashes, 200, false, std::nullopt, p);
    const int replica = static_cast<int>(id % 4);
    a.sync.dispatched(id, replica, p.features);
    std::string d = a.sync.take_packet();
    a.sync.first_token(id, 1);
    std::string t = a.sync.take_packet();
    a.sync.finished(id, 150);
    std::string f = a.sync.take_packet();
    bytes += static_cast<int64_t>(d.size() + t.size() + f.size());
    if (receive) {
      b.sync.receive(d, 0);
      b.sync.receive(t, 0);
      b.sync.receive(f, 0);
    }
    benchmark::DoNotOptimize(f.data());
  }
  bs.counters["bytes_per_request"] =
      benchmark::Counter(static_cast<double>(bytes) / static_cast<double>(id));
}

void BM_PeerSyncSend(benchmark::State& bs) {
  run(bs, false);
}
void BM_PeerSyncSendAndApply(benchmark::State& bs) {
  run(bs, true);
}
BENCHMARK(BM_PeerSyncSend);
BENCHMARK(BM_PeerSyncSendAndApply);

}  // namespace
