// The admin API's JSON (pure): the per-replica report of GET /admin/replicas and the request
// bodies of the replica-changing calls. The HTTP side lives in admin_api.cpp; the API is documented
// in docs/architecture.md ("eta route").
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/view.hpp"
#include "router/kv_events.hpp"

namespace eta::router {

struct ReplicaReport {
  std::string url;
  double weight = 1;
  std::string gpu;   // profile seeding the speed model
  std::string arch;  //
  bool healthy = false;
  bool health_known = false;  // at least one health check answered
  bool routable = false;      // healthy, models known, not draining
  bool draining = false;
  bool removing = false;  // removal requested; goes once in-flight requests finish
  int consecutive_failures = 0;
  std::string last_error;         // last failed check or proxied request, "" if none
  std::string unroutable_reason;  // why it is not routable ("" when it is), e.g. unauthorized
  bool models_known = false;
  std::vector<std::string> models;
  std::optional<double> time_scale;  // eta vllm-sim's eta_time_scale, if it reports one
  cluster::ScrapeSnapshot scrape;
  double scrape_age_s = -1;  // -1: never scraped successfully
  bool scrape_fresh = false;
  uint64_t scrapes = 0;
  uint64_t scrape_failures = 0;
  cluster::LedgerSummary ledger;
  cluster::EngineLimits limits;
  double prefill_factor = 1;
  double decode_factor = 1;
  int prefill_observations = 0;
  int decode_observations = 0;
  // The completion model's prediction for a typical request (the router's average prompt and
  // output sizes) sent there now.
  int typical_prompt_tokens = 0;
  int typical_output_tokens = 0;
  double predicted_ttft_s = 0;
  double predicted_e2e_s = 0;
  // Over the last minute (ReplicaWindow): TTFT of the streamed requests it completed (NaN
  // without any), completions and output tokens per second over the last 10 s.
  double ttft_p50_s = 0;
  double ttft_p99_s = 0;
  uint64_t ttft_samples = 0;
  double requests_per_s = 0;
  double tokens_per_s = 0;
  uint64_t requests = 0;  // requests dispatched there (attempts)
  uint64_t failures = 0;  // connection-level failures of proxied requests
  // KV-cache events (issue 15): "prefix_source" is "kv_events" once the replica's first batch
  // has come, else "router_index".
  KvEventsStatus kv_events;
};

// {"replicas":[{...}, ...]}
std::string replicas_json(std::span<const ReplicaReport> replicas);
std::string replica_json(const ReplicaReport& replica);
// [{...}, ...]: the list alone (the dashboard stream splices it into its snapshots).
std::string replicas_array_json(std::span<const ReplicaReport> replicas);

// Body of POST /admin/replicas ({"url", "weight"?, "gpu"?, "arch"?}) and of drain / undrain /
// remove ({"url", "force"?}).
struct AdminReplicaBody {
  std::string url;
  std::optional<double> weight;
  std::string gpu;
  std::string arch;
  bool force = false;
};
// `allow_spec`: weight/gpu/arch accepted (add); otherwise only url and force. Unknown fields are
// errors. One line on failure.
bool parse_admin_body(std::string_view body, bool allow_spec, AdminReplicaBody& out,
                      std::string& error);

}  // namespace eta::router
