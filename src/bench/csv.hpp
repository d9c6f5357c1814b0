// `eta bench --csv FILE`: one row per sent request (pure formatting). Times are in the replica's
// simulated time, latencies in milliseconds, like the JSON report. Columns (docs/bench.md):
//   index, scheduled_s, sent_s, send_lateness_ms, status, error, ttft_ms, tpot_ms, e2e_ms,
//   itl_count, itl_mean_ms, itl_max_ms, prompt_tokens, output_tokens, expected_output_tokens,
//   replica, predicted_ttft_ms, predicted_e2e_ms, tag, session, turn, error_detail
// Empty cells: ttft/tpot/e2e/itl of failed requests, tpot when output_tokens <= 1, predictions
// the router did not send.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "stats/report.hpp"

namespace eta::bench {

struct CsvRow {
  const stats::RequestRecord* record = nullptr;
  double scheduled_s = 0;          // planned send time (simulated seconds from the start)
  int expected_output_tokens = 0;  // the workload's true output length
  std::string_view tag;
  std::string_view session;
  int turn = 0;
  std::string_view error_detail;
};

// The header line, with "\n".
std::string csv_header();
// One row, with "\n".
void append_csv_row(std::string& out, const CsvRow& row);
// Quotes a field if it holds a comma, a quote, or a line break ("" doubles a quote).
std::string csv_escape(std::string_view field);

}  // namespace eta::bench
