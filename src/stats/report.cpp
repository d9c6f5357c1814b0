#include "stats/report.hpp"

#include <fmt/format.h>

#include <simdjson.h>
#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

namespace eta::stats {

namespace json = boost::json;

namespace {

constexpr double kMs = 1000.0;

json::value optional_number(const std::optional<double>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::object summary_json(const Summary& s) {
  return json::object{{"mean", s.mean}, {"p50", s.p50},   {"p90", s.p90},
                      {"p99", s.p99},   {"p999", s.p999}, {"std", s.std},
                      {"min", s.min},   {"max", s.max},   {"count", s.count}};
}

// Reading helpers: each records the first error, naming the key.
class Reader {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void number(const json::object& o, std::string_view key, double& out, bool required = false) {
    const json::value* v = o.if_contains(key);
    if (!v || v->is_null()) {
      if (required) fail(key, "is missing");
      return;
    }
    boost::system::error_code ec;
    const double d = v->to_number<double>(ec);
    if (ec) {
      fail(key, "is not a number");
      return;
    }
    out = d;
  }
  void integer(const json::object& o, std::string_view key, int64_t& out, bool required = false) {
    double d = static_cast<double>(out);
    number(o, key, d, required);
    out = static_cast<int64_t>(std::llround(d));
  }
  void optional(const json::object& o, std::string_view key, std::optional<double>& out) {
    const json::value* v = o.if_contains(key);
    if (!v || v->is_null()) {
      out.reset();
      return;
    }
    double d = 0;
    number(o, key, d);
    out = d;
  }
  const json::object* object(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    if (!v || v->is_null()) return nullptr;
    if (!v->is_object()) {
      fail(key, "is not an object");
      return nullptr;
    }
    return &v->get_object();
  }
  void summary(const json::object& o, std::string_view key, Summary& s) {
    const json::object* so = object(o, key);
    if (!so) return;
    const std::string prefix(key);
    scope_ = prefix + ".";
    number(*so, "mean", s.mean);
    number(*so, "p50", s.p50);
    number(*so, "p90", s.p90);
    number(*so, "p99", s.p99);
    number(*so, "p999", s.p999);
    number(*so, "std", s.std);
    number(*so, "min", s.min);
    number(*so, "max", s.max);
    integer(*so, "count", s.count);
    scope_.clear();
  }
  template <class T>
  void counts(const json::object& o, std::string_view key, std::map<std::string, T>& out) {
    const json::object* m = object(o, key);
    if (!m) return;
    for (const auto& kv : *m) {
      boost::system::error_code ec;
      const double d = kv.value().to_number<double>(ec);
      if (ec) {
        fail(std::string(key) + "." + std::string(kv.key()), "is not a number");
        return;
      }
      if constexpr (std::is_integral_v<T>) {
        out[std::string(kv.key())] = static_cast<T>(std::llround(d));
      } else {
        out[std::string(kv.key())] = d;
      }
    }
  }
  void fail(std::string_view key, std::string_view what) {
    if (ok()) error_ = fmt::format("report: \"{}{}\" {}", scope_, key, what);
  }

 private:
  std::string error_;
  std::string scope_;
};

json::value to_boost_json(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT: {
      json::object o;
      simdjson::dom::object fields;
      if (e.get_object().get(fields) == simdjson::SUCCESS) {
        for (auto field : fields) o[field.key] = to_boost_json(field.value);
      }
      return o;
    }
    case simdjson::dom::element_type::ARRAY: {
      json::array a;
      simdjson::dom::array items;
      if (e.get_array().get(items) == simdjson::SUCCESS) {
        for (simdjson::dom::element v : items) a.push_back(to_boost_json(v));
      }
      return a;
    }
    case simdjson::dom::element_type::STRING:
      return json::string(e.get_string().value_unsafe());
    case simdjson::dom::element_type::INT64:
      return e.get_int64().value_unsafe();
    case simdjson::dom::element_type::UINT64:
      return e.get_uint64().value_unsafe();
    case simdjson::dom::element_type::DOUBLE:
      return e.get_double().value_unsafe();
    case simdjson::dom::element_type::BOOL:
      return e.get_bool().value_unsafe();
    case simdjson::dom::element_type::NULL_VALUE:
      break;
  }
  return nullptr;
}

std::string trim_number(double v, int decimals) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  return fmt::format("{:.{}f}", v, decimals);
}

}  // namespace

bool meets_slo(const RequestRecord& rec, const Slo& slo) {
  const double ttft_ms = rec.ttft_s * kMs;
  const double e2e_ms = rec.e2e_s * kMs;
  const double tpot_ms =
      rec.output_tokens > 1 ? (rec.e2e_s - rec.ttft_s) / (rec.output_tokens - 1) * kMs : 0;
  return (!slo.ttft_ms || ttft_ms <= *slo.ttft_ms) && (!slo.tpot_ms || tpot_ms <= *slo.tpot_ms) &&
         (!slo.e2e_ms || e2e_ms <= *slo.e2e_ms);
}

bool parse_slo(std::string_view text, Slo& out, std::string& error) {
  Slo slo;
  std::string s(text);
  for (char& c : s) {
    if (c == ' ' || c == ';') c = ',';
    if (c == '=') c = ':';
  }
  std::string_view rest = s;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    if (item.empty()) continue;
    const std::size_t colon = item.find(':');
    const std::string_view key = item.substr(0, colon);
    const std::string_view value =
        colon == std::string_view::npos ? std::string_view() : item.substr(colon + 1);
    double v = 0;
    const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (colon == std::string_view::npos || ec != std::errc() || p != value.data() + value.size() ||
        !(v >= 0)) {
      error = fmt::format("goodput SLO '{}': expected KEY:MS with MS >= 0 (ttft, tpot, e2e)", item);
      return false;
    }
    if (key == "ttft") {
      slo.ttft_ms = v;
    } else if (key == "tpot") {
      slo.tpot_ms = v;
    } else if (key == "e2e" || key == "e2el") {
      slo.e2e_ms = v;
    } else {
      error = fmt::format("goodput SLO '{}': unknown metric '{}' (ttft, tpot, e2e)", item, key);
      return false;
    }
  }
  out = slo;
  return true;
}

Report build_report(std::string label, const std::vector<RequestRecord>& records, double duration_s,
                    const Slo& slo) {
  Report r;
  r.label = std::move(label);
  r.duration_s = duration_s;
  r.slo = slo;
  std::vector<double> ttfts, tpots, itls, e2es, lateness, ttft_err, e2e_err;
  int64_t good = 0;
  struct Edge {
    double t;
    int delta;
  };
  std::vector<Edge> edges;
  std::vector<double> token_times;
  for (const RequestRecord& rec : records) {
    lateness.push_back(rec.send_lateness_s * kMs);
    edges.push_back({rec.start_s, +1});
    edges.push_back({rec.start_s + rec.e2e_s, -1});
    if (!rec.ok()) {
      ++r.errors;
      ++r.errors_by_kind[rec.error_kind];
      continue;
    }
    ++r.requests;
    r.total_input_tokens += rec.prompt_tokens;
    r.total_output_tokens += rec.output_tokens;
    const double ttft_ms = rec.ttft_s * kMs;
    const double e2e_ms = rec.e2e_s * kMs;
    ttfts.push_back(ttft_ms);
    e2es.push_back(e2e_ms);
    double tpot_ms = 0;
    if (rec.output_tokens > 1) {
      tpot_ms = (rec.e2e_s - rec.ttft_s) / (rec.output_tokens - 1) * kMs;
      tpots.push_back(tpot_ms);
    }
    for (double itl : rec.itls_s) itls.push_back(itl * kMs);
    if (!rec.replica.empty()) ++r.replicas[rec.replica];
    if (rec.predicted_ttft_s) ttft_err.push_back((*rec.predicted_ttft_s - rec.ttft_s) * kMs);
    if (rec.predicted_e2e_s) e2e_err.push_back((*rec.predicted_e2e_s - rec.e2e_s) * kMs);
    if (slo.any() && meets_slo(rec, slo)) ++good;
    // Token times for the peak output throughput: the first token, then one per chunk gap;
    // tokens beyond the chunks (several tokens in one chunk) count at the last chunk.
    if (rec.output_tokens > 0) {
      double t = rec.start_s + rec.ttft_s;
      token_times.push_back(t);
      int emitted = 1;
      for (double itl : rec.itls_s) {
        if (emitted >= rec.output_tokens) break;
        t += itl;
        token_times.push_back(t);
        ++emitted;
      }
      for (; emitted < rec.output_tokens; ++emitted) token_times.push_back(t);
    }
  }
  r.ttft_ms = summarize(ttfts);
  r.tpot_ms = summarize(tpots);
  r.itl_ms = summarize(itls);
  r.e2e_ms = summarize(e2es);
  r.send_lateness_ms = summarize(lateness);
  r.ttft_prediction_error_ms = summarize(ttft_err);
  r.e2e_prediction_error_ms = summarize(e2e_err);
  if (duration_s > 0) {
    r.request_throughput_rps = static_cast<double>(r.requests) / duration_s;
    r.output_tokens_per_s = static_cast<double>(r.total_output_tokens) / duration_s;
    r.total_tokens_per_s =
        static_cast<double>(r.total_input_tokens + r.total_output_tokens) / duration_s;
    if (slo.any()) r.goodput_rps = static_cast<double>(good) / duration_s;
  } else if (slo.any()) {
    r.goodput_rps = 0.0;
  }
  // Peak concurrency: sweep; at equal times a finish counts before a start.
  std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) {
    return a.t < b.t || (a.t == b.t && a.delta < b.delta);
  });
  int64_t in_flight = 0;
  for (const Edge& e : edges) {
    in_flight += e.delta;
    r.peak_concurrency = std::max(r.peak_concurrency, in_flight);
  }
  // Peak output tokens/s over 1-second buckets from the first token.
  if (!token_times.empty()) {
    std::sort(token_times.begin(), token_times.end());
    const double t0 = token_times.front();
    std::map<int64_t, int64_t> buckets;
    for (double t : token_times) ++buckets[static_cast<int64_t>(std::floor(t - t0))];
    for (const auto& [bucket, count] : buckets) {
      r.peak_output_tokens_per_s = std::max(r.peak_output_tokens_per_s, static_cast<double>(count));
    }
  }
  return r;
}

json::object to_json(const Report& r) {
  json::object o;
  o["label"] = r.label;
  o["requests"] = r.requests;
  o["errors"] = r.errors;
  o["duration_s"] = r.duration_s;
  o["total_input_tokens"] = r.total_input_tokens;
  o["total_output_tokens"] = r.total_output_tokens;
  o["request_throughput_rps"] = r.request_throughput_rps;
  o["output_tokens_per_s"] = r.output_tokens_per_s;
  o["total_tokens_per_s"] = r.total_tokens_per_s;
  o["goodput_rps"] = optional_number(r.goodput_rps);
  o["slo"] = json::object{{"ttft_ms", optional_number(r.slo.ttft_ms)},
                          {"tpot_ms", optional_number(r.slo.tpot_ms)},
                          {"e2e_ms", optional_number(r.slo.e2e_ms)}};
  o["ttft_ms"] = summary_json(r.ttft_ms);
  o["tpot_ms"] = summary_json(r.tpot_ms);
  o["itl_ms"] = summary_json(r.itl_ms);
  o["e2e_ms"] = summary_json(r.e2e_ms);
  o["peak_output_tokens_per_s"] = r.peak_output_tokens_per_s;
  o["peak_concurrency"] = r.peak_concurrency;
  json::object errors;
  for (const auto& [kind, n] : r.errors_by_kind) errors[kind] = n;
  o["errors_by_kind"] = std::move(errors);
  json::object replicas;
  for (const auto& [name, n] : r.replicas) replicas[name] = n;
  o["replicas"] = std::move(replicas);
  o["send_lateness_ms"] = summary_json(r.send_lateness_ms);
  o["ttft_prediction_error_ms"] = summary_json(r.ttft_prediction_error_ms);
  o["e2e_prediction_error_ms"] = summary_json(r.e2e_prediction_error_ms);
  json::object extra;
  for (const auto& [k, v] : r.extra) extra[k] = v;
  o["extra"] = std::move(extra);
  return o;
}

std::string to_json_string(const Report& report, bool pretty) {
  const std::string compact = json::serialize(to_json(report));
  if (!pretty) return compact;
  // One top-level key per line; nested objects stay on their line.
  std::string out;
  out.reserve(compact.size() + 64);
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : compact) {
    if (in_string) {
      out += c;
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '{' || c == '[') {
      ++depth;
      out += c;
      if (depth == 1) out += "\n  ";
      continue;
    }
    if (c == '}' || c == ']') {
      --depth;
      if (depth == 0) out += "\n";
      out += c;
      continue;
    }
    out += c;
    if (c == ',' && depth == 1) out += "\n  ";
  }
  out += "\n";
  return out;
}

bool report_from_json(const json::value& value, Report& out, std::string& error) {
  const json::object* root = value.if_object();
  if (!root) {
    error = "report: not a JSON object";
    return false;
  }
  if (const json::value* inner = root->if_contains("report"); inner && inner->is_object()) {
    root = &inner->get_object();
  }
  Report r;
  Reader rd;
  if (const json::value* l = root->if_contains("label")) {
    if (l->is_string()) {
      r.label = std::string(l->get_string());
    } else if (!l->is_null()) {
      rd.fail("label", "is not a string");
    }
  }
  rd.integer(*root, "requests", r.requests, true);
  rd.integer(*root, "errors", r.errors);
  rd.number(*root, "duration_s", r.duration_s, true);
  rd.integer(*root, "total_input_tokens", r.total_input_tokens);
  rd.integer(*root, "total_output_tokens", r.total_output_tokens);
  rd.number(*root, "request_throughput_rps", r.request_throughput_rps);
  rd.number(*root, "output_tokens_per_s", r.output_tokens_per_s);
  rd.number(*root, "total_tokens_per_s", r.total_tokens_per_s);
  rd.optional(*root, "goodput_rps", r.goodput_rps);
  if (const json::object* slo = rd.object(*root, "slo")) {
    rd.optional(*slo, "ttft_ms", r.slo.ttft_ms);
    rd.optional(*slo, "tpot_ms", r.slo.tpot_ms);
    rd.optional(*slo, "e2e_ms", r.slo.e2e_ms);
  }
  rd.summary(*root, "ttft_ms", r.ttft_ms);
  rd.summary(*root, "tpot_ms", r.tpot_ms);
  rd.summary(*root, "itl_ms", r.itl_ms);
  rd.summary(*root, "e2e_ms", r.e2e_ms);
  rd.number(*root, "peak_output_tokens_per_s", r.peak_output_tokens_per_s);
  rd.integer(*root, "peak_concurrency", r.peak_concurrency);
  rd.counts(*root, "errors_by_kind", r.errors_by_kind);
  rd.counts(*root, "replicas", r.replicas);
  rd.summary(*root, "send_lateness_ms", r.send_lateness_ms);
  rd.summary(*root, "ttft_prediction_error_ms", r.ttft_prediction_error_ms);
  rd.summary(*root, "e2e_prediction_error_ms", r.e2e_prediction_error_ms);
  rd.counts(*root, "extra", r.extra);
  if (!rd.ok()) {
    error = rd.error();
    return false;
  }
  out = std::move(r);
  return true;
}

bool parse_report(std::string_view text, Report& out, std::string& error) {
  // simdjson parses numbers exactly (Boost.JSON 1.81's parser may be off by an ulp), so a
  // report survives a write/read round trip bit for bit.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto ec = parser.parse(text.data(), text.size()).get(root); ec) {
    error = fmt::format("report: malformed JSON: {}", simdjson::error_message(ec));
    return false;
  }
  return report_from_json(to_boost_json(root), out, error);
}

bool load_report_file(const std::string& path, Report& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = fmt::format("{}: cannot open: {}", path, std::strerror(errno));
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!parse_report(ss.str(), out, error)) {
    error = fmt::format("{}: {}", path, error);
    return false;
  }
  return true;
}

Report steady_report(std::string label, const std::vector<RequestRecord>& records,
                     double warmup_fraction, const Slo& slo) {
  if (records.empty()) return build_report(std::move(label), records, 0, slo);
  double first = records.front().start_s, last = first;
  for (const RequestRecord& rec : records) {
    first = std::min(first, rec.start_s);
    last = std::max(last, rec.start_s);
  }
  const bool all = warmup_fraction <= 0;
  const double from = all ? first : first + warmup_fraction * (last - first);
  const double window = last - from;
  std::vector<RequestRecord> kept;
  int64_t completed = 0;
  for (const RequestRecord& rec : records) {
    if (all || rec.start_s > from) kept.push_back(rec);
    const double done = rec.start_s + rec.e2e_s;
    if (rec.ok() && done > from && done <= last) ++completed;
  }
  Report r = build_report(std::move(label), kept, std::max(window, 0.0), slo);
  r.extra["warmup_s"] = from - first;
  r.extra["window_s"] = window;
  r.extra["offered_rps"] = window > 0 ? static_cast<double>(kept.size()) / window : 0.0;
  r.extra["completed_rps"] = window > 0 ? static_cast<double>(completed) / window : 0.0;
  return r;
}

namespace {

using MetricGetter = std::function<std::optional<double>(const Report&)>;

struct MetricRow {
  std::string name;
  MetricGetter get;
  int decimals = 2;
};

// Every metric of the comparison, in the default table's order (without "replicas").
std::vector<MetricRow> metric_rows() {
  std::vector<MetricRow> rows = {
      {"requests", [](const Report& r) { return double(r.requests); }, 0},
      {"errors", [](const Report& r) { return double(r.errors); }, 0},
      {"duration_s", [](const Report& r) { return r.duration_s; }, 2},
      {"request_throughput_rps", [](const Report& r) { return r.request_throughput_rps; }, 3},
      {"output_tokens_per_s", [](const Report& r) { return r.output_tokens_per_s; }, 1},
      {"goodput_rps", [](const Report& r) { return r.goodput_rps; }, 3},
  };
  const std::pair<const char*, Summary Report::*> metrics[] = {{"ttft_ms", &Report::ttft_ms},
                                                               {"tpot_ms", &Report::tpot_ms},
                                                               {"itl_ms", &Report::itl_ms},
                                                               {"e2e_ms", &Report::e2e_ms}};
  const std::pair<const char*, double Summary::*> stats[] = {{"mean", &Summary::mean},
                                                             {"p50", &Summary::p50},
                                                             {"p90", &Summary::p90},
                                                             {"p99", &Summary::p99},
                                                             {"p999", &Summary::p999}};
  for (const auto& [metric, member] : metrics) {
    for (const auto& [stat, field] : stats) {
      rows.push_back({fmt::format("{} {}", metric, stat),
                      [member = member, field = field](const Report& r) {
                        return std::optional<double>((r.*member).*field);
                      },
                      2});
    }
  }
  rows.push_back(
      {"send_lateness_ms p99", [](const Report& r) { return r.send_lateness_ms.p99; }, 2});
  return rows;
}

// "NAME[=TITLE]": NAME as the default table prints it ("ttft_ms p99"), with '.' for the space
// ("ttft_ms.p99"), or extra.KEY; false for an unknown name.
bool find_metric(const std::string& spec, MetricRow& out, std::string& error) {
  const std::size_t eq = spec.find('=');
  std::string name = spec.substr(0, eq);
  const std::string title = eq == std::string::npos ? name : spec.substr(eq + 1);
  if (name.rfind("extra.", 0) == 0) {
    const std::string key = name.substr(6);
    out = {title,
           [key](const Report& r) -> std::optional<double> {
             const auto it = r.extra.find(key);
             if (it == r.extra.end()) return std::nullopt;
             return it->second;
           },
           3};
    return true;
  }
  if (const std::size_t dot = name.find('.'); dot != std::string::npos) name[dot] = ' ';
  for (MetricRow& row : metric_rows()) {
    if (row.name == name) {
      out = std::move(row);
      if (eq != std::string::npos) out.name = title;
      return true;
    }
  }
  error = fmt::format("unknown metric '{}' (e.g. requests, ttft_ms.p99, extra.offered_rps)",
                      spec.substr(0, eq));
  return false;
}

std::string ratio_text(std::optional<double> v, std::optional<double> base) {
  if (!v || !base || *base == 0) return "-";
  return fmt::format("{:.2f}x", *v / *base);
}

std::string replicas_text(const Report& r) {
  std::string cell;
  for (const auto& [name, n] : r.replicas) {
    if (!cell.empty()) cell += " ";
    cell += fmt::format("{}={}", name, n);
  }
  return cell.empty() ? "-" : cell;
}

std::string report_name(const Report& r) {
  return r.label.empty() ? "(unlabelled)" : r.label;
}

using Table = std::vector<std::vector<std::string>>;

// One row per metric, one column per report; ratios to the baseline in the later cells.
Table metric_table(const std::vector<Report>& reports, const std::vector<MetricRow>& rows,
                   std::size_t baseline, bool with_replicas) {
  Table table;
  std::vector<std::string> header = {"metric"};
  for (const Report& r : reports) header.push_back(report_name(r));
  table.push_back(header);
  for (const MetricRow& row : rows) {
    std::vector<std::string> line = {row.name};
    const std::optional<double> base = row.get(reports[baseline]);
    for (std::size_t i = 0; i < reports.size(); ++i) {
      const std::optional<double> v = row.get(reports[i]);
      std::string cell = v ? trim_number(*v, row.decimals) : "-";
      if (i != baseline && v && base) cell += " (" + ratio_text(v, base) + ")";
      line.push_back(std::move(cell));
    }
    table.push_back(std::move(line));
  }
  if (with_replicas) {  // replica shares: text only
    std::vector<std::string> line = {"replicas"};
    for (const Report& r : reports) line.push_back(replicas_text(r));
    table.push_back(std::move(line));
  }
  return table;
}

// One row per report, one column per metric, then a "METRIC / BASELINE" column per ratio.
Table report_table(const std::vector<Report>& reports, const std::vector<MetricRow>& rows,
                   const std::vector<MetricRow>& ratios, std::size_t baseline,
                   const std::string& first_column) {
  Table table;
  std::vector<std::string> header = {first_column};
  for (const MetricRow& row : rows) header.push_back(row.name);
  for (const MetricRow& row : ratios) {
    header.push_back(fmt::format("{} / {}", row.name, report_name(reports[baseline])));
  }
  table.push_back(header);
  for (const Report& r : reports) {
    std::vector<std::string> line = {report_name(r)};
    for (const MetricRow& row : rows) {
      const std::optional<double> v = row.get(r);
      line.push_back(v ? trim_number(*v, row.decimals) : "-");
    }
    for (const MetricRow& row : ratios) {
      line.push_back(ratio_text(row.get(r), row.get(reports[baseline])));
    }
    table.push_back(std::move(line));
  }
  return table;
}

std::string render_table(const Table& table, TableFormat format) {
  std::vector<std::size_t> widths(table.front().size(), 0);
  for (const auto& line : table) {
    for (std::size_t c = 0; c < line.size(); ++c) widths[c] = std::max(widths[c], line[c].size());
  }
  std::string out;
  for (std::size_t li = 0; li < table.size(); ++li) {
    const auto& line = table[li];
    for (std::size_t c = 0; c < line.size(); ++c) {
      if (format == TableFormat::kPlain) {
        out += c == 0 ? fmt::format("{:<{}}", line[c], widths[c])
                      : fmt::format("  {:>{}}", line[c], widths[c]);
      } else {
        out += fmt::format("{} {:<{}} |", c == 0 ? "|" : "", line[c], widths[c]);
      }
    }
    out += "\n";
    if (li == 0 && format == TableFormat::kMarkdown) {
      out += "|";
      for (std::size_t c = 0; c < line.size(); ++c) {
        out += c == 0 ? fmt::format("{:-<{}}|", "", widths[c] + 2)
                      : fmt::format("{:->{}}:|", "", widths[c] + 1);
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace

bool render_comparison(const std::vector<Report>& reports, const CompareOptions& options,
                       std::string& out, std::string& error) {
  if (reports.empty()) {
    error = "no reports";
    return false;
  }
  std::size_t baseline = 0;
  if (!options.baseline.empty()) {
    const auto it = std::find_if(reports.begin(), reports.end(),
                                 [&](const Report& r) { return r.label == options.baseline; });
    if (it == reports.end()) {
      error = fmt::format("no report is labelled '{}' (--baseline)", options.baseline);
      return false;
    }
    baseline = static_cast<std::size_t>(it - reports.begin());
  }
  std::vector<MetricRow> rows, ratios;
  auto find_all = [&error](const std::vector<std::string>& specs, std::vector<MetricRow>& into) {
    for (const std::string& spec : specs) {
      MetricRow row;
      if (!find_metric(spec, row, error)) return false;
      into.push_back(std::move(row));
    }
    return true;
  };
  if (!find_all(options.metrics, rows) || !find_all(options.ratios, ratios)) return false;
  const bool all = options.metrics.empty();
  if (all) rows = metric_rows();
  if (!options.by_report && !ratios.empty()) {
    error = "--ratios goes with --by-report (the default table has a ratio in every cell)";
    return false;
  }
  const Table table = options.by_report
                          ? report_table(reports, rows, ratios, baseline, options.first_column)
                          : metric_table(reports, rows, baseline, all);
  out = render_table(table, options.format);
  return true;
}

std::string render_comparison(const std::vector<Report>& reports, TableFormat format) {
  CompareOptions options;
  options.format = format;
  std::string out, error;
  render_comparison(reports, options, out, error);
  return out;
}

}  // namespace eta::stats
