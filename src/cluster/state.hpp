// Everything a router (or the cluster simulator's router model) keeps about its replicas, wired
// together: the ledger, one speed model per replica, the prefix index, the output-length
// predictor, the scrapes, and the ClusterView policies read. The owner reports events; the
// learning loops (speed from TTFTs and token gaps, output lengths from completions, prefix
// holdings from dispatches) happen here, so `eta route` and `eta cluster-sim` learn the same way.
//
//   prepare()      request -> RequestFeatures (output prediction, prefix matches on every replica)
//   view(now)      the ClusterView to hand to Policy::pick
//   on_dispatch()  after the pick: ledger, prefix index, the TTFT predicted at factor 1
//   on_tokens()    each relayed chunk with n output tokens
//   on_step_tokens()  or: one engine step's tokens at once (the cluster simulator)
//   on_finish()    completion (or on_abort)
//   update_scrape  each /metrics scrape
//   on_foreign_*() another router's dispatches, tokens and finishes (peer sync: cluster-sim's
//                  --peer-sync, and `eta route` through src/peer/peer_sync.*)
// Single-threaded: the owner serialises calls.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/ledger.hpp"
#include "cluster/view.hpp"
#include "engine/engine.hpp"
#include "predict/completion_model.hpp"
#include "predict/latency_model.hpp"
#include "predict/output_predictor.hpp"
#include "predict/speed_model.hpp"
#include "prefix/kv_event_index.hpp"
#include "prefix/prefix_index.hpp"

namespace eta::cluster {

struct ReplicaSpec {
  std::string name;
  // The replica's expected engine: GPU profile and model (engine::make_config; h100 if the
  // operator configures nothing). Its limits and step times are the prior the speed model
  // starts from.
  engine::EngineConfig engine;
  double weight = 1.0;
};

struct ClusterStateOptions {
  double stale_after_s = 2.0;  // scrapes older than this are ignored by policies
  int hash_block_size = 16;    // tokens per prefix-index block
  predict::SpeedModelOptions speed;
  predict::OutputPredictorOptions output;
  predict::CompletionModelOptions completion;  // for the prediction recorded at dispatch
  // false: the speed models stay at their prior (no TTFT / gap lessons, no completion estimate
  // at dispatch); for owners whose policy never reads them (policy::Policy::reads).
  bool learn_speed = true;
  bool learn_output = true;
  // llm-d-latency's TTFT / TPOT regressor (predict::LatencyModel), learned from the features at
  // dispatch and the observed first token (TTFT) and finish (mean TPOT); false: none kept.
  bool learn_latency = true;
  predict::LatencyModelOptions latency;
  // false: no prefix index (every match is 0, dispatches record nothing), for the same owners.
  bool track_prefix = true;
};

// A request's features plus the storage they point into. Reuse one per thread of control.
struct PreparedRequest {
  RequestFeatures features;
  std::string model;
  std::vector<uint64_t> block_hashes;
  std::vector<uint32_t> matched_blocks;
};

class ClusterState {
 public:
  explicit ClusterState(ClusterStateOptions options = {});

  // Returns the replica's index (0, 1, ...).
  int add_replica(const ReplicaSpec& spec);
  int num_replicas() const { return static_cast<int>(views_.size()); }
  void set_routable(int replica, bool routable);
  // A successful (valid) or failed (valid = false) scrape. A known num_gpu_blocks / block_size
  // become the replica's KV limits and bound its prefix index.
  void update_scrape(int replica, const ScrapeSnapshot& scrape);
  // The replica restarted: forget its prefix holdings (in-flight requests stay in the ledger
  // until the owner aborts them).
  void forget_prefix_cache(int replica) {
    prefix_.clear_replica(replica);
    kv_.clear(replica);
  }
  // KV-cache events (issue 15): replicas marked active there are matched from their own events
  // (once the first batch came) instead of the prefix index; dispatches to them also seed it
  // (prefix/kv_event_index.hpp).
  prefix::KvEventIndex& kv_events() { return kv_; }
  const prefix::KvEventIndex& kv_events() const { return kv_; }

  // Fills `out` for a request; block_hashes are the prompt's chained block hashes
  // (predict::estimate_prompt with hash_block_size).
  // output_shape: RequestFeatures::output_shape (the endpoint and stop settings), 0 if unknown.
  void prepare(std::string_view model, int prompt_tokens, std::span<const uint64_t> block_hashes,
               std::optional<int> max_tokens, bool ignore_eos, std::optional<uint64_t> session_hash,
               PreparedRequest& out, uint64_t output_shape = 0) const;

  const ClusterView& view(double now);

  // Record a dispatch of a prepared request (its features) to `replica`.
  bool on_dispatch(RequestId id, int replica, const RequestFeatures& features, double now);
  // `n` output tokens relayed (a streamed chunk). Learns speed from TTFT and token gaps.
  void on_tokens(RequestId id, int n, double now);
  // One engine step of one replica delivered one token to each of `ids` at once (the cluster
  // simulator delivers a step at a time). The ledger moves exactly as with on_tokens(id, 1, now)
  // for each; the speed model learns TTFTs per request as on_tokens does, but the step's decode
  // gaps once: the step's duration is the shortest accepted gap (a longer one spans a stall of
  // that request), one observation of weight accepted gaps / batch, and none if a first token
  // came in this step (its prefill ran in it) or a gap may hold a prefill of ours.
  void on_step_tokens(std::span<const RequestId> ids, double now);
  // The response completed. output_tokens: the usage count if known (non-streamed responses
  // report tokens only here); otherwise the relayed count is used.
  void on_finish(RequestId id, double now, std::optional<int> output_tokens = std::nullopt);
  void on_abort(RequestId id);

  // What the ledger records of a dispatch of `f` to `replica`, before this state adds its own
  // (the model's tag, the completion estimate): what a router tells its peers.
  static DispatchInfo dispatch_info(const RequestFeatures& f, int replica);
  // Another router dispatched request `id` (ids shared by all routers) to `replica`, sized as it
  // predicted (`info`): it enters the ledger as in-flight work, so that it is priced at its size
  // and a fresh scrape does not count it again. Nothing learns from it (no speed lesson, no
  // prefix holdings), except that `block_hashes` (the prompt's, as the other router sent them;
  // live peer sync does, cluster-sim's idealised --peer-sync does not) enter the prefix index as
  // held by `replica`.
  bool on_foreign_dispatch(RequestId id, int replica, DispatchInfo info, std::string_view model,
                           double now, std::span<const uint64_t> block_hashes = {});
  // Another router's requests each got one token (one engine step): only the ledger moves.
  void on_foreign_tokens(std::span<const RequestId> ids, double now) {
    ledger_.step_tokens(ids, now);
  }
  // Another router's request finished with `output_tokens`: the ledger drops it (its averages
  // and the output predictor learn its length, as on_finish does).
  void on_foreign_finish(RequestId id, int output_tokens, double now);
  void on_foreign_abort(RequestId id) { ledger_.abort(id); }

  const Ledger& ledger() const { return ledger_; }
  const prefix::PrefixIndex& prefix_index() const { return prefix_; }
  const predict::SpeedModel& speed(int replica) const { return *speeds_[replica]; }
  predict::SpeedModel& speed(int replica) { return *speeds_[replica]; }
  const predict::OutputLengthPredictor& output_predictor() const { return output_; }
  const predict::LatencyModel& latency_model() const { return latency_; }
  const ReplicaView& replica(int i) const { return views_[i]; }

  // The batch the replica is believed to be running now: its decodes and a chunk of the queued
  // prefill.
  engine::BatchShape current_batch(int replica) const;

 private:
  uint32_t intern_model(std::string_view model);
  // Teaches the replica's decode factor one gap of `gaps` tokens (on_tokens, on_step_tokens).
  void learn_decode_gap(int replica, double gap_s, int tokens, int gaps, const LedgerEntry& entry,
                        double now);
  // The replica's decodes alone (for observe_itl); false if a fresh scrape shows others'
  // requests waiting (their prefill may run).
  bool decode_batch(int replica, engine::BatchShape& out) const;
  void set_prefix_capacity(int replica);
  void learn_output(RequestId id, const LedgerEntry& e, int generated);  // a completion's length
  // llm-d-latency's lessons: a first token (TTFT against the features at dispatch) and a finish
  // (the mean TPOT against the replica's state then).
  void learn_latency_ttft(RequestId id, double ttft_s);
  void learn_latency_finish(RequestId id, const LedgerEntry& e, int generated, double now);

  ClusterStateOptions options_;
  Ledger ledger_;
  prefix::PrefixIndex prefix_;
  prefix::KvEventIndex kv_;
  predict::OutputLengthPredictor output_;
  predict::LatencyModel latency_;
  // Features at dispatch of the in-flight requests, until their first token (learn_latency).
  std::unordered_map<RequestId, predict::LatencyFeatures> latency_pending_;
  // The output predictor's context keys of the in-flight requests, learned at their finish.
  std::unordered_map<RequestId, predict::OutputLengthPredictor::Keys> output_pending_;
  std::vector<std::unique_ptr<predict::SpeedModel>> speeds_;
  std::deque<std::string> names_;  // owned storage for ReplicaView::name (stable addresses)
  std::vector<ReplicaView> views_;
  std::vector<std::pair<std::string, std::shared_ptr<const predict::StepTables>>> tables_;
  std::vector<std::string> models_;
  ClusterView view_;
};

}  // namespace eta::cluster
