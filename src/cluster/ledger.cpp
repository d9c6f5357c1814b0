#include "cluster/ledger.hpp"

#include <algorithm>
#include <limits>

namespace eta::cluster {
namespace {

// Running means with a warm start: the first samples count fully, later ones with weight
// kAverageAlpha, so the averages follow a changing workload over a few hundred requests.
constexpr double kAverageAlpha = 0.01;

void update_mean(double& mean, double sample, uint64_t n) {
  const double alpha = std::max(1.0 / static_cast<double>(n), kAverageAlpha);
  mean += alpha * (sample - mean);
}

}  // namespace

Ledger::Ledger(int num_replicas) {
  resize(num_replicas);
}

void Ledger::resize(int num_replicas) {
  while (static_cast<int>(summaries_.size()) < num_replicas) {
    summaries_.emplace_back();
    summary_of_.push_back(&summaries_.back());
  }
  prefill_order_.resize(summaries_.size());
  last_first_token_.resize(summaries_.size(), -std::numeric_limits<double>::infinity());
}

double Ledger::earliest_prefill_dispatch(int replica) {
  auto& order = prefill_order_[replica];
  while (!order.empty()) {
    const LedgerEntry* e = lookup(order.front().second);
    if (e != nullptr && e->replica == replica && e->generated == 0) return order.front().first;
    order.pop_front();
  }
  return std::numeric_limits<double>::infinity();
}

void Ledger::add_remaining(LedgerSummary& s, int remaining, int sign) {
  const int b = RemainingOutputSummary::bucket_of(remaining);
  s.remaining.count[b] += sign;
  s.remaining.remaining_tokens[b] += sign * remaining;
  s.predicted_remaining_decode_tokens += sign * remaining;
}

// A request outlived its predicted length: extend the estimate. Lengths are heavy-tailed, so
// the expected remaining life grows with age: add half of what it has generated (at least 16),
// never past max_tokens (it must stop there) and never less than one more token.
int Ledger::reestimate(const LedgerEntry& e) {
  int next = e.generated + std::max(16, e.generated / 2);
  if (e.exact_output) next = e.generated + 1;
  if (e.output_cap > 0) next = std::min(next, e.output_cap);
  return std::max(next, e.generated + 1);
}

bool Ledger::dispatch(RequestId id, int replica, const DispatchInfo& info, double now) {
  if (replica < 0 || replica >= num_replicas()) return false;
  LedgerEntry e;
  e.replica = replica;
  e.prompt_tokens = std::max(info.prompt_tokens, 1);
  e.uncached_tokens = std::clamp(e.prompt_tokens - info.cached_tokens, 1, e.prompt_tokens);
  e.output_cap = info.max_tokens.value_or(0);
  e.predicted_output = std::max(info.predicted_output_tokens, 1);
  if (e.output_cap > 0) e.predicted_output = std::min(e.predicted_output, e.output_cap);
  e.exact_output = info.exact_output;
  e.dispatch_time = now;
  e.base_ttft_s = info.base_ttft_s;
  e.base_decode_s_per_token = info.base_decode_s_per_token;
  e.tag = info.tag;
  if (index_.find(id) != prefix::FlatMap64::kNone) return false;
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    entries_[slot] = e;
    ids_[slot] = id;
  } else {
    slot = static_cast<uint32_t>(entries_.size());
    entries_.push_back(e);
    ids_.push_back(id);
  }
  index_.set(id, slot);

  prefill_order_[replica].emplace_back(now, id);
  LedgerSummary& s = *summary_of_[replica];
  s.in_flight += 1;
  s.prefilling += 1;
  s.pending_prefill_tokens += e.uncached_tokens;
  s.prefill_prompt_tokens += e.prompt_tokens;
  s.pending_prefill_pairs += e.prefill_pairs();
  s.kv_tokens += e.uncached_tokens;
  add_remaining(s, e.remaining(), +1);

  ++dispatched_;
  update_mean(averages_.prompt_tokens, e.prompt_tokens, dispatched_);
  update_mean(averages_.uncached_prompt_tokens, e.uncached_tokens, dispatched_);
  return true;
}

TokenUpdate Ledger::tokens(RequestId id, int n, double now) {
  TokenUpdate u;
  LedgerEntry* found = n > 0 ? lookup(id) : nullptr;
  if (found == nullptr) return u;
  advance(*found, n, now, u);
  return u;
}

void Ledger::step_tokens(std::span<const RequestId> ids, double now) {
  // The step's entries are scattered over entries_: find them all and start loading them first.
  step_entries_.clear();
  for (const RequestId id : ids) {
    LedgerEntry* e = lookup(id);
    if (e == nullptr) continue;
    __builtin_prefetch(e);
    step_entries_.push_back(e);
  }
  // (Entries of distinct ids are distinct: the same updates in the same order as tokens().)
  TokenUpdate ignored;
  for (LedgerEntry* e : step_entries_) advance(*e, 1, now, ignored);
}

[[gnu::always_inline]] inline void Ledger::advance(LedgerEntry& e, int n, double now,
                                                   TokenUpdate& u) {
  LedgerSummary& s = *summary_of_[e.replica];
  u.found = true;
  u.replica = e.replica;
  u.tokens = n;

  const int before = e.remaining();
  if (e.generated == 0) {
    u.first = true;
    u.ttft_s = now - e.dispatch_time;
    e.first_token_time = now;
    last_first_token_[e.replica] = now;
    s.prefilling -= 1;
    s.decoding += 1;
    s.pending_prefill_tokens -= e.uncached_tokens;
    s.prefill_prompt_tokens -= e.prompt_tokens;
    s.pending_prefill_pairs -= e.prefill_pairs();
    if (s.prefilling == 0) s.pending_prefill_pairs = 0;  // no float residue
    s.context_tokens += e.prompt_tokens;
  } else {
    u.gap_s = now - e.last_token_time;
  }
  e.last_token_time = now;
  e.generated += n;
  s.context_tokens += n;
  s.kv_tokens += n;
  while (e.remaining() < 1) e.predicted_output = reestimate(e);
  const int after = e.remaining();
  const int b = RemainingOutputSummary::bucket_of(before);
  if (b == RemainingOutputSummary::bucket_of(after)) {
    // The common case: the request stays in its bucket (the same sums as removing and adding).
    s.remaining.remaining_tokens[b] += after - before;
    s.predicted_remaining_decode_tokens += after - before;
  } else {
    add_remaining(s, before, -1);
    add_remaining(s, after, +1);
  }
  u.entry = &e;
}

std::optional<LedgerEntry> Ledger::remove(RequestId id, bool completed) {
  const uint32_t slot = index_.find(id);
  if (slot == prefix::FlatMap64::kNone) return std::nullopt;
  LedgerEntry e = entries_[slot];
  erase(id, slot);
  LedgerSummary& s = *summary_of_[e.replica];
  add_remaining(s, e.remaining(), -1);
  s.in_flight -= 1;
  s.kv_tokens -= e.uncached_tokens + e.generated;
  if (e.generated == 0) {
    s.prefilling -= 1;
    s.pending_prefill_tokens -= e.uncached_tokens;
    s.prefill_prompt_tokens -= e.prompt_tokens;
    s.pending_prefill_pairs -= e.prefill_pairs();
    if (s.prefilling == 0) s.pending_prefill_pairs = 0;
  } else {
    s.decoding -= 1;
    s.context_tokens -= e.prompt_tokens + e.generated;
  }
  if (completed && e.generated > 0) {
    ++finished_;
    update_mean(averages_.output_tokens, e.generated, finished_);
  }
  return e;
}

std::vector<RequestId> Ledger::clear_replica(int replica) {
  std::vector<RequestId> ids;
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].replica == replica) ids.push_back(ids_[i]);
  std::sort(ids.begin(), ids.end());
  for (RequestId id : ids) remove(id, false);
  prefill_order_[replica].clear();
  return ids;
}

const LedgerEntry* Ledger::find(RequestId id) const {
  const uint32_t i = index_.find(id);
  return i == prefix::FlatMap64::kNone ? nullptr : &entries_[i];
}

void Ledger::erase(RequestId id, uint32_t slot) {
  index_.erase(id);
  entries_[slot].replica = -1;  // free (clear_replica skips it)
  free_slots_.push_back(slot);
}

}  // namespace eta::cluster
