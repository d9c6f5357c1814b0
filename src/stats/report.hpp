// Per-request records and the benchmark report, with `vllm bench serve`'s definitions
// (../shared/vllm-interface.md §7):
//   TTFT   send -> first streamed token, per successful request;
//   TPOT   (e2e - ttft) / (output_tokens - 1), only for requests with output_tokens > 1;
//   ITL    every gap between successive token chunks, pooled over successful requests;
//   E2E    send -> last byte;
//   request throughput = successful / duration; output token throughput = sum(output) /
//   duration; goodput = requests meeting every given SLO (ms, <=) / duration, where TPOT counts
//   as 0 for output_tokens <= 1.
// All latency summaries are in milliseconds. JSON with Boost.JSON; parsed back for
// `eta bench compare`.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stats/stats.hpp"

namespace eta::stats {

// One request as the load generator (or cluster-sim) saw it. Times in seconds.
struct RequestRecord {
  int64_t index = 0;
  // "" when the request succeeded; otherwise a short kind, by convention "http_<status>",
  // "connect", "timeout", "stream" (error event or broken stream), "protocol", "aborted".
  std::string error_kind;
  int http_status = 0;
  double start_s = 0;  // when it was sent, from the start of the run
  double ttft_s = 0;
  double e2e_s = 0;
  std::vector<double> itls_s;  // gaps between successive token chunks
  int prompt_tokens = 0;
  int output_tokens = 0;
  std::string replica;  // who served it ("" if unknown)
  std::optional<double> predicted_ttft_s;
  std::optional<double> predicted_e2e_s;
  double send_lateness_s = 0;  // actual send time - scheduled arrival time (>= 0 normally)

  bool ok() const { return error_kind.empty(); }
};

// Service-level objectives for goodput, in milliseconds; unset ones are not checked.
struct Slo {
  std::optional<double> ttft_ms;
  std::optional<double> tpot_ms;
  std::optional<double> e2e_ms;
  bool any() const { return ttft_ms || tpot_ms || e2e_ms; }
};
// Whether a successful request met every SLO set (TPOT over its output tokens after the first;
// 0 for a single token), as goodput counts it.
bool meets_slo(const RequestRecord& r, const Slo& slo);
// Parses "ttft:500,tpot:50,e2e:20000" (also "e2el", '=' for ':', spaces for commas).
bool parse_slo(std::string_view text, Slo& out, std::string& error);

struct Report {
  std::string label;
  int64_t requests = 0;  // successful
  int64_t errors = 0;    // failed
  double duration_s = 0;
  int64_t total_input_tokens = 0;   // over successful requests
  int64_t total_output_tokens = 0;  // over successful requests
  double request_throughput_rps = 0;
  double output_tokens_per_s = 0;
  double total_tokens_per_s = 0;
  std::optional<double> goodput_rps;  // set when SLOs were given
  Slo slo;
  Summary ttft_ms;
  Summary tpot_ms;
  Summary itl_ms;
  Summary e2e_ms;
  double peak_output_tokens_per_s = 0;  // in 1-second buckets of token times
  int64_t peak_concurrency = 0;         // most requests in flight at once
  std::map<std::string, int64_t> errors_by_kind;
  std::map<std::string, int64_t> replicas;  // replica -> requests it served (successful)
  Summary send_lateness_ms;                 // over all requests
  // Prediction error (predicted - actual) in ms, over successful requests with a prediction.
  Summary ttft_prediction_error_ms;
  Summary e2e_prediction_error_ms;
  // Free-form numbers a caller wants to keep with the report (e.g. cluster-sim's
  // prefix-cache hit rate); serialized under "extra".
  std::map<std::string, double> extra;
};

// Builds the report. `duration_s` is the benchmark's duration (first send to last completion,
// as measured by the caller).
Report build_report(std::string label, const std::vector<RequestRecord>& records, double duration_s,
                    const Slo& slo = {});

boost::json::object to_json(const Report& report);
std::string to_json_string(const Report& report, bool pretty = true);
// Reads a report written by to_json (missing optional keys take defaults); false with a
// one-line error naming the bad key. Prefer parse_report for text: it reads numbers with
// simdjson, exactly (Boost.JSON 1.81's parser can be one ulp off).
bool report_from_json(const boost::json::value& json, Report& out, std::string& error);
bool parse_report(std::string_view text, Report& out, std::string& error);
// Reads a report file (a JSON object, or a JSON object with a "report" member); the error
// names the file.
bool load_report_file(const std::string& path, Report& out, std::string& error);

// The report of a run without its warm-up: the records sent after the first `warmup_fraction`
// of the sending span (from = first send + fraction * (last send - first send); all records
// when the fraction is 0), over the window from..last send as the duration. Its extra gains
// warmup_s (from - first send), window_s, offered_rps (records kept / window) and completed_rps
// (successful requests, sent when they may, that completed within the window, / window: the
// two agree in a steady state).
Report steady_report(std::string label, const std::vector<RequestRecord>& records,
                     double warmup_fraction, const Slo& slo = {});

enum class TableFormat { kMarkdown, kPlain };
// How `eta bench compare` lays reports side by side.
struct CompareOptions {
  TableFormat format = TableFormat::kMarkdown;
  // Metrics, each "NAME[=TITLE]": NAME as the default table's first column prints it
  // ("ttft_ms p99", also "ttft_ms.p99") or extra.KEY; empty: all of them (and the replicas).
  std::vector<std::string> metrics;
  std::string baseline;  // the label ratios are to; empty: the first report
  // One row per report (first column titled first_column) instead of one per metric, with a
  // "METRIC / BASELINE" column for each of `ratios` (metrics as above).
  bool by_report = false;
  std::vector<std::string> ratios;
  std::string first_column = "report";
};
// A side-by-side table of the reports: by default one row per metric, one column per report,
// and for the other reports the ratio to the baseline ("(0.85x)"). False with a one-line error
// for an unknown metric or baseline.
bool render_comparison(const std::vector<Report>& reports, const CompareOptions& options,
                       std::string& out, std::string& error);
// The default table (every metric, ratios to the first report).
std::string render_comparison(const std::vector<Report>& reports,
                              TableFormat format = TableFormat::kMarkdown);

}  // namespace eta::stats
