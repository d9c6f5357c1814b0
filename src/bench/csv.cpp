#include "bench/csv.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace eta::bench {

namespace {

constexpr double kMs = 1000.0;

// Milliseconds with microsecond resolution.
void ms(std::string& out, double seconds) {
  fmt::format_to(std::back_inserter(out), "{:.3f}", seconds * kMs);
}

}  // namespace

std::string csv_header() {
  return "index,scheduled_s,sent_s,send_lateness_ms,status,error,ttft_ms,tpot_ms,e2e_ms,"
         "itl_count,itl_mean_ms,itl_max_ms,prompt_tokens,output_tokens,expected_output_tokens,"
         "replica,predicted_ttft_ms,predicted_e2e_ms,tag,session,turn,error_detail\n";
}

std::string csv_escape(std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

void append_csv_row(std::string& out, const CsvRow& row) {
  const stats::RequestRecord& r = *row.record;
  const bool ok = r.ok();
  fmt::format_to(std::back_inserter(out), "{},{:.6f},{:.6f},", r.index, row.scheduled_s, r.start_s);
  ms(out, r.send_lateness_s);
  fmt::format_to(std::back_inserter(out), ",{},{},", r.http_status, csv_escape(r.error_kind));
  if (ok) ms(out, r.ttft_s);
  out += ',';
  if (ok && r.output_tokens > 1) ms(out, (r.e2e_s - r.ttft_s) / (r.output_tokens - 1));
  out += ',';
  if (ok) ms(out, r.e2e_s);
  out += ',';
  fmt::format_to(std::back_inserter(out), "{},", r.itls_s.size());
  if (!r.itls_s.empty()) {
    double sum = 0;
    double max = 0;
    for (double v : r.itls_s) {
      sum += v;
      max = std::max(max, v);
    }
    ms(out, sum / static_cast<double>(r.itls_s.size()));
    out += ',';
    ms(out, max);
  } else {
    out += ',';
  }
  fmt::format_to(std::back_inserter(out), ",{},{},{},{},", r.prompt_tokens, r.output_tokens,
                 row.expected_output_tokens, csv_escape(r.replica));
  if (r.predicted_ttft_s) ms(out, *r.predicted_ttft_s);
  out += ',';
  if (r.predicted_e2e_s) ms(out, *r.predicted_e2e_s);
  fmt::format_to(std::back_inserter(out), ",{},{},{},{}\n", csv_escape(row.tag),
                 csv_escape(row.session), row.turn, csv_escape(row.error_detail));
}

}  // namespace eta::bench
