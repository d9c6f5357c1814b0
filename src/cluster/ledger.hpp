// The router's ledger: every request it has in flight, per replica, updated on dispatch, on each
// relayed token, on finish and on abort. Each event is O(1) and keeps the replica's
// LedgerSummary current, so a policy reads the aggregates without looking at requests.
// Single-threaded: the owner serialises calls (or keeps one ledger per thread of control).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "cluster/view.hpp"
#include "prefix/flat_map.hpp"

namespace eta::cluster {

using RequestId = uint64_t;

struct DispatchInfo {
  int prompt_tokens = 0;
  int cached_tokens = 0;            // predicted prefix-cache hit on the chosen replica
  int predicted_output_tokens = 1;  // OutputLengthPredictor's estimate (>= 1)
  std::optional<int> max_tokens;    // caps re-estimates of the remaining output
  bool exact_output = false;        // ignore_eos with max_tokens: the length is known
  // What the completion model predicted for this request on this replica at speed factor 1
  // (seconds); kept so the speed model can compare with what is observed. 0: not predicted.
  double base_ttft_s = 0;
  double base_decode_s_per_token = 0;
  uint32_t tag = 0;  // the owner's (ClusterState: the model's interned id)
};

struct LedgerEntry {
  int replica = -1;
  int prompt_tokens = 0;
  int uncached_tokens = 0;   // prompt - predicted cached (>= 1)
  int predicted_output = 1;  // current estimate of the total output (re-estimated if exceeded)
  int output_cap = 0;        // max_tokens, 0 = none
  bool exact_output = false;
  int generated = 0;  // output tokens relayed so far
  double dispatch_time = 0;
  double first_token_time = -1;
  double last_token_time = -1;
  double base_ttft_s = 0;
  double base_decode_s_per_token = 0;
  uint32_t tag = 0;

  bool decoding() const { return generated > 0; }
  double prefill_pairs() const {
    const double u = uncached_tokens;
    return u * ((prompt_tokens - uncached_tokens) + 0.5 * u);
  }
  int remaining() const { return predicted_output - generated; }
};

// What a token event told the caller (for calibration: TTFT and inter-token gaps).
struct TokenUpdate {
  bool found = false;
  bool first = false;  // these tokens include the request's first token
  int replica = -1;
  int tokens = 0;                      // tokens in this event
  double ttft_s = 0;                   // first: now - dispatch time
  double gap_s = 0;                    // not first: now - previous token event
  const LedgerEntry* entry = nullptr;  // valid until the next ledger call
};

class Ledger {
 public:
  explicit Ledger(int num_replicas = 0);

  // Grows (never shrinks) the replica range; summaries keep their addresses.
  void resize(int num_replicas);
  int num_replicas() const { return static_cast<int>(summaries_.size()); }

  // Returns false if the id is already in flight or the replica is out of range.
  bool dispatch(RequestId id, int replica, const DispatchInfo& info, double now);
  // `n` more output tokens were relayed (the first event carries the first token).
  TokenUpdate tokens(RequestId id, int n, double now);
  // tokens(id, 1, now) for each id in turn (distinct ids), without the updates (one engine step's
  // tokens when the caller learns nothing from them).
  void step_tokens(std::span<const RequestId> ids, double now);
  // Finished (any reason) or aborted: removes the request. Returns it, or nullopt if unknown.
  // A finish teaches the averages the output size; an abort does not.
  std::optional<LedgerEntry> finish(RequestId id) { return remove(id, true); }
  std::optional<LedgerEntry> abort(RequestId id) { return remove(id, false); }
  // Forgets every request on a replica (it restarted or was removed); returns their ids.
  std::vector<RequestId> clear_replica(int replica);

  const LedgerSummary& summary(int replica) const { return summaries_[replica]; }
  // When the oldest request still without its first token on `replica` was dispatched
  // (+infinity if none), and when a first token last arrived from it (-infinity if never): a
  // relayed gap [now - gap, now] ran no prefill of ours if the first is after its start and the
  // second before it. Amortised O(1).
  double earliest_prefill_dispatch(int replica);
  double last_first_token(int replica) const { return last_first_token_[replica]; }
  // The request's entry, or null; valid until the next dispatch (entries live in a vector).
  const LedgerEntry* find(RequestId id) const;
  size_t size() const { return index_.size(); }
  const WorkAverages& averages() const { return averages_; }

 private:
  std::optional<LedgerEntry> remove(RequestId id, bool completed);
  void add_remaining(LedgerSummary& s, int remaining, int sign);
  static int reestimate(const LedgerEntry& e);
  void advance(LedgerEntry& e, int n, double now, TokenUpdate& u);  // tokens() once found
  LedgerEntry* lookup(RequestId id) {
    const uint32_t i = index_.find(id);
    return i == prefix::FlatMap64::kNone ? nullptr : &entries_[i];
  }
  void erase(RequestId id, uint32_t slot);

  std::deque<LedgerSummary> summaries_;     // deque: stable addresses for ReplicaView::ledger
  std::vector<LedgerEntry*> step_entries_;  // step_tokens() scratch
  std::vector<LedgerSummary*> summary_of_;  // &summaries_[r]: one load on the per-token path
  // Per replica, requests dispatched there in dispatch order, from the oldest that may still
  // be waiting for its first token (entries that got one or left are dropped from the front).
  std::vector<std::deque<std::pair<double, RequestId>>> prefill_order_;
  std::vector<double> last_first_token_;
  // In-flight requests: id -> slot in entries_ (an open-addressing map: one probe per token
  // event, no node allocation); freed slots are reused. ids_[slot] is the slot's request.
  prefix::FlatMap64 index_{64};
  std::vector<LedgerEntry> entries_;
  std::vector<RequestId> ids_;
  std::vector<uint32_t> free_slots_;
  WorkAverages averages_;
  uint64_t dispatched_ = 0;
  uint64_t finished_ = 0;
};

}  // namespace eta::cluster
