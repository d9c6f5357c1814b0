// The last N routing decisions, for GET /admin/decisions: a fixed ring whose slots are reused
// (their strings and vectors keep their capacity), so logging a decision allocates nothing once
// the ring has wrapped. Pure; single-threaded like the rest of the router.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eta::router {

struct CandidateRecord {
  std::string replica;  // URL
  double ttft_s = 0;    // NaN: the policy does not predict
  double e2e_s = 0;
  double score = 0;
};

struct DecisionRecord {
  double unix_time_s = 0;
  uint64_t request_id = 0;
  int attempt = 1;  // 1 for the first pick, 2.. for retries on other replicas
  std::string policy;
  std::string model;
  int prompt_tokens = 0;
  int cached_tokens = 0;  // predicted prefix hit on the chosen replica
  int predicted_output_tokens = 0;
  std::string chosen;  // URL, or "" when none was chosen
  // Where cached_tokens came from: "kv_events" (the replica's KV-cache events) or
  // "router_index" (what this router sent there); "" when none was chosen.
  std::string prefix_source;
  // Where the prompt's tokens (and so its block hashes) came from (core/tokenize.hpp): estimate,
  // tokenize, cache, timeout, error; and how long the request waited for /tokenize.
  std::string_view prompt_tokens_source = "estimate";
  double tokenize_s = 0;
  std::string reason;
  double decision_s = 0;  // time spent preparing the request and picking
  std::vector<CandidateRecord> candidates;
};

class DecisionLog {
 public:
  explicit DecisionLog(size_t capacity) : capacity_(capacity) {}

  size_t capacity() const { return capacity_; }
  size_t size() const { return ring_.size() < capacity_ ? ring_.size() : capacity_; }
  uint64_t total() const { return total_; }  // decisions ever logged

  // The slot for the next decision (the oldest one is overwritten once full): fill every field.
  // nullptr when the capacity is 0.
  DecisionRecord* next();
  // The i-th most recent decision (0 = the newest); i < size().
  const DecisionRecord& recent(size_t i) const;

  // JSON: {"total":T,"decisions":[...]} with the last n decisions, oldest first.
  std::string to_json(size_t n) const;
  // [...]: the last n decisions alone, oldest first (the dashboard stream's part).
  std::string array_json(size_t n) const;

 private:
  size_t capacity_;
  std::vector<DecisionRecord> ring_;
  size_t head_ = 0;  // where the next record goes once the ring is full
  uint64_t total_ = 0;
};

}  // namespace eta::router
