// The live dashboard's server side (GET /dashboard, GET /admin/stream), free of Asio/Beast:
//   - CompletionLog: predicted vs actual TTFT/E2E of each completed request (a fixed ring), the
//     one place the router records how good its predictions were;
//   - snapshot_json: one event of the stream (the replica reports, the decisions and completions
//     since the previous event, the prediction accuracy);
//   - DashboardStream: the connected dashboards, grouped by update interval; each group's
//     snapshot is built and serialized once per tick and written to all of its clients;
//   - dashboard_asset: the page's HTML/JS/CSS (web/dashboard/, built into the binary).
// router.cpp owns the timer and feeds these from its single thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.hpp"
#include "router/admin.hpp"
#include "router/decision_log.hpp"

namespace eta::router {

struct CompletionRecord {
  double unix_time_s = 0;
  uint64_t request_id = 0;
  int replica = -1;             // ClusterState index
  double predicted_ttft_s = 0;  // NaN: the policy did not predict
  double actual_ttft_s = 0;     // NaN: not a streamed response (no first token seen)
  double predicted_e2e_s = 0;
  double actual_e2e_s = 0;
  int output_tokens = 0;
};

class CompletionLog {
 public:
  explicit CompletionLog(size_t capacity) : ring_(capacity) {}
  void add(const CompletionRecord& r);
  uint64_t total() const { return total_; }
  size_t size() const { return total_ < ring_.size() ? static_cast<size_t>(total_) : ring_.size(); }
  // The i-th most recent record (0 = the newest); i < size().
  const CompletionRecord& recent(size_t i) const;

 private:
  std::vector<CompletionRecord> ring_;
  uint64_t total_ = 0;
};

// Medians over a set of completions (NaN where no completion had both numbers).
struct AccuracySummary {
  size_t ttft_n = 0;
  double ttft_predicted_median_s = 0;
  double ttft_actual_median_s = 0;
  double ttft_abs_rel_error_median = 0;  // median of |predicted - actual| / actual
  double ttft_abs_rel_error_p90 = 0;
  size_t e2e_n = 0;
  double e2e_predicted_median_s = 0;
  double e2e_actual_median_s = 0;
  double e2e_abs_rel_error_median = 0;
  double e2e_abs_rel_error_p90 = 0;
};
// Over the `n` most recent records of `log` (n <= log.size()).
AccuracySummary summarize(const CompletionLog& log, size_t n);

// Where a stream client is: what it has been sent already.
struct StreamCursor {
  uint64_t decisions = 0;    // DecisionLog::total() at the last event
  uint64_t completions = 0;  // CompletionLog::total() at the last event
};

struct SnapshotMeta {
  double unix_time_s = 0;
  double uptime_s = 0;
  double interval_s = 0;
  std::string policy;
  int in_flight = 0;
  size_t queued = 0;
  size_t max_decisions = 10;  // newest decisions per event, at most
};

// One snapshot: {"time","uptime_s","interval_s","policy","in_flight","queued","replicas":[...as
// GET /admin/replicas...],"decisions_total","decisions":[...newest since the cursor, at most
// max_decisions, oldest first...],"completions_total","completions_new","accuracy":{"tick":{...},
// "recent":{...}}}. Advances the cursor. O(replicas + candidates of the decisions sent + new
// completions + the completion ring).
std::string snapshot_json(std::span<const ReplicaReport> replicas, const DecisionLog& decisions,
                          const CompletionLog& completions, const SnapshotMeta& meta,
                          StreamCursor& cursor);

// GET /admin/stream?interval_ms=N&decisions=N: an event every interval_ms (100..10000, default
// 250) with at most `decisions` (0..100, default 10) of the newest decisions.
struct StreamParams {
  double interval_s = 0.25;
  size_t max_decisions = 10;
  bool operator==(const StreamParams&) const = default;
};
// One line in `error` for a bad or unknown parameter.
bool parse_stream_query(std::string_view query, StreamParams& out, std::string& error);

class DashboardStream {
 public:
  // Builds the snapshot for a group (advancing its cursor) and returns it serialized.
  using Build = std::function<std::string(StreamCursor& cursor, const StreamParams& params)>;

  explicit DashboardStream(size_t max_clients = 32) : max_clients_(max_clients) {}
  size_t max_clients() const { return max_clients_; }

  // A client that has been sent its response head; clients with the same parameters share one
  // group (and its events). False when max_clients are connected.
  bool add(const http::ExchangePtr& e, const StreamParams& params, double now, StreamCursor start);
  size_t clients() const;
  // When the next group is due (the owner's clock); +inf without clients.
  double next_due() const;
  // Serves every due group: one build, one "data: ...\n\n" string written to all of its clients.
  // Clients that went away are dropped; a client more than max_buffered bytes behind misses the
  // event. Returns the number of events built.
  int tick(double now, const Build& build);
  // Ends every stream (router stop).
  void close_all();

  static constexpr size_t kMaxBufferedBytes = 1u << 20;

 private:
  struct Group {
    StreamParams params;
    double due = 0;
    StreamCursor cursor;
    std::vector<http::ExchangePtr> clients;
  };
  size_t max_clients_;
  std::vector<Group> groups_;
};

struct Asset {
  std::string_view content_type;
  std::string_view body;
};
// The dashboard's files by request path ("/dashboard", "/dashboard/dashboard.js",
// "/dashboard/dashboard.css"); body empty when unknown.
Asset dashboard_asset(std::string_view path);

}  // namespace eta::router
