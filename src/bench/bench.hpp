// `eta bench`: options -> workload and schedule -> the target's model card -> the open-loop run
// (bench/loadgen.hpp) -> per-request records and the report (stats/report.hpp), in the
// replica's simulated time. Free of Asio and Beast. docs/bench.md describes the command, the
// report's keys and the CSV columns.
//
// Time scale: a simulated replica may run at time scale S (simulated seconds per wall second).
// The bench takes S from --time-scale, else from the target's /v1/models card (eta_time_scale),
// else 1. The schedule is in simulated time (a request due at simulated t leaves at wall t/S),
// and every reported time is simulated (wall durations x S), so runs at different scales agree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/loadgen.hpp"
#include "bench/progress.hpp"
#include "http/client.hpp"
#include "stats/report.hpp"
#include "workload/arrivals.hpp"
#include "workload/request_body.hpp"
#include "workload/workload.hpp"

namespace eta::bench {

struct BenchOptions {
  std::string target;              // http://host:port
  std::string workload;            // a spec (docs/workloads.md) or a trace file
  std::optional<double> rate;      // requests/s (simulated); +inf: all at once
  std::optional<double> load;      // fraction of `capacity`
  std::optional<double> capacity;  // requests/s that --load multiplies
  std::optional<int64_t> num_requests;
  std::optional<double> duration_s;  // keep requests scheduled before this (simulated) time
  std::string arrival = "auto";      // auto | trace | poisson | gamma:CV | constant [:seed=N]
  uint64_t seed = 0;
  std::string lengths = "hidden";  // exact | hidden
  std::string slo;                 // "ttft=MS,tpot=MS,e2e=MS" (or ':'), empty: no goodput
  std::string json_path;
  std::string csv_path;
  std::string label;
  std::string model;  // "": the target's first model
  std::string api;    // completions | chat; "": each request's own (completions by default)
  std::optional<double> time_scale;
  std::string data_dir;  // "": the nearest shared/data
  int max_concurrency = 0;
  double timeout_s = 3600;  // per request, simulated seconds
  std::string progress = "auto";
  // Several routers (issue 13): more --target URLs, and how requests are spread over all of them
  // (round-robin: request i to target i mod N; random: drawn per request from --seed).
  std::vector<std::string> extra_targets;
  std::string target_choice = "round-robin";
};

// Everything checked and built before the network is touched.
struct BenchSetup {
  http::Url url;
  std::vector<http::Url> extra_urls;  // the other --targets
  std::string data_dir;
  workload::Workload workload;  // with its final (simulated) arrival times
  workload::ArrivalSpec arrival;
  std::string arrival_name;        // what was applied, e.g. "trace", "poisson", "gamma:cv=2"
  std::optional<double> rate_rps;  // the target mean rate, when one was set
  workload::LengthsMode lengths = workload::LengthsMode::kHidden;
  std::optional<workload::Api> api;
  stats::Slo slo;
  ProgressMode progress = ProgressMode::kAuto;
  std::string label;
};

// Checks the options and builds the workload and its schedule. False with a one-line error for
// bad options or an unreadable workload (the command exits 2).
bool prepare_bench(const BenchOptions& options, BenchSetup& setup, std::string& error);

// What the target said about itself.
struct TargetInfo {
  std::string model;
  double time_scale = 1.0;
  std::string time_scale_source;  // "flag" | "target" | "default"
  int64_t max_model_len = 0;
  std::string warning;  // non-empty: something the user should know (printed on stderr)
};
// GET /v1/models (unless --model and --time-scale make it unnecessary and it fails). False
// with a one-line error when the target can't be asked and the options don't say enough.
bool discover_target(const BenchOptions& options, const BenchSetup& setup, TargetInfo& info,
                     std::string& error);

struct RequestDetail {
  size_t workload_index = 0;  // into setup.workload.requests
  std::string error_detail;
  int64_t token_events = 0;
};

struct BenchRun {
  TargetInfo target;
  std::vector<stats::RequestRecord> records;  // sent requests, simulated seconds
  std::vector<RequestDetail> details;         // parallel to records
  stats::Report report;
  int64_t planned = 0;
  int64_t sent = 0;
  bool interrupted = false;
  double wall_duration_s = 0;  // first send to last completion, wall
  stats::Summary send_lateness_wall_ms;
  int64_t token_events = 0;  // SSE chunks that carried tokens, all requests
  http::PoolStats pool;
};

// Runs the schedule against the target (progress on stderr) and builds the records and the
// report. `info` comes from discover_target().
void run_bench(const BenchOptions& options, const BenchSetup& setup, const TargetInfo& info,
               BenchRun& run);

// The --json document: the stable report (stats::to_json keys) plus "run" (how it was run).
std::string report_json(const BenchOptions& options, const BenchSetup& setup, const BenchRun& run);
// The --csv document (bench/csv.hpp).
std::string records_csv(const BenchSetup& setup, const BenchRun& run);
// The human summary printed on stdout at the end.
std::string summary_text(const BenchSetup& setup, const BenchRun& run);

// --data-dir, else $ETA_SHARED_DIR/data, else the first existing <ancestor>/shared/data above
// the working directory, then above the executable, else "../shared/data".

}  // namespace eta::bench
